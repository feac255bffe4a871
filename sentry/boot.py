"""Starting a sentry: its confinement, its kernel, and the sandbox's first process.

`start()` forks the sentry process.  Before it serves the program it:
  1. enters fresh user, mount, pid, ipc and uts namespaces; the parent maps
     the sandbox's root to the host's `nobody`, so the sentry holds no host
     privilege;
  2. creates the platform (the master stub: the future pid 1 of the pid
     namespace) while it can still fork freely;
  3. chroots into an empty, read-only tmpfs;
  4. installs its seccomp allowlist (no open, no execve, ...).
From then on files reach it only through the gofer socket.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Callable

import structlog

log = structlog.get_logger("ringfence.sentry")

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
NOBODY = 65534
AT_HWCAP, AT_HWCAP2 = 16, 26

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class SentryConfig:
    """What the sentry runs and how."""

    argv: list[bytes]
    envp: list[bytes]
    cwd: bytes = b"/"
    platform: str = "ptrace"
    hostname: bytes = b"ringfence"
    strace: bool = False
    strace_syscalls: set[str] | None = None
    strace_fd: int = 2
    # Host fds the program's stdin, stdout and stderr come from (None: the
    # caller's own 0, 1 and 2).  The sentry's log stays on the caller's stderr.
    stdio: tuple[int, int, int] | None = None
    # The program is a container's init, with Linux's rules for a pid
    # namespace's init (it gets no signal it has no handler for).
    container: bool = False
    # The program's (uid, gid, additional gids); None: root.
    user: tuple[int, int, tuple[int, ...]] | None = None
    # With `user`: its capability sets (effective, permitted, inheritable, bounding, ambient
    # masks; None: root's, dropped for another user), as the program has them before it is executed.
    caps: tuple[int, int, int, int, int] | None = None
    # The program's resource limits (RLIMIT_* -> (soft, hard)); the others are the sentry's own.
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    no_new_privs: bool = False
    # The container's seccomp filter (sentry.kernel.seccomp.Filter; None: none).
    seccomp: object | None = None
    # The CPU the sentry and its stubs run on (the runtime pins the gofers there too); None: any.
    cpu: int | None = None
    # The container's memory limit in bytes (None: none): /proc/meminfo and sysinfo show it.
    memory_limit: int | None = None
    # A pipe's read end: init is not spawned before a byte arrives on it (the
    # "created" state of a container); EOF means "never start", and the sentry exits.
    start_fd: int | None = None
    # A listening unix stream socket: the sentry serves its control service
    # (sentry/control.py) on it.  The caller closes its own copy after start().
    control_sock: socket.socket | None = None
    # The container's file systems (sentry/vfs/mountplan.py: root writable, read-only or
    # overlaid, OCI mounts, masked and read-only paths); the runtime starts the gofer to match.
    # None: `ringfence do`'s root, the gofer's tree read-only under an in-memory writable layer.
    fs: object | None = None
    # The terminal on stdin (a host pty) is held by a host session whose runtime process passes
    # on the signals the host raises for it (SIGWINCH for a size set in the sandbox too): the
    # sentry raises none itself.
    terminal_host_signals: bool = False
    # Of the signals the runtime sends the sentry, these come from the terminal on stdin
    # (`ringfence do` in the foreground of its caller's terminal): they go to that terminal's
    # foreground process group in the sandbox, not to init.
    terminal_typed_signals: tuple[int, ...] = ()
    extra: dict = field(default_factory=dict)


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def start(config: SentryConfig, gofer_sock, on_forked: Callable[[int], None] | None = None) -> int:
    """Fork the sentry serving `config` with files from `gofer_sock`; returns its pid.

    `on_forked(pid)` runs in the caller before the sentry creates any other
    process (to place it in a cgroup, say).  The child's exit status is the
    sandboxed init's (code, or 128 + signal).
    """
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.close(ready_r)
            os.close(go_w)
            _reset_inherited(config, keep={ready_w, go_r, gofer_sock.fileno()})
            code = _sentry_main(config, gofer_sock, ready_w, go_r)
        except BaseException as err:  # the sentry must always exit with a status
            try:
                log.error("sentry failed", error=repr(err))
            finally:
                os._exit(125)
        os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise RuntimeError("sentry died before entering its namespaces")
        if on_forked is not None:
            on_forked(pid)
        for name, host_id in (("uid_map", NOBODY), ("gid_map", NOBODY)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {host_id} 1\n")
        os.write(go_w, b"g")
    finally:
        os.close(ready_r)
        os.close(go_w)
    return pid


def _reset_inherited(config: SentryConfig, keep: set[int]) -> None:
    """Leave the caller's state behind: its signal handlers, the fds it did
    not mean to pass (a shim's sockets and other containers' FIFOs), and put
    the program's stdio on fds 0-2 (moving the sentry's log off fd 2)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL if sig != signal.SIGPIPE else signal.SIG_IGN)
    from ringfence import log as logs
    from ringfence.runtime.daemon import close_fds_except

    # The sentry's log gets an fd of its own: the one it was written to (or
    # stderr), so that neither closing fds nor replacing stdio moves it.
    log_fd = os.dup(logs.current_fd() if logs.current_fd() is not None else 2)
    logs.redirect(logs.FdStream(log_fd))
    keep = set(keep) | {log_fd}
    if config.start_fd is not None:
        keep.add(config.start_fd)
    if config.control_sock is not None:
        keep.add(config.control_sock.fileno())
    if config.stdio is not None:
        moved = [os.dup(fd) for fd in config.stdio]
        for target, fd in enumerate(moved):
            os.dup2(fd, target)
            os.close(fd)
    close_fds_except(keep | {0, 1, 2})


def _confine_namespaces(ready_w: int, go_r: int) -> None:
    parent = os.getppid()
    _ok(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    os.setsid()  # terminal signals go to the runtime, which forwards them once
    _ok(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    os.write(ready_w, b"u")
    os.close(ready_w)
    if os.read(go_r, 1) != b"g":
        raise RuntimeError("the runtime did not map the sentry's user namespace")
    os.close(go_r)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    # Changing credentials cleared the parent-death signal: set it again, and
    # make sure the runtime did not die in between.
    _ok(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != parent:
        raise RuntimeError("the runtime died while the sentry started")
    # Changing uid made the process non-dumpable; the stubs (forked from it)
    # must stay dumpable so that their tracer may read their memory.
    _ok(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(DUMPABLE)")


def _host_hwcap() -> tuple[int, int]:
    """The kernel's AT_HWCAP and AT_HWCAP2 for this CPU (glibc's getauxval(AT_HWCAP)
    answers its own value on x86_64): passed on to the sandbox's programs."""
    with open("/proc/self/auxv", "rb") as f:
        raw = f.read()
    pairs = dict(struct.iter_unpack("<QQ", raw[:len(raw) // 16 * 16]))
    return pairs.get(AT_HWCAP, 0), pairs.get(AT_HWCAP2, 0)


def sandbox_cpu() -> int:
    """A CPU for a sandbox (its sentry, stubs and gofers share it: a ptrace stop or a gofer's
    answer handed between CPUs costs a cross-CPU wakeup each way, ~6x slower here): one of
    ours, chosen by our pid, so that sandboxes spread over the CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[os.getpid() % len(cpus)]


def _pin_to_one_cpu(cpu: int | None) -> None:
    """Run the sentry and its stubs (which inherit this) on one CPU: `cpu` (the sandbox's, its
    gofers' too) if we may, else sandbox_cpu()."""
    os.sched_setaffinity(0, {cpu if cpu in os.sched_getaffinity(0) else sandbox_cpu()})


def _chroot_empty() -> None:
    _ok(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount(private)")
    _ok(_libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    b"size=4k,nr_inodes=2,mode=0555"), "mount(tmpfs)")
    os.chroot("/tmp")
    os.chdir("/")


def _sentry_main(config: SentryConfig, gofer_sock, ready_w: int, go_r: int) -> int:
    # Everything the sentry will ever import is imported now.
    from . import platform as platforms
    from . import seccomp
    from .platform import ptrace  # noqa: F401  (imported while files can still be read)
    from .kernel.container import Container
    from .kernel.creds import Credentials
    from .kernel.errors import SysError
    from .kernel.kernel import Kernel
    from .strace import Strace
    from .fs.host import host_terminal
    from .vfs import std_files

    if config.control_sock is not None:
        from .control import ControlServer
    hwcap = _host_hwcap()
    _confine_namespaces(ready_w, go_r)
    _pin_to_one_cpu(config.cpu)
    strace = Strace(config.strace_fd, config.strace_syscalls) if config.strace else None
    kernel = Kernel(platforms.get(config.platform), config.hostname, strace, hwcap)
    kernel.protect_inits = config.container
    kernel.memory_limit = config.memory_limit
    _chroot_empty()
    seccomp.confine_sentry()
    sandbox = Container(kernel, "", gofer_sock, [], config.fs)
    # A terminal on stdin is init's: a container's is /dev/pts/0, `ringfence do`'s (the caller's own) /dev/console.
    uid, gid = config.user[:2] if config.user else (0, 0)
    terminal = None
    if os.isatty(0):
        terminal = host_terminal(sandbox, 0, uid, gid, console=True, named=config.container,
                                 host_signals=config.terminal_host_signals)
    sandbox.install_stdio(std_files(terminal=terminal))
    kernel.install_seccomp(sandbox, config.seccomp)
    control = ControlServer(kernel, sandbox, config.control_sock) if config.control_sock is not None else None
    kernel.forward_host_signals((signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                                 signal.SIGUSR1, signal.SIGUSR2),
                                terminal, config.terminal_typed_signals if terminal is not None else ())
    if config.start_fd is not None and os.read(config.start_fd, 1) != b"s":
        return 125
    try:
        creds = Credentials.of_user(*config.user, caps=config.caps) if config.user else None
        kernel.init = sandbox.start(config.argv, config.envp, config.cwd, creds, rlimits=config.rlimits,
                                    no_new_privs=config.no_new_privs)
        if terminal is not None:
            terminal.attach(kernel.init)
    except (SysError, OSError) as err:
        print(f"ringfence: {config.argv[0].decode(errors='replace')}: {os.strerror(err.errno)}",
              file=sys.stderr)
        return os.WEXITSTATUS(sandbox.exit_status)
    status = kernel.run()
    if control is not None:
        control.close()
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)
