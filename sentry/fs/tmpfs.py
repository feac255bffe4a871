"""tmpfs: directories, regular files, symlinks and device nodes held in the sentry's memory."""
from __future__ import annotations

import time

from ..abi.errno import EEXIST, ENOENT, ENOTEMPTY, ENXIO
from ..abi.fs import DT_SHIFT, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, TMPFS_MAGIC
from ..kernel.errors import SysError
from ..vfs.device import open_device
from ..vfs.file import DirFile, File
from ..vfs.inode import AttrInode, FileSystem, Inode


class TmpfsFS(FileSystem):
    """One tmpfs instance."""

    name = "tmpfs"
    magic = TMPFS_MAGIC

    def new_root(self, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TmpfsDir:
        """A fresh root directory."""
        return TmpfsDir(self, mode, uid, gid)


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
        inode.nlink -= 1
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
                    target.nlink -= 1
            del self.entries[name]
            newdir.entries[newname] = inode
            moved_dirs = is_dir
        self.nlink -= moved_dirs
        newdir.nlink += moved_dirs
        self.touch()
        newdir.touch()
        inode.ctime_ns = self.mtime_ns


class TmpfsFile(AttrInode):
    """A regular file: its bytes in a bytearray."""

    __slots__ = ("data",)

    def __init__(self, fs: FileSystem, mode: int, uid: int, gid: int, data: bytes = b""):
        super().__init__(fs, S_IFREG | mode, uid, gid)
        self.data = bytearray(data)
        self.size = len(data)

    def open(self, t, loc, flags: int):
        """Open for reading and writing the bytes."""
        return TmpfsOpenFile(loc, flags, self)

    def replace(self, data: bytes) -> None:
        """Set the whole content (overlay copy-up)."""
        self.data[:] = data
        self.size = len(data)

    def resize(self, size: int) -> None:
        """Truncate or zero-extend."""
        if size < len(self.data):
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

    def pread(self, n: int, offset: int) -> bytes:
        """Bytes at `offset`."""
        return bytes(memoryview(self.node.data)[offset:offset + n])

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write, zero-filling any gap."""
        node = self.node
        buf = node.data
        if offset > len(buf):
            buf += bytes(offset - len(buf))
        buf[offset:offset + len(data)] = data
        node.size = len(buf)
        node.mtime_ns = node.ctime_ns = time.time_ns()
        return len(data)


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
