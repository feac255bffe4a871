"""A container's supervisor: the long-lived process that owns its sandbox.

The sentry dies with the thread that forked it (PR_SET_PDEATHSIG), so a
container outlives ``ringfence create`` only through a process that stays:
the supervisor. It is forked by ``create`` (detached: its own session, stdio
on /dev/null; the container's stdio goes to the sandbox) or is ``run``'s own
process (foreground). It

- makes the container's cgroup, applies the spec's limits and places the
  gofer and the sentry (and so the stubs the sentry forks) in it;
- starts the gated sandbox and holds its start gate; runs the spec's
  create hooks before create returns, its startContainer and poststart
  hooks around start (ringfence/runtime/hooks.py);
- serves requests on ``sup.sock`` in the container's state directory, one
  JSON object a line each way: ``{"op": "start"}``, ``{"op": "kill",
  "signal": N}`` (SIGKILL, or a signal the sentry forwards to init),
  ``{"op": "wait"}`` (answered when init exits);
- passes SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 it receives
  on to the container's init; with a terminal, its child the Forwarder
  (console.py) passes on those the terminal raises;
- reaps the sentry and the gofer, records the exit status (and OOM kills)
  in ``status.json``, and exits with that status: the supervisor's pid is
  the container's pid (``state``, ``--pid-file``), and a parent that reaps
  it (conmon, a subreaper) learns the container's exit status from it.

Everything else (exec, ps, signals to other processes, pause, update,
stats) the commands do themselves, through the sentry's control socket and
the cgroup.
"""
from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import time

import structlog

from ringfence import log as logs
from ringfence.runtime import hooks
from ringfence.runtime.daemon import close_fds_except, exited_children

from . import console
from .state import (CONTROL_SOCK, LOG, OCI_VERSION, SUPERVISOR_SOCK, Container, StateError, connect_unix,
                    listen_unix, now_rfc3339, process_start_time)

log = structlog.get_logger("ringfence.oci")

REQUEST_TIMEOUT = 5.0
GOFER_GRACE = 2.0
# What a signal to a created container (init not yet spawned) does: these end it.
_ENDING = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
           signal.SIGUSR1, signal.SIGUSR2, signal.SIGABRT, signal.SIGALRM, signal.SIGPIPE}


class SetupError(StateError):
    """The container could not be created (the message says why)."""


class Options:
    """How the container is run (from the command line)."""

    def __init__(self, *, console_socket: str = "", log_path: str | None = None, debug: bool = False,
                 log_format: str = "text", strace: bool = False, strace_syscalls: str = "",
                 platform: str = "ptrace", cgroup_path: str = "", bundle: str = "", overlay: bool = False):
        self.bundle = bundle
        self.overlay = overlay
        self.console_socket = console_socket
        self.log_path = log_path
        self.debug = debug
        self.log_format = log_format
        self.strace = strace
        self.strace_syscalls = strace_syscalls
        self.platform = platform
        self.cgroup_path = cgroup_path


class Supervisor:
    """The sandbox of one container and the loop that watches it."""

    def __init__(self, container: Container, spec, rootfs: str, opts: Options):
        self.container = container
        self.spec = spec
        self.rootfs = rootfs
        self.opts = opts
        self.cgroup = None
        self.sandbox = None
        self.master: int | None = None  # pty master kept for a foreground relay
        self.forwarder: console.Forwarder | None = None  # the signals of init's terminal
        self.started = False
        self.exit_status: int | None = None
        self._listener: socket.socket | None = None
        self._oom_fd: int | None = None
        self._oom_base = 0
        self._oom_kills = 0
        self._placed: list[int] = []
        self._waiters: list[socket.socket] = []
        self._started_at = ""
        self._gofer_live = False

    # -- setting up ------------------------------------------------------------
    def setup(self, stdio: tuple[int, int, int] = (0, 1, 2), keep_master: bool = False) -> None:
        """Make the cgroup and the gated sandbox, and listen for requests.
        `stdio`: the container's stdin, stdout, stderr (unless its spec asks
        for a terminal: then a pty's slave, whose master goes to the console
        socket, or is kept in `self.master` with `keep_master`; a Forwarder
        holds the slave as its controlling terminal)."""
        from ringfence.runtime.sandbox import Sandbox, SandboxError, mount_plan, sentry_config

        c = self.container
        try:
            enter_network_namespace(self.spec)
            self._make_cgroup()
            slave = None
            if self.spec.process.terminal:
                self.master, slave = console.open_pty(self.spec.raw.get("process", {}).get("consoleSize"))
                stdio = (slave, slave, slave)
            control = listen_unix(c.path(CONTROL_SOCK))
            try:
                config = sentry_config(self.spec, self.rootfs, stdio=stdio, platform=self.opts.platform,
                                       terminal_host_signals=slave is not None,  # (the Forwarder's)
                                       fs=mount_plan(self.spec, overlay=self.opts.overlay),
                                       strace=self.opts.strace or bool(self.opts.strace_syscalls),
                                       strace_syscalls=set(filter(None, self.opts.strace_syscalls.split(",")))
                                       or None)
                config.control_sock = control
                self.sandbox = Sandbox.create(config, self.rootfs, gated=True, on_forked=self._place)
                if slave is not None:
                    self.forwarder = console.Forwarder(slave, c.path(CONTROL_SOCK))
            finally:
                control.close()
                if slave is not None:
                    os.close(slave)
            self._gofer_live = True
            if self.master is not None and not keep_master:
                try:
                    console.send_master(self.opts.console_socket, self.master)
                finally:
                    os.close(self.master)
                    self.master = None
            self._listener = listen_unix(c.path(SUPERVISOR_SOCK))
            if self.cgroup is not None:
                self._oom_fd = self.cgroup.oom_eventfd()
            hooks.run(self.spec.hooks, hooks.CREATE, self._hook_state())
        except (SandboxError, hooks.HookError) as err:
            self.teardown()
            raise SetupError(str(err)) from None
        except (OSError, ValueError, RuntimeError) as err:
            self.teardown()
            raise SetupError(f"creating the sandbox: {err}") from None
        except BaseException:
            self.teardown()
            raise

    def _make_cgroup(self) -> None:
        from ringfence.runtime.cgroups import Cgroup

        path = self.opts.cgroup_path
        try:
            self.cgroup = Cgroup.create(path)
        except (OSError, ValueError, RuntimeError) as err:
            raise SetupError(f"cgroup {path}: {err}") from None
        self._oom_base = self.cgroup.oom_kills()
        try:
            self.cgroup.apply(self.spec.resources)
        except (OSError, ValueError) as err:
            raise SetupError(f"cgroup {path}: {err}") from None

    def _place(self, pid: int) -> None:
        self._placed.append(pid)
        if self.cgroup is not None:
            self.cgroup.add(pid)

    def teardown(self) -> None:
        """Undo a setup that failed part way: end and reap what was started,
        remove the cgroup and the sockets."""
        for pid in self._placed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if self.sandbox is not None:
                self.sandbox.reaped(pid)
        self._placed = []
        self._stop_forwarder()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self._close_sockets()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.container.path(CONTROL_SOCK))
        if self.cgroup is not None:
            try:
                self.cgroup.remove(timeout=2)
            except OSError as err:
                log.warning("cgroup not removed", error=str(err))
            self.cgroup = None

    @property
    def pids(self) -> dict:
        """What create records of the sandbox: its pids and its cgroup's
        directories (a relative cgroupsPath is relative to our cgroup, not
        to that of a later command)."""
        return {"sentry_pid": self.sandbox.sentry_pid, "gofer_pid": self.sandbox.gofer_pid,
                "cgroup_version": self.cgroup.version,
                "cgroup_dirs": {k: str(v) for k, v in self.cgroup.dirs.items()}}

    # -- the loop ----------------------------------------------------------------
    def start(self) -> None:
        """Let init run (created → running), with the startContainer hooks before (their
        failure stops the container) and the poststart ones after."""
        if self.exit_status is not None:
            raise StateError("cannot start a container that has stopped")
        if self.started:
            raise StateError("cannot start an already running container")
        try:
            hooks.run(self.spec.hooks, hooks.START, self._hook_state())
        except hooks.HookError as err:
            self._deliver(signal.SIGKILL)
            raise StateError(f"starting the container: {err}") from None
        self.sandbox.start()
        self.started = True
        self._started_at = now_rfc3339()
        self._record("running")
        hooks.run(self.spec.hooks, hooks.POSTSTART, self._hook_state())

    def _hook_state(self) -> dict:
        """The container's state as its hooks get it (the status is the hook kind's)."""
        return hooks.state(self.spec.raw.get("ociVersion") or OCI_VERSION, self.container.id, os.getpid(),
                           self.opts.bundle, self.spec.annotations)

    def serve(self, relay: console.Relay | None = None) -> int:
        """Serve requests until the sandbox's init exits; returns its status."""
        sel = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGCHLD, *FORWARD)
        old_handlers = {sig: signal.signal(sig, _ignore) for sig in handled}
        try:
            sel.register(wake_r, selectors.EVENT_READ, "signal")
            sel.register(self._listener, selectors.EVENT_READ, "accept")
            if self._oom_fd is not None:
                sel.register(self._oom_fd, selectors.EVENT_READ, "oom")
            if relay is not None:
                for fd in relay.fds():
                    sel.register(fd, selectors.EVENT_READ, "relay")
            self._reap()
            while self.exit_status is None:
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "signal":
                        self._signalled(wake_r)
                    elif key.data == "accept":
                        self._accept()
                    elif key.data == "oom":
                        self._oom()
                    elif key.data == "relay":
                        if not relay.ready(key.fd):
                            sel.unregister(key.fd)
                        elif relay.stdin is None and key.fd != relay.master:
                            sel.unregister(key.fd)
                self._reap()
            if relay is not None:
                relay.drain()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            sel.close()
            os.close(wake_r)
            os.close(wake_w)
        self._finish()
        return self.exit_status

    def _signalled(self, wake_r: int) -> None:
        try:
            data = os.read(wake_r, 512)
        except BlockingIOError:
            return
        for signo in data:
            if signo in FORWARD and self.exit_status is None:
                self._deliver(signo)

    def _deliver(self, sig: int) -> None:
        if not self.started:
            if sig not in _ENDING:
                return
            sig = signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            self.sandbox.signal(sig)
        if sig == signal.SIGKILL and self.cgroup is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.cgroup.thaw()  # a frozen process cannot die

    def _reap(self) -> None:
        for pid, status in exited_children():
            self.sandbox.reaped(pid)
            if self.forwarder is not None:
                self.forwarder.reaped(pid)
            if pid == self.sandbox.sentry_pid:
                from ringfence.runtime.sandbox import exit_code

                self.exit_status = exit_code(status)
            elif pid == self.sandbox.gofer_pid:
                self._gofer_live = False

    def _oom(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._oom_fd, 8)
        try:
            kills = self.cgroup.oom_kills() - self._oom_base
        except OSError:
            return
        if kills > self._oom_kills:
            self._oom_kills = kills
            log.info("container OOM-killed", id=self.container.id, kills=kills)
            self._record("running" if self.started else "created")

    def _record(self, status: str) -> None:
        record = {"status": status, "started": self._started_at, "oom_kills": self._oom_kills}
        if status == "stopped":
            record.update(exit_status=self.exit_status, exited_at=now_rfc3339())
        try:
            self.container.record_status(record)
        except FileNotFoundError:  # deleted under us (a create whose caller went away)
            log.warning("state directory gone", id=self.container.id)

    def _finish(self) -> None:
        """init exited: the gofer goes too; record the status, answer waiters."""
        if self._oom_fd is not None:
            self._oom()
        self._stop_forwarder()
        deadline = time.monotonic() + GOFER_GRACE
        while self._gofer_live and time.monotonic() < deadline:
            self._reap()
            if self._gofer_live:
                time.sleep(0.005)
        if self._gofer_live:
            self.sandbox.destroy()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.sandbox.gofer_pid, 0)
            self._gofer_live = False
        self._record("stopped")
        log.debug("container exited", id=self.container.id, status=self.exit_status)
        reply = _encode({"ok": True, "exit_status": self.exit_status})
        for conn in self._waiters:
            with contextlib.suppress(OSError):
                conn.sendall(reply)
            conn.close()
        self._waiters = []
        self._close_sockets()
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def _stop_forwarder(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()
            self.forwarder = None

    def _close_sockets(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.container.path(SUPERVISOR_SOCK))
        if self._oom_fd is not None:
            os.close(self._oom_fd)
            self._oom_fd = None

    # -- requests ----------------------------------------------------------------
    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        keep = False
        try:
            conn.settimeout(REQUEST_TIMEOUT)
            request = _read_line(conn)
            op = request.get("op")
            if op == "wait":
                self._waiters.append(conn)
                keep = True
                return
            try:
                if op == "start":
                    self.start()
                elif op == "kill":
                    sig = request.get("signal")
                    if not isinstance(sig, int) or not (sig == signal.SIGKILL or sig in FORWARD):
                        raise StateError(f"the supervisor cannot deliver signal {sig!r}")
                    self._deliver(sig)
                else:
                    raise StateError(f"unknown request {op!r}")
                response = {"ok": True}
            except StateError as err:
                response = {"ok": False, "error": str(err)}
            conn.sendall(_encode(response))
        except (OSError, ValueError) as err:
            log.warning("bad supervisor request", error=str(err))
        finally:
            if not keep:
                conn.close()


CLONE_NEWNET = 0x40000000


def enter_network_namespace(spec) -> None:
    """Put this process (and so the sandbox it forks) in the network
    namespace the spec asks for: the one at its path, or a new one. A tool
    that sets up networking through the container's pid (buildah, CNI over
    /proc/PID/ns/net) then configures that namespace, never the host's."""
    import ctypes

    if "network" not in spec.namespaces:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    path = spec.namespaces["network"]
    if path:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise SetupError(f"network namespace {path}: {err.strerror}") from None
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise SetupError(f"joining the network namespace {path}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)
    elif libc.unshare(CLONE_NEWNET) != 0:
        raise SetupError(f"creating a network namespace: {os.strerror(ctypes.get_errno())}")


FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _ignore(_signo, _frame) -> None:
    """A handler that does nothing: the wakeup fd carries the signal to the loop."""


def _encode(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _read_line(sock: socket.socket, limit: int = 1 << 16) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("request too long")
    obj = json.loads(data or b"null")
    if not isinstance(obj, dict):
        raise ValueError("a request must be a JSON object")
    return obj


# -- the client side ----------------------------------------------------------------

class SupervisorGone(StateError):
    """The container's supervisor is not there (the container has stopped)."""


def request(container: Container, op: dict, timeout: float | None = REQUEST_TIMEOUT) -> dict:
    """Send one request to the container's supervisor; its answer (a
    StateError carries a refusal, SupervisorGone a missing supervisor)."""
    try:
        sock = connect_unix(container.path(SUPERVISOR_SOCK), timeout=REQUEST_TIMEOUT)
    except OSError:
        raise SupervisorGone(f"container {container.id} is not running") from None
    with sock:
        try:
            sock.sendall(_encode(op))
            sock.settimeout(timeout)
            answer = _read_line(sock)
        except (OSError, ValueError) as err:
            raise SupervisorGone(f"container {container.id}: its supervisor went away ({err})") from None
    if not answer:
        raise SupervisorGone(f"container {container.id}: its supervisor went away")
    if not answer.get("ok"):
        raise StateError(answer.get("error") or "the supervisor refused")
    return answer


# -- running one ----------------------------------------------------------------------

def configure_logs(container: Container, opts: Options) -> None:
    """The supervisor's (and its sandbox's) logs: --log, else the state directory's log file."""
    logs.configure(debug=opts.debug, log_path=opts.log_path or container.path(LOG),
                   log_format=opts.log_format)


def spawn(container: Container, spec, rootfs: str, opts: Options) -> dict:
    """Fork a detached supervisor for the container and wait until its
    sandbox is created; returns {"pid", "pid_start", "sentry_pid", "gofer_pid"}.
    The caller's stdio (fds 0-2) is the container's unless it has a terminal."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the supervisor
        code = 125
        try:
            os.close(ready_r)
            os.setsid()
            _close_inherited(keep=ready_w)
            code = _supervise(container, spec, rootfs, opts, ready_w)
        except BaseException as err:  # noqa: BLE001 - must always _exit
            with contextlib.suppress(BaseException):
                os.write(ready_w, _encode({"error": f"{type(err).__name__}: {err}"}))
        finally:
            os._exit(code)
    os.close(ready_w)
    data = b""
    with open(ready_r, "rb", closefd=True) as r:
        data = r.read()
    try:
        answer = json.loads(data or b"{}")
    except ValueError:
        answer = {}
    if "error" in answer or "pid" not in answer:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise SetupError(answer.get("error") or "the supervisor died while creating the sandbox")
    return answer


def _close_inherited(keep: int = -1) -> None:
    """Close every fd but stdio and `keep`: a supervisor holds none of its
    caller's files (not its pipes, nor the container lock create holds)."""
    close_fds_except({0, 1, 2, keep})


def _supervise(container: Container, spec, rootfs: str, opts: Options, ready_w: int) -> int:
    configure_logs(container, opts)
    sup = Supervisor(container, spec, rootfs, opts)
    try:
        sup.setup()
    except StateError as err:
        os.write(ready_w, _encode({"error": str(err)}))
        return 125
    # The container's stdio now belongs to the sandbox: hold none of it.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    try:
        os.write(ready_w, _encode({"pid": os.getpid(), "pid_start": process_start_time(os.getpid()),
                                   **sup.pids}))
        os.close(ready_w)
    except OSError:  # create went away: nobody will ever start or delete this
        sup.sandbox.destroy()
    return sup.serve()
