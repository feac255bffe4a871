"""siginfo_t (128 bytes on x86_64): the header and the union for each kind of sender.

A queued signal is (signo, si_code, union bytes); `encode` makes the
siginfo_t the program sees in its handler, sigtimedwait or waitid.
"""
import struct

SIGINFO_SIZE = 128
_HEAD = struct.Struct("<iii4x")  # si_signo, si_errno, si_code
_KILL = struct.Struct("<iI")  # si_pid, si_uid
_CHILD = struct.Struct("<iIi4xqq")  # si_pid, si_uid, si_status, si_utime, si_stime
_FAULT = struct.Struct("<Q")  # si_addr
_SYS = struct.Struct("<QiI")  # si_call_addr, si_syscall, si_arch
_TIMER = struct.Struct("<ii")  # si_tid, si_overrun; si_value follows
_RT = struct.Struct("<iIQ")  # si_pid, si_uid, si_value


def kill_info(pid: int, uid: int = 0) -> bytes:
    """kill(2), tgkill(2) and the kernel acting for a process."""
    return _KILL.pack(pid, uid)


def child_info(pid: int, status: int, uid: int = 0) -> bytes:
    """SIGCHLD: a child exited, was killed, stopped or continued."""
    return _CHILD.pack(pid, uid, status, 0, 0)


def fault_info(addr: int) -> bytes:
    """SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP from a fault."""
    return _FAULT.pack(addr)


def sys_info(call_addr: int, nr: int, arch: int) -> bytes:
    """SIGSYS from a seccomp trap: the address after the syscall, its number and audit arch."""
    return _SYS.pack(call_addr, nr, arch)


def timer_info(timer_id: int, overrun: int, value: int) -> bytes:
    """A POSIX timer's expiry (SI_TIMER)."""
    return _TIMER.pack(timer_id, overrun) + value.to_bytes(8, "little")


def queue_info(pid: int, uid: int, value: int) -> bytes:
    """sigqueue(3) and a timer/mq notification carrying a sigval."""
    return _RT.pack(pid, uid, value)


def encode(sig: int, code: int, union: bytes) -> bytes:
    """The siginfo_t for a queued signal."""
    return (_HEAD.pack(sig, 0, code) + union).ljust(SIGINFO_SIZE, b"\0")[:SIGINFO_SIZE]


def decode(raw: bytes) -> tuple[int, int, bytes]:
    """(signo, code, union bytes) of a siginfo_t the program supplied."""
    sig, _errno, code = _HEAD.unpack_from(raw)
    return sig, code, bytes(raw[_HEAD.size:SIGINFO_SIZE])
