"""Memory syscalls: mmap and friends, brk."""
from __future__ import annotations

from ..abi import errno as E
from ..abi.fs import O_ACCMODE, O_PATH, O_WRONLY, ST_NOEXEC
from ..abi.mm import MAP_ANONYMOUS, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_TYPE, PROT_EXEC, PROT_WRITE, page_up
from ..abi.resource import RLIMIT_AS
from ..kernel.errors import SysError
from .args import s32



def _within_as_limit(t, growth: int) -> bool:
    """Whether the address space may grow by `growth` bytes under RLIMIT_AS."""
    return growth <= 0 or t.mm.vmas.total + growth <= t.tg.rlimit(RLIMIT_AS)[0]


def mmap(t, addr, length, prot, flags, fd, offset, *_):
    if not _within_as_limit(t, page_up(length)):
        raise SysError(E.ENOMEM)
    file = None
    if not flags & MAP_ANONYMOUS:
        file = t.fdtable.get(s32(fd))
        if file.flags & O_PATH:
            raise SysError(E.EBADF)
        if not file.seekable:
            raise SysError(E.ENODEV)
        if (file.flags & O_ACCMODE) == O_WRONLY:
            raise SysError(E.EACCES)
        if flags & MAP_TYPE in (MAP_SHARED, MAP_SHARED_VALIDATE) and prot & PROT_WRITE and not file.writable:
            raise SysError(E.EACCES)  # a writable shared mapping of a file open read-only
        if prot & PROT_EXEC and file.loc.mount.flags & ST_NOEXEC:
            raise SysError(E.EPERM)  # executable code from a noexec mount
    return t.mm.mmap(t.host_tid, addr, length, prot, flags, file, offset)


def munmap(t, addr, length, *_):
    return t.mm.munmap(t.host_tid, addr, length)


def mprotect(t, addr, length, prot, *_):
    return t.mm.mprotect(t.host_tid, addr, length, prot)


def msync(t, addr, length, flags, *_):
    return t.mm.msync(addr, length, s32(flags))


def madvise(t, addr, length, advice, *_):
    return t.mm.madvise(t.host_tid, addr, length, s32(advice))


def mremap(t, old, old_len, new_len, flags, new, *_):
    if not _within_as_limit(t, page_up(new_len) - page_up(old_len)):
        raise SysError(E.ENOMEM)
    return t.mm.mremap(t.host_tid, old, old_len, new_len, flags, new)


def brk(t, addr, *_):
    if not _within_as_limit(t, page_up(addr) - page_up(t.mm.brk)):
        return t.mm.brk  # brk fails by returning the unchanged break
    return t.mm.set_brk(t.host_tid, addr)
