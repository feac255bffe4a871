"""The sandbox's view of an address space's layout: its mappings (VMAs), in address order.

The host stub holds the pages; this list only describes them, for
/proc/PID/maps, status and stat.  Every change the MemoryManager makes to the
host layout is mirrored here once the host accepted it.  Lookups bisect over
the sorted start addresses; neighbours that Linux would merge are merged.
"""
from __future__ import annotations

import bisect

from ..abi.mm import PROT_EXEC, PROT_READ, PROT_WRITE

# The name Linux gives a shared anonymous mapping (it is backed by a deleted shmem file).
SHARED_ANON_NAME = b"/dev/zero (deleted)"
HEAP = b"[heap]"
STACK = b"[stack]"


class Vma:
    """One mapping: [start, end), protection, shared or private, and what backs it.

    File-backed mappings have a `name` (the file's path), `offset` in the
    file and the file's `dev` (never 0) and `ino`; anonymous ones have offset, dev and ino 0
    and the name "" (or [heap], [stack], /dev/zero (deleted)).  `stack` marks
    stacks (the initial one, MAP_STACK and MAP_GROWSDOWN mappings), whose
    pages appear only as they are touched.  A shared mapping of a file maps
    the file's mapping `cache` (mm/cache.py), which it keeps alive;
    `maywrite` says whether it may be made writable (the file was open for
    writing and is not sealed).
    """

    __slots__ = ("start", "end", "prot", "shared", "offset", "name", "dev", "ino", "stack", "cache", "maywrite",
                 "__weakref__")

    def __init__(self, start: int, end: int, prot: int, shared: bool, name: bytes = b"", offset: int = 0,
                 dev: int = 0, ino: int = 0, stack: bool = False, cache=None, maywrite: bool = False):
        self.start, self.end, self.prot, self.shared = start, end, prot, shared
        self.name, self.offset, self.dev, self.ino, self.stack = name, offset, dev, ino, stack
        self.cache, self.maywrite = cache, maywrite
        if cache is not None:
            cache.users.add(self)

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self.end - self.start

    @property
    def is_file(self) -> bool:
        """Whether a file backs the mapping (file systems have nonzero device numbers)."""
        return self.dev != 0

    def moved(self, at: int, start: int, end: int) -> Vma:
        """A mapping like this one over [start, end), starting with what this one shows at `at`."""
        offset = self.offset + (at - self.start) if self.is_file else 0
        return Vma(start, end, self.prot, self.shared, self.name, offset, self.dev, self.ino, self.stack,
                   self.cache, self.maywrite)

    def piece(self, start: int, end: int) -> Vma:
        """A copy restricted to [start, end) (inside this one)."""
        return self.moved(start, start, end)

    def continues(self, prev: Vma) -> bool:
        """Whether this mapping extends `prev` seamlessly (Linux would merge the two)."""
        return (prev.end == self.start and prev.prot == self.prot and prev.shared == self.shared
                and prev.name == self.name and prev.dev == self.dev and prev.ino == self.ino
                and prev.stack == self.stack and prev.cache is self.cache and prev.maywrite == self.maywrite
                and (not self.is_file or prev.offset + prev.size == self.offset))

    def perms(self) -> bytes:
        """The rwxp/s column of /proc/PID/maps."""
        p = self.prot
        return bytes((114 if p & PROT_READ else 45, 119 if p & PROT_WRITE else 45, 120 if p & PROT_EXEC else 45,
                      115 if self.shared else 112))


class VmaList:
    """The ordered, non-overlapping mappings of one address space, with its size and peak size."""

    __slots__ = ("_starts", "_vmas", "total", "peak")

    def __init__(self):
        self._starts: list[int] = []
        self._vmas: list[Vma] = []
        self.total = 0  # bytes mapped
        self.peak = 0  # the most bytes ever mapped at once

    def __iter__(self):
        return iter(self._vmas)

    def copy(self) -> VmaList:
        """An independent copy (fork)."""
        new = VmaList()
        new._vmas = [v.piece(v.start, v.end) for v in self._vmas]
        new._starts = list(self._starts)
        new.total, new.peak = self.total, self.peak
        return new

    def find(self, addr: int) -> Vma | None:
        """The mapping containing `addr`, if any."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._vmas[i].end:
            return self._vmas[i]
        return None

    def overlapping(self, lo: int, hi: int) -> list[Vma]:
        """The mappings that overlap [lo, hi), in address order."""
        vmas = self._vmas
        i = max(bisect.bisect_right(self._starts, lo) - 1, 0)
        out = []
        while i < len(vmas) and vmas[i].start < hi:
            if vmas[i].end > lo:
                out.append(vmas[i])
            i += 1
        return out

    # -- changes -------------------------------------------------------------
    def _split(self, addr: int) -> int:
        """Make `addr` a mapping boundary; the index of the first mapping starting at or after it."""
        i = bisect.bisect_left(self._starts, addr)
        if i > 0 and self._vmas[i - 1].end > addr:
            v = self._vmas[i - 1]
            self._vmas.insert(i, v.piece(addr, v.end))
            self._starts.insert(i, addr)
            v.end = addr
        return i

    def _span(self, lo: int, hi: int) -> tuple[int, int]:
        """Split at `lo` and `hi`; the index range of the mappings inside [lo, hi)."""
        i = self._split(lo)
        return i, self._split(hi)

    def _merge(self, i: int, j: int) -> None:
        """Merge mergeable neighbours among the mappings at indexes i-1 .. j."""
        vmas = self._vmas
        for k in range(min(j, len(vmas) - 1), max(i, 1) - 1, -1):
            if vmas[k].continues(vmas[k - 1]):
                vmas[k - 1].end = vmas[k].end
                del vmas[k], self._starts[k]

    def unmap(self, lo: int, hi: int) -> None:
        """Forget [lo, hi)."""
        i, j = self._span(lo, hi)
        self.total -= sum(v.size for v in self._vmas[i:j])
        del self._vmas[i:j], self._starts[i:j]

    def map(self, vma: Vma) -> None:
        """Add `vma`, replacing whatever overlapped it (MAP_FIXED)."""
        self.unmap(vma.start, vma.end)
        i = bisect.bisect_left(self._starts, vma.start)
        self._vmas.insert(i, vma)
        self._starts.insert(i, vma.start)
        self.total += vma.size
        self.peak = max(self.peak, self.total)
        self._merge(i, i + 1)

    def protect(self, lo: int, hi: int, prot: int) -> None:
        """Change the protection of the mapped parts of [lo, hi)."""
        i, j = self._span(lo, hi)
        for v in self._vmas[i:j]:
            v.prot = prot
        self._merge(i, j)

    def describe(self, lo: int, hi: int, name: bytes, offset: int = 0, dev: int = 0, ino: int = 0) -> None:
        """Say what backs the mapped parts of [lo, hi): `name` (and, for a file, where in which file)."""
        i, j = self._span(lo, hi)
        for v in self._vmas[i:j]:
            v.name, v.dev, v.ino = name, dev, ino
            v.offset = offset + (v.start - lo) if dev else 0
        self._merge(i, j)

    def remap(self, old: int, old_len: int, new: int, new_len: int, keep_old: bool) -> None:
        """mremap moved or resized [old, old + old_len) to [new, new + new_len).

        `old_len` 0 duplicates a shared mapping; `keep_old` is MREMAP_DONTUNMAP.
        """
        src = self.find(old)
        if src is None:
            return
        if new == old and old_len:
            if new_len < old_len:
                self.unmap(old + new_len, old + old_len)
            elif new_len > old_len:
                self.map(src.moved(old + old_len, old + old_len, old + new_len))
            return
        moved = src.moved(old, new, new + new_len)
        if old_len and not keep_old:
            self.unmap(old, old + old_len)
        self.map(moved)
