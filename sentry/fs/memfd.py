"""memfd_create(2): anonymous tmpfs files, and their seals (F_ADD_SEALS/F_GET_SEALS).

A memfd is a regular tmpfs file with no name in the tree: /proc/self/fd shows
"/memfd:NAME (deleted)" as on Linux.  Its shared mappings map its bytes (the
tmpfs file's mapping cache), so they are coherent with write() and read().
Seals forbid shrinking, growing or writing from then on; F_SEAL_WRITE is
refused (EBUSY) while a shared mapping that may be written exists, a write seal
forbids new writable shared mappings (EPERM).
"""
from __future__ import annotations

from ..abi.errno import EBUSY, EINVAL, EPERM
from ..abi.fs import O_LARGEFILE, O_RDWR
from ..kernel.errors import SysError
from ..vfs.dentry import internal_location, internal_mount
from .tmpfs import TmpfsFile, TmpfsFS, TmpfsOpenFile

MFD_CLOEXEC = 0x1
MFD_ALLOW_SEALING = 0x2
MFD_HUGETLB = 0x4
MFD_NOEXEC_SEAL = 0x8
MFD_EXEC = 0x10
MFD_NAME_MAX = 249  # NAME_MAX minus "memfd:"

F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x1
F_SEAL_SHRINK = 0x2
F_SEAL_GROW = 0x4
F_SEAL_WRITE = 0x8
F_SEAL_FUTURE_WRITE = 0x10
F_SEAL_EXEC = 0x20
_WRITE_SEALS = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC

_FS = TmpfsFS()
_MOUNT = internal_mount(_FS)


class MemfdInode(TmpfsFile):
    """A memfd's file: a tmpfs file that keeps its seals."""

    __slots__ = ("seals",)

    def __init__(self, uid: int, gid: int, seals: int):
        super().__init__(_FS, 0o777, uid, gid)
        self.seals = seals

    def open(self, t, loc, flags: int):
        return MemfdOpenFile(loc, flags, self)

    def mapping_cache(self):
        """The tmpfs file's mapping cache, told whether the seals forbid writing."""
        cache = super().mapping_cache()
        cache.sealed = bool(self.seals & _WRITE_SEALS)
        return cache

    def resize(self, size: int) -> None:
        if size < self.size and self.seals & F_SEAL_SHRINK or size > self.size and self.seals & F_SEAL_GROW:
            raise SysError(EPERM)
        super().resize(size)


class MemfdOpenFile(TmpfsOpenFile):
    """An open memfd: writes obey the seals."""

    __slots__ = ()

    def pwrite(self, data: bytes, offset: int) -> int:
        node = self.node
        if node.seals & _WRITE_SEALS and data:
            raise SysError(EPERM)
        if node.seals & F_SEAL_GROW and offset + len(data) > node.size:
            if offset >= node.size:
                raise SysError(EPERM)
            data = data[:node.size - offset]
        return super().pwrite(data, offset)

    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """As tmpfs's; EPERM past the end under F_SEAL_GROW (with FALLOC_FL_KEEP_SIZE too)."""
        if self.node.seals & F_SEAL_GROW and offset + length > self.node.size:
            raise SysError(EPERM)
        super().fallocate(mode, offset, length)


def memfd_file(t, name: bytes, flags: int) -> MemfdOpenFile:
    """A new memfd named `name` (EINVAL for unknown flags, hugetlb, or a name too long)."""
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) or len(name) > MFD_NAME_MAX:
        raise SysError(EINVAL)
    if flags & MFD_NOEXEC_SEAL and flags & MFD_EXEC:
        raise SysError(EINVAL)
    seals = 0 if flags & (MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL) else F_SEAL_SEAL
    if flags & MFD_NOEXEC_SEAL:
        seals |= F_SEAL_EXEC
    inode = MemfdInode(t.creds.fsuid, t.creds.fsgid, seals)
    if flags & MFD_NOEXEC_SEAL:
        inode.mode &= ~0o111
    loc = internal_location(_MOUNT, b"/memfd:" + name + b" (deleted)", inode)
    return MemfdOpenFile(loc, O_RDWR | O_LARGEFILE, inode)


def seals_fcntl(f, cmd: int, arg: int) -> int:
    """fcntl F_ADD_SEALS / F_GET_SEALS on `f` (EINVAL unless it is a memfd)."""
    if not isinstance(f, MemfdOpenFile):
        raise SysError(EINVAL)
    node = f.node
    if cmd == F_GET_SEALS:
        return node.seals
    arg &= 0xFFFFFFFF
    if arg & ~_SEALS:
        raise SysError(EINVAL)
    if not f.writable:
        raise SysError(EPERM)
    if node.seals & F_SEAL_SEAL:
        raise SysError(EPERM)
    cache = node.cached()
    if arg & F_SEAL_WRITE and cache is not None and any(v.maywrite for v in cache.users):
        raise SysError(EBUSY)  # a shared mapping that is or may become writable
    node.seals |= arg
    if cache is not None:
        cache.sealed = bool(node.seals & _WRITE_SEALS)
    return 0
