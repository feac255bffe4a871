"""A synchronous client of the sentry's control service (sentry/control.py).

Each call opens its own connection (connect, one request, its response,
close), so a Wait blocked in one thread holds up no other call.  Host fds
(stdio, a sub-container's gofer socket) go with the request frame as
SCM_RIGHTS data; the caller keeps its own copies and closes them when it likes.
`container_id` names the container a call acts in: "" (the default) is the
sandbox's first container.

Errors: ControlError (a TtrpcError: `.code`, `.message`) for a call the
sentry refused, SentryGone (a ControlError, code UNAVAILABLE) when nothing
listens or the sentry went away without answering, and ControlError with
code DEADLINE_EXCEEDED when the time limit passed.
"""
from __future__ import annotations

import json
import socket
from typing import Callable

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from ringfence.proto.sentry.v1 import control_pb2 as pb
from ringfence.shim.ttrpc import frame as fr
from ringfence.shim.ttrpc.codes import Code
from ringfence.shim.ttrpc.errors import TtrpcError
from ringfence.shim.ttrpc.messages import Request, parse_response

SERVICE = "ringfence.sentry.v1.Control"
STDIO_ROLES = ("stdin", "stdout", "stderr")
_STREAM_ID = 1


class ControlError(TtrpcError):
    """A control call failed (the sentry's error status, or see SentryGone)."""


class SentryGone(ControlError):
    """The sentry is not there: nothing listens on the socket, or it closed the connection
    before answering (it exited)."""

    def __init__(self, message: str):
        super().__init__(Code.UNAVAILABLE, message)


class ControlClient:
    """Calls to one sentry's control service."""

    def __init__(self, target: str | Callable[[], socket.socket], timeout: float | None = 30.0):
        """`target`: the control socket's path (``unix://`` prefix allowed), or a function
        returning a connected socket.  `timeout`: seconds any call but wait() may take."""
        self.target = target
        self.timeout = timeout

    def create_subcontainer(self, container_id: str, spec: dict,
                            stdio: tuple[int | None, int | None, int | None], gofer_sock_fd: int) -> None:
        """Create sub-container `container_id` running OCI spec `spec`'s process, its root served
        by the gofer at the other end of host socket `gofer_sock_fd`; its init's stdin, stdout
        and stderr are the host fds in `stdio` (None: /dev/null).  It runs once started."""
        roles, fds = _stdio_roles(stdio)
        request = pb.CreateSubcontainerRequest(container_id=container_id, spec_json=json.dumps(spec).encode(),
                                               fd_roles=[*roles, "gofer"])
        self._call("CreateSubcontainer", request, None, self.timeout, [*fds, gofer_sock_fd])

    def start_subcontainer(self, container_id: str) -> int:
        """Start created sub-container `container_id`'s init; returns its sandbox pid."""
        request = pb.StartSubcontainerRequest(container_id=container_id)
        return self._call("StartSubcontainer", request, pb.StartSubcontainerResponse, self.timeout).pid

    def exec(self, process: dict, stdio: tuple[int | None, int | None, int | None], exec_id: str,
             terminal: bool = False, container_id: str = "", host_signals: bool = False) -> int:
        """Start OCI process `process` (args, env, cwd, user) in the container; its stdin, stdout
        and stderr are the host fds in `stdio` (None: /dev/null), stdin a host pty that is its
        terminal with `terminal` (`host_signals`: ExecRequest's terminal_host_signals).
        Returns its sandbox pid."""
        roles, fds = _stdio_roles(stdio)
        request = pb.ExecRequest(container_id=container_id, exec_id=exec_id, process_json=json.dumps(process).encode(),
                                 terminal=terminal, fd_roles=roles, terminal_host_signals=host_signals)
        return self._call("Exec", request, pb.ExecResponse, self.timeout, fds).pid

    def signal(self, sig: int, pid: int = 0, exec_id: str = "", all: bool = False, container_id: str = "",
               foreground: bool = False) -> None:
        """Send `sig` to exec `exec_id`'s process, else to `pid`, else to the container's init;
        `all`: to every process of the container; `foreground`: to the foreground process group
        of that process's controlling terminal instead."""
        request = pb.SignalRequest(container_id=container_id, signal=sig, pid=pid, exec_id=exec_id, all=all,
                                   foreground=foreground)
        self._call("Signal", request, None, self.timeout)

    def wait(self, exec_id: str = "", pid: int = 0, timeout: float | None = None,
             container_id: str = "") -> tuple[int, Timestamp]:
        """Block until the container's process (exec `exec_id`'s, else `pid`, else its init)
        exits, at most `timeout` seconds (None: no limit); returns (runc-style status, exited_at)."""
        request = pb.WaitRequest(container_id=container_id, exec_id=exec_id, pid=pid)
        resp = self._call("Wait", request, pb.WaitResponse, timeout)
        return resp.exit_status, resp.exited_at

    def processes(self, container_id: str = "") -> list[pb.Process]:
        """Every process of the container (pid, ppid, uid, cmd, argv, exec_id, state, started_at)."""
        request = pb.ProcessesRequest(container_id=container_id)
        return list(self._call("Processes", request, pb.ProcessesResponse, self.timeout).processes)

    def stacks(self) -> str:
        """What the sentry is doing: its own stack and every task's state and syscall."""
        return self._call("Stacks", pb.StacksRequest(), pb.StacksResponse, self.timeout).stacks

    def pause(self, container_id: str = "") -> None:
        """Freeze every process of the (running) container, invisibly to them; returns once none
        of them runs.  Pausing a paused container is fine.  Its processes then show state "D"."""
        self._call("Pause", pb.PauseRequest(container_id=container_id), None, self.timeout)

    def resume(self, container_id: str = "") -> None:
        """Let a paused container's processes run again (a running container is left as it is)."""
        self._call("Resume", pb.ResumeRequest(container_id=container_id), None, self.timeout)

    # -- the wire --------------------------------------------------------------
    def _connect(self) -> socket.socket:
        try:
            if callable(self.target):
                return self.target()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                sock.connect(self.target.removeprefix("unix://"))
            except BaseException:
                sock.close()
                raise
            return sock
        except OSError as err:
            raise SentryGone(f"cannot reach the sentry's control socket: {err}") from None

    def _call(self, method: str, request, response_type, timeout: float | None, fds=()):
        data = Request(service=SERVICE, method=method, payload=request.SerializeToString()).SerializeToString()
        frame = fr.encode_frame(_STREAM_ID, fr.TYPE_REQUEST, data)
        with self._connect() as sock:
            sock.settimeout(timeout)
            try:
                sent = socket.send_fds(sock, [frame], list(fds)) if fds else 0
                sock.sendall(frame[sent:])
                header = fr.decode_header(_read_exactly(sock, fr.HEADER_SIZE))
                if header.type != fr.TYPE_RESPONSE or header.stream_id != _STREAM_ID \
                        or header.length > fr.MAX_PAYLOAD:
                    raise ControlError(Code.INTERNAL, f"unexpected frame from the sentry: {header}")
                resp = parse_response(_read_exactly(sock, header.length))
            except TimeoutError:
                raise ControlError(Code.DEADLINE_EXCEEDED, f"{method}: no answer from the sentry in time") from None
            except (BrokenPipeError, ConnectionResetError) as err:
                raise SentryGone(f"{method}: the sentry went away: {err}") from None
            except DecodeError as err:
                raise ControlError(Code.INTERNAL, f"{method}: undecodable response: {err}") from None
        if resp.status.code != Code.OK:
            raise ControlError(resp.status.code, resp.status.message)
        if response_type is None:
            return None
        message = response_type()
        try:
            message.ParseFromString(resp.payload)
        except DecodeError as err:
            raise ControlError(Code.INTERNAL, f"{method}: undecodable {response_type.__name__}: {err}") from None
        return message


def _stdio_roles(stdio) -> tuple[list[str], list[int]]:
    """The fd roles and fds of the streams of `stdio` that have an fd."""
    pairs = [(role, fd) for role, fd in zip(STDIO_ROLES, stdio) if fd is not None]
    return [role for role, _ in pairs], [fd for _, fd in pairs]


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SentryGone("the sentry closed the connection without answering (it exited?)")
        data += chunk
    return bytes(data)
