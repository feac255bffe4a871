"""The futex syscall: WAIT, WAKE and their bitset forms."""
from __future__ import annotations

import time

from ..abi import errno as E
from ..kernel.errors import SysError
from ..kernel.futex import futex_key
from ..kernel.waitqueue import Block
from .args import s32
from .time import read_timespec

FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 3, 4, 5
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
# FUTEX_WAKE_OP's operations on the second word and comparisons of its old value.
_OPS = {0: lambda old, arg: arg, 1: lambda old, arg: old + arg, 2: lambda old, arg: old | arg,
        3: lambda old, arg: old & ~arg, 4: lambda old, arg: old ^ arg}
_CMPS = {0: lambda a, b: a == b, 1: lambda a, b: a != b, 2: lambda a, b: a < b,
         3: lambda a, b: a <= b, 4: lambda a, b: a > b, 5: lambda a, b: a >= b}
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF


def _key(t, addr: int, private: bool) -> tuple[int, int]:
    if addr % 4:
        raise SysError(E.EINVAL)
    return futex_key(t.mm, addr, private)


def _deadline(t, timeout: int, absolute: bool, realtime: bool) -> float | None:
    if not timeout:
        return None
    value = read_timespec(t, timeout) / 1e9
    if not absolute:
        return time.monotonic() + value
    return time.monotonic() + (value - time.time()) if realtime else value


def _wait(t, key: tuple[int, int], addr: int, val: int, deadline: float | None, bitset: int):
    if bitset == 0:
        raise SysError(E.EINVAL)
    if _load(t, addr) != val & 0xFFFFFFFF:
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


def _load(t, addr: int) -> int:
    return int.from_bytes(t.mm.read(addr, 4), "little")


def _wake_op(t, key: tuple[int, int], key2: tuple[int, int], wake: int, wake2: int, addr2: int,
             encoded: int) -> int:
    """FUTEX_WAKE_OP: update *addr2, wake on addr, and on addr2 if its old value passes the test."""
    op, cmp = (encoded >> 28) & 7, (encoded >> 24) & 15
    arg, cmparg = (encoded >> 12) & 0xFFF, encoded & 0xFFF
    if encoded & (8 << 28):  # FUTEX_OP_OPARG_SHIFT
        arg = 1 << (arg & 31)
    if op not in _OPS or cmp not in _CMPS:
        raise SysError(E.ENOSYS)
    old = _load(t, addr2)
    t.mm.write_u32(addr2, _OPS[op](old, arg) & 0xFFFFFFFF)
    futexes = t.kernel.futexes
    woken = futexes.wake(key, wake & 0x7FFFFFFF, FUTEX_BITSET_MATCH_ANY)
    signed_old = old - (1 << 32) if old & 0x80000000 else old
    signed_cmparg = cmparg - (1 << 12) if cmparg & 0x800 else cmparg
    if _CMPS[cmp](signed_old, signed_cmparg):
        woken += futexes.wake(key2, wake2 & 0x7FFFFFFF, FUTEX_BITSET_MATCH_ANY)
    return woken


def futex(t, addr, op, val, timeout, addr2, val3, *_):
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    realtime = bool(op & FUTEX_CLOCK_REALTIME)
    private = bool(op & FUTEX_PRIVATE_FLAG)
    key = _key(t, addr, private)
    if cmd == FUTEX_WAIT:
        return _wait(t, key, addr, val, _deadline(t, timeout, False, realtime), FUTEX_BITSET_MATCH_ANY)
    if cmd == FUTEX_WAIT_BITSET:
        return _wait(t, key, addr, val, _deadline(t, timeout, True, realtime), val3 & 0xFFFFFFFF)
    if cmd == FUTEX_WAKE:
        return t.kernel.futexes.wake(key, val & 0x7FFFFFFF, FUTEX_BITSET_MATCH_ANY)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        key2 = _key(t, addr2, private)
        wake, move = s32(val), s32(timeout)  # the fourth argument is val2 here
        if wake < 0 or move < 0:
            raise SysError(E.EINVAL)
        if cmd == FUTEX_CMP_REQUEUE and _load(t, addr) != val3 & 0xFFFFFFFF:
            raise SysError(E.EAGAIN)
        return t.kernel.futexes.requeue(key, wake, key2, move)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(t, key, _key(t, addr2, private), val, s32(timeout), addr2, val3 & 0xFFFFFFFF)
    if cmd == FUTEX_WAKE_BITSET:
        if not val3 & 0xFFFFFFFF:
            raise SysError(E.EINVAL)
        return t.kernel.futexes.wake(key, val & 0x7FFFFFFF, val3 & 0xFFFFFFFF)
    raise SysError(E.ENOSYS)
