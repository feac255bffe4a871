"""inotify(7) instances: a queue of events from watches on the sentry's inodes.

An InotifyFile is an fsnotify group: each watch is a vfs.fsnotify.Mark on one inode (one per
inode and instance, numbered from 1 like Linux's watch descriptors), and the events the VFS
reports to it are queued as struct inotify_event records (the name NUL-padded to a multiple
of 16 bytes).  An event identical to the last one queued is dropped (Linux's coalescing);
past MAX_QUEUED_EVENTS one IN_Q_OVERFLOW event takes the place of the rest.  A watch that
ends (inotify_rm_watch, IN_ONESHOT after its event, its inode gone) queues IN_IGNORED.
"""
from __future__ import annotations

import collections

from ..abi.errno import EAGAIN, EEXIST, EINVAL
from ..abi.fs import INT, O_NONBLOCK, O_RDONLY, POLLIN, POLLRDNORM
from ..abi.inotify import (IN_ALL_EVENTS, IN_DELETE_SELF, IN_EXCL_UNLINK, IN_IGNORED, IN_ISDIR, IN_MASK_ADD,
                           IN_MASK_CREATE, IN_MOVE_SELF, IN_ONESHOT, IN_Q_OVERFLOW, INOTIFY_EVENT,
                           MAX_QUEUED_EVENTS)
from ..abi.ioctl import FIONREAD
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, WaitQueue
from ..vfs import fsnotify
from ..vfs.file import File
from ..vfs.inode import Inode
from .anon import anon_location

_KEPT = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK  # what a watch's mask keeps of inotify_add_watch's


def _record(wd: int, mask: int, cookie: int, name: bytes) -> bytes:
    """struct inotify_event with its name, NUL-padded to a multiple of the header's size."""
    if name:
        name = name.ljust((len(name) // INOTIFY_EVENT.size + 1) * INOTIFY_EVENT.size, b"\0")
    return INOTIFY_EVENT.pack(wd, mask, cookie, len(name)) + name


_OVERFLOW = _record(-1, IN_Q_OVERFLOW, 0, b"")


class InotifyFile(File):
    """An inotify instance (inotify_init1): its watches and queued events."""

    __slots__ = ("events", "queued", "marks", "by_key", "next_wd", "q")
    seekable = False

    def __init__(self, t, flags: int):
        super().__init__(anon_location(t, b"inotify"), O_RDONLY | flags & O_NONBLOCK)
        self.events: collections.deque[bytes] = collections.deque()  # their records
        self.queued = 0  # bytes the queued events take (FIONREAD)
        self.marks: dict[int, fsnotify.Mark] = {}  # by watch descriptor
        self.by_key: dict[object, fsnotify.Mark] = {}  # by the watched file's Inode.identity()
        self.next_wd = 1
        self.q = WaitQueue()  # readers and pollers waiting for an event

    # -- watches -------------------------------------------------------------------
    def add_watch(self, inode: Inode, mask: int) -> int:
        """Watch `inode` for `mask`'s events (a watch it has: its mask replaced, or extended with
        IN_MASK_ADD; EEXIST with IN_MASK_CREATE); the watch descriptor."""
        key = inode.identity()
        mark = self.by_key.get(key)
        if mark is not None:
            if mask & IN_MASK_CREATE:
                raise SysError(EEXIST)
            mark.mask = (mark.mask if mask & IN_MASK_ADD else 0) | mask & _KEPT
            return mark.wd
        mark = fsnotify.Mark(key, self, self.next_wd, mask & _KEPT)
        self.next_wd += 1
        self.marks[mark.wd] = self.by_key[key] = mark
        fsnotify.add_mark(mark)
        return mark.wd

    def rm_watch(self, wd: int) -> None:
        """End watch `wd` (IN_IGNORED); EINVAL if there is none."""
        mark = self.marks.get(wd)
        if mark is None:
            raise SysError(EINVAL)
        fsnotify.remove_mark(mark)
        self.dropped(mark)

    # -- the fsnotify group interface ----------------------------------------------
    def deliver(self, mark: fsnotify.Mark, mask: int, cookie: int, name: bytes) -> None:
        """Queue an event of watch `mark` (a one-shot watch then ends)."""
        if mask & (IN_MOVE_SELF | IN_DELETE_SELF):
            mask &= ~IN_ISDIR  # as Linux's inotify, which never reported IN_ISDIR with them
        self._queue(_record(mark.wd, mask, cookie, name))
        if mark.mask & IN_ONESHOT:
            fsnotify.remove_mark(mark)
            self.dropped(mark)

    def dropped(self, mark: fsnotify.Mark) -> None:
        """Watch `mark` ended: forget it and queue IN_IGNORED."""
        if self.marks.pop(mark.wd, None) is not None:
            del self.by_key[mark.key]
            self._queue(_record(mark.wd, IN_IGNORED, 0, b""))

    def _queue(self, rec: bytes) -> None:
        events = self.events
        if events and events[-1] == rec:
            return
        if len(events) >= MAX_QUEUED_EVENTS:
            if events[-1] == _OVERFLOW:
                return
            rec = _OVERFLOW
        events.append(rec)
        self.queued += len(rec)
        self.q.notify()

    # -- the file --------------------------------------------------------------------
    def read(self, t, n: int):
        """Whole events that fit in `n` bytes (EINVAL if the first does not); blocks while none."""
        if not self.events:
            if self.flags & O_NONBLOCK:
                raise SysError(EAGAIN)
            return Block(queues=(self.q,))
        out = bytearray()
        while self.events:
            rec = self.events[0]
            if len(out) + len(rec) > n:
                if not out:
                    raise SysError(EINVAL)
                break
            out += rec
            self.events.popleft()
        self.queued -= len(out)
        return bytes(out)

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """FIONREAD: the bytes of the queued events."""
        if cmd == FIONREAD:
            t.mm.write(arg, INT.pack(self.queued))
            return 0
        return super().ioctl(t, cmd, arg)

    def readiness(self) -> int:
        """Readable while events are queued."""
        return POLLIN | POLLRDNORM if self.events else 0

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """The queue notified when an event is queued."""
        return (self.q,), ()

    def release(self) -> None:
        """The last close: every watch ends (no IN_IGNORED: nobody can read it)."""
        for mark in self.marks.values():
            fsnotify.remove_mark(mark)
        self.marks.clear()
        self.by_key.clear()
