"""tmpfs: directories, regular files, symlinks and device nodes held in the sentry's memory.

An instance may have a size limit (the `size=` of a tmpfs mount): the pages its regular files
hold are counted, a write that does not fit is cut short, or fails with ENOSPC if nothing fits.
While a regular file has shared mappings its bytes live in its mapping cache (mm/cache.py), which
the mappings map: reads and writes go there, and the bytes come back when the last mapping goes.
"""
from __future__ import annotations

import re
import time
import weakref

from ..abi.errno import EEXIST, ENOENT, ENOSPC, ENOTEMPTY, ENXIO, EOPNOTSUPP
from ..abi.fs import (DT_SHIFT, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, S_IFCHR, S_IFDIR,
                      S_IFLNK, S_IFREG, TMPFS_MAGIC)
from ..kernel.errors import SysError
from ..mm.cache import MappingCache
from ..vfs.device import open_device
from ..vfs.file import DirFile, File
from ..vfs.inode import BLOCK_SIZE, AttrInode, FileSystem, Inode, StatFs


_NONZERO = re.compile(rb"[^\0]")


def _pages(size: int) -> int:
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE


class TmpfsFS(FileSystem):
    """One tmpfs instance; `size`: the most bytes its files may hold (None: no limit)."""

    name = "tmpfs"
    magic = TMPFS_MAGIC

    def __init__(self, size: int | None = None):
        super().__init__()
        self.limit = None if size is None else _pages(size)  # in pages
        self.used = 0  # pages held by regular files

    def new_root(self, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TmpfsDir:
        """A fresh root directory."""
        return TmpfsDir(self, mode, uid, gid)

    def fit(self, old: int, new: int) -> int:
        """A file grows from `old` to `new` bytes: the size it may have (>= old), charged."""
        need = _pages(new) - _pages(old)
        if self.limit is not None and need > self.limit - self.used:
            new = max(old, (_pages(old) + self.limit - self.used) * BLOCK_SIZE)
            need = _pages(new) - _pages(old)
        self.used += need
        return new

    def uncharge(self, old: int, new: int) -> None:
        """A file shrank from `old` to `new` bytes (0: it is gone)."""
        self.used -= _pages(old) - _pages(new)

    def statfs(self) -> StatFs:
        """Blocks and free blocks when the instance has a size limit."""
        if self.limit is None:
            return StatFs(self.magic)
        free = max(self.limit - self.used, 0)
        return StatFs(self.magic, BLOCK_SIZE, self.limit, free, free)


class TmpfsDir(AttrInode):
    """A directory: name -> inode; `opaque` hides the lower layer when used as an overlay upper."""

    __slots__ = ("entries", "opaque")

    def __init__(self, fs: FileSystem, mode: int, uid: int, gid: int):
        super().__init__(fs, S_IFDIR | mode, uid, gid, nlink=2)
        self.entries: dict[bytes, Inode] = {}
        self.opaque = False

    def open(self, t, loc, flags: int):
        """Open for getdents."""
        return DirFile(loc, flags)

    def lookup(self, name: bytes) -> Inode:
        """The entry `name`."""
        try:
            return self.entries[name]
        except KeyError:
            raise SysError(ENOENT) from None

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """Every entry."""
        return [(name, i.ino, i.kind >> DT_SHIFT) for name, i in self.entries.items()]

    def _add(self, name: bytes, inode: AttrInode) -> AttrInode:
        if name in self.entries:
            raise SysError(EEXIST)
        self.entries[name] = inode
        self.touch()
        return inode

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """A new empty regular file."""
        return self._add(name, TmpfsFile(self.fs, mode, uid, gid))

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        """A new empty regular file without a name (no link yet)."""
        inode = TmpfsFile(self.fs, mode, uid, gid)
        inode.nlink = 0
        return inode

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """A new empty directory."""
        d = self._add(name, TmpfsDir(self.fs, mode, uid, gid))
        self.nlink += 1
        return d

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        """A new symlink to `target`."""
        return self._add(name, TmpfsSymlink(self.fs, target, uid, gid))

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        """A new device, FIFO or socket node (`mode` includes the type)."""
        return self._add(name, TmpfsNode(self.fs, mode, uid, gid, rdev=rdev))

    def link(self, name: bytes, inode: Inode) -> None:
        """A new name for `inode`."""
        self._add(name, inode)
        inode.nlink += 1
        inode.ctime_ns = self.mtime_ns

    def unlink(self, name: bytes, inode: Inode) -> None:
        """Remove a non-directory entry."""
        del self.entries[name]
        _drop_link(inode)
        self.touch()
        inode.ctime_ns = self.mtime_ns

    def rmdir(self, name: bytes, inode: Inode) -> None:
        """Remove an empty directory."""
        if inode.entries:
            raise SysError(ENOTEMPTY)
        del self.entries[name]
        inode.nlink = 0
        self.nlink -= 1
        self.touch()

    def rename(self, name: bytes, inode: Inode, newdir: TmpfsDir, newname: bytes, target: Inode | None,
               exchange: bool) -> None:
        """Move (or swap) entries between tmpfs directories."""
        is_dir = inode.kind == S_IFDIR
        if exchange:
            self.entries[name], newdir.entries[newname] = target, inode
            moved_dirs = is_dir - (target.kind == S_IFDIR)
        else:
            if target is not None:
                if target.kind == S_IFDIR:
                    if target.entries:
                        raise SysError(ENOTEMPTY)
                    target.nlink = 0
                    newdir.nlink -= 1
                else:
                    _drop_link(target)
            del self.entries[name]
            newdir.entries[newname] = inode
            moved_dirs = is_dir
        self.nlink -= moved_dirs
        newdir.nlink += moved_dirs
        self.touch()
        newdir.touch()
        inode.ctime_ns = self.mtime_ns


def _drop_link(inode: Inode) -> None:
    """One name of non-directory `inode` is gone; its pages are freed with the last."""
    inode.nlink -= 1
    if inode.nlink <= 0 and inode.kind == S_IFREG:
        inode.fs.uncharge(inode.size, 0)


class TmpfsFile(AttrInode):
    """A regular file: its bytes in a bytearray, or in its mapping cache while it has one."""

    __slots__ = ("data", "_cache")

    def __init__(self, fs: FileSystem, mode: int, uid: int, gid: int, data: bytes = b""):
        super().__init__(fs, S_IFREG | mode, uid, gid)
        self.data = bytearray(data)
        self.size = len(data)
        self._cache: weakref.ref | None = None

    def cached(self) -> MappingCache | None:
        """The mapping cache holding the bytes, if the file is mapped shared."""
        return self._cache() if self._cache is not None else None

    def mapping_cache(self) -> MappingCache:
        """The mapping cache, made now (the bytes move there) if the file has none."""
        cache = self.cached()
        if cache is None:
            cache = MappingCache("tmpfs", self._uncache)
            cache.pwrite(self.data, 0)
            cache.resize(self.size)
            self.data = bytearray()
            self._cache = weakref.ref(cache)
        return cache

    def contents(self) -> bytes | bytearray:
        """All the bytes (from the mapping cache while there is one)."""
        cache = self.cached()
        return self.data if cache is None else cache.pread(self.size, 0)

    def _uncache(self, data: bytes) -> None:
        """The last mapping went: the bytes are the file's own again."""
        self.data = bytearray(data)
        self._cache = None

    def open(self, t, loc, flags: int):
        """Open for reading and writing the bytes."""
        return TmpfsOpenFile(loc, flags, self)

    def replace(self, data: bytes) -> None:
        """Set the whole content (overlay copy-up)."""
        self._charge(len(data))
        self.data[:] = data
        self.size = len(data)

    def _charge(self, size: int) -> None:
        """Account for a new size; ENOSPC if it does not fit."""
        if size > self.size:
            got = self.fs.fit(self.size, size)
            if got < size:
                self.fs.uncharge(got, self.size)
                raise SysError(ENOSPC)
        else:
            self.fs.uncharge(self.size, size)

    def resize(self, size: int) -> None:
        """Truncate or zero-extend."""
        self._charge(size)
        cache = self.cached()
        if cache is not None:
            cache.resize(size)
        elif size < len(self.data):
            del self.data[size:]
        else:
            self.data += bytes(size - len(self.data))
        self.size = size
        self.touch()


class TmpfsOpenFile(File):
    """An open tmpfs regular file."""

    __slots__ = ("node",)

    def __init__(self, loc, flags: int, node: TmpfsFile):
        super().__init__(loc, flags)
        self.node = node

    def size(self) -> int:
        """Current length."""
        return self.node.size

    def lock_key(self):
        """The file's node (an overlay's upper file included), which every open of it shares."""
        return self.node

    def data_offset(self, offset: int, hole: bool) -> int:
        """SEEK_DATA/SEEK_HOLE by pages, as Linux's tmpfs: a page holding only zeros counts as a
        hole (pages are not allocated on their own here: a written page of zeros is one too)."""
        data, size = self.node.contents(), self.node.size
        if not 0 <= offset < size:
            raise SysError(ENXIO)
        page = offset - offset % BLOCK_SIZE
        if not hole:
            found = _NONZERO.search(data, page, size)
            if found is None:
                raise SysError(ENXIO)
            return max(offset, found.start() - found.start() % BLOCK_SIZE)
        while page < size and _NONZERO.search(data, page, min(page + BLOCK_SIZE, size)):
            page += BLOCK_SIZE
        return max(offset, min(page, size))

    def mapping_cache(self) -> MappingCache:
        """The file's mapping cache (for a shared mapping)."""
        return self.node.mapping_cache()

    def pread(self, n: int, offset: int) -> bytes:
        """Bytes at `offset`."""
        cache = self.node.cached()
        if cache is not None:
            return cache.pread(n, offset)
        return bytes(memoryview(self.node.data)[offset:offset + n])

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write, zero-filling any gap; cut short where the file system is full."""
        node = self.node
        end = offset + len(data)
        if end > node.size:
            fits = node.fs.fit(node.size, end)
            if fits < end:
                if fits <= offset:
                    node.fs.uncharge(fits, node.size)
                    raise SysError(ENOSPC)
                data = data[:fits - offset]
        cache = node.cached()
        if cache is not None:
            cache.pwrite(data, offset)
            node.size = cache.size
        else:
            buf = node.data
            if offset > len(buf):
                buf += bytes(offset - len(buf))
            buf[offset:offset + len(data)] = data
            node.size = len(buf)
        node.mtime_ns = node.ctime_ns = time.time_ns()
        return len(data)


    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """Allocate (a size: pages are not held apart from the bytes), with KEEP_SIZE, PUNCH_HOLE
        or ZERO_RANGE (zeros written over the range inside the file); others EOPNOTSUPP.  As Linux's
        tmpfs, a tmpfs file (a memfd too) has no ZERO_RANGE; an overlay's upper file has (as the
        disk file system under a real overlay would)."""
        op = mode & ~FALLOC_FL_KEEP_SIZE
        if op not in (0, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE) or \
                op == FALLOC_FL_ZERO_RANGE and self.loc.inode.fs.magic == TMPFS_MAGIC:
            raise SysError(EOPNOTSUPP)
        node = self.node
        end = offset + length
        if op and offset < node.size:
            self.pwrite(bytes(min(end, node.size) - offset), offset)
        if not mode & FALLOC_FL_KEEP_SIZE and end > node.size:
            node.resize(end)


class TmpfsSymlink(AttrInode):
    """A symbolic link."""

    __slots__ = ("target",)

    def __init__(self, fs: FileSystem, target: bytes, uid: int, gid: int):
        super().__init__(fs, S_IFLNK | 0o777, uid, gid)
        self.target = target
        self.size = len(target)

    def readlink(self, t) -> bytes:
        """The target."""
        return self.target


class TmpfsNode(AttrInode):
    """A device, FIFO or socket node; character devices open through the device registry."""

    __slots__ = ()

    def open(self, t, loc, flags: int):
        """Open the device this node names."""
        if self.kind != S_IFCHR:
            raise SysError(ENXIO)
        return open_device(t, loc, flags, self.rdev)
