"""Anonymous files: eventfd counters and epoll instances.

Both live on one internal file system (anon_inode, as on Linux) and take part
in poll/select/epoll like pipes do: `readiness()` says what is ready now and
`wait_sources()` what to wait on until it changes.
"""
from __future__ import annotations

import struct

from ..abi.errno import EAGAIN, EINVAL
from ..abi.fs import ANON_INODE_FS_MAGIC, O_NONBLOCK, O_RDWR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, S_IFREG
from ..kernel.errors import SysError
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


def _location(t, name: bytes):
    inode = AttrInode(_FS, S_IFREG | 0o600, t.creds.fsuid, t.creds.fsgid)
    return internal_location(_MOUNT, b"anon_inode:" + name, inode)


class EventFile(File):
    """eventfd(2): a 64-bit counter that write() adds to and read() takes."""

    __slots__ = ("count", "semaphore", "rq", "wq")
    seekable = False

    def __init__(self, t, initval: int, flags: int):
        super().__init__(_location(t, b"[eventfd]"), O_RDWR | flags & O_NONBLOCK)
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
        super().__init__(_location(t, b"[eventpoll]"), O_RDWR)
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
