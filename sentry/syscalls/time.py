"""Time syscalls: clocks, sleeping."""
from __future__ import annotations

import struct
import time as host

from ..abi import errno as E
from ..kernel.errors import SysError
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


def _cpu_clock(t, clock: int) -> int:
    """The host clock id for a CPU-time clock of the sandbox (own or encoded pid/tid)."""
    k = t.kernel
    if clock == CLOCK_PROCESS_CPUTIME_ID:
        return (~t.mm.space.pid << 3) | 2
    if clock == CLOCK_THREAD_CPUTIME_ID:
        return (~t.host_tid << 3) | 2 | 4
    # A clock id made by clock_getcpuclockid()/pthread_getcpuclockid().
    pid = ~(clock >> 3)
    if clock & 3 != 2:
        raise SysError(E.EINVAL)
    if clock & 4:
        target = k.tasks.get(pid) if pid else t
        if target is None:
            raise SysError(E.EINVAL)
        return (~target.host_tid << 3) | 6
    tg = k.groups.get(pid) if pid else t.tg
    if tg is None or tg.leader is None:
        raise SysError(E.EINVAL)
    return (~tg.leader.mm.space.pid << 3) | 2


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
        try:
            return host.clock_gettime_ns(_cpu_clock(t, clock))
        except OSError:
            raise SysError(E.EINVAL) from None
    raise SysError(E.EINVAL)


def _write_timespec(t, addr: int, ns: int) -> None:
    t.mm.write(addr, _TIMESPEC.pack(*divmod(ns, _NS)))


def _read_timespec(t, addr: int) -> int:
    sec, nsec = _TIMESPEC.unpack(t.mm.read(addr, _TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < _NS:
        raise SysError(E.EINVAL)
    return sec * _NS + nsec


def clock_gettime(t, clock, tp, *_):
    _write_timespec(t, tp, _now_ns(t, s32(clock)))
    return 0


def clock_getres(t, clock, res, *_):
    clock = s32(clock)
    _now_ns(t, clock)  # validates the clock
    if res:
        coarse = clock in (CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE)
        _write_timespec(t, res, _COARSE_RES if coarse else 1)
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
    return _sleep_until(host.monotonic() + _read_timespec(t, req) / _NS)


def clock_nanosleep(t, clock, flags, req, rem, *_):
    clock = s32(clock)
    if clock in (CLOCK_THREAD_CPUTIME_ID,):
        raise SysError(E.EINVAL)
    now = _now_ns(t, clock)
    ns = _read_timespec(t, req)
    if s64(flags) & TIMER_ABSTIME:
        ns = max(0, ns - now)
    return _sleep_until(host.monotonic() + ns / _NS)
