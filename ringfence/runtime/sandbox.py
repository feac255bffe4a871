"""A sandbox: the gofer serving a container's root and the sentry running its
processes, started together and known by their host pids.

The sandbox is created "gated": the sentry is ready but does not spawn the
container's init until `start()` (a container's created → running step).
Reaping the two processes is the owner's business (the shim reaps every
child in one place; `ringfence do` waits for the sentry).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
from typing import Callable

import structlog

from ringfence.sentry import boot
from ringfence.sentry.vfs.mountplan import MountPlan, MountPlanError

from .spec import DEFAULT_PATH, Spec, find_executable

log = structlog.get_logger("ringfence.runtime")

# Signals the sentry passes on to the container's init when it receives them.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class SandboxError(RuntimeError):
    """The sandbox could not be started (the message says why)."""


def exit_code(status: int) -> int:
    """A wait status as runtimes report it: the exit code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def mount_plan(spec: Spec, overlay: bool = False) -> MountPlan:
    """How a container of `spec` gets its files: its rootfs served writable by its gofer (or
    read-only: root.readonly; with `overlay`, read-only under an in-memory writable layer), its
    OCI mounts, masked and read-only paths (SandboxError if the spec's mount list is malformed)."""
    try:
        return MountPlan.from_spec(spec.raw, overlay)
    except MountPlanError as err:
        raise SandboxError(str(err)) from None


def check_namespaces(spec: Spec) -> None:
    """The spec's linux.namespaces as the sandbox takes them.  Its pid, ipc, uts, mount,
    cgroup, time and user namespaces are always the sentry's own (a user namespace's uid/gid
    mappings change nothing: the sandbox's ids are the sentry's, its files the gofer's); one to
    join by `path` is not joined (logged), but the path must exist, as for runc.  The network
    namespace is the runtime's business (the CLI's supervisor joins or makes it)."""
    for kind, path in spec.namespaces.items():
        if not path or kind == "network":
            continue
        if not os.path.exists(path):
            raise SandboxError(f"{kind} namespace {path}: no such file")
        log.info("namespace not joined: the sandbox has its own", type=kind, path=path)


def sentry_config(spec: Spec, rootfs: str, **kw) -> boot.SentryConfig:
    """The sentry's configuration for the process of `spec` over `rootfs`
    (keyword arguments pass on to SentryConfig: stdio, strace ...): its user, capabilities,
    rlimits, noNewPrivileges and seccomp profile, its hostname (the sandbox's uname); its `fs`
    is the spec's mount plan unless given.  SandboxError if the spec asks for what cannot be."""
    check_namespaces(spec)
    if "fs" not in kw:
        kw["fs"] = mount_plan(spec)
    proc = spec.process
    argv = list(proc.args)
    try:
        argv[0] = find_executable(rootfs, argv[0], proc.env_value("PATH", DEFAULT_PATH))
    except FileNotFoundError:
        raise SandboxError(f"{argv[0]}: executable file not found in $PATH") from None
    return boot.SentryConfig(argv=[os.fsencode(a) for a in argv],
                             envp=[os.fsencode(e) for e in proc.env],
                             cwd=os.fsencode(proc.cwd),
                             hostname=os.fsencode(spec.hostname or "ringfence"), container=True,
                             memory_limit=spec.memory_limit,
                             user=(proc.uid, proc.gid, tuple(proc.additional_gids)), caps=proc.capabilities,
                             rlimits=proc.rlimits, no_new_privs=proc.no_new_privileges, seccomp=spec.seccomp,
                             **kw)


class Sandbox:
    """The gofer and sentry of one container."""

    def __init__(self, sentry_pid: int, gofer_pid: int, start_fd: int | None, cpu: int | None = None):
        self.sentry_pid = sentry_pid
        self.gofer_pid = gofer_pid
        self.cpu = cpu  # where the sentry runs (a pod's other gofers go there too)
        self._start_fd = start_fd
        # Host pids not yet reaped by the owner (see reaped()): only these may be signalled.
        self._live = {sentry_pid, gofer_pid}

    @classmethod
    def create(cls, config: boot.SentryConfig, root: str, *, gated: bool = False,
               on_forked: Callable[[int], None] | None = None) -> "Sandbox":
        """Start a gofer serving `root` (and the bind mounts of `config.fs`, the mount plan)
        and a sentry running `config`.

        gated: init waits for start(); on_forked(pid) runs for each of the two
        processes before it can fork others (to place them in a cgroup)."""
        if config.cpu is None:
            config.cpu = boot.sandbox_cpu()
        gofer_pid, gofer_sock = start_gofer(root, config.fs, config.cpu)
        if on_forked is not None:
            on_forked(gofer_pid)
        start_r = start_w = None
        if gated:
            start_r, start_w = os.pipe2(os.O_CLOEXEC)
            os.set_inheritable(start_r, True)
            config.start_fd = start_r
        try:
            sentry_pid = boot.start(config, gofer_sock, on_forked)
        except (OSError, RuntimeError) as err:
            os.kill(gofer_pid, signal.SIGKILL)
            if start_w is not None:
                os.close(start_w)
            raise SandboxError(f"the sentry did not start: {err}") from err
        finally:
            gofer_sock.close()
            if start_r is not None:
                os.close(start_r)
        log.debug("sandbox created", sentry=sentry_pid, gofer=gofer_pid, root=root)
        return cls(sentry_pid, gofer_pid, start_w, config.cpu)

    def start(self) -> None:
        """Let the sentry spawn the container's init."""
        if self._start_fd is None:
            raise SandboxError("the sandbox is not waiting to start")
        try:
            os.write(self._start_fd, b"s")
        finally:
            os.close(self._start_fd)
            self._start_fd = None

    def signal(self, sig: int) -> None:
        """Deliver `sig` to the container's init: SIGKILL ends the whole
        sandbox at once; the FORWARDED signals pass through the sentry."""
        if sig != signal.SIGKILL and sig not in FORWARDED:
            raise SandboxError(f"signal {sig} cannot be sent to the sandbox's init yet")
        if sig != signal.SIGKILL and self._start_fd is not None:
            sig = signal.SIGKILL  # init does not exist yet: there is nothing to signal
        self.pass_on(sig)

    def pass_on(self, sig: int) -> None:
        """Send `sig` to the sentry, which delivers it as its config says (init, or the
        foreground group of init's terminal for `terminal_typed_signals`); nothing once
        the sentry is reaped."""
        if self.sentry_pid in self._live:
            os.kill(self.sentry_pid, sig)

    def reaped(self, pid: int) -> None:
        """The owner reaped `pid` (which may now name another process)."""
        self._live.discard(pid)

    @property
    def alive(self) -> bool:
        """Some process of the sandbox is not reaped yet."""
        return bool(self._live)

    def destroy(self) -> None:
        """End the sandbox's processes that are not reaped (the owner reaps them)."""
        if self._start_fd is not None:
            os.close(self._start_fd)
            self._start_fd = None
        for pid in self._live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_gofer(root: str, plan: MountPlan | Spec | None = None,
                cpu: int | None = None) -> tuple[int, socket.socket]:
    """A gofer serving `root`: (its pid, the sentry's end of its socket), on CPU `cpu` (its
    sentry's) if given and allowed.

    With a mount plan (or the Spec to make it from) the root is writable unless the plan says
    read-only (or overlay), and each bind mount's source is served as gofer mount 1, 2, ...
    (the ids the sentry attaches to); without one, `root` read-only (`ringfence do`)."""
    from ringfence.gofer import server as gofer

    if isinstance(plan, Spec):
        plan = mount_plan(plan)
    readonly, mounts = True, []
    if plan is not None:
        readonly = plan.gofer_root_readonly
        for m in plan.gofer_mounts():
            source = os.path.abspath(m.source)
            if not os.path.exists(source):
                raise SandboxError(f"bind mount {m.destination}: source {source} does not exist")
            mounts.append(gofer.Mount(source, m.readonly))
    try:
        pid, sock = gofer.start(root, readonly=readonly, mounts=mounts)
    except OSError as err:
        raise SandboxError(f"the gofer did not start over {root}: {err}") from err
    if cpu is not None:
        with contextlib.suppress(OSError):  # (a CPU the caller may not use: the gofer runs anywhere)
            os.sched_setaffinity(pid, {cpu})
    return pid, sock
