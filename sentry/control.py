"""The sentry's control service: ttrpc (service "ringfence.sentry.v1.Control",
proto/sentry/v1/control.proto) on a unix socket its caller listens on.

The sentry is one synchronous thread, so the service is served from the
kernel's loop: the listening socket and every connection are host fds the
loop polls (Kernel.watch); whole frames are read when a socket is readable,
partial ones buffered, replies written without blocking.  A Wait is answered
when its process exits (Kernel.on_exit calls `_exited`).  Host fds (an exec's
stdio) come as SCM_RIGHTS data with the request frame; a request that does
not take them has them closed.

Containers: the sandbox's first container (id "": the one the sentry booted
with, a pod's pause container) and the sub-containers CreateSubcontainer adds,
each with its own root over its own gofer (kernel/container.py).  Exec, Signal,
Wait, Processes, Pause and Resume act within the container they name; exec ids
are per container.  Pause freezes the container (Kernel.freeze: invisible to its
programs, as Linux's cgroup freezer) and is answered once none of its tasks
runs; Resume thaws it.  A container's processes (its init and what Exec starts) run as their
OCI process says (user, capabilities, rlimits, noNewPrivileges), filtered by the container's
seccomp profile (kernel/seccomp.py).

Anyone who can connect may drive the sandbox: the socket's file permissions
are the guard (the sentry, in its own user namespace, cannot tell host users
apart).  Malformed input gets an error reply or a closed connection.
"""
from __future__ import annotations

import array
import collections
import json
import os
import select
import socket
import time
import traceback

import structlog
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from ringfence.proto.sentry.v1 import control_pb2 as pb
from ringfence.shim.ttrpc import frame as fr
from ringfence.shim.ttrpc.codes import Code
from ringfence.shim.ttrpc.errors import OversizedMessageError, TtrpcError, status_of
from ringfence.runtime.spec import SpecError, parse_process
from ringfence.shim.ttrpc.messages import error_response, ok_response, parse_request

from .abi import errno as E
from .abi.signal import NSIG, SI_USER
from .fs.host import host_terminal
from .fs.proc_pid import cmdline
from .kernel.container import Container, ExecutableNotFound
from .kernel.creds import Credentials
from .kernel.errors import SysError
from .kernel.seccomp import SeccompError, compile_profile
from .kernel.siginfo import kill_info
from .kernel.signals import FROM_RUNTIME
from .vfs import FDTable, File, std_files
from .vfs.mountplan import MountPlan, MountPlanError

log = structlog.get_logger("ringfence.sentry")

SERVICE = "ringfence.sentry.v1.Control"
STDIO_ROLES = ("stdin", "stdout", "stderr")
GOFER_ROLE = "gofer"
MAX_FDS = 8  # per request; a sender of more gets its connection closed (the kernel drops the excess)
MAX_CONNECTIONS = 64
MAX_OUTPUT = 16 << 20  # unsent replies a connection may pile up before it is closed
KEPT_EXITS = 1024  # statuses of exited exec processes kept for late Waits, per container (the oldest go first)
_RECV_SIZE = 64 << 10
_ANCILLARY = socket.CMSG_SPACE(MAX_FDS * 4)
_IN, _OUT = select.POLLIN, select.POLLOUT


def runc_status(wait_status: int) -> int:
    """A wait status as runc reports it: the exit code, or 128 + the killing signal."""
    return 128 + os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)


def _timestamp(seconds: float) -> Timestamp:
    whole = int(seconds)
    return Timestamp(seconds=whole, nanos=int((seconds - whole) * 1e9))


def _sys_failure(err: SysError | OSError, what: str) -> TtrpcError:
    """A failed sandbox operation as the ttrpc error that answers it."""
    code = {E.ENOENT: Code.NOT_FOUND, E.ENOTDIR: Code.NOT_FOUND, E.EACCES: Code.PERMISSION_DENIED,
            E.EPERM: Code.PERMISSION_DENIED, E.ENOTSOCK: Code.INVALID_ARGUMENT}.get(err.errno, Code.FAILED_PRECONDITION)
    return TtrpcError(code, f"{what}: {os.strerror(err.errno) if err.errno else err}")


class _Watched:
    """A process the service follows: an exec's, a container's init, or one a Wait names; its
    status once it exits."""

    __slots__ = ("tg", "pid", "status", "exited_at", "waiters")

    def __init__(self, tg):
        self.tg = tg
        self.pid = tg.pid if tg is not None else 0
        self.status: int | None = None  # runc-style, once exited
        self.exited_at = 0.0
        self.waiters: list[tuple[_Connection, int]] = []  # (connection, stream id) of pending Waits

    def response(self) -> pb.WaitResponse:
        return pb.WaitResponse(exit_status=self.status, exited_at=_timestamp(self.exited_at))

    def finish(self, wait_status: int) -> None:
        """The process exited (or, a container's init, could not start) with `wait_status`:
        keep its status and answer its Waits."""
        self.tg = None
        self.status = runc_status(wait_status)
        self.exited_at = time.time()
        for conn, sid in self.waiters:
            conn.reply(sid, self.response())
        self.waiters = []


class _Member:
    """A container as the service knows it: the kernel's Container, the process its init is to
    run (until started), its init's record and its exec processes by exec id."""

    __slots__ = ("box", "process", "init", "execs")

    def __init__(self, box: Container, process=None):
        self.box = box
        self.process = process  # (argv, envp, cwd, spawn keywords) of a created sub-container
        self.init: _Watched | None = None
        self.execs: dict[str, _Watched] = {}  # kept after they exit


class _Call:
    """One request being served: its stream and the host fds that came with it."""

    __slots__ = ("conn", "sid", "fds")

    def __init__(self, conn: "_Connection", sid: int, fds: list[int]):
        self.conn, self.sid, self.fds = conn, sid, fds

    def take_fds(self, roles, allowed) -> dict[str, int]:
        """The passed fds by role (`roles`: the request's fd_roles), which the caller now owns."""
        roles = list(roles)
        if len(roles) != len(self.fds):
            raise TtrpcError(Code.INVALID_ARGUMENT, f"{len(self.fds)} fds passed for {len(roles)} fd_roles")
        if len(set(roles)) != len(roles) or not set(roles) <= set(allowed):
            raise TtrpcError(Code.INVALID_ARGUMENT, f"fd_roles {roles}: each of {', '.join(allowed)} at most once")
        fds, self.fds = self.fds, []
        return dict(zip(roles, fds))

    def close_fds(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class ControlServer:
    """The control service of one sandbox (see the module docstring)."""

    def __init__(self, kernel, sandbox: Container, listener: socket.socket):
        """Serve on `listener` (a listening unix stream socket) from `kernel`'s loop, for the
        sandbox whose first container is `sandbox`."""
        self.kernel = kernel
        self.listener = listener
        self.connections: dict[int, _Connection] = {}
        self.containers = {sandbox.id: _Member(sandbox)}
        self.watched: dict[object, _Watched] = {}  # ThreadGroup -> record, until it exits
        self.methods = {
            "CreateSubcontainer": (pb.CreateSubcontainerRequest, self.create_subcontainer),
            "StartSubcontainer": (pb.StartSubcontainerRequest, self.start_subcontainer),
            "Exec": (pb.ExecRequest, self.exec),
            "Signal": (pb.SignalRequest, self.signal),
            "Wait": (pb.WaitRequest, self.wait),
            "Processes": (pb.ProcessesRequest, self.processes),
            "Pause": (pb.PauseRequest, self.pause),
            "Resume": (pb.ResumeRequest, self.resume),
            "Stacks": (pb.StacksRequest, self.stacks),
        }
        kernel.on_exit = self._exited
        listener.setblocking(False)
        kernel.watch(listener.fileno(), _IN, self._accept)

    def close(self) -> None:
        """The sentry is exiting: send what replies are pending (a second at most) and close."""
        for conn in list(self.connections.values()):
            conn.close(flush_for=1.0)
        self.kernel.unwatch(self.listener.fileno())
        self.listener.close()

    def _accept(self, _events: int) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and friends: try again at the next event
                log.warning("control: accept failed", error=str(err))
                return
            if len(self.connections) >= MAX_CONNECTIONS:
                log.warning("control: too many connections, refusing one")
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Connection(self, sock)
            self.connections[sock.fileno()] = conn
            self.kernel.watch(sock.fileno(), _IN, conn.on_io)
            conn.on_io(_IN)  # what came before the fd was O_ASYNC raises no SIGIO

    # -- dispatch --------------------------------------------------------------
    def dispatch(self, call: _Call, payload: bytes) -> None:
        """Serve one Request frame: reply now, or (a Wait) when its process exits."""
        try:
            try:
                req = parse_request(payload)
            except DecodeError as err:
                raise TtrpcError(Code.INVALID_ARGUMENT, f"cannot decode ttrpc.Request: {err}") from None
            if req.service != SERVICE:
                raise TtrpcError(Code.UNIMPLEMENTED, f"service {req.service}")
            if req.method not in self.methods:
                if req.method in pb.DESCRIPTOR.services_by_name["Control"].methods_by_name:
                    raise TtrpcError(Code.UNIMPLEMENTED, f"{req.method} is not supported by the sentry yet")
                raise TtrpcError(Code.UNIMPLEMENTED, f"method {req.method}")
            request_type, handler = self.methods[req.method]
            message = request_type()
            try:
                message.ParseFromString(req.payload)
            except DecodeError as err:
                raise TtrpcError(Code.INVALID_ARGUMENT, f"cannot decode {request_type.DESCRIPTOR.full_name}: "
                                                        f"{err}") from None
            result = handler(message, call)
        except Exception as err:  # noqa: BLE001 (a handler's failure is the caller's answer)
            code, text = status_of(err)
            if code == Code.UNKNOWN:
                log.exception("control: request failed")
            call.conn.send(call.sid, error_response(code, text))
        else:
            if result is not None:
                call.conn.reply(call.sid, result)
        finally:
            call.close_fds()

    # -- the RPCs --------------------------------------------------------------
    def create_subcontainer(self, req: pb.CreateSubcontainerRequest, call: _Call) -> pb.CreateSubcontainerResponse:
        """Build sub-container `req.container_id`'s root over the passed gofer socket; its init
        (the spec's process) waits for StartSubcontainer."""
        cid = req.container_id
        if not cid:
            raise TtrpcError(Code.INVALID_ARGUMENT, "a container id is required")
        if cid in self.containers:
            raise TtrpcError(Code.ALREADY_EXISTS, f"container {cid} exists")
        if GOFER_ROLE not in req.fd_roles:
            raise TtrpcError(Code.INVALID_ARGUMENT, f"a gofer socket (fd role {GOFER_ROLE!r}) is required")
        process = _parse_process(_spec_process(req.spec_json))
        plan = _mount_plan(req.spec_json)
        seccomp = _seccomp(req.spec_json)
        fds = call.take_fds(req.fd_roles, (*STDIO_ROLES, GOFER_ROLE))
        # (proto 0 given: the sentry may not getsockopt; a non-socket fails the build with ENOTSOCK)
        gofer = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fds.pop(GOFER_ROLE))
        try:
            box = Container(self.kernel, cid, gofer, _stdio_files(fds), plan)
        except (SysError, OSError) as err:
            raise _sys_failure(err, f"container {cid}: building its root over its gofer") from None
        self.kernel.install_seccomp(box, seccomp)
        self.containers[cid] = _Member(box, process)
        log.info("control: container created", container=cid)
        return pb.CreateSubcontainerResponse()

    def start_subcontainer(self, req: pb.StartSubcontainerRequest, call: _Call) -> pb.StartSubcontainerResponse:
        """Spawn a created sub-container's init in its root; answer its pid."""
        member = self._member(req.container_id)
        if member.process is None:
            raise TtrpcError(Code.FAILED_PRECONDITION, f"{_named(req.container_id)} is {member.box.state}, "
                                                       "not created")
        (argv, envp, cwd, attrs), member.process = member.process, None
        try:
            tg = member.box.start(argv, envp, cwd, **attrs)
        except (SysError, OSError) as err:  # the container is stopped (status 127 or 126)
            member.init = _Watched(None)
            member.init.finish(member.box.exit_status)
            raise _spawn_failure(err, argv[0]) from None
        self._init_of(member)  # followed from now on: its status is kept for Wait
        log.info("control: container started", container=req.container_id, pid=tg.pid)
        return pb.StartSubcontainerResponse(pid=tg.pid)

    def exec(self, req: pb.ExecRequest, call: _Call) -> pb.ExecResponse:
        """Start the process `req.process_json` describes, as a new process of the container."""
        member = self._running(req.container_id)
        if not req.exec_id:
            raise TtrpcError(Code.INVALID_ARGUMENT, "an exec id is required")
        old = member.execs.get(req.exec_id)
        if old is not None and old.status is None:
            raise TtrpcError(Code.ALREADY_EXISTS, f"exec {req.exec_id} is running (pid {old.pid})")
        argv, envp, cwd, attrs = _parse_process(_json_object(req.process_json, "process_json"))
        fdtable = FDTable()
        fds = call.take_fds(req.fd_roles, STDIO_ROLES)
        terminal = _terminal(member.box, fds, attrs["creds"], req.terminal_host_signals) if req.terminal else None
        for n, file in enumerate(_stdio_files(fds, terminal)):
            fdtable.install_at(n, file)
        try:
            try:
                fs = member.box.context(cwd)
            except SysError as err:
                raise _sys_failure(err, f"chdir to cwd {cwd.decode(errors='replace')!r}") from None
            try:
                tg = member.box.spawn(argv, envp, fs, fdtable, **attrs)
            except (SysError, OSError) as err:
                raise _spawn_failure(err, argv[0]) from None
        except BaseException:
            fdtable.close_all()
            raise
        if terminal is not None:
            terminal.attach(tg)
        member.execs.pop(req.exec_id, None)
        record = member.execs[req.exec_id] = self.watched[tg] = _Watched(tg)
        exited = [exec_id for exec_id, r in member.execs.items() if r.status is not None]
        for exec_id in exited[:max(0, len(exited) - KEPT_EXITS)]:
            del member.execs[exec_id]
        log.debug("control: exec", container=req.container_id, exec_id=req.exec_id, pid=record.pid)
        return pb.ExecResponse(pid=record.pid)

    def signal(self, req: pb.SignalRequest, call: _Call) -> Empty:
        """Send `req.signal` to the process named, or to every process of the container (`all`),
        or to the foreground process group of the named one's controlling terminal (`foreground`)."""
        if req.signal > NSIG:
            raise TtrpcError(Code.INVALID_ARGUMENT, f"signal {req.signal} out of range")
        member = self._member(req.container_id)
        if req.all:
            targets = [tg for tg in self._processes(member) if tg.exit_status is None]
        else:
            record = self._record(member, req.exec_id, req.pid)
            if record.status is not None:
                raise TtrpcError(Code.NOT_FOUND, f"process {req.exec_id or req.pid or 'init'} has exited")
            targets = [record.tg]
            if req.foreground:
                tty = record.tg.tty
                if tty is not None and req.signal:
                    tty.signal_foreground(req.signal)
                return Empty()
        if req.signal:
            for tg in targets:
                self.kernel.signals.send_group(tg, req.signal, SI_USER, kill_info(0), FROM_RUNTIME)
        return Empty()

    def wait(self, req: pb.WaitRequest, call: _Call) -> pb.WaitResponse | None:
        """The process's status: at once if it has exited, else (None) when it exits."""
        record = self._record(self._member(req.container_id), req.exec_id, req.pid)
        if record.status is None:
            record.waiters.append((call.conn, call.sid))
            return None
        return record.response()

    def processes(self, req: pb.ProcessesRequest, call: _Call) -> pb.ProcessesResponse:
        """Every process of the container, zombies included, by pid."""
        k = self.kernel
        member = self._member(req.container_id)
        exec_ids = {record.tg: exec_id for exec_id, record in member.execs.items() if record.tg is not None}
        resp = pb.ProcessesResponse()
        for tg in sorted(self._processes(member), key=lambda g: g.pid):
            top = tg
            while top.parent is not None:
                top = top.parent
            task = tg.leader or next(iter(tg.tasks.values()), None)
            argv = _split_args(cmdline(tg, task)) if task is not None else []
            resp.processes.add(
                pid=tg.pid, ppid=tg.ppid, uid=task.creds.uid if task is not None else 0,
                cmd=tg.comm.decode(errors="replace"), argv=[a.decode(errors="replace") for a in argv],
                exec_id=exec_ids.get(top, ""), state=tg.state,
                started_at=_timestamp(k.boot_time + tg.start_time - k.boot_monotonic))
        return resp

    def stacks(self, req: pb.StacksRequest, call: _Call) -> pb.StacksResponse:
        """The sentry's own stack (serving this call) and every task: container, pid, tid,
        command, state, and the syscall it is in (a blocked one) or last made."""
        lines = ["sentry (pid %d):" % os.getpid(), *("  " + line.rstrip() for line in traceback.format_stack())]
        lines.append("tasks:")
        for t in sorted(self.kernel.tasks.values(), key=lambda t: (t.tg.pid, t.tid)):
            container = t.tg.container.id if t.tg.container is not None else ""
            syscall = ""
            if t.syscall is not None:
                handler, args = t.syscall
                syscall = f" in {getattr(handler, '__name__', handler)}({', '.join(hex(a) for a in args)})"
            lines.append(f"  container={container or '-'} pid={t.tg.pid} tid={t.tid} "
                         f"comm={t.tg.comm.decode(errors='replace')} state={t.state.value}{syscall}")
        return pb.StacksResponse(stacks="\n".join(lines) + "\n")

    def pause(self, req: pb.PauseRequest, call: _Call) -> None:
        """Freeze the container's processes; answered once none of them runs.  A paused
        container may be paused again."""
        member = self._member(req.container_id)
        if member.box.state not in ("running", "paused"):
            raise TtrpcError(Code.FAILED_PRECONDITION, f"{_named(req.container_id)} is {member.box.state}, "
                                                       "not running")
        conn, sid = call.conn, call.sid
        self.kernel.freeze(member.box, lambda: conn.reply(sid, Empty()))
        log.info("control: container paused", container=req.container_id)
        return None

    def resume(self, req: pb.ResumeRequest, call: _Call) -> Empty:
        """Thaw a paused container (a running one is left as it is)."""
        member = self._member(req.container_id)
        if member.box.state not in ("running", "paused"):
            raise TtrpcError(Code.FAILED_PRECONDITION, f"{_named(req.container_id)} is {member.box.state}, "
                                                       "not paused")
        self.kernel.thaw(member.box)
        log.info("control: container resumed", container=req.container_id)
        return Empty()

    # -- naming containers and processes ------------------------------------------
    def _member(self, cid: str) -> _Member:
        member = self.containers.get(cid)
        if member is None:
            raise TtrpcError(Code.NOT_FOUND, f"{_named(cid)}: no such container")
        return member

    def _running(self, cid: str) -> _Member:
        member = self._member(cid)
        if member.box.state != "running":
            raise TtrpcError(Code.FAILED_PRECONDITION, f"{_named(cid)} is {member.box.state}, not running")
        return member

    def _processes(self, member: _Member) -> list:
        """The container's live (not yet reaped) processes."""
        return [tg for tg in self.kernel.threadgroups() if tg.container is member.box]

    def _init_of(self, member: _Member) -> _Watched:
        """The record of the container's init (kept once it has exited)."""
        if member.init is None:
            tg = member.box.init
            if tg is None:
                raise TtrpcError(Code.FAILED_PRECONDITION, f"{_named(member.box.id)} is not started")
            member.init = self.watched.setdefault(tg, _Watched(tg))
        return member.init

    def _record(self, member: _Member, exec_id: str, pid: int) -> _Watched:
        """The record of the container's process named by exec id, else by pid (a live one),
        else of its init."""
        if exec_id:
            record = member.execs.get(exec_id)
            if record is None:
                raise TtrpcError(Code.NOT_FOUND, f"exec {exec_id}: no such process")
            return record
        if not pid:
            return self._init_of(member)
        tg = self.kernel.groups.get(pid)
        if tg is None or tg.exit_status is not None or tg.container is not member.box:
            raise TtrpcError(Code.NOT_FOUND, f"process {pid}: no such process in {_named(member.box.id)} "
                                             "(or it has exited)")
        return self.watched.setdefault(tg, _Watched(tg))

    def _exited(self, tg) -> None:
        """Kernel.on_exit: record the status of a followed process and answer its Waits."""
        record = self.watched.pop(tg, None)
        if record is not None:
            record.finish(tg.exit_status)

    def forget(self, conn: "_Connection") -> None:
        """A connection closed: drop it and its pending Waits."""
        self.connections.pop(conn.fd, None)
        for record in self.watched.values():
            record.waiters = [w for w in record.waiters if w[0] is not conn]


def _json_object(raw: bytes, what: str) -> dict:
    """The JSON object `raw` (the request's field `what`)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise TtrpcError(Code.INVALID_ARGUMENT, f"bad {what}: {err}") from None
    if not isinstance(value, dict):
        raise TtrpcError(Code.INVALID_ARGUMENT, f"bad {what}: not an object")
    return value


def _spec_process(raw: bytes) -> dict:
    """The process of OCI spec `raw` (JSON)."""
    process = _json_object(raw, "spec_json").get("process")
    if not isinstance(process, dict):
        raise TtrpcError(Code.INVALID_ARGUMENT, "bad spec_json: no process object")
    return process


def _seccomp(raw: bytes):
    """The compiled linux.seccomp profile of OCI spec `raw` (JSON), or None."""
    linux = _json_object(raw, "spec_json").get("linux") or {}
    try:
        return compile_profile(linux.get("seccomp") if isinstance(linux, dict) else None)
    except SeccompError as err:
        raise TtrpcError(Code.INVALID_ARGUMENT, f"bad spec_json: {err}") from None


def _mount_plan(raw: bytes) -> MountPlan:
    """The file systems OCI spec `raw` (JSON) asks for: its root, mounts, masked and read-only paths."""
    try:
        return MountPlan.from_json(raw)
    except MountPlanError as err:
        raise TtrpcError(Code.INVALID_ARGUMENT, f"bad spec_json: {err}") from None


def _parse_process(process: dict) -> tuple[list[bytes], list[bytes], bytes, dict]:
    """argv, envp, cwd and how the process is run (Container.spawn's keywords: credentials
    with its capabilities, rlimits, no_new_privs) from an OCI Process."""
    try:
        p = parse_process(process)
    except SpecError as err:
        raise TtrpcError(Code.INVALID_ARGUMENT, f"bad process: {str(err).replace('config.json: ', '')}") from None
    attrs = {"creds": Credentials.of_user(p.uid, p.gid, p.additional_gids, caps=p.capabilities),
             "rlimits": p.rlimits, "no_new_privs": p.no_new_privileges}
    return [os.fsencode(a) for a in p.args], [os.fsencode(e) for e in p.env], os.fsencode(p.cwd), attrs


def _split_args(data: bytes) -> list[bytes]:
    """/proc/PID/cmdline's NUL-separated strings."""
    return data.removesuffix(b"\0").split(b"\0") if data else []


def _stdio_files(fds: dict[str, int], terminal=None) -> list[File]:
    """Files owning the passed stdio fds by role (/dev/null for a stream without one), made
    non-blocking: a full pipe must park the writer, not stall the sentry; those on `terminal`
    (a HostTerminal) are files on it."""
    for fd in fds.values():
        os.set_blocking(fd, False)
    return std_files([fds.get(role) for role in STDIO_ROLES], owned=True, terminal=terminal)


def _terminal(box: Container, fds: dict[str, int], creds: Credentials, host_signals: bool):
    """The HostTerminal a process run as `creds` gets for the host pty passed as its stdin (a
    request with `terminal`; `host_signals` as host_terminal's); None if stdin is not a terminal."""
    fd = fds.get("stdin")
    if fd is None or not os.isatty(fd):
        return None
    return host_terminal(box, fd, creds.uid, creds.gid, host_signals=host_signals)


def _named(cid: str) -> str:
    """A container as messages name it."""
    return f"container {cid}" if cid else "the first container"


def _spawn_failure(err: SysError | OSError, name: bytes) -> TtrpcError:
    """Why program `name` could not be started, as the ttrpc error that answers it."""
    name = name.decode(errors="replace")
    if isinstance(err, ExecutableNotFound):
        return TtrpcError(Code.NOT_FOUND, f"exec: {name!r}: executable file not found in $PATH")
    return _sys_failure(err, f"exec {name!r}")


class _Connection:
    """One accepted connection: frames in (with their fds), replies out."""

    def __init__(self, server: ControlServer, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.start = 0  # stream offset of inbuf[0]
        # (stream offset of the last byte received with them, fds): fds belong to the frame holding that byte
        self.fd_batches: collections.deque[tuple[int, list[int]]] = collections.deque()
        self.out = bytearray()
        self.last_sid = 0
        self.closed = False

    def on_io(self, events: int) -> None:
        if events & _OUT:
            self._flush()
        if not self.closed and events & ~_OUT:
            self._receive()

    def _receive(self) -> None:
        """Read what the socket holds; serve every whole frame."""
        while not self.closed:
            try:
                data, ancillary, flags, _ = self.sock.recvmsg(_RECV_SIZE, _ANCILLARY, socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                return self.close(reason=str(err))
            fds = _fds_of(ancillary)
            if fds:
                self.fd_batches.append((self.start + len(self.inbuf) + len(data) - 1, fds))
            if flags & socket.MSG_CTRUNC:
                return self.close(reason=f"more than {MAX_FDS} fds passed")
            if not data:
                return self.close(reason="" if not self.inbuf else "end of stream inside a frame")
            self.inbuf += data
            self._serve_frames()

    def _serve_frames(self) -> None:
        while not self.closed and len(self.inbuf) >= fr.HEADER_SIZE:
            header = fr.decode_header(bytes(self.inbuf[:fr.HEADER_SIZE]))
            if header.length > fr.MAX_PAYLOAD:
                return self.close(reason=f"frame of {header.length} bytes")
            end = fr.HEADER_SIZE + header.length
            if len(self.inbuf) < end:
                return
            payload = bytes(self.inbuf[fr.HEADER_SIZE:end])
            del self.inbuf[:end]
            self.start += end
            fds = []
            while self.fd_batches and self.fd_batches[0][0] < self.start:
                fds += self.fd_batches.popleft()[1]
            call = _Call(self, header.stream_id, fds)
            if header.type != fr.TYPE_REQUEST or header.stream_id % 2 == 0:
                call.close_fds()
                return self.close(reason=f"frame of type {header.type} on stream {header.stream_id}")
            if header.stream_id <= self.last_sid:
                call.close_fds()
                self.send(header.stream_id, error_response(
                    Code.INVALID_ARGUMENT, "StreamID cannot be re-used and must increment"))
                continue
            self.last_sid = header.stream_id
            if header.flags & fr.FLAG_REMOTE_OPEN:
                call.close_fds()
                self.send(header.stream_id, error_response(Code.UNIMPLEMENTED, "streaming is not supported"))
                continue
            self.server.dispatch(call, payload)

    def reply(self, sid: int, message) -> None:
        """Answer stream `sid` with `message` (OK)."""
        self.send(sid, ok_response(message.SerializeToString()))

    def send(self, sid: int, response: bytes) -> None:
        """Queue a serialised Response for stream `sid` and write what the socket takes."""
        if self.closed:
            return
        try:
            self.out += fr.encode_frame(sid, fr.TYPE_RESPONSE, response)
        except OversizedMessageError as err:
            self.out += fr.encode_frame(sid, fr.TYPE_RESPONSE, error_response(err.code, err.message))
        if len(self.out) > MAX_OUTPUT:
            return self.close(reason="the peer does not read its replies")
        self._flush()

    def _flush(self) -> None:
        try:
            while self.out:
                del self.out[:self.sock.send(self.out)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as err:
            return self.close(reason=str(err))
        self.server.kernel.watch(self.fd, _IN | _OUT if self.out else _IN, self.on_io)

    def close(self, reason: str = "", flush_for: float = 0.0) -> None:
        """Close the connection (after trying `flush_for` seconds to send pending replies)."""
        if self.closed:
            return
        if reason:
            log.info("control: closing connection", reason=reason)
        if flush_for and self.out:
            try:
                self.sock.settimeout(flush_for)
                self.sock.sendall(self.out)
            except OSError:
                pass
        self.closed = True
        self.server.kernel.unwatch(self.fd)
        self.server.forget(self)
        for _, fds in self.fd_batches:
            for fd in fds:
                os.close(fd)
        self.fd_batches.clear()
        self.sock.close()


def _fds_of(ancillary) -> list[int]:
    """The fds of the SCM_RIGHTS messages in `ancillary` (recvmsg's)."""
    fds = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return list(fds)
