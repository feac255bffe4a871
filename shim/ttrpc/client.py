"""ttrpc client on asyncio.

Usage::

    client = await Client.connect("/run/containerd/containerd.sock.ttrpc")
    await client.call("containerd.services.events.ttrpc.v1.Events", "Forward",
                      ForwardRequest(envelope=...), Empty, timeout=5,
                      metadata={"containerd-namespace-ttrpc": "default"})
    task = client.stub(shim_pb2.DESCRIPTOR.services_by_name["Task"])
    resp = await task.State(StateRequest(id="c1"))      # -> StateResponse
    await client.close()

Calls are multiplexed on one connection: each gets the next odd stream id
(1, 3, 5, ...), and the responses, in whatever order they come, are matched
by stream id. A non-OK status raises TtrpcError(code, message); a lost
connection fails every pending call with ConnectionClosedError (a TtrpcError
with code UNAVAILABLE); a local timeout raises DEADLINE_EXCEEDED (the timeout
is also sent to the server as timeout_nano).
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any

import structlog
from google.protobuf.message import DecodeError, Message

from . import frame as fr
from .codes import Code
from .errors import (ConnectionClosedError, FrameError, OversizedFrameError,
                     OversizedMessageError, TtrpcError)
from .messages import MetadataLike, Request, Response, metadata_to_pairs, parse_response, to_bytes
from .server import strip_unix_scheme

log = structlog.get_logger("ringfence.shim.ttrpc")

__all__ = ["Client", "Stub"]


class Client:
    """A ttrpc client over one stream connection (see module docstring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 max_payload: int = fr.MAX_PAYLOAD, discard_limit: int = fr.DISCARD_LIMIT):
        """Wrap an open connection (use ``Client.connect`` for a unix socket path)."""
        self._frames = fr.FrameReader(reader, max_payload, discard_limit)
        self._out = fr.FrameWriter(writer, max_payload)
        self._writer = writer
        self.max_payload = max_payload
        self._next_stream_id = 1
        self._pending: dict[int, asyncio.Future] = {}
        self._closed: ConnectionClosedError | None = None
        self._reader_task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, path: str, *, timeout: float | None = None, **kw) -> "Client":
        """Connect to a unix socket (``unix://`` prefix allowed; "\\0name" =
        abstract). OSError when nobody listens there."""
        path = strip_unix_scheme(path)
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer, **kw)

    @classmethod
    async def from_socket(cls, sock: socket.socket, **kw) -> "Client":
        """Use an already connected stream socket."""
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer, **kw)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def call(self, service: str, method: str, request: Any = b"", response_type: type | None = None,
                   timeout: float | None = None, metadata: MetadataLike = None) -> Any:
        """Call service/method with request (a protobuf message or bytes).

        Returns the response body as bytes, or parsed into response_type (a
        generated message class). timeout: seconds (sent as timeout_nano and
        enforced locally). metadata: {key: value or [values]} or (key, value) pairs.
        """
        if self._closed is not None:
            raise ConnectionClosedError(self._closed.message)
        req = Request(service=service, method=method, payload=to_bytes(request),
                      metadata=metadata_to_pairs(metadata))
        if timeout is not None:
            if timeout <= 0:
                raise TtrpcError(Code.DEADLINE_EXCEEDED, "context deadline exceeded")
            req.timeout_nano = max(1, int(timeout * 1e9))
        data = req.SerializeToString()
        if len(data) > self.max_payload:
            raise OversizedMessageError(len(data), self.max_payload)
        sid = self._next_stream_id
        if sid > fr.MAX_STREAM_ID:
            raise TtrpcError(Code.RESOURCE_EXHAUSTED, "stream ids exhausted on this connection")
        fut = asyncio.get_running_loop().create_future()
        # Id allocation and send happen with no await in between, so ids go
        # out on the wire in increasing order even for concurrent calls.
        self._out.send(sid, fr.TYPE_REQUEST, data)
        self._next_stream_id += 2
        self._pending[sid] = fut
        try:
            try:
                async with asyncio.timeout(timeout) as scope:
                    await self._out.drain()
                    resp: Response = await fut
            except TimeoutError:
                if scope.expired():
                    raise TtrpcError(Code.DEADLINE_EXCEEDED, "context deadline exceeded") from None
                raise
            except (ConnectionError, OSError) as e:
                raise ConnectionClosedError(f"ttrpc: closed: {e}") from None
        finally:
            self._pending.pop(sid, None)
        if resp.HasField("status") and resp.status.code != Code.OK:
            raise TtrpcError(resp.status.code, resp.status.message, resp.status.details)
        if response_type is None:
            return resp.payload
        msg = response_type()
        try:
            msg.ParseFromString(resp.payload)
        except DecodeError as e:
            raise TtrpcError(Code.INTERNAL, f"cannot decode {service}/{method} response: {e}") from None
        return msg

    def stub(self, descriptor) -> "Stub":
        """Typed methods for a generated service (a ServiceDescriptor)."""
        return Stub(self, descriptor)

    async def close(self) -> None:
        """Close the connection; pending calls fail with ConnectionClosedError."""
        self._fail_all(ConnectionClosedError("ttrpc: closed"))
        self._writer.close()
        self._reader_task.cancel()
        try:
            await self._reader_task
        except asyncio.CancelledError:
            pass
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _fail_all(self, error: ConnectionClosedError) -> None:
        if self._closed is None:
            self._closed = error
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionClosedError(error.message))
        self._pending.clear()

    def _settle(self, sid: int, result: Response | None = None, error: BaseException | None = None) -> None:
        fut = self._pending.get(sid)
        if fut is None or fut.done():
            return  # the caller gave up (timeout, cancellation): drop it
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    async def _read_loop(self) -> None:
        reason = "ttrpc: closed"
        try:
            while True:
                try:
                    frame = await self._frames.read_frame()
                except OversizedFrameError as e:
                    if not e.discarded:
                        raise
                    self._settle(e.header.stream_id, error=TtrpcError(Code.RESOURCE_EXHAUSTED, str(e)))
                    continue
                if frame is None:
                    reason = "ttrpc: closed: connection closed by the server"
                    break
                if frame.type == fr.TYPE_DATA:
                    continue  # streams are not supported
                if frame.type != fr.TYPE_RESPONSE:
                    reason = f"ttrpc: closed: unexpected frame type {frame.type} from the server"
                    log.warning("ttrpc: closing connection", reason=reason)
                    break
                try:
                    resp = parse_response(frame.payload)
                except DecodeError as e:
                    self._settle(frame.stream_id,
                                 error=TtrpcError(Code.INTERNAL, f"cannot decode ttrpc.Response: {e}"))
                    continue
                self._settle(frame.stream_id, resp)
        except asyncio.CancelledError:
            pass
        except (FrameError, ConnectionError, OSError) as e:
            reason = f"ttrpc: closed: {e}"
        finally:
            self._fail_all(ConnectionClosedError(reason))
            self._writer.close()


class Stub:
    """``stub.Method(request, timeout=None, metadata=None)`` for every method
    of a generated service; returns the decoded response message."""

    def __init__(self, client: Client, descriptor):
        from google.protobuf import message_factory

        self._client = client
        self._service = descriptor.full_name
        for method in descriptor.methods:
            setattr(self, method.name, self._make(method.name,
                                                  message_factory.GetMessageClass(method.input_type),
                                                  message_factory.GetMessageClass(method.output_type)))

    def _make(self, name: str, request_type: type[Message], response_type: type[Message]):
        async def call(request: Message | None = None, *, timeout: float | None = None,
                       metadata: MetadataLike = None) -> Message:
            if request is None:
                request = request_type()
            elif (isinstance(request, Message)
                  and request.DESCRIPTOR.full_name != request_type.DESCRIPTOR.full_name):
                raise TypeError(f"{self._service}/{name} takes {request_type.DESCRIPTOR.full_name}, "
                                f"not {request.DESCRIPTOR.full_name}")
            return await self._client.call(self._service, name, request, response_type,
                                           timeout=timeout, metadata=metadata)
        call.__name__ = name
        call.__qualname__ = f"{type(self).__name__}.{name}"
        return call
