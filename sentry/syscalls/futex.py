"""The futex syscall: WAIT, WAKE and their bitset forms."""
from __future__ import annotations

import struct
import time

from ..abi import errno as E
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block

FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 0, 1, 9, 10
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
_TIMESPEC = struct.Struct("<qq")


def _key(t, addr: int) -> tuple[int, int]:
    if addr % 4:
        raise SysError(E.EINVAL)
    return (id(t.mm), addr)


def _deadline(t, timeout: int, absolute: bool, realtime: bool) -> float | None:
    if not timeout:
        return None
    sec, nsec = _TIMESPEC.unpack(t.mm.read(timeout, _TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SysError(E.EINVAL)
    value = sec + nsec / 1e9
    if not absolute:
        return time.monotonic() + value
    return time.monotonic() + (value - time.time()) if realtime else value


def _wait(t, addr: int, val: int, deadline: float | None, bitset: int):
    key = _key(t, addr)
    if bitset == 0:
        raise SysError(E.EINVAL)
    if int.from_bytes(t.mm.read(addr, 4), "little") != val & 0xFFFFFFFF:
        raise SysError(E.EAGAIN)
    futexes = t.kernel.futexes
    waiter = futexes.wait(key, bitset)

    def check():
        if waiter.woken:
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            futexes.cancel(key, waiter)
            raise SysError(E.ETIMEDOUT)
        return Block((waiter.queue,), deadline=deadline, retry=check)

    return check()


def futex(t, addr, op, val, timeout, addr2, val3, *_):
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    realtime = bool(op & FUTEX_CLOCK_REALTIME)
    if cmd == FUTEX_WAIT:
        return _wait(t, addr, val, _deadline(t, timeout, False, realtime), FUTEX_BITSET_MATCH_ANY)
    if cmd == FUTEX_WAIT_BITSET:
        return _wait(t, addr, val, _deadline(t, timeout, True, realtime), val3 & 0xFFFFFFFF)
    if cmd == FUTEX_WAKE:
        return t.kernel.futexes.wake(_key(t, addr), val & 0x7FFFFFFF, FUTEX_BITSET_MATCH_ANY)
    if cmd == FUTEX_WAKE_BITSET:
        if not val3 & 0xFFFFFFFF:
            raise SysError(E.EINVAL)
        return t.kernel.futexes.wake(_key(t, addr), val & 0x7FFFFFFF, val3 & 0xFFFFFFFF)
    raise SysError(E.ENOSYS)
