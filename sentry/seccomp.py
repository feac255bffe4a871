"""The sentry's own seccomp allowlist.

Once confined the sentry can still serve the program (ptrace the stubs, copy
their memory, talk to the gofer over its socket, use the fds it was given),
but it cannot open a path, execute anything, mount, or create sockets (it
may accept connections on the control socket it was given).
Anything not listed fails with EPERM.
"""
from __future__ import annotations

import errno

import pyseccomp

ALLOWED = (
    # fds it holds: stdio, pipes, the gofer and control sockets and donated files, its signalfd
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "lseek", "close",
    "fstat", "fstatfs", "getdents64", "fcntl", "dup", "dup2", "dup3", "ioctl", "fsync", "fdatasync",
    "ftruncate", "fallocate", "syncfs", "sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown", "pipe2",
    "accept4",  # connections to the control socket it was given
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
    "copy_file_range", "splice", "sendfile", "newfstatat", "statx", "readlinkat",
    # its own memory and threads
    "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "futex", "set_robust_list", "rseq",
    "memfd_create",  # mapping caches (mm/cache.py): memory of its own, passed to the stubs to map
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "getcpu",
    # signals and time
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "signalfd4", "restart_syscall",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
    # identity and limits (read only)
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getrandom",
    "prlimit64", "getrlimit", "uname", "sysinfo",
    # the platform: tracing and copying the stubs' memory, killing them
    "ptrace", "wait4", "waitid", "process_vm_readv", "process_vm_writev", "kill", "tgkill",
    "exit", "exit_group",
)


# The per-syscall loop's own syscalls: checked first by the filter.
HOT = ("ptrace", "wait4", "process_vm_readv", "process_vm_writev")
# libseccomp's SCMP_FLTATR_CTL_OPTIMIZE: 2 = a binary tree over syscall numbers.
_CTL_OPTIMIZE, _BINARY_TREE = 8, 2


def confine_sentry() -> None:
    """Install the allowlist on the calling (single-threaded) sentry process."""
    filt = pyseccomp.SyscallFilter(defaction=pyseccomp.ERRNO(errno.EPERM))
    for name in ALLOWED:
        filt.add_rule(pyseccomp.ALLOW, name)
    for name in HOT:
        filt.syscall_priority(name, 255)
    try:
        filt.set_attr(_CTL_OPTIMIZE, _BINARY_TREE)
    except (OSError, ValueError):
        pass  # an older libseccomp: the priorities still put the hot syscalls first
    filt.load()
