"""Inodes and file systems: the objects every file system implements.

An `Inode` is one file system object.  Directory inodes implement the name
operations (lookup, create, unlink...), symlinks `readlink`, and every inode
`open`, which returns a `File` (an open file description).  The VFS
(`vfs.ops`) does the path-level checks (existence, types, read-only mounts,
permissions) before calling them, and passes the child inodes it already
looked up; an operation a file system lacks fails with the errno Linux gives
for a missing inode operation.
"""
from __future__ import annotations

import itertools
import time
from typing import NamedTuple

from ...gofer.protocol import Stat
from ..abi.errno import EACCES, EINVAL, ENODATA, ENOTDIR, ENXIO, EOPNOTSUPP, EPERM
from ..abi.fs import NAME_MAX, S_IFMT, makedev
from ..kernel.errors import SysError

BLOCK_SIZE = 4096


# An inode's attributes as stat(2) reports them: the same record the gofer
# sends (field names as os.stat_result's, times in nanoseconds).
Attr = Stat


class StatFs(NamedTuple):
    """What statfs(2) reports about a file system (f_flags come from the mount)."""

    type: int
    bsize: int = BLOCK_SIZE
    blocks: int = 0
    bfree: int = 0
    bavail: int = 0
    files: int = 0
    ffree: int = 0
    namelen: int = NAME_MAX


_anon_devs = itertools.count(16)


class FileSystem:
    """One file system instance (a superblock): device number, inode numbers, statfs."""

    name = "none"  # the type shown in /proc/mounts
    magic = 0  # statfs f_type
    cache_dentries = True  # False for file systems whose names come and go by themselves (proc)

    def __init__(self):
        self.dev = makedev(0, next(_anon_devs))
        self._inos = itertools.count(1)

    def next_ino(self) -> int:
        """A fresh inode number."""
        return next(self._inos)

    def statfs(self) -> StatFs:
        """statfs(2) figures."""
        return StatFs(self.magic)


class Inode:
    """A file system object; `kind` is its S_IFMT type, fixed for its lifetime."""

    __slots__ = ("fs", "kind")

    def __init__(self, fs: FileSystem, kind: int):
        self.fs = fs
        self.kind = kind

    def stat(self) -> Attr:
        """Current attributes."""
        raise NotImplementedError

    def setattr(self, mode=None, uid=None, gid=None, size=None, atime_ns=None, mtime_ns=None) -> None:
        """Change the given attributes (None: unchanged); `mode` holds permission bits only."""
        raise SysError(EPERM)

    def identity(self) -> object:
        """What every name of this file has in common (the inode, unless a file system has an
        object per name): where the file's inotify watches are kept."""
        return self

    def open(self, t, loc, flags: int):
        """A new open file description of this inode at location `loc`."""
        raise SysError(ENXIO)

    # Symlinks.
    def readlink(self, t) -> bytes:
        """The link's text (as readlink(2) returns it)."""
        raise SysError(EINVAL)

    def get_link(self, t):
        """What following the link leads to: a path to walk, or a Location (proc magic links)."""
        return self.readlink(t)

    # Directories.
    def lookup(self, name: bytes) -> Inode:
        """The child called `name`; SysError(ENOENT) if there is none."""
        raise SysError(ENOTDIR)

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """The entries other than . and ..: (name, ino, d_type)."""
        raise SysError(ENOTDIR)

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """Create a regular file (`mode` includes S_IFREG)."""
        raise SysError(EACCES)

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """Create a directory (`mode`: permission bits)."""
        raise SysError(EPERM)

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        """A regular file on this directory's file system with no name yet (O_TMPFILE; `mode`
        includes S_IFREG); EOPNOTSUPP where the file system has none (as 9p)."""
        raise SysError(EOPNOTSUPP)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        """Create a symbolic link."""
        raise SysError(EPERM)

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        """Create a device, FIFO or socket node (`mode` includes the type)."""
        raise SysError(EPERM)

    def link(self, name: bytes, inode: Inode) -> Inode | None:
        """Add a hard link `name` to `inode`; the inode the new name has, if not `inode` itself."""
        raise SysError(EPERM)

    def unlink(self, name: bytes, inode: Inode) -> None:
        """Remove the non-directory entry `name` (whose inode is `inode`)."""
        raise SysError(EPERM)

    def rmdir(self, name: bytes, inode: Inode) -> None:
        """Remove the empty directory `name`; SysError(ENOTEMPTY) if it is not empty."""
        raise SysError(EPERM)

    def rename(self, name: bytes, inode: Inode, newdir: Inode, newname: bytes, target: Inode | None,
               exchange: bool) -> None:
        """Move `name` to `newdir`/`newname`, replacing `target` (or swapping with it if `exchange`)."""
        raise SysError(EPERM)

    # Extended attributes (the VFS has checked the namespace, permissions and read-only mounts).
    def getxattr(self, name: bytes) -> bytes:
        """The value of extended attribute `name`."""
        raise SysError(ENODATA)

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        """Set extended attribute `name` (flags XATTR_CREATE, XATTR_REPLACE)."""
        raise SysError(EOPNOTSUPP)

    def listxattr(self) -> list[bytes]:
        """The names of the extended attributes."""
        return []

    def removexattr(self, name: bytes) -> None:
        """Remove extended attribute `name`."""
        raise SysError(EOPNOTSUPP)


class AttrInode(Inode):
    """An inode that keeps its attributes in memory (tmpfs, proc, pipes, cached gofer nodes)."""

    __slots__ = ("ino", "mode", "uid", "gid", "nlink", "size", "rdev", "atime_ns", "mtime_ns", "ctime_ns")

    def __init__(self, fs: FileSystem, mode: int, uid: int = 0, gid: int = 0, nlink: int = 1,
                 rdev: int = 0, ino: int | None = None):
        super().__init__(fs, mode & S_IFMT)
        self.ino = fs.next_ino() if ino is None else ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = nlink
        self.size = 0
        self.rdev = rdev
        self.atime_ns = self.mtime_ns = self.ctime_ns = time.time_ns()

    def stat(self) -> Attr:
        """Current attributes."""
        return Attr(self.mode, self.ino, self.fs.dev, self.nlink, self.uid, self.gid, self.rdev, self.size,
                    BLOCK_SIZE, (self.size + BLOCK_SIZE - 1) // BLOCK_SIZE * (BLOCK_SIZE // 512),
                    self.atime_ns, self.mtime_ns, self.ctime_ns)

    def touch(self) -> None:
        """Record a content change (mtime and ctime)."""
        self.mtime_ns = self.ctime_ns = time.time_ns()

    def setattr(self, mode=None, uid=None, gid=None, size=None, atime_ns=None, mtime_ns=None) -> None:
        """Change the given attributes in memory; sizes only where the subclass supports them."""
        if size is not None:
            self.resize(size)
        if mode is not None:
            self.mode = self.kind | mode
        if uid is not None:
            self.uid = uid
        if gid is not None:
            self.gid = gid
        if atime_ns is not None:
            self.atime_ns = atime_ns
        if mtime_ns is not None:
            self.mtime_ns = mtime_ns
        self.ctime_ns = time.time_ns()

    def resize(self, size: int) -> None:
        """Truncate or extend to `size` bytes."""
        raise SysError(EINVAL)
