"""A sandboxed process's memory: its address space, brk and mappings.

The host stub process holds the real pages; every change to the layout is
done by running mmap/munmap/mprotect/mremap inside the stub (see the
platform).  This module decides what is allowed (the stub page is never
touched, file contents are copied in, host fds never reach the stub).
"""
from __future__ import annotations

from ..abi import sysno
from ..abi.errno import EINVAL, ENOMEM
from ..abi.mm import (
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_GROWSDOWN, MAP_HUGETLB, MAP_NORESERVE,
    MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_STACK, MAP_TYPE, PAGE_SIZE, PROT_ALL,
    PROT_READ, PROT_WRITE, MREMAP_FIXED, TASK_SIZE, page_up,
)
from ..kernel.errors import SysError

_NR_MMAP = sysno.NUMBERS["mmap"]
_NR_MUNMAP = sysno.NUMBERS["munmap"]
_NR_MPROTECT = sysno.NUMBERS["mprotect"]
_NR_MREMAP = sysno.NUMBERS["mremap"]
_NR_MADVISE = sysno.NUMBERS["madvise"]

# Flags passed on to the host; anything else is dropped (MAP_LOCKED...).
_PASS_FLAGS = MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_NORESERVE | MAP_POPULATE | MAP_STACK

_COPY_CHUNK = 1 << 20

# madvise advice the host may apply to the program's pages (no HWPOISON, SOFT_OFFLINE...).
_ADVICE = frozenset(range(0, 5)) | frozenset(range(8, 22))

# Where the brk heap may grow at most.
BRK_MAX = 1 << 30


class MemoryManager:
    """The memory of one sandboxed address space (shared by its threads).

    `space` is the platform's address space; `reserved` the host range the
    sandbox must never touch (the stub page).
    """

    __slots__ = ("space", "read", "write", "read_cstr", "read_partial", "reserved",
                 "brk_start", "brk", "users")

    def __init__(self, space, reserved: tuple[int, int]):
        self.space = space
        # Bound methods of the space: the hot path calls them directly.
        self.read = space.read
        self.write = space.write
        self.read_cstr = space.read_cstr
        self.read_partial = space.read_partial
        self.reserved = reserved
        self.brk_start = 0
        self.brk = 0
        self.users = 1

    # -- program memory access -------------------------------------------
    def read_iovecs(self, addr: int, count: int) -> list[tuple[int, int]]:
        """The (base, length) pairs of an iovec array of `count` entries."""
        if count > 1024:
            raise SysError(EINVAL)
        raw = self.read(addr, 16 * count)
        vecs = [(int.from_bytes(raw[i:i + 8], "little"), int.from_bytes(raw[i + 8:i + 16], "little"))
                for i in range(0, 16 * count, 16)]
        total = 0
        for _, length in vecs:
            total += length
            if length > (1 << 63) - 1 or total > (1 << 63) - 1:
                raise SysError(EINVAL)
        return vecs

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, (value & ((1 << 64) - 1)).to_bytes(8, "little"))

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def read_ptr_array(self, addr: int, maximum: int = 1 << 16) -> list[int]:
        """A NULL-terminated array of pointers (argv, envp)."""
        out = []
        while True:
            ptr = self.read_u64(addr + 8 * len(out))
            if ptr == 0:
                return out
            out.append(ptr)
            if len(out) > maximum:
                raise SysError(EINVAL)

    # -- layout changes (run inside stopped thread `tid`) ------------------
    def _check_range(self, addr: int, length: int) -> None:
        lo, hi = self.reserved
        if addr < 0 or addr + length > TASK_SIZE or (addr < hi and addr + length > lo):
            raise SysError(EINVAL)

    def _host(self, tid: int, nr: int, *args: int) -> int:
        ret = self.space.syscall(tid, nr, *args)
        if -4096 < ret < 0:
            raise SysError(-ret)
        return ret

    def mmap(self, tid: int, addr: int, length: int, prot: int, flags: int, file=None, offset: int = 0) -> int:
        """Map `length` bytes; `file` (a File with pread) is copied in privately."""
        if length == 0 or prot & ~PROT_ALL or flags & MAP_HUGETLB:
            raise SysError(EINVAL)
        length = page_up(length)
        if length == 0 or length >= TASK_SIZE:
            raise SysError(ENOMEM)
        kind = flags & MAP_TYPE
        if kind not in (MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE):
            raise SysError(EINVAL)
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            if addr % PAGE_SIZE:
                raise SysError(EINVAL)
            self._check_range(addr, length)
        host_flags = (flags & _PASS_FLAGS) | (MAP_SHARED if kind != MAP_PRIVATE else MAP_PRIVATE)
        if file is None:
            if not flags & MAP_ANONYMOUS:
                raise SysError(EINVAL)
            return self._host(tid, _NR_MMAP, addr, length, prot, host_flags, -1, 0)
        if offset % PAGE_SIZE:
            raise SysError(EINVAL)
        # A file mapping: anonymous memory holding a copy of the file's bytes.
        start = self._host(tid, _NR_MMAP, addr, length, PROT_READ | PROT_WRITE,
                           (host_flags | MAP_ANONYMOUS) & ~MAP_SHARED | MAP_PRIVATE, -1, 0)
        try:
            self.copy_in(file, start, offset, length)
            if prot != PROT_READ | PROT_WRITE:
                self._host(tid, _NR_MPROTECT, start, length, prot)
        except BaseException:
            self._host(tid, _NR_MUNMAP, start, length)
            raise
        return start

    def copy_in(self, file, addr: int, offset: int, length: int) -> None:
        """Copy `length` bytes of `file` from `offset` to `addr` (short files leave zeros)."""
        done = 0
        while done < length:
            chunk = file.pread(min(_COPY_CHUNK, length - done), offset + done)
            if not chunk:
                return
            self.write(addr + done, chunk)
            done += len(chunk)

    def munmap(self, tid: int, addr: int, length: int) -> int:
        if addr % PAGE_SIZE or length == 0:
            raise SysError(EINVAL)
        length = page_up(length)
        self._check_range(addr, length)
        return self._host(tid, _NR_MUNMAP, addr, length)

    def mprotect(self, tid: int, addr: int, length: int, prot: int) -> int:
        if addr % PAGE_SIZE or prot & ~PROT_ALL:
            raise SysError(EINVAL)
        length = page_up(length)
        self._check_range(addr, length)
        return self._host(tid, _NR_MPROTECT, addr, length, prot)

    def madvise(self, tid: int, addr: int, length: int, advice: int) -> int:
        if addr % PAGE_SIZE or advice not in _ADVICE:
            raise SysError(EINVAL)
        self._check_range(addr, page_up(length))
        return self._host(tid, _NR_MADVISE, addr, length, advice)

    def mremap(self, tid: int, old: int, old_len: int, new_len: int, flags: int, new: int) -> int:
        if old % PAGE_SIZE:
            raise SysError(EINVAL)
        self._check_range(old, page_up(old_len))
        if flags & MREMAP_FIXED:
            self._check_range(new, page_up(new_len))
        return self._host(tid, _NR_MREMAP, old, old_len, new_len, flags, new)

    def set_brk(self, tid: int, addr: int) -> int:
        """The brk syscall: move the program break, return the new (or old) one."""
        if addr < self.brk_start or addr > self.brk_start + BRK_MAX:
            return self.brk
        old_top, new_top = page_up(self.brk), page_up(addr)
        try:
            if new_top > old_top:
                self._check_range(old_top, new_top - old_top)
                self._host(tid, _NR_MMAP, old_top, new_top - old_top, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
            elif new_top < old_top:
                self._host(tid, _NR_MUNMAP, new_top, old_top - new_top)
        except SysError:
            return self.brk
        self.brk = addr
        return addr
