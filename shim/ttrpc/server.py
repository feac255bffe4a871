"""ttrpc server on asyncio, serving on a unix socket.

Usage::

    server = Server()
    server.register("example.v1.Echo", {"Echo": echo})   # async echo(payload: bytes, ctx) -> bytes
    server.register_service(shim_pb2.DESCRIPTOR.services_by_name["Task"], TaskService())
    await server.serve("/run/example.sock")               # returns once listening
    await server.serve_forever()

Per connection: the peer's uid is checked first (SO_PEERCRED: root and the
server's own uid are allowed unless ``allowed_uids`` says otherwise); then
request frames are read one after the other and each request runs in its own
task, so slow calls do not hold up others on the same connection.

Rules on the wire (see frame.py for the codec):

- unknown service / method → UNIMPLEMENTED ("service X" / "method X");
- a Request that does not decode, or a request body that does not decode as
  the typed handler's message → INVALID_ARGUMENT;
- a handler's exception → its status (``TtrpcError``) or one mapped from the
  Python exception (errors.status_of), UNKNOWN by default;
- ``timeout_nano`` > 0 → the handler is cancelled at the deadline and the call
  answered DEADLINE_EXCEEDED;
- a frame over 4 MiB → discarded and answered RESOURCE_EXHAUSTED (closing
  the connection instead when it is too long to skip, see frame.DISCARD_LIMIT);
  a response over 4 MiB is replaced by a RESOURCE_EXHAUSTED status;
- an unknown frame type, a response frame, an even stream id, a re-used id of a
  stream still running, or a connection closed inside a frame → the connection
  is closed (its running handlers are cancelled); a re-used id of a finished
  stream → INVALID_ARGUMENT;
- data frames (streaming, ttrpc >= 1.2) are not supported: a streaming request
  is answered UNIMPLEMENTED and data frames are ignored.
"""
from __future__ import annotations

import asyncio
import errno
import inspect
import os
import socket
import stat
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Mapping

import structlog
from google.protobuf.message import DecodeError, Message

from . import frame as fr
from .codes import Code
from .errors import OversizedFrameError, TruncatedFrameError, TtrpcError, status_of
from .messages import (Metadata, Request, error_response, metadata_from_pairs, ok_response,
                       parse_request, to_bytes)
from .peercred import PeerCred, default_allowed_uids, peer_credentials

log = structlog.get_logger("ringfence.shim.ttrpc")

__all__ = ["Server", "Context", "Handler", "strip_unix_scheme"]


@dataclass
class Context:
    """What a handler knows about its call."""

    service: str
    method: str
    stream_id: int
    # key -> values, as sent in Request.metadata (e.g. "containerd-namespace-ttrpc").
    metadata: Metadata
    # Deadline in event-loop time (loop.time()), or None without timeout_nano.
    deadline: float | None
    peer: PeerCred | None

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def get_metadata(self, key: str, default: str | None = None) -> str | None:
        """The first value sent for key."""
        values = self.metadata.get(key)
        return values[0] if values else default


# A raw handler: request body in, response body out (bytes, a message or None).
Handler = Callable[[bytes, Context], Awaitable[Any]]


def strip_unix_scheme(address: str) -> str:
    """containerd writes socket addresses as unix:///path; accept both forms."""
    return address[len("unix://"):] if address.startswith("unix://") else address


def _typed_handler(request_type: type[Message], func: Callable, output_name: str | None = None) -> Handler:
    """Wrap func(request_message, ctx) -> message into a raw handler."""
    in_name = request_type.DESCRIPTOR.full_name

    async def handler(payload: bytes, ctx: Context):
        request = request_type()
        try:
            request.ParseFromString(payload)
        except DecodeError as e:
            raise TtrpcError(Code.INVALID_ARGUMENT, f"cannot decode {in_name}: {e}") from None
        result = func(request, ctx)
        if inspect.isawaitable(result):
            result = await result
        if (output_name is not None and isinstance(result, Message)
                and result.DESCRIPTOR.full_name != output_name):
            raise TtrpcError(Code.INTERNAL, f"{ctx.method} returned {result.DESCRIPTOR.full_name}, "
                                            f"not {output_name}")
        return result

    return handler


def _socket_is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _bind_unix(path: str) -> socket.socket:
    """A bound unix socket at path; a stale socket file nobody listens on is
    replaced, a live one is EADDRINUSE."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(path)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or path.startswith("\0"):
                raise
            if not stat.S_ISSOCK(os.lstat(path).st_mode) or _socket_is_live(path):
                raise
            os.unlink(path)
            sock.bind(path)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """A ttrpc server. Register services, then ``await serve(path)``."""

    def __init__(self, *, allowed_uids: Iterable[int] | None = None,
                 max_payload: int = fr.MAX_PAYLOAD, discard_limit: int = fr.DISCARD_LIMIT,
                 max_concurrent_requests: int = 1024):
        """allowed_uids: peer uids accepted (default: 0 and our own euid).
        max_concurrent_requests: per connection; beyond it the server stops
        reading that connection until a handler finishes."""
        self.allowed_uids = (frozenset(allowed_uids) if allowed_uids is not None
                             else default_allowed_uids())
        self.max_payload = max_payload
        self.discard_limit = discard_limit
        self.max_concurrent_requests = max_concurrent_requests
        self._services: dict[str, dict[str, Handler]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()
        self._path: str | None = None
        self._path_id: tuple[int, int] | None = None
        self._closing = False

    # ------------------------------------------------------------ registration

    def register(self, service: str, handlers: Mapping[str, Handler]) -> None:
        """Add raw handlers: {method: async handler(payload: bytes, ctx) -> bytes}.
        A handler may also return a protobuf message or None (empty body)."""
        methods = self._services.setdefault(service, {})
        for name, handler in handlers.items():
            if not callable(handler):
                raise TypeError(f"handler for {service}/{name} is not callable")
            methods[name] = handler

    def register_typed(self, service: str,
                       methods: Mapping[str, tuple[type[Message], Callable]]) -> None:
        """Add typed handlers: {method: (RequestClass, async handler(request, ctx) -> message)}.
        The request is decoded (INVALID_ARGUMENT if it does not) before the call."""
        self.register(service, {name: _typed_handler(cls, func) for name, (cls, func) in methods.items()})

    def register_service(self, descriptor, servicer: object) -> None:
        """Register every method of a generated service that servicer implements.

        descriptor: a ServiceDescriptor, e.g. ``shim_pb2.DESCRIPTOR.services_by_name["Task"]``;
        servicer: an object with ``async def Create(self, request, ctx) -> CreateTaskResponse``
        and so on (method names as in the .proto). Methods it lacks answer UNIMPLEMENTED."""
        from google.protobuf import message_factory

        handlers = {}
        for method in descriptor.methods:
            impl = getattr(servicer, method.name, None)
            if impl is None:
                continue
            request_type = message_factory.GetMessageClass(method.input_type)
            handlers[method.name] = _typed_handler(request_type, impl, method.output_type.full_name)
        self._services.setdefault(descriptor.full_name, {})
        self.register(descriptor.full_name, handlers)

    @property
    def services(self) -> dict[str, list[str]]:
        """Registered services and their methods."""
        return {s: sorted(m) for s, m in self._services.items()}

    # ----------------------------------------------------------------- serving

    async def serve(self, path: str | None = None, *, sock: socket.socket | None = None,
                    mode: int | None = None, backlog: int = 128) -> None:
        """Listen on a unix socket and return once listening.

        path: socket path (``unix://`` prefix allowed; "\\0name" = abstract),
        created here and removed again by close(); or sock: an already bound
        (or listening) unix socket, e.g. the one a shim inherits as fd 3.
        mode: chmod the socket file (e.g. 0o600)."""
        if self._server is not None:
            raise RuntimeError("server is already serving")
        if (path is None) == (sock is None):
            raise ValueError("give exactly one of path and sock")
        if path is not None:
            path = strip_unix_scheme(path)
            sock = _bind_unix(path)
            if not path.startswith("\0"):
                if mode is not None:
                    os.chmod(path, mode)
                st = os.lstat(path)
                self._path, self._path_id = path, (st.st_dev, st.st_ino)
        self._closing = False
        self._server = await asyncio.start_unix_server(self._on_connect, sock=sock, backlog=backlog)

    async def serve_forever(self) -> None:
        """Serve until close() (or cancellation)."""
        if self._server is None:
            raise RuntimeError("call serve() first")
        try:
            await self._server.serve_forever()
        except asyncio.CancelledError:
            if not self._closing:
                raise

    @property
    def path(self) -> str | None:
        return self._path

    def close(self) -> None:
        """Stop listening, close every connection (cancelling running
        handlers) and remove the socket file serve() created."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.abort()
        if self._path is not None:
            try:
                st = os.lstat(self._path)
                if (st.st_dev, st.st_ino) == self._path_id:
                    os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = self._path_id = None

    async def wait_closed(self) -> None:
        """Wait until close() has finished with every connection."""
        if self._server is not None:
            await self._server.wait_closed()
        tasks = [c.task for c in list(self._connections) if c.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Graceful close: stop accepting, let running handlers finish (for at
        most timeout seconds), then close().

        From a handler (e.g. the shim's Shutdown RPC), start it as a task,
        ``asyncio.create_task(server.shutdown(5))``, and return: the reply is
        sent before the connections close."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        me = asyncio.current_task()
        pending = [t for c in list(self._connections) for t in list(c.active.values()) if t is not me]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        await self.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self, reader, writer)
        conn.task = asyncio.current_task()
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    # --------------------------------------------------------------- dispatch

    async def _invoke(self, req: Request, ctx: Context) -> bytes:
        methods = self._services.get(req.service)
        if methods is None:
            raise TtrpcError(Code.UNIMPLEMENTED, f"service {req.service}")
        handler = methods.get(req.method)
        if handler is None:
            raise TtrpcError(Code.UNIMPLEMENTED, f"method {req.method}")
        timeout = req.timeout_nano / 1e9 if req.timeout_nano > 0 else None
        async with asyncio.timeout(timeout):
            result = handler(req.payload, ctx)
            if inspect.isawaitable(result):
                result = await result
        return to_bytes(result)


class _Connection:
    """One accepted connection: reads frames, runs requests, writes responses."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.frames = fr.FrameReader(reader, server.max_payload, server.discard_limit)
        self.out = fr.FrameWriter(writer, server.max_payload)
        self.writer = writer
        self.active: dict[int, asyncio.Task] = {}
        self.last_stream_id = 0
        self.slots = asyncio.Semaphore(server.max_concurrent_requests)
        self.peer: PeerCred | None = None
        self.task: asyncio.Task | None = None
        self.log = log

    def abort(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self) -> None:
        try:
            if self._admit():
                await self._read_loop()
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError) as e:
            self.log.debug("ttrpc connection error", error=str(e))
        except Exception:  # a bug here must not take the server down
            self.log.exception("ttrpc connection failed")
        finally:
            await self._teardown()

    def _admit(self) -> bool:
        sock = self.writer.get_extra_info("socket")
        try:
            self.peer = peer_credentials(sock)
        except OSError as e:
            self.log.warning("ttrpc: cannot read peer credentials, refusing", error=str(e))
            return False
        self.log = log.bind(peer_pid=self.peer.pid, peer_uid=self.peer.uid)
        if self.peer.uid not in self.server.allowed_uids:
            self.log.warning("ttrpc: refusing connection from another user")
            return False
        return True

    def _close(self, reason: str, **kw) -> None:
        self.log.info("ttrpc: closing connection", reason=reason, **kw)

    async def _read_loop(self) -> None:
        max_payload = self.server.max_payload
        while True:
            try:
                header = await self.frames.read_header()
            except TruncatedFrameError as e:
                return self._close(str(e))
            if header is None:
                return
            sid = header.stream_id
            if header.type not in (fr.TYPE_REQUEST, fr.TYPE_DATA):
                return self._close("unexpected frame type", type=header.type, stream_id=sid)
            if sid % 2 == 0:
                return self._close("even stream id from a client", stream_id=sid)
            if header.length > max_payload:
                if header.type == fr.TYPE_REQUEST and sid <= self.last_stream_id:
                    return self._close("oversized request on a used stream id", stream_id=sid)
                try:
                    await self.frames.skip_oversized(header)
                except TruncatedFrameError as e:
                    return self._close(str(e))
                except OversizedFrameError as e:
                    if not e.discarded:
                        return self._close(str(e))
                    if header.type == fr.TYPE_REQUEST:
                        self.last_stream_id = sid
                        await self._reply(sid, error_response(Code.RESOURCE_EXHAUSTED, str(e)))
                    continue
            try:
                payload = await self.frames.read_payload(header)
            except TruncatedFrameError as e:
                return self._close(str(e))
            if header.type == fr.TYPE_DATA:
                self.log.debug("ttrpc: ignoring data frame (streams are not supported)", stream_id=sid)
                continue
            if sid <= self.last_stream_id:
                if sid in self.active:
                    return self._close("request on a stream id still in use", stream_id=sid)
                await self._reply(sid, error_response(
                    Code.INVALID_ARGUMENT, "StreamID cannot be re-used and must increment"))
                continue
            self.last_stream_id = sid
            try:
                req = parse_request(payload)
            except DecodeError as e:
                await self._reply(sid, error_response(Code.INVALID_ARGUMENT,
                                                      f"cannot decode ttrpc.Request: {e}"))
                continue
            if header.flags & fr.FLAG_REMOTE_OPEN:
                await self._reply(sid, error_response(
                    Code.UNIMPLEMENTED, f"streaming is not supported: {req.service}/{req.method}"))
                continue
            await self.slots.acquire()
            task = asyncio.create_task(self._dispatch(sid, req))
            self.active[sid] = task

    async def _dispatch(self, sid: int, req: Request) -> None:
        loop = asyncio.get_running_loop()
        try:
            ctx = Context(service=req.service, method=req.method, stream_id=sid,
                          metadata=metadata_from_pairs(req.metadata),
                          deadline=(loop.time() + req.timeout_nano / 1e9) if req.timeout_nano > 0 else None,
                          peer=self.peer)
            try:
                data = ok_response(await self.server._invoke(req, ctx))
            except Exception as e:
                code, message = status_of(e)
                if code == Code.UNKNOWN:
                    self.log.exception("ttrpc handler failed", service=req.service, method=req.method)
                details = e.details if isinstance(e, TtrpcError) else ()
                data = error_response(code, message, details)
            if len(data) > self.server.max_payload:
                data = error_response(Code.RESOURCE_EXHAUSTED,
                                      f"response of {len(data)} bytes exceeds the maximum message "
                                      f"size of {self.server.max_payload}")
            await self._reply(sid, data)
        finally:
            self.active.pop(sid, None)
            self.slots.release()

    async def _reply(self, sid: int, data: bytes) -> None:
        try:
            await self.out.write(sid, fr.TYPE_RESPONSE, data)
        except (ConnectionError, OSError) as e:
            self.log.debug("ttrpc: cannot send response", stream_id=sid, error=str(e))

    async def _teardown(self) -> None:
        tasks = list(self.active.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
