"""Event-notification syscalls: eventfd and epoll."""
from __future__ import annotations

import struct
import time

from ..abi.errno import EEXIST, EINVAL, ENOENT, EPERM
from ..abi.fs import O_CLOEXEC, O_NONBLOCK, POLLERR, POLLHUP
from ..fs.anon import EFD_SEMAPHORE, EpollFile, EventFile
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block
from .args import s32, u32

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
_EVENT = struct.Struct("<IQ")  # struct epoll_event is packed on x86_64
EP_MAX_EVENTS = 0x7FFFFFFF // _EVENT.size


def _eventfd(t, initval: int, flags: int) -> int:
    if flags & ~(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE):
        raise SysError(EINVAL)
    return t.fdtable.install(EventFile(t, initval, flags), cloexec=bool(flags & O_CLOEXEC))


def eventfd(t, initval, *_):
    return _eventfd(t, u32(initval), 0)


def eventfd2(t, initval, flags, *_):
    return _eventfd(t, u32(initval), u32(flags))


def epoll_create(t, size, *_):
    if s32(size) <= 0:
        raise SysError(EINVAL)
    return t.fdtable.install(EpollFile(t, 0))


def epoll_create1(t, flags, *_):
    flags = u32(flags)
    if flags & ~O_CLOEXEC:
        raise SysError(EINVAL)
    return t.fdtable.install(EpollFile(t, flags), cloexec=bool(flags & O_CLOEXEC))


def _epoll(t, epfd: int) -> EpollFile:
    ep = t.fdtable.get(s32(epfd))
    if not isinstance(ep, EpollFile):
        raise SysError(EINVAL)
    return ep


def epoll_ctl(t, epfd, op, fd, event, *_):
    ep = _epoll(t, epfd)
    fd, op = s32(fd), s32(op)
    target = t.fdtable.get(fd)
    if target is ep:
        raise SysError(EINVAL)
    if target.seekable and not isinstance(target, EpollFile):
        raise SysError(EPERM)  # regular files and directories are always ready: Linux refuses them
    ep.live(t.fdtable)
    if op == EPOLL_CTL_DEL:
        if ep.interest.pop(fd, None) is None:
            raise SysError(ENOENT)
        return 0
    if op not in (EPOLL_CTL_ADD, EPOLL_CTL_MOD):
        raise SysError(EINVAL)
    events, data = _EVENT.unpack(t.mm.read(event, _EVENT.size))
    if op == EPOLL_CTL_ADD:
        if fd in ep.interest:
            raise SysError(EEXIST)
    elif fd not in ep.interest:
        raise SysError(ENOENT)
    elif events & EPOLLEXCLUSIVE:
        raise SysError(EINVAL)
    ep.interest[fd] = [target, events | POLLERR | POLLHUP, data]
    return 0


def _wait(t, epfd: int, events: int, maxevents: int, timeout_ms: int):
    ep = _epoll(t, epfd)
    if not 0 < maxevents <= EP_MAX_EVENTS:
        raise SysError(EINVAL)
    deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def attempt():
        out = []
        for _, entry in ep.live(t.fdtable):
            file, wanted, data = entry
            ready = file.readiness() & wanted & 0xFFFF
            if ready:
                out.append(_EVENT.pack(ready, data))
                if wanted & EPOLLONESHOT:
                    entry[1] = 0  # disarmed until EPOLL_CTL_MOD
                if len(out) == maxevents:
                    break
        if out or deadline is not None and time.monotonic() >= deadline:
            t.mm.write(events, b"".join(out))
            return len(out)
        queues, host_fds = ep.wait_sources(0)
        return Block(queues, deadline, host_fds, retry=attempt, restartable=False)

    return attempt()


def epoll_wait(t, epfd, events, maxevents, timeout, *_):
    return _wait(t, epfd, events, s32(maxevents), s32(timeout))


def epoll_pwait(t, epfd, events, maxevents, timeout, sigmask, size, *_):
    return _wait(t, epfd, events, s32(maxevents), s32(timeout))


