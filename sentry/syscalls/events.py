"""Event-notification syscalls: eventfd, epoll, timerfd, signalfd and inotify; and memfd_create."""
from __future__ import annotations

import struct
import time

from ..abi.epoll import (EP_MAX_EVENTS, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLLEXCLUSIVE,
                         EPOLLEXCLUSIVE_OK_BITS)
from ..abi.errno import EACCES, EEXIST, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EPERM
from ..abi.fs import AT_FDCWD, O_CLOEXEC, O_NONBLOCK, POLLERR, POLLHUP, R_OK, S_IFDIR
from ..abi.inotify import (ALL_INOTIFY_BITS, IN_CLOEXEC, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_NONBLOCK,
                           IN_ONLYDIR)
from ..fs.anon import EFD_SEMAPHORE, EpollFile, EpollItem, EventFile, SignalFile, TimerFile
from ..fs.inotify import InotifyFile
from ..fs.memfd import MFD_CLOEXEC, MFD_NAME_MAX, memfd_file
from ..kernel.errors import SysError
from ..kernel.signals import read_sigset, with_sigmask
from ..kernel.waitqueue import Block
from ..vfs.perm import may_access
from .args import s32, u32
from .fs import _resolve
from .time import (CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM, CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_REALTIME_ALARM,
                   _itimerspec, _now_ns, read_timespec)

_EVENT = struct.Struct("<IQ")  # struct epoll_event (packed)
_NS = 1_000_000_000


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


def _file_of(t, fd: int, kind: type):
    """The open file at raw fd `fd`, which must be a `kind` (EINVAL otherwise)."""
    file = t.fdtable.get(s32(fd))
    if not isinstance(file, kind):
        raise SysError(EINVAL)
    return file


def _epoll(t, epfd: int) -> EpollFile:
    return _file_of(t, epfd, EpollFile)


def epoll_ctl(t, epfd, op, fd, event, *_):
    op, fd = s32(op), s32(fd)
    events = data = 0
    if op != EPOLL_CTL_DEL:
        events, data = _EVENT.unpack(t.mm.read(event, _EVENT.size))
    ep = t.fdtable.get(s32(epfd))
    target = t.fdtable.get(fd)
    if target.seekable and not isinstance(target, EpollFile):
        raise SysError(EPERM)  # regular files and directories are always ready: Linux refuses them
    if target is ep or not isinstance(ep, EpollFile):
        raise SysError(EINVAL)
    if op != EPOLL_CTL_DEL and events & EPOLLEXCLUSIVE and (
            op == EPOLL_CTL_MOD or isinstance(target, EpollFile) or events & ~EPOLLEXCLUSIVE_OK_BITS):
        raise SysError(EINVAL)  # (nor with EPOLLONESHOT, nor on an epoll instance)
    ep.live(t.fdtable)  # (drops the items of closed fds)
    item = ep.interest.get(fd)
    if op == EPOLL_CTL_ADD:
        if item is not None:
            raise SysError(EEXIST)
        if isinstance(target, EpollFile) and target.reaches(ep):
            raise SysError(ELOOP)
        ep.put(fd, EpollItem(target, events | POLLERR | POLLHUP, data))
    elif op not in (EPOLL_CTL_DEL, EPOLL_CTL_MOD):
        raise SysError(EINVAL)
    elif item is None:
        raise SysError(ENOENT)
    elif op == EPOLL_CTL_DEL:
        ep.put(fd, None)
    elif item.events & EPOLLEXCLUSIVE:
        raise SysError(EINVAL)  # an exclusive item cannot be modified
    else:
        ep.put(fd, EpollItem(target, events | POLLERR | POLLHUP, data))
    return 0


def _wait(t, epfd: int, events: int, maxevents: int, deadline: float | None):
    """epoll_wait until `deadline` (monotonic; None: no limit): level-triggered items are
    reported while ready, the others as EpollItem says."""
    if not 0 < maxevents <= EP_MAX_EVENTS:
        raise SysError(EINVAL)
    ep = _epoll(t, epfd)

    def attempt():
        out = ep.take(t.fdtable, maxevents)
        if out or deadline is not None and time.monotonic() >= deadline:
            t.mm.write(events, b"".join(_EVENT.pack(*e) for e in out))
            return len(out)
        queues, exclusive, host_fds = ep.sources()
        return Block(queues, deadline, host_fds, retry=attempt, restartable=False, exclusive=exclusive)

    return attempt()


def _ms_deadline(timeout_ms: int) -> float | None:
    return None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000


def epoll_wait(t, epfd, events, maxevents, timeout, *_):
    return _wait(t, epfd, events, s32(maxevents), _ms_deadline(s32(timeout)))


def epoll_pwait(t, epfd, events, maxevents, timeout, sigmask, size, *_):
    """epoll_pwait(2): epoll_wait with the signal mask `sigmask` during the wait."""
    deadline = _ms_deadline(s32(timeout))
    return with_sigmask(t, sigmask, size, lambda: _wait(t, epfd, events, s32(maxevents), deadline))


def epoll_pwait2(t, epfd, events, maxevents, timeout, sigmask, size, *_):
    """epoll_pwait2(2): epoll_pwait with a timespec timeout (NULL: none)."""
    deadline = time.monotonic() + read_timespec(t, timeout) / _NS if timeout else None
    return with_sigmask(t, sigmask, size, lambda: _wait(t, epfd, events, s32(maxevents), deadline))


# -- timerfd ---------------------------------------------------------------------
TFD_TIMER_ABSTIME = 1
TFD_TIMER_CANCEL_ON_SET = 2
_TFD_CLOCKS = (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM)


def timerfd_create(t, clock, flags, *_):
    clock, flags = s32(clock), s32(flags)
    if clock not in _TFD_CLOCKS or flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SysError(EINVAL)
    return t.fdtable.install(TimerFile(t, clock, flags), cloexec=bool(flags & O_CLOEXEC))


def _timerfd(t, fd) -> TimerFile:
    return _file_of(t, fd, TimerFile)


def timerfd_settime(t, fd, flags, new, old, *_):
    file = _timerfd(t, fd)
    flags = s32(flags)
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise SysError(EINVAL)
    interval = read_timespec(t, new) / _NS
    value = read_timespec(t, new + 16) / _NS
    if old:
        remaining, old_interval = file.timer.remaining()
        t.mm.write(old, _itimerspec(old_interval * _NS, remaining * _NS))
    if value and flags & TFD_TIMER_ABSTIME:
        value = max(value - _now_ns(t, file.clock) / _NS, 1e-9)  # a past time expires at once
    file.arm(value, interval)
    return 0


def timerfd_gettime(t, fd, cur, *_):
    remaining, interval = _timerfd(t, fd).timer.remaining()
    t.mm.write(cur, _itimerspec(interval * _NS, remaining * _NS))
    return 0


# -- signalfd --------------------------------------------------------------------
def _signalfd(t, fd: int, mask_addr: int, size: int, flags: int) -> int:
    mask = read_sigset(t, mask_addr, size)
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SysError(EINVAL)
    fd = s32(fd)
    if fd != -1:
        _file_of(t, fd, SignalFile).mask = mask  # EBADF if not open
        return fd
    return t.fdtable.install(SignalFile(t, mask, flags), cloexec=bool(flags & O_CLOEXEC))


def signalfd(t, fd, mask, size, *_):
    return _signalfd(t, fd, mask, size, 0)


def signalfd4(t, fd, mask, size, flags, *_):
    return _signalfd(t, fd, mask, size, s32(flags))


# -- inotify ---------------------------------------------------------------------
def _inotify_init(t, flags: int) -> int:
    if flags & ~(IN_NONBLOCK | IN_CLOEXEC):
        raise SysError(EINVAL)
    return t.fdtable.install(InotifyFile(t, flags), cloexec=bool(flags & IN_CLOEXEC))


def inotify_init(t, *_):
    """inotify_init(2): a new inotify instance."""
    return _inotify_init(t, 0)


def inotify_init1(t, flags, *_):
    """inotify_init1(2) with IN_NONBLOCK and IN_CLOEXEC."""
    return _inotify_init(t, s32(flags))


def inotify_add_watch(t, fd, path, mask, *_):
    """inotify_add_watch(2): watch the file at `path` (it must be readable); the watch descriptor."""
    mask = u32(mask)
    if mask & IN_MASK_ADD and mask & IN_MASK_CREATE or not mask & ALL_INOTIFY_BITS:
        raise SysError(EINVAL)
    group = _file_of(t, fd, InotifyFile)
    loc = _resolve(t, AT_FDCWD, path, follow=not mask & IN_DONT_FOLLOW)
    if mask & IN_ONLYDIR and loc.inode.kind != S_IFDIR:
        raise SysError(ENOTDIR)
    if not may_access(t.creds, loc.inode.stat(), R_OK):
        raise SysError(EACCES)
    return group.add_watch(loc.inode, mask)


def inotify_rm_watch(t, fd, wd, *_):
    """inotify_rm_watch(2): end watch `wd` (IN_IGNORED is queued)."""
    _file_of(t, fd, InotifyFile).rm_watch(s32(wd))
    return 0


# -- memfd -----------------------------------------------------------------------
def memfd_create(t, name, flags, *_):
    flags = u32(flags)
    try:
        raw = t.mm.read_cstr(name, MFD_NAME_MAX + 1)
    except SysError as err:
        if err.errno != ENAMETOOLONG:
            raise
        raise SysError(EINVAL) from None
    return t.fdtable.install(memfd_file(t, raw, flags), cloexec=bool(flags & MFD_CLOEXEC))
