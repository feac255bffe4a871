"""Wait queues and the Block result that parks a task in a syscall.

A handler that cannot finish yet returns `Block(...)` instead of a number.
The kernel parks the task and, when one of the queues is notified, the
deadline passes or the host fd becomes ready, runs the syscall again: by
calling `retry()` when given, else the same handler with the same arguments.
A handler therefore either completes or returns a new Block each time it runs.
"""
from __future__ import annotations

from typing import Callable


class WaitQueue:
    """Callbacks waiting for an event (a pipe becoming readable, a child exiting...).

    Exclusive waiters (a task in epoll_wait on an EPOLLEXCLUSIVE item) are woken one per
    notify(), in the order they came, as Linux's wake-one; the others all at every notify().
    """

    __slots__ = ("_waiters", "_exclusive")

    def __init__(self):
        self._waiters: list[Callable[[], None]] = []
        self._exclusive: list[Callable[[], None]] = []

    def add(self, waker: Callable[[], None], exclusive: bool = False) -> None:
        """Call `waker()` at the next notify() (at its turn among the exclusive waiters if `exclusive`)."""
        (self._exclusive if exclusive else self._waiters).append(waker)

    def remove(self, waker: Callable[[], None]) -> None:
        """Stop waiting (no-op if `waker` is not waiting)."""
        for waiters in (self._waiters, self._exclusive):
            try:
                waiters.remove(waker)
            except ValueError:
                pass

    def notify(self) -> None:
        """Wake every waiter and the first exclusive one; each woken one is removed and must
        re-add itself to wait again."""
        waiters, self._waiters = self._waiters, []
        if self._exclusive:
            waiters.append(self._exclusive.pop(0))
        for waker in waiters:
            waker()

    def __bool__(self) -> bool:
        return bool(self._waiters or self._exclusive)


class Block:
    """A syscall handler's answer meaning "not yet: park me".

    queues:      wait queues whose notify() re-runs the syscall.
    deadline:    time.monotonic() value at which the syscall is re-run anyway.
    host_fds:    (fd, poll events) pairs: host fds of the sentry whose
                 readiness re-runs the syscall.
    retry:       what to run instead of the original handler (no arguments).
    restartable: whether a signal that interrupts it restarts it under
                 SA_RESTART (read, write, wait4...) or fails it with EINTR.
    interruptible: False for waits only SIGKILL ends (vfork's parent):
                 other signals stay pending until it completes.
    cancel:      what to run (no arguments) if the wait ends without a re-run
                 (a signal interrupts it, the task exits): undo what the
                 handler did before blocking (a FIFO open's waiting end).
    exclusive:   wait queues whose notify() re-runs the syscall only at the
                 task's turn among their exclusive waiters (EPOLLEXCLUSIVE).
    partial:     what the call returns (no arguments) if its wait is cut short, by
                 a signal or a timeout of the file's own (a socket's SO_RCVTIMEO):
                 what it moved so far; None: it moved nothing.
    """

    __slots__ = ("queues", "deadline", "host_fds", "retry", "restartable", "interruptible", "cancel", "exclusive",
                 "partial")

    def __init__(
        self,
        queues: tuple[WaitQueue, ...] = (),
        deadline: float | None = None,
        host_fds: tuple[tuple[int, int], ...] = (),
        retry: Callable[[], object] | None = None,
        restartable: bool = True,
        interruptible: bool = True,
        cancel: Callable[[], object] | None = None,
        exclusive: tuple[WaitQueue, ...] = (),
        partial: Callable[[], object] | None = None,
    ):
        self.queues = queues
        self.deadline = deadline
        self.host_fds = host_fds
        self.retry = retry
        self.restartable = restartable
        self.interruptible = interruptible
        self.cancel = cancel
        self.exclusive = exclusive
        self.partial = partial


def then(result, finish):
    """`finish(result)` of a handler's `result`, or for a Block, a Block whose retry and partial
    finish what they return (a receive that waits again after taking some bytes, say, gives
    its result only at the end)."""
    if result.__class__ is not Block:
        return finish(result)
    if result.retry is not None:
        retry = result.retry
        result.retry = lambda: then(retry(), finish)
    if result.partial is not None:
        partial = result.partial
        result.partial = lambda: finish(partial())
    return result


# A handler's answer meaning "the task's registers are already set (execve,
# rt_sigreturn): resume it without touching %rax".
JUSTRESUME = object()
# ... meaning "do not resume this task" (it exited).
NORESUME = object()
