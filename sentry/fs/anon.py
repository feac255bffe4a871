"""Anonymous files: eventfd counters, epoll instances, timerfds and signalfds (inotify's are
in inotify.py).

All live on one internal file system (anon_inode, as on Linux) and take part
in poll/select/epoll like pipes do: `readiness()` says what is ready now and
`wait_sources()` what to wait on until it changes.
"""
from __future__ import annotations

import struct

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
        return (self.rq, self.wq), ()


class EpollFile(File):
    """epoll(7): an interest list of (fd, file) with events, polled level-triggered."""

    __slots__ = ("interest",)
    seekable = False

    def __init__(self, t, flags: int):
        super().__init__(anon_location(t, b"[eventpoll]"), O_RDWR)
        self.interest: dict[int, list] = {}  # fd -> [file, events, data]

    def live(self, fdtable) -> list[tuple[int, list]]:
        """The entries whose fd still names the file registered (closing an fd drops it)."""
        out = []
        for fd, entry in list(self.interest.items()):
            try:
                same = fdtable.get(fd) is entry[0]
            except SysError:
                same = False
            if same:
                out.append((fd, entry))
            else:
                del self.interest[fd]
        return out

    def readiness(self) -> int:
        ready = any(entry[0].readiness() & entry[1] for entry in self.interest.values())
        return POLLIN | POLLRDNORM if ready else 0

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        queues, host_fds = (), ()
        for file, wanted, _ in self.interest.values():
            q, h = file.wait_sources(wanted)
            queues += q
            host_fds += h
        return queues, host_fds


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
