"""Timers: the kernel's deadline queue and the signal timers built on it.

`TimerQueue` holds callbacks due at a time.monotonic() deadline; the
scheduler loop fires the due ones and polls no longer than the next deadline.
`SignalTimer` is an armed, possibly periodic source of a signal (setitimer's
ITIMER_REAL, alarm, timer_create).
"""
from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable


class Timer:
    """One armed callback (cancel it through its queue)."""

    __slots__ = ("deadline", "fn", "cancelled")

    def __init__(self, deadline: float, fn: Callable[[], None]):
        self.deadline = deadline
        self.fn = fn
        self.cancelled = False


class TimerQueue:
    """Callbacks due at monotonic deadlines; true while any is armed."""

    def __init__(self):
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self.live = 0

    def __bool__(self) -> bool:
        return self.live > 0

    def call_at(self, deadline: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(deadline, fn)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        self.live += 1
        return timer

    def cancel(self, timer: Timer | None) -> None:
        if timer is not None and not timer.cancelled:
            timer.cancelled = True
            self.live -= 1

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def fire_due(self, now: float) -> None:
        """Run every live callback whose deadline is not after `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if not timer.cancelled:
                timer.cancelled = True
                self.live -= 1
                timer.fn()


class SignalTimer:
    """A one-shot or periodic timer whose expiry calls `expire(overrun)`.

    Times are seconds on the monotonic clock; `overrun` counts the periods
    that passed unnoticed since the previous expiry (timer_getoverrun).
    """

    def __init__(self, queue: TimerQueue, expire: Callable[[int], None]):
        self._queue = queue
        self._expire = expire
        self._timer: Timer | None = None
        self.interval = 0.0
        self.overrun = 0

    def arm(self, value: float, interval: float) -> None:
        """Expire in `value` seconds, then every `interval` (0: once); value 0 disarms."""
        self._queue.cancel(self._timer)
        self._timer = None
        self.interval = interval
        if value > 0:
            self._timer = self._queue.call_at(time.monotonic() + value, self._fire)

    def remaining(self) -> tuple[float, float]:
        """(seconds until expiry or 0 if disarmed, interval)."""
        if self._timer is None or self._timer.cancelled:
            return 0.0, self.interval
        return max(self._timer.deadline - time.monotonic(), 1e-9), self.interval

    def cancel(self) -> None:
        self.arm(0, 0)

    def _fire(self) -> None:
        due = self._timer.deadline
        overrun = 0
        self._timer = None
        if self.interval > 0:
            now = time.monotonic()
            nxt = due + self.interval
            if nxt <= now:
                missed = int((now - due) // self.interval)
                overrun = missed
                nxt = due + (missed + 1) * self.interval
            self._timer = self._queue.call_at(nxt, self._fire)
        self.overrun = overrun
        self._expire(overrun)


class CpuSignalTimer:
    """A SignalTimer on a CPU-time clock (ITIMER_VIRTUAL/PROF, CPU-clock timers).

    The sentry cannot be told when a stub has used so much CPU, so it polls
    the clock `cpu_now()` (seconds) at most every POLL seconds of wall time.
    """

    POLL = 0.01

    def __init__(self, queue: TimerQueue, expire: Callable[[int], None], cpu_now: Callable[[], float]):
        self._queue = queue
        self._expire = expire
        self._cpu_now = cpu_now
        self._poll: Timer | None = None
        self._target = 0.0
        self.interval = 0.0
        self.overrun = 0

    def arm(self, value: float, interval: float) -> None:
        """Expire after `value` seconds of CPU time, then every `interval`; value 0 disarms."""
        self._queue.cancel(self._poll)
        self._poll = None
        self.interval = interval
        if value > 0:
            self._target = self._cpu_now() + value
            self._schedule(value)

    def remaining(self) -> tuple[float, float]:
        if self._poll is None:
            return 0.0, self.interval
        return max(self._target - self._cpu_now(), 1e-9), self.interval

    def cancel(self) -> None:
        self.arm(0, 0)

    def _schedule(self, left: float) -> None:
        self._poll = self._queue.call_at(time.monotonic() + min(max(left, 0.0), self.POLL), self._check)

    def _check(self) -> None:
        try:
            now = self._cpu_now()
        except OSError:  # the process is gone
            self._poll = None
            return
        if now < self._target:
            self._schedule(self._target - now)
            return
        overrun = 0
        if self.interval > 0:
            overrun = int((now - self._target) // self.interval)
            self._target += (overrun + 1) * self.interval
            self._schedule(self._target - now)
        else:
            self._poll = None
        self.overrun = overrun
        self._expire(overrun)
