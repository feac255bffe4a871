"""A sandboxed process's memory: its address space, brk and mappings.

The host stub process holds the real pages; every change to the layout is
done by running mmap/munmap/mprotect/mremap inside the stub (see the
platform).  This module decides what is allowed (the stub page is never
touched, host files never reach the stub) and keeps the sandbox's view of
the layout (`vmas`, see vma.py) in step.  Private file mappings hold a copy
of the file's bytes; shared ones map the file's mapping cache (cache.py), a
memory file of the sentry's that the platform maps into the stub.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..abi import sysno
from ..abi.errno import EACCES, EFAULT, EINVAL, ENOMEM, EPERM
from ..abi.mm import (
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_GROWSDOWN, MAP_HUGETLB, MAP_NORESERVE,
    MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_STACK, MAP_TYPE, PAGE_SIZE, PROT_ALL,
    PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, MREMAP_DONTUNMAP, MREMAP_FIXED, MS_ASYNC, MS_INVALIDATE, MS_SYNC,
    TASK_SIZE, page_down, page_up,
)
from ..kernel.errors import SysError
from .vma import HEAP, SHARED_ANON_NAME, STACK, Vma, VmaList

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


@dataclass(frozen=True)
class ImageLayout:
    """Where execve put things (mm_struct's start_code...env_end, shown in /proc/PID/stat).

    Each pair is a [start, end) range; `stack` is the initial stack pointer.
    """

    code: tuple[int, int] = (0, 0)
    data: tuple[int, int] = (0, 0)
    stack: int = 0
    args: tuple[int, int] = (0, 0)
    env: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class MemoryUsage:
    """Sizes in bytes for /proc/PID/status and statm (see MemoryManager.usage)."""

    size: int
    peak: int
    rss_anon: int
    rss_file: int
    data: int
    stack: int
    exe: int
    lib: int

    @property
    def rss(self) -> int:
        """Resident bytes (estimated)."""
        return self.rss_anon + self.rss_file


class MemoryManager:
    """The memory of one sandboxed address space (shared by its threads).

    `space` is the platform's address space; `reserved` the host range the
    sandbox must never touch (the stub page).
    """

    __slots__ = ("space", "read", "write", "read_cstr", "read_partial", "reserved",
                 "brk_start", "brk", "vmas", "layout")

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
        self.vmas = VmaList()  # never includes the stub page
        self.layout = ImageLayout()

    def fork(self, space) -> MemoryManager:
        """The memory of a forked child living in `space` (a copy of this one)."""
        child = MemoryManager(space, self.reserved)
        child.brk_start, child.brk = self.brk_start, self.brk
        child.vmas = self.vmas.copy()
        child.layout = self.layout
        return child

    # -- program memory access -------------------------------------------
    def read_iovecs(self, addr: int, count: int) -> list[tuple[int, int]]:
        """The (base, length) pairs of an iovec array of `count` (at most IOV_MAX) entries: EINVAL
        if a length or the total overflows ssize_t, else EFAULT if a buffer leaves user space."""
        raw = self.read(addr, 16 * count)
        vecs = [(int.from_bytes(raw[i:i + 8], "little"), int.from_bytes(raw[i + 8:i + 16], "little"))
                for i in range(0, 16 * count, 16)]
        total = 0
        fault = False
        for base, length in vecs:
            total += length
            if length > (1 << 63) - 1 or total > (1 << 63) - 1:
                raise SysError(EINVAL)
            fault = fault or base + length > TASK_SIZE
        if fault:
            raise SysError(EFAULT)
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
        return self._check(self.space.syscall(tid, nr, *args))

    @staticmethod
    def _check(ret: int) -> int:
        """A raw host syscall result: SysError if it is an error."""
        if -4096 < ret < 0:
            raise SysError(-ret)
        return ret

    def release(self) -> None:
        """The address space is gone (its process exited or executed): forget its mappings, so
        the mapping caches they held retire once no other process maps them."""
        self.vmas = VmaList()

    def mmap(self, tid: int, addr: int, length: int, prot: int, flags: int, file=None, offset: int = 0) -> int:
        """Map `length` bytes of anonymous memory or of `file` (a File with pread): a shared
        mapping of a file that can have a mapping cache (`mapping_cache()`) maps the file's
        cache, any other file mapping gets a copy of the file's bytes."""
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
        shared = kind != MAP_PRIVATE
        stack = bool(flags & (MAP_STACK | MAP_GROWSDOWN))
        if file is None:
            if not flags & MAP_ANONYMOUS:
                raise SysError(EINVAL)
            start = self._host(tid, _NR_MMAP, addr, length, prot, host_flags, -1, 0)
            self.vmas.map(Vma(start, start + length, prot, shared, SHARED_ANON_NAME if shared else b"",
                              stack=stack))
            return start
        if offset % PAGE_SIZE:
            raise SysError(EINVAL)
        cache = file.mapping_cache() if shared and hasattr(file, "mapping_cache") else None
        if cache is not None and cache.sealed and prot & PROT_WRITE:
            raise SysError(EPERM)
        # Anonymous memory first: the kernel picks the address (and honours
        # MAP_FIXED_NOREPLACE); then the file's bytes are copied in or its
        # cache is mapped over it.  A shared mapping of a file without a cache
        # stays shared with the processes forked after it, not with the file.
        start = self._host(tid, _NR_MMAP, addr, length, PROT_READ | PROT_WRITE, host_flags | MAP_ANONYMOUS, -1, 0)
        try:
            if cache is not None:
                self._check(self.space.map_file(tid, start, length, prot, cache.fd, offset))
            else:
                self.copy_in(file, start, offset, length)
                if prot != PROT_READ | PROT_WRITE:
                    self._host(tid, _NR_MPROTECT, start, length, prot)
        except BaseException:
            self._host(tid, _NR_MUNMAP, start, length)
            self.vmas.unmap(start, start + length)  # MAP_FIXED already replaced what was there
            raise
        maywrite = cache is not None and file.writable and not cache.sealed
        if maywrite and prot & PROT_WRITE:
            cache.dirty = True
        self.vmas.map(Vma(start, start + length, prot, shared, *_file_identity(file, offset), stack=stack,
                          cache=cache, maywrite=maywrite))
        return start

    def back_with_file(self, start: int, end: int, file, offset: int) -> None:
        """Record that [start, end) holds a copy of `file` from `offset` (the loader's segments)."""
        self.vmas.describe(start, end, *_file_identity(file, offset))

    def name_stack(self, start: int, end: int) -> None:
        """Record that [start, end) is the initial stack."""
        self.vmas.describe(start, end, STACK)

    def usage(self) -> MemoryUsage:
        """Sizes of the mappings by kind, as /proc/PID/status reports them.

        The host holds the pages, so residency is estimated: file mappings
        (the sentry copied their bytes in), the heap, and writable private
        anonymous memory other than stacks count as resident; the initial
        stack counts from its stack pointer up.
        """
        rss_anon = rss_file = data = stack = executable = 0
        for v in self.vmas:
            if v.name == STACK:
                stack += v.size
                rss_anon += max(0, v.end - max(v.start, self.layout.stack))
                continue
            if v.prot & PROT_WRITE and not v.shared:
                data += v.size
            if v.prot & PROT_EXEC and not v.prot & PROT_WRITE:
                executable += v.size
            if v.prot == PROT_NONE:
                continue
            if v.is_file:
                rss_file += v.size
            elif v.prot & PROT_WRITE and not v.stack:
                rss_anon += v.size
        code_lo, code_hi = self.layout.code
        exe = page_up(code_hi) - page_down(code_lo)
        return MemoryUsage(self.vmas.total, self.vmas.peak, rss_anon, rss_file, data, stack, exe,
                           max(0, executable - exe))

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
        ret = self._host(tid, _NR_MUNMAP, addr, length)
        self.vmas.unmap(addr, addr + length)
        return ret

    def mprotect(self, tid: int, addr: int, length: int, prot: int) -> int:
        """Change the protection; EACCES making writable a shared mapping of a file that was not
        open for writing (or is sealed)."""
        if addr % PAGE_SIZE or prot & ~PROT_ALL:
            raise SysError(EINVAL)
        length = page_up(length)
        self._check_range(addr, length)
        cached = [v for v in self.vmas.overlapping(addr, addr + length) if v.cache is not None]
        if prot & PROT_WRITE and any(not v.maywrite for v in cached):
            raise SysError(EACCES)
        ret = self._host(tid, _NR_MPROTECT, addr, length, prot)
        self.vmas.protect(addr, addr + length, prot)
        if prot & PROT_WRITE:
            for v in cached:
                v.cache.dirty = True
        return ret

    def msync(self, addr: int, length: int, flags: int) -> int:
        """Write back what stores through the shared file mappings in the range changed (with
        MS_ASYNC too, at once); ENOMEM if part of the range is not mapped."""
        if flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) or addr % PAGE_SIZE or (
                flags & MS_ASYNC and flags & MS_SYNC):
            raise SysError(EINVAL)
        end = addr + page_up(length)
        if end < addr or end > TASK_SIZE:
            raise SysError(ENOMEM)
        covered = addr
        for v in self.vmas.overlapping(addr, end):
            if v.start > covered:
                break
            covered = v.end
            if v.cache is not None and flags & (MS_ASYNC | MS_SYNC):
                v.cache.sync()
        if covered < end:
            raise SysError(ENOMEM)
        return 0

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
        moved = self._host(tid, _NR_MREMAP, old, old_len, new_len, flags, new)
        self.vmas.remap(old, page_up(old_len), moved, page_up(new_len), bool(flags & MREMAP_DONTUNMAP))
        return moved

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
                self.vmas.map(Vma(old_top, new_top, PROT_READ | PROT_WRITE, False, HEAP))
            elif new_top < old_top:
                self._host(tid, _NR_MUNMAP, new_top, old_top - new_top)
                self.vmas.unmap(new_top, old_top)
        except SysError:
            return self.brk
        self.brk = addr
        return addr


def _file_identity(file, offset: int) -> tuple[bytes, int, int, int]:
    """(name, offset, dev, ino) describing a mapping of `file` from `offset`."""
    st = file.stat()
    return file.path, offset, st.st_dev, st.st_ino
