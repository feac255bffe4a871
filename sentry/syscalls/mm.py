"""Memory syscalls: mmap and friends, brk."""
from __future__ import annotations

from ..abi import errno as E
from ..abi.fs import O_ACCMODE, O_PATH, O_WRONLY
from ..abi.mm import MAP_ANONYMOUS
from ..kernel.errors import SysError
from .args import s32



def mmap(t, addr, length, prot, flags, fd, offset, *_):
    file = None
    if not flags & MAP_ANONYMOUS:
        file = t.fdtable.get(s32(fd))
        if file.flags & O_PATH:
            raise SysError(E.EBADF)
        if not file.seekable:
            raise SysError(E.ENODEV)
        if (file.flags & O_ACCMODE) == O_WRONLY:
            raise SysError(E.EACCES)
    return t.mm.mmap(t.host_tid, addr, length, prot, flags, file, offset)


def munmap(t, addr, length, *_):
    return t.mm.munmap(t.host_tid, addr, length)


def mprotect(t, addr, length, prot, *_):
    return t.mm.mprotect(t.host_tid, addr, length, prot)


def madvise(t, addr, length, advice, *_):
    return t.mm.madvise(t.host_tid, addr, length, s32(advice))


def mremap(t, old, old_len, new_len, flags, new, *_):
    return t.mm.mremap(t.host_tid, old, old_len, new_len, flags, new)


def brk(t, addr, *_):
    return t.mm.set_brk(t.host_tid, addr)
