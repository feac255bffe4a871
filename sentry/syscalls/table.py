"""The syscall table: number -> name, handler, support status, argument kinds.

This is the single declaration of what the sentry implements.  Every number
missing here is unsupported: it fails with ENOSYS and is logged once.
`ringfence syscalls` prints this table and `--strace` takes its names and
argument kinds from it.

Argument kinds (for strace): int, uint, hex, fd, dirfd, path, str, wbuf:N (a buffer
the program passes, its length in argument N), rbuf:N (a buffer the kernel
fills, its length the result), oflags, atflags, mode, sig, argv, clone,
mprot, mflags, whence.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from ..abi import sysno
from . import events, fs, futex, identity, info, mm, net, process, sched, signal, splice, time


class Support(enum.Enum):
    """How completely a syscall is implemented."""

    FULL = "full"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"


FULL, PARTIAL, UNSUPPORTED = Support.FULL, Support.PARTIAL, Support.UNSUPPORTED


@dataclass(frozen=True, slots=True)
class Syscall:
    """One row of the table."""

    nr: int
    name: str
    handler: Callable | None
    support: Support
    note: str = ""
    args: tuple[str, ...] = ()
    quiet: bool = False  # unsupported and harmless (libc copes): its ENOSYS is logged at debug level only


def _row(name: str, handler, support=FULL, note: str = "", args: str = "", quiet: bool = False) -> Syscall:
    return Syscall(sysno.NUMBERS[name], name, handler, support, note, tuple(args.split()), quiet)


_ROWS = [
    # fs: files, directories, descriptors
    _row("read", fs.read, args="fd rbuf:2 uint"),
    _row("write", fs.write, args="fd wbuf:2 uint"),
    _row("open", fs.open, PARTIAL, "as openat", args="path oflags mode"),
    _row("close", fs.close, args="fd"),
    _row("close_range", fs.close_range, args="uint uint hex"),
    _row("stat", fs.stat, args="path hex"),
    _row("fstat", fs.fstat, args="fd hex"),
    _row("lstat", fs.lstat, args="path hex"),
    _row("poll", fs.poll, args="hex uint int"),
    _row("lseek", fs.lseek, PARTIAL, "SEEK_DATA/SEEK_HOLE: host files as the host answers; tmpfs pages holding only zeros are holes (written ones too); other files are all data", args="fd int whence"),
    _row("ioctl", fs.ioctl, PARTIAL, "FIOCLEX, FIONCLEX, FIONBIO, FIONREAD; the sentry's ptys: termios (TCGETS, TCSETS[WF]), TIOC[GS]WINSZ, TCFLSH, TCSBRK[P], TCXONC (TCIOFF/TCION send no VSTOP/VSTART), TIOCOUTQ, TIOCSCTTY, TIOCNOTTY, TIOC[GS]PGRP, TIOCGSID, TIOCGPTN, TIOC[GS]PTLCK, TIOCGPTPEER (no TIOCPKT, TIOCSTI); host terminals: TCGETS, TCSETS[WF], TIOC[GS]WINSZ, TIOCOUTQ, TCFLSH, TCSBRK[P], TCXONC (a no-op), TIOCSCTTY, TIOCNOTTY, TIOC[GS]PGRP, TIOCGSID; other host fds: TCGETS, TIOCGWINSZ, TIOCGPGRP; others ENOTTY", args="fd hex hex"),
    _row("pread64", fs.pread64, args="fd rbuf:2 uint int"),
    _row("pwrite64", fs.pwrite64, args="fd wbuf:2 uint int"),
    _row("readv", fs.readv, args="fd hex int"),
    _row("writev", fs.writev, args="fd hex int"),
    _row("preadv", fs.preadv, args="fd hex int int int"),
    _row("pwritev", fs.pwritev, args="fd hex int int int"),
    _row("preadv2", fs.preadv2, PARTIAL, "RWF_HIPRI and RWF_DONTCACHE accepted (no effect); RWF_NOWAIT: reads do not block, writes to regular files EOPNOTSUPP (as buffered writes to a disk file system); RWF_ATOMIC, RWF_NOSIGNAL: EOPNOTSUPP", args="fd hex int int int hex"),
    _row("pwritev2", fs.pwritev2, PARTIAL, "RWF_DSYNC/RWF_SYNC flush the file after the write; RWF_APPEND/RWF_NOAPPEND; RWF_NOWAIT: EOPNOTSUPP on regular files, non-blocking elsewhere; RWF_ATOMIC, RWF_NOSIGNAL: EOPNOTSUPP", args="fd hex int int int hex"),
    _row("access", fs.access, args="path mode"),
    _row("pipe", fs.pipe, args="hex"),
    _row("select", fs.select, args="int hex hex hex hex"),
    _row("dup", fs.dup, args="fd"),
    _row("dup2", fs.dup2, args="fd fd"),
    _row("sendfile", splice.sendfile, FULL, "copied by the sentry", args="fd fd hex uint"),
    _row("fcntl", fs.fcntl, PARTIAL, "record and OFD locks are held in the sandbox only (host processes do not see them); F_SETPIPE_SZ ignores the per-user pipe page limits and counts content in bytes; F_ADD_SEALS/F_GET_SEALS on memfds only; F_SETOWN/F_GETOWN, F_SETSIG, leases and F_NOTIFY: EINVAL", args="fd int hex"),
    _row("flock", fs.flock, PARTIAL, "held in the sandbox only (host processes do not see them)", args="fd int"),
    _row("splice", splice.splice, PARTIAL, "copied by the sentry; a pipe's room is counted in bytes, not pages", args="fd hex fd hex uint hex"),
    _row("tee", splice.tee, PARTIAL, "copied by the sentry; a pipe's room is counted in bytes, not pages", args="fd fd uint hex"),
    _row("copy_file_range", splice.copy_file_range, FULL, "copied by the sentry (no reflink)", args="fd hex fd hex uint hex"),
    _row("fsync", fs.fsync, args="fd"),
    _row("fdatasync", fs.fdatasync, args="fd"),
    _row("truncate", fs.truncate, args="path int"),
    _row("ftruncate", fs.ftruncate, args="fd int"),
    _row("getdents64", fs.getdents64, args="fd hex uint"),
    _row("getcwd", fs.getcwd, args="hex uint"),
    _row("chdir", fs.chdir, args="path"),
    _row("fchdir", fs.fchdir, args="fd"),
    _row("rename", fs.rename, args="path path"),
    _row("mkdir", fs.mkdir, args="path mode"),
    _row("rmdir", fs.rmdir, args="path"),
    _row("creat", fs.creat, args="path mode"),
    _row("link", fs.link, args="path path"),
    _row("unlink", fs.unlink, args="path"),
    _row("symlink", fs.symlink, args="path path"),
    _row("readlink", fs.readlink, args="path hex uint"),
    _row("chmod", fs.chmod, args="path mode"),
    _row("fchmod", fs.fchmod, args="fd mode"),
    _row("chown", fs.chown, args="path int int"),
    _row("fchown", fs.fchown, args="fd int int"),
    _row("lchown", fs.lchown, args="path int int"),
    _row("umask", fs.umask, args="mode"),
    _row("statfs", fs.statfs, args="path hex"),
    _row("fstatfs", fs.fstatfs, args="fd hex"),
    _row("chroot", fs.chroot, args="path"),
    _row("sync", fs.sync),
    _row("syncfs", fs.syncfs, PARTIAL, "gofer regular files: the host file system is synced; directories and the sandbox's memory file systems: nothing to flush", args="fd"),
    _row("sync_file_range", fs.sync_file_range, PARTIAL, "any flag flushes the whole file as fsync does (gofer files: on the host)", args="fd int int hex"),
    _row("fadvise64", fs.fadvise64, args="fd int int int"),
    _row("fallocate", fs.fallocate, PARTIAL, "gofer files: the host file system does it; the sandbox's memory files (tmpfs, the overlay's upper layer, memfds): allocate, KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE (no separate allocation: st_blocks follows the size), COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE, WRITE_ZEROES: EOPNOTSUPP", args="fd hex int int"),
    _row("getxattr", fs.getxattr, PARTIAL, "user.* on gofer files (the host stores them); other files: ENODATA", args="path str hex uint"),
    _row("lgetxattr", fs.lgetxattr, PARTIAL, "user.* on gofer files (the host stores them); other files: ENODATA", args="path str hex uint"),
    _row("fgetxattr", fs.fgetxattr, PARTIAL, "user.* on gofer files (the host stores them); other files: ENODATA", args="fd str hex uint"),
    _row("listxattr", fs.listxattr, PARTIAL, "user.* on gofer files; other files: empty list", args="path hex uint"),
    _row("llistxattr", fs.llistxattr, PARTIAL, "user.* on gofer files; other files: empty list", args="path hex uint"),
    _row("flistxattr", fs.flistxattr, PARTIAL, "user.* on gofer files; other files: empty list", args="fd hex uint"),
    _row("setxattr", fs.setxattr, PARTIAL, "user.* on gofer files (the host stores them); other names or files: EOPNOTSUPP", args="path str hex uint int"),
    _row("lsetxattr", fs.lsetxattr, PARTIAL, "user.* on gofer files (the host stores them); other names or files: EOPNOTSUPP", args="path str hex uint int"),
    _row("removexattr", fs.removexattr, PARTIAL, "user.* on gofer files; other files: EOPNOTSUPP", args="path str"),
    _row("lremovexattr", fs.lremovexattr, PARTIAL, "user.* on gofer files; other files: EOPNOTSUPP", args="path str"),
    _row("fremovexattr", fs.fremovexattr, PARTIAL, "user.* on gofer files; other files: EOPNOTSUPP", args="fd str"),
    _row("fsetxattr", fs.fsetxattr, PARTIAL, "user.* on gofer files (the host stores them); other names or files: EOPNOTSUPP", args="fd str hex uint int"),
    _row("openat", fs.openat, PARTIAL, "O_TMPFILE on tmpfs and in-memory layers (EOPNOTSUPP on gofer-served trees, as on 9p); sockets and block devices: ENXIO", args="dirfd path oflags mode"),
    _row("openat2", fs.openat2, PARTIAL, "as openat; every RESOLVE_* flag; RESOLVE_CACHED walks as usual (EAGAIN only with O_CREAT, O_TRUNC, O_TMPFILE)", args="dirfd path hex uint"),
    _row("mkdirat", fs.mkdirat, args="dirfd path mode"),
    _row("mknod", fs.mknod, PARTIAL, "as mknodat", args="path mode hex"),
    _row("mknodat", fs.mknodat, PARTIAL, "device nodes only in the sandbox's memory file systems (tmpfs, the overlay's upper layer): EPERM on the gofer's; a device node opens only the sentry's own devices (ENXIO otherwise)", args="dirfd path mode hex"),
    _row("fchownat", fs.fchownat, args="dirfd path int int atflags"),
    _row("newfstatat", fs.newfstatat, args="dirfd path hex atflags"),
    _row("unlinkat", fs.unlinkat, args="dirfd path atflags"),
    _row("renameat", fs.renameat, args="dirfd path dirfd path"),
    _row("linkat", fs.linkat, args="dirfd path dirfd path atflags"),
    _row("symlinkat", fs.symlinkat, args="path dirfd path"),
    _row("readlinkat", fs.readlinkat, args="dirfd path hex uint"),
    _row("fchmodat", fs.fchmodat, args="dirfd path mode"),
    _row("faccessat", fs.faccessat, args="dirfd path mode"),
    _row("faccessat2", fs.faccessat2, args="dirfd path mode atflags"),
    _row("pselect6", fs.pselect6, args="int hex hex hex hex hex"),
    _row("ppoll", fs.ppoll, args="hex uint hex hex uint"),
    _row("utimensat", fs.utimensat, args="dirfd path hex atflags"),
    _row("dup3", fs.dup3, args="fd fd oflags"),
    _row("pipe2", fs.pipe2, PARTIAL, "no O_DIRECT packet mode", args="hex oflags"),
    _row("renameat2", fs.renameat2, PARTIAL, "no RENAME_WHITEOUT; a host directory with content cannot move (EXDEV, as overlayfs)", args="dirfd path dirfd path hex"),
    _row("statx", fs.statx, PARTIAL, "no birth time", args="dirfd path atflags hex hex"),
    # events: eventfd, epoll, timerfd, signalfd; memfd_create
    _row("eventfd", events.eventfd, args="uint"),
    _row("eventfd2", events.eventfd2, args="uint hex"),
    _row("epoll_create", events.epoll_create, args="int"),
    _row("epoll_create1", events.epoll_create1, args="hex"),
    _row("epoll_ctl", events.epoll_ctl, PARTIAL, "EPOLLET on host-backed files (stdio from the host) is level-triggered; EPOLLWAKEUP is accepted and does nothing", args="fd int fd hex"),
    _row("epoll_wait", events.epoll_wait, args="fd hex int int"),
    _row("epoll_pwait", events.epoll_pwait, args="fd hex int int hex uint"),
    _row("epoll_pwait2", events.epoll_pwait2, args="fd hex int hex hex uint"),
    _row("timerfd_create", events.timerfd_create, args="int hex"),
    _row("timerfd_settime", events.timerfd_settime, PARTIAL, "TFD_TIMER_CANCEL_ON_SET is accepted but never cancels", args="fd hex hex hex"),
    _row("timerfd_gettime", events.timerfd_gettime, args="fd hex"),
    _row("signalfd", events.signalfd, PARTIAL, "as signalfd4", args="fd hex uint"),
    _row("signalfd4", events.signalfd4, PARTIAL, "no ssi_fd/ssi_band/ssi_trapno", args="fd hex uint hex"),
    _row("inotify_init", events.inotify_init),
    _row("inotify_init1", events.inotify_init1, args="hex"),
    _row("inotify_add_watch", events.inotify_add_watch, PARTIAL, "changes made through the sandbox are reported (not the host's, in a shared bind mount); no IN_UNMOUNT; execve reports no IN_ACCESS", args="fd path hex"),
    _row("inotify_rm_watch", events.inotify_rm_watch, args="fd int"),
    _row("memfd_create", events.memfd_create, PARTIAL, "no MFD_HUGETLB (EINVAL)", args="str hex"),
    # net: AF_UNIX sockets inside the sentry (no inet or netlink sockets yet)
    _row("socket", net.socket, PARTIAL, "AF_UNIX stream, datagram and seqpacket; other families (AF_INET, AF_INET6, AF_NETLINK...): EAFNOSUPPORT, no inet sockets yet (logged once per family)", args="int hex int"),
    _row("socketpair", net.socketpair, PARTIAL, "AF_UNIX only (EAFNOSUPPORT otherwise)", args="int hex int hex"),
    _row("bind", net.bind, PARTIAL, "AF_UNIX: a path (a socket node; on a gofer tree made on the host, where host processes cannot connect), an abstract name, or autobind", args="fd hex int"),
    _row("listen", net.listen, args="fd int"),
    _row("connect", net.connect, args="fd hex int"),
    _row("accept", net.accept, args="fd hex hex"),
    _row("accept4", net.accept4, args="fd hex hex hex"),
    _row("getsockname", net.getsockname, args="fd hex hex"),
    _row("getpeername", net.getpeername, args="fd hex hex"),
    _row("shutdown", net.shutdown, args="fd int"),
    _row("setsockopt", net.setsockopt, PARTIAL, "SOL_SOCKET only: SO_SNDBUF/SO_RCVBUF (the send buffer limits what is in flight), SO_PASSCRED, SO_RCVTIMEO/SO_SNDTIMEO (sends, receives, accept and connect wait at most that long; read back as set, not rounded to jiffies); SO_REUSEADDR, SO_KEEPALIVE, SO_LINGER and a few more are stored but have no effect; others ENOPROTOOPT", args="fd int int hex int"),
    _row("getsockopt", net.getsockopt, PARTIAL, "SOL_SOCKET only: SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR, SO_SNDBUF, SO_RCVBUF, SO_PASSCRED, SO_PEERCRED (sandbox pid and ids), SO_ACCEPTCONN and the stored ones", args="fd int int hex hex"),
    _row("sendto", net.sendto, PARTIAL, "no MSG_OOB (EOPNOTSUPP)", args="fd wbuf:2 uint hex hex int"),
    _row("recvfrom", net.recvfrom, PARTIAL, "no MSG_OOB or MSG_ERRQUEUE", args="fd hex uint hex hex hex"),
    _row("sendmsg", net.sendmsg, PARTIAL, "SCM_RIGHTS and SCM_CREDENTIALS; no MSG_OOB; files in flight in a cycle of sockets are not garbage-collected", args="fd hex hex"),
    _row("recvmsg", net.recvmsg, PARTIAL, "SCM_RIGHTS (MSG_CMSG_CLOEXEC), SCM_CREDENTIALS with SO_PASSCRED; no MSG_OOB or MSG_ERRQUEUE", args="fd hex hex"),
    _row("sendmmsg", net.sendmmsg, PARTIAL, "as sendmsg, message by message; once one is sent, a message that would block ends the call (Linux waits)", args="fd hex uint hex"),
    _row("recvmmsg", net.recvmmsg, PARTIAL, "as recvmsg, message by message; after the first, only what is there is taken (MSG_WAITFORONE's way, whatever the flags); the timeout is checked after each message, as Linux", args="fd hex uint hex hex"),
    # mm: memory
    _row("mmap", mm.mmap, PARTIAL, "MAP_SHARED file mappings (regular files, memfds) map the file's pages, coherent with read()/write() and other processes; a host file is copied whole into memory when first mapped shared and written back whole on msync, fsync, close, the last munmap or process exit (changes the host makes behind the sandbox's back meanwhile are not seen); MAP_PRIVATE ones are copies taken at mmap time; no MAP_HUGETLB, MAP_LOCKED is ignored", args="hex uint mprot mflags fd hex"),
    _row("mprotect", mm.mprotect, args="hex uint mprot"),
    _row("munmap", mm.munmap, args="hex uint"),
    _row("brk", mm.brk, args="hex"),
    _row("madvise", mm.madvise, args="hex uint int"),
    _row("mremap", mm.mremap, PARTIAL, "growing a MAP_PRIVATE file mapping adds zero pages, not the file's next bytes", args="hex uint uint hex hex"),
    _row("msync", mm.msync, args="hex uint hex"),
    # process: creation, exit, wait, identity
    _row("getpid", process.getpid),
    _row("getppid", process.getppid),
    _row("gettid", process.gettid),
    _row("fork", process.fork),
    _row("vfork", process.vfork),
    _row("clone", process.clone, PARTIAL, "processes, threads and vfork; CLONE_VM without CLONE_THREAD only with CLONE_VFORK; CLONE_FILES/CLONE_FS shared by threads only; no namespaces", args="clone hex hex hex hex"),
    _row("clone3", process.clone3, PARTIAL, "as clone; no CLONE_PIDFD, CLONE_INTO_CGROUP or set_tid", args="hex uint"),
    _row("execve", process.execve, PARTIAL, "no set-user-ID/set-group-ID bits (AT_SECURE is 0)", args="path argv argv"),
    _row("execveat", process.execveat, PARTIAL, "no set-user-ID/set-group-ID bits (AT_SECURE is 0)", args="dirfd path argv argv atflags"),
    _row("exit", process.exit_, args="int"),
    _row("exit_group", process.exit_group, args="int"),
    _row("wait4", process.wait4, PARTIAL, "rusage is reported as zeros", args="int hex hex hex"),
    _row("waitid", process.waitid, PARTIAL, "no P_PIDFD; rusage is reported as zeros", args="int int hex hex hex"),
    _row("set_tid_address", process.set_tid_address, args="hex"),
    _row("set_robust_list", process.set_robust_list, args="hex uint"),
    _row("getuid", identity.getuid),
    _row("getgid", identity.getgid),
    _row("geteuid", identity.geteuid),
    _row("getegid", identity.getegid),
    _row("getgroups", identity.getgroups, args="int hex"),
    _row("getresuid", identity.getresuid, args="hex hex hex"),
    _row("getresgid", identity.getresgid, args="hex hex hex"),
    _row("setuid", identity.setuid, args="int"),
    _row("setgid", identity.setgid, args="int"),
    _row("setreuid", identity.setreuid, args="int int"),
    _row("setregid", identity.setregid, args="int int"),
    _row("setresuid", identity.setresuid, args="int int int"),
    _row("setresgid", identity.setresgid, args="int int int"),
    _row("setfsuid", identity.setfsuid, args="int"),
    _row("setfsgid", identity.setfsgid, args="int"),
    _row("setgroups", identity.setgroups, args="int hex"),
    _row("capget", identity.capget, args="hex hex"),
    _row("capset", identity.capset, PARTIAL, "the sets are kept per task and checked by the id, limit, scheduling and prctl syscalls; file access still grants root by fsuid 0, not by CAP_DAC_OVERRIDE/CAP_FOWNER/CAP_CHOWN", args="hex hex"),
    _row("setpgid", process.setpgid, args="int int"),
    _row("getpgid", process.getpgid, args="int"),
    _row("getpgrp", process.getpgrp),
    _row("setsid", process.setsid),
    _row("getsid", process.getsid, args="int"),
    _row("prlimit64", sched.prlimit64, PARTIAL, "limits are recorded; only RLIMIT_NOFILE is enforced (not RLIMIT_AS, RLIMIT_STACK, RLIMIT_CPU...)", args="int int hex hex"),
    _row("getrlimit", sched.getrlimit, args="int hex"),
    _row("setrlimit", sched.setrlimit, PARTIAL, "limits are recorded; only RLIMIT_NOFILE is enforced (not RLIMIT_AS, RLIMIT_STACK, RLIMIT_CPU...)", args="int hex"),
    _row("arch_prctl", process.arch_prctl, PARTIAL, "ARCH_SET_FS, ARCH_GET_FS, ARCH_SET_GS, ARCH_GET_GS", args="hex hex"),
    _row("prctl", process.prctl, PARTIAL, "PR_SET_NAME, PR_GET_NAME, PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_SET_DUMPABLE, PR_GET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER (PDEATHSIG fires when the parent process exits), PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_GET_SECUREBITS, PR_SET_SECUREBITS, PR_GET_KEEPCAPS, PR_SET_KEEPCAPS", args="int hex hex hex hex"),
    _row("rseq", None, UNSUPPORTED, "ENOSYS: glibc and musl fall back", args="hex uint int hex", quiet=True),
    _row("seccomp", None, UNSUPPORTED, "a program's own filters are refused (ENOSYS); a container's OCI "
         "linux.seccomp profile is enforced by the sentry (kernel/seccomp.py)", args="int hex hex"),
    # POSIX message queues (no mqueue file system either)
    *(_row(name, None, UNSUPPORTED, "POSIX message queues are refused") for name in (
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr")),
    # signal
    _row("rt_sigaction", signal.rt_sigaction, args="sig hex hex uint"),
    _row("rt_sigprocmask", signal.rt_sigprocmask, args="int hex hex uint"),
    _row("rt_sigreturn", signal.rt_sigreturn),
    _row("kill", signal.kill, args="int sig"),
    _row("tgkill", signal.tgkill, args="int int sig"),
    _row("tkill", signal.tkill, args="int sig"),
    _row("sigaltstack", signal.sigaltstack, args="hex hex"),
    _row("rt_sigpending", signal.rt_sigpending, args="hex uint"),
    _row("rt_sigsuspend", signal.rt_sigsuspend, args="hex uint"),
    _row("pause", signal.pause),
    _row("rt_sigtimedwait", signal.rt_sigtimedwait, args="hex hex hex uint"),
    _row("rt_sigqueueinfo", signal.rt_sigqueueinfo, args="int sig hex"),
    _row("rt_tgsigqueueinfo", signal.rt_tgsigqueueinfo, args="int int sig hex"),
    # futex
    _row("futex", futex.futex, PARTIAL, "WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP and the BITSET forms, keyed per address space (no futexes shared across processes); no PI", args="hex int uint hex hex uint"),
    # time
    _row("clock_gettime", time.clock_gettime, PARTIAL, "a thread CPU-time clock is its process's CPU time shared out by the time each thread ran (exact for one thread)", args="int hex"),
    _row("clock_getres", time.clock_getres, args="int hex"),
    _row("gettimeofday", time.gettimeofday, args="hex hex"),
    _row("time", time.time_, args="hex"),
    _row("nanosleep", time.nanosleep, args="hex hex"),
    _row("clock_nanosleep", time.clock_nanosleep, args="int int hex hex"),
    _row("getitimer", time.getitimer, args="int hex"),
    _row("setitimer", time.setitimer, PARTIAL, "ITIMER_VIRTUAL counts user and system time, as ITIMER_PROF; CPU time is polled every 10 ms", args="int hex hex"),
    _row("alarm", time.alarm, args="uint"),
    _row("timer_create", time.timer_create, PARTIAL, "SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID (glibc builds SIGEV_THREAD on it); CPU-time clocks count the process's CPU time, polled every 10 ms", args="int hex hex"),
    _row("timer_settime", time.timer_settime, args="int int hex hex"),
    _row("timer_gettime", time.timer_gettime, args="int hex"),
    _row("timer_getoverrun", time.timer_getoverrun, args="int"),
    _row("timer_delete", time.timer_delete, args="int"),
    # info: the machine as the sandbox sees it
    _row("uname", info.uname, args="hex"),
    _row("sysinfo", info.sysinfo, args="hex"),
    _row("getrandom", info.getrandom, args="hex uint hex"),
    _row("sethostname", info.sethostname, args="wbuf:1 uint"),
    # sched: priorities, policies, affinity, usage, personality
    _row("getpriority", sched.getpriority, PARTIAL, "nice values are kept per task; the host does not schedule the program by them", args="int int"),
    _row("setpriority", sched.setpriority, PARTIAL, "nice values are kept per task; the host does not schedule the program by them", args="int int int"),
    _row("sched_setscheduler", sched.sched_setscheduler, PARTIAL, "SCHED_OTHER, BATCH, IDLE, FIFO, RR (the last two need CAP_SYS_NICE or RLIMIT_RTPRIO) are kept per task, not applied on the host; no SCHED_DEADLINE", args="int int hex"),
    _row("sched_getscheduler", sched.sched_getscheduler, args="int"),
    _row("sched_setparam", sched.sched_setparam, PARTIAL, "kept per task, not applied on the host", args="int hex"),
    _row("sched_getparam", sched.sched_getparam, args="int hex"),
    _row("sched_get_priority_max", sched.sched_get_priority_max, args="int"),
    _row("sched_get_priority_min", sched.sched_get_priority_min, args="int"),
    _row("sched_yield", sched.sched_yield),
    _row("sched_setaffinity", sched.sched_setaffinity, PARTIAL, "the mask is kept per task; the program keeps running on the sentry's CPU", args="int uint hex"),
    _row("sched_getaffinity", sched.sched_getaffinity, args="int uint hex"),
    _row("getcpu", sched.getcpu, PARTIAL, "the first CPU of the task's affinity mask, node 0", args="hex hex hex"),
    _row("getrusage", sched.getrusage, PARTIAL, "CPU time is the stub process's (RUSAGE_THREAD: the thread's share, see clock_gettime), all reported as user time; RUSAGE_CHILDREN and the other counters are 0", args="int hex"),
    _row("times", sched.times, PARTIAL, "CPU time is the stub's, all reported as user time; children's times are 0", args="hex"),
    _row("personality", sched.personality, PARTIAL, "recorded and inherited; no flag (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC...) or domain changes behaviour", args="hex"),
]

TABLE: dict[int, Syscall] = {row.nr: row for row in _ROWS}

# Every other known number is unsupported.
for _nr, _name in sysno.NAMES.items():
    TABLE.setdefault(_nr, Syscall(_nr, _name, None, UNSUPPORTED))


def rows() -> list[Syscall]:
    """All rows, in syscall-number order."""
    return [TABLE[nr] for nr in sorted(TABLE)]
