"""Pipes: an in-sentry buffer between reader and writer files (64 KiB; F_SETPIPE_SZ resizes it).

Writes of at most PIPE_BUF bytes are atomic; larger blocking writes are
split, the rest written as room appears (the retry continues the same write).
Reading an empty pipe with no writer is end-of-file; writing with no reader
is EPIPE and SIGPIPE.
"""
from __future__ import annotations

import signal

from ..abi.caps import CAP_SYS_RESOURCE
from ..abi.errno import EAGAIN, EBADF, EBUSY, EINVAL, EPERM, EPIPE
from ..abi.fs import (F_GETPIPE_SZ, INT, O_NONBLOCK, O_RDONLY, O_WRONLY, PIPE_BUF, PIPE_DEF_SIZE, PIPE_MAX_SIZE,
                      PIPEFS_MAGIC, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, S_IFIFO)
from ..abi.ioctl import FIONREAD
from ..abi.mm import PAGE_SIZE, page_up
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, WaitQueue
from ..vfs.dentry import internal_location, internal_mount
from ..vfs.file import File
from ..vfs.inode import AttrInode, FileSystem

_SIGPIPE = int(signal.SIGPIPE)


class PipeFS(FileSystem):
    """Where pipe inodes live."""

    name = "pipefs"
    magic = PIPEFS_MAGIC


_FS = PipeFS()
_MOUNT = internal_mount(_FS)


class Pipe:
    """The shared state of a pipe: its bytes, its open ends and the tasks waiting on it."""

    __slots__ = ("buf", "capacity", "readers", "writers", "rq", "wq")

    def __init__(self):
        self.buf = bytearray()
        self.capacity = PIPE_DEF_SIZE
        self.readers = 0
        self.writers = 0
        self.rq = WaitQueue()  # readers waiting for data or end-of-file
        self.wq = WaitQueue()  # writers waiting for room or a broken pipe

    def room(self) -> int:
        """Bytes that fit before the pipe is full."""
        return self.capacity - len(self.buf)

    def page_room(self) -> int:
        """Bytes of the pages no content uses: where a splice from a file puts its pages."""
        return self.capacity - page_up(len(self.buf))

    def take(self, n: int) -> bytes:
        """Remove and return up to `n` bytes from the head, waking writers."""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        if self.wq:
            self.wq.notify()
        return data

    def put(self, data: bytes) -> None:
        """Append `data` (which fits), waking readers."""
        self.buf += data
        if self.rq:
            self.rq.notify()

    def resize(self, size: int, privileged: bool) -> int:
        """F_SETPIPE_SZ: the capacity rounded up to a power-of-two number of pages; EPERM beyond
        PIPE_MAX_SIZE unless `privileged`, EBUSY below the pages the content holds."""
        if size > 1 << 31:
            raise SysError(EINVAL)
        size = max(PAGE_SIZE, 1 << (size - 1).bit_length())
        if size > self.capacity and size > PIPE_MAX_SIZE and not privileged:
            raise SysError(EPERM)
        if size < self.capacity - self.page_room():
            raise SysError(EBUSY)
        self.capacity = size
        self.wq.notify()
        return size


class PipeInode(AttrInode):
    """The inode of a pipe (reopening /proc/self/fd/N of a pipe opens another end)."""

    __slots__ = ("pipe",)

    def __init__(self, uid: int, gid: int):
        super().__init__(_FS, S_IFIFO | 0o600, uid, gid)
        self.pipe = Pipe()

    def open(self, t, loc, flags: int):
        """Another end of the same pipe."""
        return PipeFile(loc, flags, self.pipe)


def broken_pipe(t) -> SysError:
    """A write found no reader: SIGPIPE to the writer, and the EPIPE error to fail with."""
    t.send_signal(_SIGPIPE)
    return SysError(EPIPE)


def pipe_fcntl(t, f, cmd: int, arg: int) -> int:
    """F_SETPIPE_SZ (above pipe-max-size needs CAP_SYS_RESOURCE) and F_GETPIPE_SZ; EBADF on
    anything but a pipe."""
    if not isinstance(f, PipeFile):
        raise SysError(EBADF)
    if cmd == F_GETPIPE_SZ:
        return f.pipe.capacity
    return f.pipe.resize(arg & 0xFFFFFFFF, t.creds.capable(CAP_SYS_RESOURCE))


def new_pipe(t, flags: int) -> tuple[PipeFile, PipeFile]:
    """(read end, write end) of a new pipe created by `t`; `flags` may hold O_NONBLOCK."""
    inode = PipeInode(t.creds.fsuid, t.creds.fsgid)
    loc = internal_location(_MOUNT, b"pipe:[%d]" % inode.ino, inode)
    extra = flags & O_NONBLOCK
    return PipeFile(loc, O_RDONLY | extra, inode.pipe), PipeFile(loc, O_WRONLY | extra, inode.pipe)


class PipeFile(File):
    """One end of a pipe (or both, if opened O_RDWR)."""

    __slots__ = ("pipe",)
    seekable = False

    def __init__(self, loc, flags: int, pipe: Pipe):
        super().__init__(loc, flags)
        self.pipe = pipe
        pipe.readers += self.readable
        pipe.writers += self.writable

    def release(self) -> None:
        """Close this end; the other side sees end-of-file or a broken pipe."""
        pipe = self.pipe
        if self.readable:
            pipe.readers -= 1
            if not pipe.readers:
                pipe.wq.notify()
        if self.writable:
            pipe.writers -= 1
            if not pipe.writers:
                pipe.rq.notify()

    def read(self, t, n: int):
        """Up to `n` buffered bytes; b"" at end-of-file; else EAGAIN or Block."""
        pipe = self.pipe
        buf = pipe.buf
        if buf and n:
            return pipe.take(n)
        if not pipe.writers or not n:
            return b""
        if self.flags & O_NONBLOCK:
            raise SysError(EAGAIN)
        return Block(queues=(pipe.rq,))

    def unread(self, data: bytes) -> None:
        """Put undelivered bytes back at the head of the pipe."""
        self.pipe.buf[:0] = data

    def write(self, t, data: bytes):
        """Write all of `data` (see the module docstring)."""
        return self._write(t, data, 0) if data else 0

    def _write(self, t, data: bytes, done: int):
        pipe = self.pipe
        if not pipe.readers:
            err = broken_pipe(t)
            if done:
                return done
            raise err
        room = pipe.room()
        if len(data) - done <= room:
            pipe.put(data[done:] if done else data)
            return len(data)
        if room and (done or len(data) > PIPE_BUF):
            pipe.put(data[done:done + room])
            done += room
        if self.flags & O_NONBLOCK:
            if done:
                return done
            raise SysError(EAGAIN)
        if not done:
            return Block(queues=(pipe.wq,))
        return Block(queues=(pipe.wq,), retry=lambda: self._write(t, data, done), partial=lambda: done)

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """FIONREAD: bytes buffered."""
        if cmd == FIONREAD:
            t.mm.write(arg, INT.pack(len(self.pipe.buf)))
            return 0
        return super().ioctl(t, cmd, arg)

    def readiness(self) -> int:
        """Readable with data or no writer (POLLHUP); writable with PIPE_BUF of room; POLLERR with no reader."""
        pipe = self.pipe
        ev = 0
        if self.readable:
            if pipe.buf:
                ev |= POLLIN | POLLRDNORM
            if not pipe.writers:
                ev |= POLLHUP
        if self.writable:
            if pipe.capacity - len(pipe.buf) >= PIPE_BUF:
                ev |= POLLOUT | POLLWRNORM
            if not pipe.readers:
                ev |= POLLERR
        return ev

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """The pipe's queues for the ends this file holds."""
        queues = ()
        if self.readable:
            queues += (self.pipe.rq,)
        if self.writable:
            queues += (self.pipe.wq,)
        return queues, ()
