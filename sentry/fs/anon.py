"""Anonymous files: eventfd counters, epoll instances, timerfds and signalfds (inotify's are
in inotify.py).

All live on one internal file system (anon_inode, as on Linux) and take part
in poll/select/epoll like pipes do: `readiness()` says what is ready now and
`wait_sources()` what to wait on until it changes.
"""
from __future__ import annotations

import struct

from ..abi.epoll import EP_MAX_NESTS, EP_PRIVATE_BITS, EPOLLET, EPOLLEXCLUSIVE, EPOLLONESHOT
from ..abi.errno import EAGAIN, EINVAL
from ..abi.fs import ANON_INODE_FS_MAGIC, O_NONBLOCK, O_RDWR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, S_IFREG
from ..abi.signal import SI_KERNEL, SI_TIMER, SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGTRAP
from ..kernel import siginfo
from ..kernel.errors import SysError
from ..kernel.timers import SignalTimer
from ..kernel.waitqueue import Block, WaitQueue
from ..vfs.dentry import internal_location, internal_mount
from ..vfs.file import File
from ..vfs.inode import AttrInode, FileSystem

EFD_SEMAPHORE = 1
_COUNTER = struct.Struct("<Q")
_COUNTER_MAX = (1 << 64) - 2


class AnonFS(FileSystem):
    """Where anonymous inodes live."""

    name = "anon_inodefs"
    magic = ANON_INODE_FS_MAGIC


_FS = AnonFS()
_MOUNT = internal_mount(_FS)


def anon_location(t, name: bytes):
    """The place of a new anonymous file created by `t`: anon_inode:`name`, owned by its fs ids."""
    inode = AttrInode(_FS, S_IFREG | 0o600, t.creds.fsuid, t.creds.fsgid)
    return internal_location(_MOUNT, b"anon_inode:" + name, inode)


class EventFile(File):
    """eventfd(2): a 64-bit counter that write() adds to and read() takes."""

    __slots__ = ("count", "semaphore", "rq", "wq")
    seekable = False

    def __init__(self, t, initval: int, flags: int):
        super().__init__(anon_location(t, b"[eventfd]"), O_RDWR | flags & O_NONBLOCK)
        self.count = initval
        self.semaphore = bool(flags & EFD_SEMAPHORE)
        self.rq = WaitQueue()
        self.wq = WaitQueue()

    def read(self, t, n: int):
        """The counter (1 in semaphore mode), which then drops; blocks at 0."""
        if n < _COUNTER.size:
            raise SysError(EINVAL)
        if not self.count:
            if self.flags & O_NONBLOCK:
                raise SysError(EAGAIN)
            return Block(queues=(self.rq,))
        value = 1 if self.semaphore else self.count
        self.count -= value
        self.wq.notify()
        return _COUNTER.pack(value)

    def write(self, t, data: bytes):
        """Add an 8-byte value; blocks while the counter would pass its maximum."""
        if len(data) < _COUNTER.size:
            raise SysError(EINVAL)
        value = _COUNTER.unpack_from(data)[0]
        if value > _COUNTER_MAX:
            raise SysError(EINVAL)
        if self.count + value > _COUNTER_MAX:
            if self.flags & O_NONBLOCK:
                raise SysError(EAGAIN)
            return Block(queues=(self.wq,))
        self.count += value
        if value:
            self.rq.notify()
        return _COUNTER.size

    def readiness(self) -> int:
        ev = POLLIN | POLLRDNORM if self.count else 0
        if self.count < _COUNTER_MAX:
            ev |= POLLOUT | POLLWRNORM
        return ev

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """The readers' queue for input events, the writers' for output events."""
        queues = ()
        if events & (POLLIN | POLLRDNORM):
            queues += (self.rq,)
        if events & (POLLOUT | POLLWRNORM):
            queues += (self.wq,)
        return queues, ()


class EpollItem:
    """One entry of an epoll interest list: the file registered, the events wanted (with the
    EPOLLET/EPOLLONESHOT/EPOLLEXCLUSIVE flags) and the user data.

    An edge-triggered item watches the file's wait queues while registered: any wake-up of the
    file arms it (new data in a pipe, even one still readable), and checking it disarms it, as
    Linux's ready list does.  Files without wait queues (host-backed ones) stay level-triggered.
    """

    __slots__ = ("file", "events", "data", "armed", "_watches")

    def __init__(self, file: File, events: int, data: int):
        self.file = file
        self.events = events
        self.data = data
        self.armed = True  # Linux checks a new or modified item at once
        self._watches: list[tuple[WaitQueue, object]] = []
        if events & EPOLLET:
            for q in file.wait_sources(events)[0]:
                self._watch(q)

    def _watch(self, q: WaitQueue) -> None:
        def kick():
            self.armed = True
            q.add(kick)
        q.add(kick)
        self._watches.append((q, kick))

    def drop(self) -> None:
        """Stop watching the file (the item leaves the interest list)."""
        for q, kick in self._watches:
            q.remove(kick)
        self._watches = []

    def ready(self) -> int:
        """The events it would report now."""
        return self.file.readiness() & self.events & ~EP_PRIVATE_BITS if self.armed else 0

    def take(self) -> int:
        """Report it: the events ready now; then an edge-triggered item waits for the next
        wake-up, and a one-shot one that reported waits for EPOLL_CTL_MOD."""
        ready = self.ready()
        if self._watches:
            self.armed = False
        if ready and self.events & EPOLLONESHOT:
            self.events &= EP_PRIVATE_BITS
        return ready


class EpollFile(File):
    """epoll(7): an interest list of EpollItems by fd (see EpollItem for the triggering modes)."""

    __slots__ = ("interest",)
    seekable = False

    def __init__(self, t, flags: int):
        super().__init__(anon_location(t, b"[eventpoll]"), O_RDWR)
        self.interest: dict[int, EpollItem] = {}

    def live(self, fdtable) -> list[tuple[int, EpollItem]]:
        """The items whose fd still names the file registered (closing an fd drops its item)."""
        out = []
        for fd, item in list(self.interest.items()):
            try:
                same = fdtable.get(fd) is item.file
            except SysError:
                same = False
            if same:
                out.append((fd, item))
            else:
                del self.interest[fd]
                item.drop()
        return out

    def put(self, fd: int, item: EpollItem | None) -> None:
        """Register `item` for `fd` (replacing the one there, in its place), or drop fd's (None)."""
        old = self.interest.pop(fd, None) if item is None else self.interest.get(fd)
        if old is not None:
            old.drop()
        if item is not None:
            self.interest[fd] = item

    def take(self, fdtable, maxevents: int) -> list[tuple[int, int]]:
        """Up to `maxevents` (events, data) ready now; the items reported go to the end of the
        list, so that the others get their turn (as Linux's ready list)."""
        out = []
        for fd, item in self.live(fdtable):
            ready = item.take()
            if ready:
                out.append((ready, item.data))
                self.interest[fd] = self.interest.pop(fd)
                if len(out) == maxevents:
                    break
        return out

    def reaches(self, other: File, depth: int = 0) -> bool:
        """Whether `other` is this instance or watched through it, or nesting goes too deep."""
        if other is self or depth > EP_MAX_NESTS:
            return True
        return any(isinstance(item.file, EpollFile) and item.file.reaches(other, depth + 1)
                   for item in self.interest.values())

    def readiness(self) -> int:
        """Readable while an item would report."""
        return POLLIN | POLLRDNORM if any(item.ready() for item in self.interest.values()) else 0

    def sources(self) -> tuple[tuple, tuple, tuple]:
        """(wait queues, exclusive wait queues, host fds) to wait on for the enabled items."""
        queues, exclusive, host_fds = (), (), ()
        for item in self.interest.values():
            if not item.events & ~EP_PRIVATE_BITS:
                continue  # a one-shot item that reported
            q, h = item.file.wait_sources(item.events)
            if item.events & EPOLLEXCLUSIVE:
                exclusive += q
            else:
                queues += q
            host_fds += h
        return queues, exclusive, host_fds

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """What the items wait on (an epoll instance polled, or inside another)."""
        queues, exclusive, host_fds = self.sources()
        return queues + exclusive, host_fds

    def release(self) -> None:
        """The last close: the items stop watching their files."""
        for item in self.interest.values():
            item.drop()
        self.interest.clear()


class TimerFile(File):
    """timerfd(2): a timer whose expirations read() collects as a u64 count."""

    __slots__ = ("clock", "ticks", "timer", "rq")
    seekable = False

    def __init__(self, t, clock: int, flags: int):
        super().__init__(anon_location(t, b"[timerfd]"), O_RDWR | flags & O_NONBLOCK)
        self.clock = clock
        self.ticks = 0
        self.rq = WaitQueue()
        self.timer = SignalTimer(t.kernel.timers, self._expire)

    def _expire(self, overrun: int) -> None:
        self.ticks += 1 + overrun
        self.rq.notify()

    def arm(self, value: float, interval: float) -> None:
        """Expire in `value` seconds (0: disarm), then every `interval`; drops uncollected expirations."""
        self.ticks = 0
        self.timer.arm(value, interval)

    def read(self, t, n: int):
        if n < _COUNTER.size:
            raise SysError(EINVAL)
        if not self.ticks:
            if self.flags & O_NONBLOCK:
                raise SysError(EAGAIN)
            return Block(queues=(self.rq,))
        value, self.ticks = self.ticks, 0
        return _COUNTER.pack(value)

    def write(self, t, data: bytes):
        raise SysError(EINVAL)

    def readiness(self) -> int:
        return POLLIN | POLLRDNORM if self.ticks else 0

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        return (self.rq,), ()

    def release(self) -> None:
        self.timer.cancel()


_SIGINFO = struct.Struct("<IiiIIiIIIIiiQQQQ")  # struct signalfd_siginfo up to ssi_addr (then zeros)
SIGNALFD_SIGINFO_SIZE = 128


class SignalFile(File):
    """signalfd(2): read() takes pending signals of `mask` as signalfd_siginfo records."""

    __slots__ = ("mask", "kernel")
    seekable = False

    def __init__(self, t, mask: int, flags: int):
        super().__init__(anon_location(t, b"[signalfd]"), O_RDWR | flags & O_NONBLOCK)
        self.mask = mask
        self.kernel = t.kernel

    def read(self, t, n: int):
        if n < SIGNALFD_SIGINFO_SIZE:
            raise SysError(EINVAL)
        out = []
        while len(out) + 1 <= n // SIGNALFD_SIGINFO_SIZE:
            entry = t.kernel.signals.dequeue(t, self.mask)
            if entry is None:
                break
            out.append(_signalfd_info(*entry))
        if out:
            return b"".join(out)
        if self.flags & O_NONBLOCK:
            raise SysError(EAGAIN)
        t.sigwait_mask = self.mask  # a signal of the mask wakes this task, as rt_sigtimedwait (reset at wake-up)
        return Block()

    def write(self, t, data: bytes):
        raise SysError(EINVAL)

    def readiness(self) -> int:
        t = self.kernel.current
        if t is None:
            return 0
        pending = t.pending + t.tg.pending
        return POLLIN | POLLRDNORM if any((1 << (e[0] - 1)) & self.mask for e in pending) else 0

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """The polling process's queue, notified when a signal is queued for it or its threads."""
        t = self.kernel.current
        return ((t.tg.signal_wq,) if t is not None else ()), ()


def _signalfd_info(sig: int, code: int, union: bytes) -> bytes:
    """struct signalfd_siginfo for a queued (signo, si_code, siginfo union), laid out as
    Linux's signalfd_copyinfo does for each siginfo layout."""
    raw = siginfo.encode(sig, code, union)
    pid, uid, status = struct.unpack_from("<iIi", raw, 16)
    value = struct.unpack_from("<Q", raw, 24)[0]
    utime, stime = struct.unpack_from("<qq", raw, 32)
    tid = overrun = ptr = ival = addr = 0
    if code == SI_TIMER:
        tid, overrun, ptr, ival = pid, uid, value, struct.unpack_from("<i", raw, 24)[0]
        pid = uid = status = utime = stime = 0
    elif code < 0:  # SI_QUEUE, SI_TKILL...: the rt layout (pid, uid, sigval)
        ptr, ival = value, struct.unpack_from("<i", raw, 24)[0]
        status = utime = stime = 0
    elif 0 < code < SI_KERNEL and sig in (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP):
        addr = struct.unpack_from("<Q", raw, 16)[0]
        pid = uid = status = utime = stime = 0
    elif not (0 < code < SI_KERNEL and sig == SIGCHLD):
        status = utime = stime = 0
    head = _SIGINFO.pack(sig, 0, code, pid & 0xFFFFFFFF, uid, 0, tid & 0xFFFFFFFF, 0, overrun & 0xFFFFFFFF, 0,
                         status, ival, ptr, utime & (1 << 64) - 1, stime & (1 << 64) - 1, addr)
    return head.ljust(SIGNALFD_SIGINFO_SIZE, b"\0")
