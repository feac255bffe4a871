"""Time syscalls: clocks, sleeping."""
from __future__ import annotations

import struct
import time as host

from ..abi import errno as E
from ..abi.signal import SI_KERNEL, SI_TIMER, SIGALRM, SIGPROF, SIGVTALRM
from ..kernel.errors import SysError
from ..kernel.siginfo import timer_info
from ..kernel.timers import CpuSignalTimer, SignalTimer
from ..kernel.waitqueue import Block
from .args import s32, s64

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7
CLOCK_REALTIME_ALARM = 8
CLOCK_BOOTTIME_ALARM = 9
CLOCK_TAI = 11
TIMER_ABSTIME = 1

_TIMESPEC = struct.Struct("<qq")
_NS = 1_000_000_000
_COARSE_RES = 4_000_000


def _cpu_ns(t, clock: int) -> int:
    """A CPU-time clock of the sandbox (own, or a pid/tid encoded by clock_getcpuclockid()
    or pthread_getcpuclockid()) now, in nanoseconds."""
    if clock == CLOCK_PROCESS_CPUTIME_ID:
        return t.tg.cpu_ns()
    if clock == CLOCK_THREAD_CPUTIME_ID:
        return t.cpu_ns()
    pid = ~(clock >> 3)
    if clock & 3 != 2:
        raise SysError(E.EINVAL)
    if clock & 4:
        target = t.kernel.find_task(t, pid) if pid else t
        if target is None:
            raise SysError(E.EINVAL)
        return target.cpu_ns()
    tg = t.kernel.find_group(t, pid) if pid else t.tg
    if tg is None or tg.leader is None:
        raise SysError(E.EINVAL)
    return tg.cpu_ns()


def _now_ns(t, clock: int) -> int:
    if clock in (CLOCK_REALTIME, CLOCK_REALTIME_COARSE, CLOCK_REALTIME_ALARM):
        return host.time_ns()
    if clock == CLOCK_TAI:
        return host.clock_gettime_ns(CLOCK_TAI)
    if clock in (CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE):
        return host.monotonic_ns()
    if clock in (CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM):
        return host.clock_gettime_ns(CLOCK_BOOTTIME)
    if clock in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID) or clock < 0:
        return _cpu_ns(t, clock)
    raise SysError(E.EINVAL)


def write_timespec(t, addr: int, ns: int) -> None:
    """Store `ns` nanoseconds at `addr` as a struct timespec."""
    t.mm.write(addr, _TIMESPEC.pack(*divmod(ns, _NS)))


def read_timespec(t, addr: int) -> int:
    """The struct timespec at `addr` in nanoseconds (EINVAL if negative or not normalised)."""
    sec, nsec = _TIMESPEC.unpack(t.mm.read(addr, _TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < _NS:
        raise SysError(E.EINVAL)
    return sec * _NS + nsec


def clock_gettime(t, clock, tp, *_):
    write_timespec(t, tp, _now_ns(t, s32(clock)))
    return 0


def clock_getres(t, clock, res, *_):
    clock = s32(clock)
    _now_ns(t, clock)  # validates the clock
    if res:
        coarse = clock in (CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE)
        write_timespec(t, res, _COARSE_RES if coarse else 1)
    return 0


def gettimeofday(t, tv, tz, *_):
    if tv:
        sec, nsec = divmod(host.time_ns(), _NS)
        t.mm.write(tv, struct.pack("<qq", sec, nsec // 1000))
    if tz:
        t.mm.write(tz, bytes(8))
    return 0


def time_(t, tloc, *_):
    now = host.time_ns() // _NS
    if tloc:
        t.mm.write_u64(tloc, now)
    return now


def _sleep_until(deadline: float) -> Block | int:
    """Block until host.monotonic() reaches `deadline` (an EINTR ends it early)."""
    if host.monotonic() >= deadline:
        return 0
    return Block(deadline=deadline, retry=lambda: _sleep_until(deadline), restartable=False)


def nanosleep(t, req, rem, *_):
    return _sleep_until(host.monotonic() + read_timespec(t, req) / _NS)


def clock_nanosleep(t, clock, flags, req, rem, *_):
    clock = s32(clock)
    if clock in (CLOCK_THREAD_CPUTIME_ID,):
        raise SysError(E.EINVAL)
    now = _now_ns(t, clock)
    ns = read_timespec(t, req)
    if s64(flags) & TIMER_ABSTIME:
        ns = max(0, ns - now)
    return _sleep_until(host.monotonic() + ns / _NS)


# -- interval timers and POSIX timers ------------------------------------------------
ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
_ITIMER_SIGNAL = {ITIMER_REAL: SIGALRM, ITIMER_VIRTUAL: SIGVTALRM, ITIMER_PROF: SIGPROF}
_TIMEVAL = struct.Struct("<qq")
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
_SIGEVENT = struct.Struct("<Qiii")  # sigev_value, sigev_signo, sigev_notify, sigev_notify_thread_id
_TIMER_CLOCKS = (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM,
                 CLOCK_TAI)
MAX_TIMERS = 4096


def _process_cpu_seconds(tg):
    """A reader of `tg`'s CPU time (all its threads; its stub changes at execve)."""
    def cpu_now() -> float:
        if not tg.tasks:
            raise ProcessLookupError(tg.pid)
        return tg.cpu_ns() / _NS
    return cpu_now


def _itimer(t, which: int):
    tg = t.tg
    timer = tg.itimers.get(which)
    if timer is None:
        sig = _ITIMER_SIGNAL[which]
        expire = lambda _overrun: t.kernel.signals.send_group(tg, sig, SI_KERNEL)  # noqa: E731
        if which == ITIMER_REAL:
            timer = SignalTimer(t.kernel.timers, expire)
        else:  # VIRTUAL and PROF both count the process's CPU time (user + system)
            timer = CpuSignalTimer(t.kernel.timers, expire, _process_cpu_seconds(tg))
        tg.itimers[which] = timer
    return timer


def _read_timeval(t, addr: int) -> float:
    sec, usec = _TIMEVAL.unpack(t.mm.read(addr, _TIMEVAL.size))
    if sec < 0 or not 0 <= usec < 1_000_000:
        raise SysError(E.EINVAL)
    return sec + usec / 1e6


def _timeval(seconds: float) -> bytes:
    usec = round(seconds * 1e6)
    return _TIMEVAL.pack(usec // 1_000_000, usec % 1_000_000)


def getitimer(t, which, value, *_):
    which = s32(which)
    if which not in _ITIMER_SIGNAL:
        raise SysError(E.EINVAL)
    remaining, interval = _itimer(t, which).remaining()
    t.mm.write(value, _timeval(interval) + _timeval(remaining))
    return 0


def setitimer(t, which, new, old, *_):
    which = s32(which)
    if which not in _ITIMER_SIGNAL:
        raise SysError(E.EINVAL)
    interval = value = 0.0
    if new:
        interval = _read_timeval(t, new)
        value = _read_timeval(t, new + _TIMEVAL.size)
    timer = _itimer(t, which)
    if old:
        remaining, old_interval = timer.remaining()
        t.mm.write(old, _timeval(old_interval) + _timeval(remaining))
    timer.arm(value, interval)
    return 0


def alarm(t, seconds, *_):
    timer = _itimer(t, ITIMER_REAL)
    remaining, _ = timer.remaining()
    timer.arm(float(seconds & 0xFFFFFFFF), 0.0)
    if not remaining:
        return 0
    return max(1, int(remaining + 0.5))  # rounded, never 0 for an armed alarm (as Linux)


class PosixTimer:
    """A timer_create() timer: a SignalTimer and how to notify its expiry."""

    def __init__(self, t, timer_id: int, clock: int, notify: int, sig: int, value: int, target):
        self.clock = clock
        if clock in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):  # thread: its process's
            self.signal_timer = CpuSignalTimer(t.kernel.timers, self._expire, _process_cpu_seconds(t.tg))
        else:
            self.signal_timer = SignalTimer(t.kernel.timers, self._expire)
        self._kernel = t.kernel
        self._tg = t.tg
        self._id, self._notify, self._sig, self._value, self._target = timer_id, notify, sig, value, target

    def _expire(self, overrun: int) -> None:
        if self._notify == SIGEV_NONE:
            return
        union = timer_info(self._id, overrun, self._value)
        if self._notify == SIGEV_THREAD_ID and self._target.state.value != "X":
            self._kernel.signals.send_task(self._target, self._sig, SI_TIMER, union)
        else:
            self._kernel.signals.send_group(self._tg, self._sig, SI_TIMER, union)

    def cancel(self) -> None:
        self.signal_timer.cancel()


def _posix_timer(t, timer_id: int) -> PosixTimer:
    timer = t.tg.posix_timers.get(s32(timer_id))
    if timer is None:
        raise SysError(E.EINVAL)
    return timer


def timer_create(t, clock, sevp, timerid, *_):
    clock = s32(clock)
    if clock not in _TIMER_CLOCKS and clock not in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):
        raise SysError(E.EINVAL)
    tg = t.tg
    if len(tg.posix_timers) >= MAX_TIMERS:
        raise SysError(E.EAGAIN)
    timer_id = next(i for i in range(MAX_TIMERS + 1) if i not in tg.posix_timers)
    notify, sig, value, target = SIGEV_SIGNAL, SIGALRM, timer_id, t
    if sevp:
        value, sig, notify, tid = _SIGEVENT.unpack(t.mm.read(sevp, _SIGEVENT.size))
        if notify not in (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID):
            raise SysError(E.EINVAL)
        if notify != SIGEV_NONE and not 1 <= sig <= 64:
            raise SysError(E.EINVAL)
        if notify == SIGEV_THREAD_ID:
            target = t.kernel.find_task(t, tid)
            if target is None or target.tg is not tg:
                raise SysError(E.EINVAL)
    t.mm.write_u32(timerid, timer_id)
    tg.posix_timers[timer_id] = PosixTimer(t, timer_id, clock, notify, sig, value, target)
    return 0


def _itimerspec(interval_ns: float, value_ns: float) -> bytes:
    return (_TIMESPEC.pack(*divmod(int(interval_ns), _NS)) + _TIMESPEC.pack(*divmod(int(value_ns), _NS)))


def timer_settime(t, timer_id, flags, new, old, *_):
    timer = _posix_timer(t, timer_id)
    interval = read_timespec(t, new) / _NS
    value = read_timespec(t, new + _TIMESPEC.size) / _NS
    if old:
        remaining, old_interval = timer.signal_timer.remaining()
        t.mm.write(old, _itimerspec(old_interval * _NS, remaining * _NS))
    if value and s32(flags) & TIMER_ABSTIME:
        value = max(value - _now_ns(t, timer.clock) / _NS, 1e-9)
    timer.signal_timer.arm(value, interval)
    return 0


def timer_gettime(t, timer_id, cur, *_):
    remaining, interval = _posix_timer(t, timer_id).signal_timer.remaining()
    t.mm.write(cur, _itimerspec(interval * _NS, remaining * _NS))
    return 0


def timer_getoverrun(t, timer_id, *_):
    return _posix_timer(t, timer_id).signal_timer.overrun


def timer_delete(t, timer_id, *_):
    _posix_timer(t, timer_id).cancel()
    del t.tg.posix_timers[s32(timer_id)]
    return 0
