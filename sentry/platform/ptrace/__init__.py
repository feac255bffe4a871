"""The ptrace platform: program threads are threads of traced stub processes.

A stub process starts from the master stub (a clean address space holding only
the stub page) and runs program code under PTRACE_SYSEMU, so every syscall
stops it before the host kernel sees it.  The wait/registers/resume loop is C
(`_ptrace`); this module wraps it for the kernel.  Memory files of the sentry's
(mapping caches) reach a stub through the channel every stub holds (channel.py).
"""
from __future__ import annotations

import functools
import os
import signal
import struct

from ...abi import sysno
from ...abi.errno import EFAULT
from ...kernel.errors import SysError
from ._ptrace import ffi, lib
from .channel import Channel

_ULONG = (1 << 64) - 1

# Stop kinds decoded from a wait status.
SYSCALL_STOP = (signal.SIGTRAP | 0x80) << 8 | 0x7F

_NR_FORK = sysno.NUMBERS["fork"]
_XSTATE_MAX = 16384  # room for any XSAVE area (AVX-512 needs ~2.7 KiB)
_NR_CLONE = sysno.NUMBERS["clone"]
_NR_EXIT = sysno.NUMBERS["exit"]
# CLONE_VM | CLONE_SIGHAND | CLONE_THREAD: a host thread sharing the stub's memory.
_HOST_THREAD_FLAGS = 0x100 | 0x800 | 0x10000
# CLONE_VM | SIGCHLD: a host process sharing the stub's memory (vfork's child).
_HOST_VFORK_FLAGS = 0x100 | signal.SIGCHLD


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


class StubSpace:
    """A stub process: the host side of one sandboxed address space."""

    __slots__ = ("pid", "_channel", "_args", "_ret", "_child", "_buf", "_bufsize")

    def __init__(self, pid: int, channel: Channel):
        self.pid = pid
        self._channel = channel
        self._args = ffi.new("unsigned long[6]")
        self._ret = ffi.new("long *")
        self._child = ffi.new("int *")
        self._bufsize = 0
        self._buf = None

    def _scratch(self, n: int):
        if n > self._bufsize:
            self._bufsize = max(n, 4096)
            self._buf = ffi.new("char[]", self._bufsize)
        return self._buf

    def read(self, addr: int, length: int) -> bytes:
        """Copy `length` bytes at `addr`; SysError(EFAULT) if any is unmapped."""
        if length == 0:
            return b""
        buf = self._scratch(length)
        if not 0 <= addr <= _ULONG or lib.rf_read(self.pid, addr, buf, length) != length:
            raise SysError(EFAULT)
        return ffi.unpack(buf, length)

    def read_partial(self, addr: int, length: int) -> bytes:
        """Copy up to `length` bytes at `addr`, stopping at the first unmapped page."""
        buf = self._scratch(length)
        n = lib.rf_read(self.pid, addr, buf, length) if 0 <= addr <= _ULONG else -1
        return ffi.unpack(buf, n) if n > 0 else b""

    def write(self, addr: int, data: bytes) -> None:
        """Copy `data` to `addr`; SysError(EFAULT) if any byte is not writable."""
        if data and (not 0 <= addr <= _ULONG or lib.rf_write(self.pid, addr, data, len(data)) != len(data)):
            raise SysError(EFAULT)

    def read_cstr(self, addr: int, maximum: int) -> bytes:
        """Read a NUL-terminated string of at most `maximum` bytes."""
        buf = self._scratch(maximum + 1)
        n = lib.rf_read_cstr(self.pid, addr, buf, maximum) if 0 <= addr <= _ULONG else -EFAULT
        if n < 0:
            raise SysError(-n)
        return ffi.unpack(buf, n)

    def syscall(self, tid: int, nr: int, *args: int) -> int:
        """Run syscall `nr` inside stopped stub thread `tid`; returns its raw result."""
        a = self._args
        for i in range(6):
            a[i] = (args[i] & _ULONG) if i < len(args) else 0
        _check(lib.rf_inject(tid, nr, a, self._ret, self._child), "inject syscall")
        return self._ret[0]

    def map_file(self, tid: int, addr: int, length: int, prot: int, fd: int, offset: int) -> int:
        """Map the sentry's memory file `fd` MAP_SHARED over [addr, addr + length), which is mapped
        writable already, in stopped thread `tid`; returns the raw result (`addr` or -errno)."""
        return self._channel.map_into(self, tid, addr, length, prot, fd, offset)

    def clone(self, tid: int, nr: int, *args: int) -> int:
        """Run a fork/clone syscall in stopped thread `tid` (of any stub); returns
        the new host thread's tid, already past its first stop."""
        ret = self.syscall(tid, nr, *args)
        if ret < 0:
            raise OSError(-ret, f"stub {sysno.NAMES[nr]}: {os.strerror(-ret)}")
        return self._child[0]


class PtracePlatform:
    """Runs program threads as PTRACE_SYSEMU-traced stub threads."""

    name = "ptrace"

    def __init__(self):
        self._channel = Channel()
        self.master = StubSpace(_check(lib.rf_stub_create_master(self._channel.stub_end.fileno()),
                                       "create master stub"), self._channel)
        self.stub_page = lib.rf_stub_page()
        self._xstate = ffi.new("char[]", _XSTATE_MAX)
        self.stop = ffi.new("struct rf_stop *")
        self.regs = self.stop.regs
        self.fpstate_size = len(self.getfpregs(self.master.pid))  # the signal frame's FP area
        sys_view = ffi.buffer(self.stop.sys)
        unpack = struct.Struct("<8Q").unpack_from
        # The hot path: resume a thread with its result and wait for the next
        # stop (rf_resume_wait), then read that stop's (status, nr, args...).
        self.step = lib.rf_resume_wait
        self.stop_syscall = functools.partial(unpack, sys_view)

    def new_address_space(self) -> tuple[StubSpace, int]:
        """A clean address space (holding only the stub page) and its stopped thread."""
        tid = self.master.clone(self.master.pid, _NR_FORK)
        return StubSpace(tid, self._channel), tid

    def fork_address_space(self, tid: int) -> tuple[StubSpace, int]:
        """A copy-on-write copy of the address space of stopped thread `tid`."""
        pid = self.master.clone(tid, _NR_FORK)
        return StubSpace(pid, self._channel), pid

    def vfork_process(self, tid: int) -> int:
        """A new stub process sharing the memory of stopped thread `tid` (vfork)."""
        return self.master.clone(tid, _NR_CLONE, _HOST_VFORK_FLAGS, 0, 0, 0, 0)

    def new_thread(self, tid: int) -> int:
        """A new stub thread in the address space of stopped thread `tid`."""
        return self.master.clone(tid, _NR_CLONE, _HOST_THREAD_FLAGS, 0, 0, 0, 0)

    def end_thread(self, space: StubSpace, tid: int) -> None:
        """Make stopped stub thread `tid` (not its process's first) exit."""
        try:
            space.syscall(tid, _NR_EXIT, 0)
        except OSError:
            pass  # the thread is gone: that is the point

    def resume(self, tid: int, rax: int | None, sig: int = 0) -> None:
        """Resume `tid` (after setting %rax unless None) without waiting."""
        if rax is None:
            _check(lib.rf_resume(tid, 0, 0, sig), "resume")
        else:
            _check(lib.rf_resume(tid, 1, rax & _ULONG, sig), "resume")

    def wait(self, block: bool) -> int:
        """Wait for any stop (filling `self.stop`); 0 if none pending and not blocking."""
        return lib.rf_wait(-1, 0 if block else os.WNOHANG, self.stop)

    def getregs(self, tid: int, regs) -> None:
        _check(lib.rf_getregs(tid, regs), "getregs")

    def setregs(self, tid: int, regs) -> None:
        _check(lib.rf_setregs(tid, regs), "setregs")

    def getfpregs(self, tid: int) -> bytes:
        """The thread's whole FP/vector state (its XSAVE area, FXSAVE layout first)."""
        buf = self._xstate
        n = lib.rf_getxstate(tid, buf, len(buf))
        if n < 0:  # no XSAVE on this CPU: the legacy FXSAVE area
            _check(lib.rf_getfpregs(tid, buf), "getfpregs")
            n = 512
        return ffi.unpack(buf, n)

    def setfpregs(self, tid: int, data: bytes) -> None:
        """Restore what getfpregs returned."""
        if len(data) == 512 or lib.rf_setxstate(tid, data, len(data)) < 0:
            _check(lib.rf_setfpregs(tid, data[:512]), "setfpregs")

    def siginfo(self, tid: int) -> tuple[int, int, int]:
        """(signo, si_code, si_addr) of the signal `tid` is stopped for."""
        signo, code, addr = ffi.new("int *"), ffi.new("int *"), ffi.new("unsigned long *")
        _check(lib.rf_getsiginfo(tid, signo, code, addr), "getsiginfo")
        return signo[0], code[0], addr[0]

    def stop_notifier(self) -> int:
        """A pollable fd that becomes readable when a stub thread stops."""
        return _check(lib.rf_sigchld_fd(), "signalfd")

    def interrupt(self, pid: int, tid: int) -> None:
        """Make running thread `tid` stop soon (a SIGSTOP the kernel suppresses)."""
        lib.rf_tgkill(pid, tid, signal.SIGSTOP)

    def kill_process(self, pid: int) -> None:
        """Destroy host stub process `pid` (memory it shares with another stays)."""
        if pid <= 0:
            raise ValueError(f"not a stub process: {pid}")  # kill(0 or -1) would hit the sentry
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def new_regs(self):
        """A zeroed register set."""
        return ffi.new("struct user_regs_struct *")
