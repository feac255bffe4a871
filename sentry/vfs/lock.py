"""Advisory file locks: POSIX record locks, open-file-description (OFD) locks and flock(2).

Locks live in the sentry only (the host file is never locked): one `FileLocks` per locked file,
keyed by the object every open of that file shares (`File.lock_key()`), kept while the file has
locks or waiters.

- Record locks (fcntl F_SETLK...) cover byte ranges [start, end] (end OFFSET_MAX: to EOF,
  however the file grows).  A POSIX lock's owner is the fd table of the process that set it (as
  Linux's `current->files`): closing ANY fd of the file in that table, or exiting, releases the
  owner's locks on the file.  An OFD lock's owner is the open file description: the last close
  of the description releases it.  The two kinds conflict with each other like any two owners;
  an owner's locks never conflict with its own, they are replaced, split and merged.
- flock locks belong to the open file description and are independent of record locks.

F_SETLKW and blocking flock park the task on a wait queue of its own (a `Waiter`); every change
that may free a range wakes all the file's waiters, which try again.  A POSIX F_SETLKW that
would wait for an owner that (through a chain of at most _MAX_DEADLK_ITERATIONS blocked owners)
waits for the caller fails with EDEADLK, as Linux's posix_locks_deadlock.
"""
from __future__ import annotations

from ..abi.errno import EAGAIN, EDEADLK, EINVAL, EOVERFLOW
from ..abi.fs import F_UNLCK, F_WRLCK, OFFSET_MAX
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, WaitQueue

_MAX_DEADLK_ITERATIONS = 10


class Lock:
    """A held record lock: type, inclusive byte range, owner, the pid F_GETLK reports, OFD or not."""

    __slots__ = ("type", "start", "end", "owner", "pid", "ofd")

    def __init__(self, ltype: int, start: int, end: int, owner, pid: int, ofd: bool):
        self.type = ltype
        self.start = start
        self.end = end
        self.owner = owner
        self.pid = pid
        self.ofd = ofd

    def conflicts(self, ltype: int, start: int, end: int, owner) -> bool:
        """Whether another owner's request for [start, end] of type `ltype` must wait for this lock."""
        return self.owner is not owner and self.start <= end and start <= self.end and \
            F_WRLCK in (ltype, self.type)


class Waiter:
    """A task waiting for a lock: the queue it is parked on (empty once it stops waiting), and
    for POSIX requests its owner and the owner of the lock it waits for (deadlock detection)."""

    __slots__ = ("queue", "owner", "blocker")

    def __init__(self, owner=None, blocker=None):
        self.queue = WaitQueue()
        self.owner = owner
        self.blocker = blocker


class FileLocks:
    """The locks on one file: record locks, flock holders (File -> type) and waiters."""

    __slots__ = ("records", "flocks", "waiters")

    def __init__(self):
        self.records: list[Lock] = []
        self.flocks: dict[object, int] = {}
        self.waiters: list[Waiter] = []

    def wake(self) -> None:
        """Something was unlocked: every waiter tries again."""
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            w.queue.notify()

    def block(self, waiter: Waiter, retry) -> Block:
        """Park the caller on `waiter` until the next change; `retry` tries again."""
        self.waiters.append(waiter)
        return Block((waiter.queue,), retry=retry)


_files: dict[object, FileLocks] = {}
_posix_waiters: list[Waiter] = []  # blocked POSIX requests, for deadlock detection


def _state(key) -> FileLocks:
    state = _files.get(key)
    if state is None:
        state = _files[key] = FileLocks()
    return state


def _tidy(key, state: FileLocks) -> None:
    """Forget a file's state once it holds nothing."""
    if not state.records and not state.flocks and not any(w.queue for w in state.waiters):
        _files.pop(key, None)


def lock_range(base: int, start: int, length: int) -> tuple[int, int]:
    """The inclusive byte range of a struct flock whose l_whence resolved to `base` (0, the file
    offset or the size): l_len 0 is to EOF, a negative l_len ends just before the start."""
    if start > OFFSET_MAX - base:
        raise SysError(EOVERFLOW)
    start += base
    if start < 0:
        raise SysError(EINVAL)
    if length > 0:
        if length - 1 > OFFSET_MAX - start:
            raise SysError(EOVERFLOW)
        return start, start + length - 1
    if length < 0:
        if start + length < 0:
            raise SysError(EINVAL)
        return start + length, start - 1
    return start, OFFSET_MAX


def conflicting(key, ltype: int, start: int, end: int, owner) -> Lock | None:
    """F_GETLK: the lock that would block `owner`'s request (the lowest such), or None."""
    state = _files.get(key)
    if state is None:
        return None
    found = [r for r in state.records if r.conflicts(ltype, start, end, owner)]
    return min(found, key=lambda r: r.start) if found else None


def set_record(key, ltype: int, start: int, end: int, owner, pid: int, ofd: bool, wait: bool):
    """F_SETLK(W) and the OFD forms: set, change or remove (F_UNLCK) `owner`'s lock on [start, end].
    Returns 0, or a Block when `wait` and another owner holds a conflicting lock."""

    def attempt():
        state = _state(key)
        if ltype != F_UNLCK:
            blocker = conflicting(key, ltype, start, end, owner)
            if blocker is not None:
                if not wait:
                    _tidy(key, state)
                    raise SysError(EAGAIN)
                if ofd:
                    return state.block(Waiter(), attempt)
                if _deadlock(owner, blocker.owner):
                    _tidy(key, state)
                    raise SysError(EDEADLK)
                waiter = Waiter(owner, blocker.owner)
                _posix_waiters.append(waiter)
                return state.block(waiter, attempt)
        _replace(state, Lock(ltype, start, end, owner, pid, ofd))
        state.wake()
        _tidy(key, state)
        return 0

    return attempt()


def _replace(state: FileLocks, new: Lock) -> None:
    """Make `new` the owner's lock on its range (F_UNLCK: none): the owner's locks there are cut
    out, and same-type locks it overlaps or touches merge with it."""
    owner, start, end = new.owner, new.start, new.end
    kept = []
    for r in state.records:
        if r.owner is not owner or r.end < start or r.start > end:
            kept.append(r)
            continue
        if r.start < start:
            kept.append(Lock(r.type, r.start, start - 1, owner, r.pid, r.ofd))
        if r.end > end:
            kept.append(Lock(r.type, end + 1, r.end, owner, r.pid, r.ofd))
    if new.type != F_UNLCK:
        merged = []
        for r in kept:
            if r.owner is owner and r.type == new.type and r.end + 1 >= new.start and r.start <= new.end + 1:
                new.start, new.end = min(new.start, r.start), max(new.end, r.end)
            else:
                merged.append(r)
        kept = merged + [new]
    state.records = kept


def _deadlock(owner, blocker) -> bool:
    """Whether `blocker` waits, through a chain of blocked POSIX owners, for `owner`."""
    _posix_waiters[:] = [w for w in _posix_waiters if w.queue]
    for _ in range(_MAX_DEADLK_ITERATIONS):
        waiter = next((w for w in _posix_waiters if w.owner is blocker), None)
        if waiter is None:
            return False
        blocker = waiter.blocker
        if blocker is owner:
            return True
    return False


def flock(key, file, ltype: int, wait: bool):
    """flock(2) for open file description `file`: F_RDLCK (shared), F_WRLCK (exclusive) or
    F_UNLCK.  A conversion drops the old lock first (not atomic, as on Linux).  Returns 0, or a
    Block when `wait` and another description holds a conflicting lock."""

    def attempt():
        state = _state(key)
        held = state.flocks.get(file)
        if held == ltype:
            return 0
        if held is not None:
            del state.flocks[file]
            state.wake()
        if ltype != F_UNLCK:
            if any(f is not file and F_WRLCK in (ltype, t) for f, t in state.flocks.items()):
                if wait:
                    return state.block(Waiter(), attempt)
                _tidy(key, state)
                raise SysError(EAGAIN)
            state.flocks[file] = ltype
        _tidy(key, state)
        return 0

    return attempt()


def release_posix(owner, file) -> None:
    """Fd table `owner` closed an fd of `file`: its POSIX locks on the file go."""
    if not _files:
        return
    key = file.lock_key()
    state = _files.get(key)
    if state is None or not any(r.owner is owner for r in state.records):
        return
    state.records = [r for r in state.records if r.owner is not owner]
    state.wake()
    _tidy(key, state)


def release_file(file) -> None:
    """The last reference to open file description `file` is gone: its OFD and flock locks go."""
    if not _files:
        return
    key = file.lock_key()
    state = _files.get(key)
    if state is None:
        return
    records = [r for r in state.records if r.owner is not file]
    if len(records) == len(state.records) and file not in state.flocks:
        return
    state.records = records
    state.flocks.pop(file, None)
    state.wake()
    _tidy(key, state)

