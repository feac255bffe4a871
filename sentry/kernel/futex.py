"""Futex wait queues, keyed by (address space, address)."""
from __future__ import annotations

from .waitqueue import WaitQueue


def futex_key(mm, addr: int, private: bool) -> tuple[int, int]:
    """Where waiters on `addr` meet: per address space, except a non-private
    futex in shared memory: in a shared file mapping, the file's mapping cache
    and the offset in the file (every process mapping the file meets there);
    in shared anonymous memory, which processes forked after the mapping
    share at the same address, the address."""
    if not private:
        vma = mm.vmas.find(addr)
        if vma is not None and vma.shared:
            if vma.cache is not None:
                return (id(vma.cache), vma.offset + addr - vma.start)
            return (0, addr)
    return (id(mm), addr)


class FutexWaiter:
    """One task waiting in FUTEX_WAIT: its own queue, so wakes can pick exactly n waiters."""

    __slots__ = ("bitset", "queue", "woken")

    def __init__(self, bitset: int):
        self.bitset = bitset
        self.queue = WaitQueue()
        self.woken = False


class Futexes:
    """All futex waiters of the sandbox."""

    def __init__(self):
        self._buckets: dict[tuple[int, int], list[FutexWaiter]] = {}

    def wait(self, key: tuple[int, int], bitset: int) -> FutexWaiter:
        """Register a waiter on `key` (the caller then blocks on waiter.queue)."""
        waiter = FutexWaiter(bitset)
        self._buckets.setdefault(key, []).append(waiter)
        return waiter

    def cancel(self, key: tuple[int, int], waiter: FutexWaiter) -> None:
        bucket = self._buckets.get(key)
        if bucket and waiter in bucket:
            bucket.remove(waiter)
            if not bucket:
                del self._buckets[key]

    def requeue(self, key: tuple[int, int], wake: int, key2: tuple[int, int], move: int) -> int:
        """Wake up to `wake` waiters on `key`, move up to `move` of the rest to `key2`;
        returns how many were woken plus moved."""
        woken = self.wake(key, wake, 0xFFFFFFFF)
        bucket = [w for w in self._buckets.pop(key, []) if w.queue]
        moving, staying = bucket[:move], bucket[move:]
        if staying:
            self._buckets[key] = staying
        if moving:
            self._buckets.setdefault(key2, []).extend(moving)
        return woken + len(moving)

    def wake(self, key: tuple[int, int], count: int, bitset: int) -> int:
        """Wake up to `count` live waiters on `key` whose bitset matches; returns how many."""
        bucket = self._buckets.get(key)
        if not bucket:
            return 0
        woken = 0
        keep = []
        for waiter in bucket:
            if not waiter.queue:
                continue  # its task stopped waiting (signal, exit): drop it
            if woken < count and waiter.bitset & bitset:
                waiter.woken = True
                waiter.queue.notify()
                woken += 1
            else:
                keep.append(waiter)
        if keep:
            self._buckets[key] = keep
        else:
            del self._buckets[key]
        return woken
