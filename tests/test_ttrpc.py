"""ringfence.shim.ttrpc: frame codec, server and client over real unix sockets.

Malformed input is sent with a raw connection (RawConn) that writes bytes and
reads frames itself, so the server's answers (or its closing the connection)
are observed on the wire. The last tests check interoperability with
containerd's own ttrpc (its events service, and `ctr shim` as a client).
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from containerd_env import private_containerd
from ringfence.shim import ttrpc
from ringfence.shim.ttrpc import (Client, Code, ConnectionClosedError, OversizedMessageError, Server,
                                  TtrpcError)
from ringfence.shim.ttrpc import frame as fr
from ringfence.proto.ttrpc.request_pb2 import KeyValue, Request, Response

SVC = "test.v1.Echo"
MiB = 1 << 20


def aio(fn):
    """Run an async test function in a fresh event loop, with a time limit."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        async def limited():
            return await asyncio.wait_for(fn(*args, **kwargs), 30)
        return asyncio.run(limited())
    return wrapper


@pytest.fixture
def sockdir():
    """A short directory (unix socket paths are limited to 107 bytes) that
    other users may traverse."""
    d = tempfile.mkdtemp(prefix="rf-ttrpc-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Recorder:
    """State shared between the test and the handlers of the test service."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []
        self.cancelled: list[str] = []
        self.contexts: list[ttrpc.Context] = []
        self.gate = asyncio.Event()


def make_service(rec: Recorder) -> dict:
    async def echo(payload, ctx):
        rec.calls.append(("Echo", ctx.stream_id))
        return payload

    async def sleep(payload, ctx):
        rec.calls.append(("Sleep", ctx.stream_id))
        try:
            await asyncio.sleep(float(payload.decode()))
        except asyncio.CancelledError:
            rec.cancelled.append(payload.decode())
            raise
        return b"slept " + payload

    async def context(payload, ctx):
        rec.contexts.append(ctx)
        return json.dumps({"metadata": ctx.metadata, "stream_id": ctx.stream_id,
                           "remaining": ctx.time_remaining(),
                           "peer_uid": ctx.peer.uid}).encode()

    async def fail(payload, ctx):
        raise RuntimeError("boom")

    async def not_found(payload, ctx):
        raise TtrpcError(Code.NOT_FOUND, "no such thing")

    async def big(payload, ctx):
        return b"x" * (int(payload.decode()))

    async def wait_gate(payload, ctx):
        await rec.gate.wait()
        return b"gate passed"

    async def open_gate(payload, ctx):
        rec.gate.set()
        return b"opened"

    return {"Echo": echo, "Sleep": sleep, "Context": context, "Fail": fail, "NotFound": not_found,
            "Big": big, "WaitGate": wait_gate, "OpenGate": open_gate}


async def start_server(sockdir, **kw) -> tuple[Server, str, Recorder]:
    rec = Recorder()
    server = Server(**kw)
    server.register(SVC, make_service(rec))
    path = os.path.join(sockdir, "ttrpc.sock")
    await server.serve(path, mode=0o666)
    return server, path, rec


async def stop(server: Server, *clients) -> None:
    for c in clients:
        await c.close()
    server.close()
    await server.wait_closed()


def request_bytes(service=SVC, method="Echo", payload=b"", timeout_nano=0, metadata=()) -> bytes:
    return Request(service=service, method=method, payload=payload, timeout_nano=timeout_nano,
                   metadata=[KeyValue(key=k, value=v) for k, v in metadata]).SerializeToString()


class RawConn:
    """A connection that speaks bytes, to send what a well-behaved client never would."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path) -> "RawConn":
        return cls(*await asyncio.open_unix_connection(path))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_frame(self, sid, type_, payload, flags=0) -> None:
        await self.send(fr.encode_header(len(payload), sid, type_, flags) + payload)

    async def request(self, sid, method="Echo", payload=b"", **kw) -> None:
        await self.send_frame(sid, fr.TYPE_REQUEST, request_bytes(method=method, payload=payload, **kw))

    async def read_frame(self, timeout=5.0) -> fr.Frame | None:
        """The next frame, or None when the server closed the connection."""
        try:
            async with asyncio.timeout(timeout):
                header = fr.decode_header(await self.reader.readexactly(fr.HEADER_SIZE))
                payload = await self.reader.readexactly(header.length)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None
        return fr.Frame(header.stream_id, header.type, header.flags, payload)

    async def response(self, timeout=5.0) -> tuple[int, Response]:
        frame = await self.read_frame(timeout)
        assert frame is not None, "connection closed instead of a response"
        assert frame.type == fr.TYPE_RESPONSE and frame.flags == 0
        resp = Response()
        resp.ParseFromString(frame.payload)
        return frame.stream_id, resp

    async def expect_closed(self, timeout=5.0) -> None:
        frame = await self.read_frame(timeout)
        assert frame is None, f"expected the connection closed, got {frame}"

    def close(self):
        self.writer.close()


async def assert_serving(path) -> None:
    """The server still answers on a fresh connection."""
    async with await Client.connect(path) as c:
        assert await c.call(SVC, "Echo", b"still here", timeout=5) == b"still here"


# ------------------------------------------------------------------ codec


def test_header_is_ten_big_endian_bytes():
    h = fr.encode_header(0x01020304, 0x0A0B0C0D, fr.TYPE_REQUEST, fr.FLAG_REMOTE_OPEN)
    assert h == bytes([1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 1, 2])
    assert fr.HEADER_SIZE == 10
    assert fr.decode_header(h) == fr.Header(0x01020304, 0x0A0B0C0D, 1, 2)
    assert (fr.TYPE_REQUEST, fr.TYPE_RESPONSE, fr.TYPE_DATA) == (1, 2, 3)
    assert fr.MAX_PAYLOAD == 4 * MiB
    with pytest.raises(ValueError):
        fr.decode_header(h[:9])


def test_encode_frame_enforces_maximum():
    frame = fr.encode_frame(7, fr.TYPE_RESPONSE, b"abc")
    assert frame == b"\x00\x00\x00\x03\x00\x00\x00\x07\x02\x00abc"
    assert len(fr.encode_frame(1, fr.TYPE_REQUEST, b"\0" * fr.MAX_PAYLOAD)) == fr.MAX_PAYLOAD + 10
    with pytest.raises(OversizedMessageError) as e:
        fr.encode_frame(1, fr.TYPE_REQUEST, b"\0" * (fr.MAX_PAYLOAD + 1))
    assert e.value.code == Code.RESOURCE_EXHAUSTED


def reader_with(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


@aio
async def test_frame_reader_malformed_input():
    ok = fr.encode_frame(3, fr.TYPE_REQUEST, b"hello")
    # two frames then a clean EOF
    fr_ = fr.FrameReader(reader_with(ok + fr.encode_frame(5, fr.TYPE_DATA, b"", fr.FLAG_NO_DATA)))
    assert await fr_.read_frame() == fr.Frame(3, 1, 0, b"hello")
    assert await fr_.read_frame() == fr.Frame(5, 3, 4, b"")
    assert await fr_.read_frame() is None
    # EOF inside the header, inside the payload
    for cut in (1, 9, 12):
        with pytest.raises(ttrpc.TruncatedFrameError):
            await fr.FrameReader(reader_with(ok[:cut])).read_frame()
    # oversized but skippable: discarded, and the stream stays in sync
    big = fr.encode_header(fr.MAX_PAYLOAD + 1, 9, fr.TYPE_REQUEST) + b"\0" * (fr.MAX_PAYLOAD + 1)
    fr_ = fr.FrameReader(reader_with(big + ok))
    with pytest.raises(ttrpc.OversizedFrameError) as e:
        await fr_.read_frame()
    assert e.value.discarded and e.value.header.stream_id == 9
    assert await fr_.read_frame() == fr.Frame(3, 1, 0, b"hello")
    # oversized beyond the discard limit: not read at all
    fr_ = fr.FrameReader(reader_with(fr.encode_header(0xFFFFFFFF, 1, fr.TYPE_REQUEST) + ok))
    with pytest.raises(ttrpc.OversizedFrameError) as e:
        await fr_.read_frame()
    assert not e.value.discarded
    # oversized and cut short while discarding
    with pytest.raises(ttrpc.TruncatedFrameError):
        await fr.FrameReader(reader_with(big[:1000])).read_frame()


# ---------------------------------------------------------- server, raw wire


@aio
async def test_round_trip_on_the_wire(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    await raw.request(1, payload=b"ping")
    sid, resp = await raw.response()
    assert sid == 1
    assert resp.status.code == 0 and resp.payload == b"ping"
    await raw.request(3, method="NotFound")
    sid, resp = await raw.response()
    assert (sid, resp.status.code, resp.status.message) == (3, Code.NOT_FOUND, "no such thing")
    raw.close()
    await stop(server)


@aio
async def test_unknown_service_and_method_are_unimplemented(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    await raw.send_frame(1, fr.TYPE_REQUEST, request_bytes(service="no.such.Service", method="Echo"))
    sid, resp = await raw.response()
    assert (sid, resp.status.code, resp.status.message) == (1, 12, "service no.such.Service")
    await raw.request(3, method="NoSuchMethod")
    sid, resp = await raw.response()
    assert (sid, resp.status.code, resp.status.message) == (3, 12, "method NoSuchMethod")
    async with await Client.connect(path) as c:
        with pytest.raises(TtrpcError) as e:
            await c.call(SVC, "Nope", b"")
        assert e.value.code == Code.UNIMPLEMENTED
    assert rec.calls == []
    raw.close()
    await stop(server)


@aio
async def test_garbage_protobuf_is_invalid_argument(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    # a truncated varint, an invalid wire type, a string that is not UTF-8
    for sid, junk in ((1, b"\xff\xff\xff"), (3, b"\x0f\x00"), (5, b"\x0a\x02\xff\xfe")):
        await raw.send_frame(sid, fr.TYPE_REQUEST, junk)
        got, resp = await raw.response()
        assert got == sid and resp.status.code == Code.INVALID_ARGUMENT, resp
    # the connection is still fine afterwards
    await raw.request(7, payload=b"after")
    assert (await raw.response())[1].payload == b"after"
    assert rec.calls == [("Echo", 7)]
    raw.close()
    await stop(server)


@aio
async def test_garbage_in_typed_request_body_is_invalid_argument(sockdir):
    from ringfence.proto.containerd.task.v2 import shim_pb2

    server = Server()
    seen = []

    async def start(req, ctx):
        seen.append(req.id)
        return shim_pb2.StartResponse(pid=7)

    server.register_typed("containerd.task.v2.Task", {"Start": (shim_pb2.StartRequest, start)})
    path = os.path.join(sockdir, "t.sock")
    await server.serve(path)
    async with await Client.connect(path) as c:
        with pytest.raises(TtrpcError) as e:
            await c.call("containerd.task.v2.Task", "Start", b"\x0a\x05ab")  # length past the end
        assert e.value.code == Code.INVALID_ARGUMENT
        resp = await c.call("containerd.task.v2.Task", "Start", shim_pb2.StartRequest(id="c1"),
                            shim_pb2.StartResponse)
        assert resp.pid == 7 and seen == ["c1"]
    await stop(server)


@aio
async def test_oversized_request_frame_gets_resource_exhausted(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    n = fr.MAX_PAYLOAD + 1
    await raw.send(fr.encode_header(n, 1, fr.TYPE_REQUEST) + b"\x0a" * n)
    sid, resp = await raw.response(timeout=10)
    assert sid == 1 and resp.status.code == Code.RESOURCE_EXHAUSTED
    # the payload was discarded: the connection is in sync and usable
    await raw.request(3, payload=b"next")
    sid, resp = await raw.response()
    assert (sid, resp.status.code, resp.payload) == (3, 0, b"next")
    assert rec.calls == [("Echo", 3)]
    raw.close()
    await stop(server)


@aio
async def test_oversized_length_that_cannot_be_skipped_closes(sockdir):
    server, path, rec = await start_server(sockdir)
    for length in (0xFFFFFFFF, fr.DISCARD_LIMIT + 1):
        raw = await RawConn.open(path)
        await raw.send(fr.encode_header(length, 1, fr.TYPE_REQUEST) + request_bytes())
        await raw.expect_closed()
        raw.close()
    await assert_serving(path)
    await stop(server)


@aio
async def test_unknown_frame_types_close_the_connection(sockdir):
    server, path, rec = await start_server(sockdir)
    for type_ in (0, fr.TYPE_RESPONSE, 4, 0xFF):
        raw = await RawConn.open(path)
        await raw.send_frame(1, type_, request_bytes())
        await raw.expect_closed()
        raw.close()
    assert rec.calls == []
    await assert_serving(path)
    await stop(server)


@aio
async def test_even_stream_id_closes_the_connection(sockdir):
    server, path, rec = await start_server(sockdir)
    for sid in (0, 2, 0xFFFFFFFE):
        raw = await RawConn.open(path)
        await raw.request(sid)
        await raw.expect_closed()
        raw.close()
    # even after good requests on the same connection
    raw = await RawConn.open(path)
    await raw.request(1)
    assert (await raw.response())[0] == 1
    await raw.request(4)
    await raw.expect_closed()
    raw.close()
    assert rec.calls == [("Echo", 1)]
    await assert_serving(path)
    await stop(server)


@aio
async def test_truncated_frames_close_the_connection(sockdir):
    server, path, rec = await start_server(sockdir)
    whole = fr.encode_frame(1, fr.TYPE_REQUEST, request_bytes(payload=b"x" * 100))
    bystander = await Client.connect(path)
    pending = asyncio.create_task(bystander.call(SVC, "Sleep", b"0.3"))
    for cut in (3, 9, 10, 60):  # inside the header, then inside the payload
        raw = await RawConn.open(path)
        await raw.send(whole[:cut])
        raw.writer.write_eof()
        await raw.expect_closed()
        raw.close()
    assert rec.calls == [("Sleep", 1)]
    # another connection is not disturbed
    assert await pending == b"slept 0.3"
    await assert_serving(path)
    await stop(server, bystander)


@aio
async def test_reused_stream_id(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    await raw.request(5)
    assert (await raw.response())[0] == 5
    await raw.request(3)  # lower than the last one: refused
    sid, resp = await raw.response()
    assert sid == 3 and resp.status.code == Code.INVALID_ARGUMENT
    await raw.request(7, method="Sleep", payload=b"5")
    await asyncio.sleep(0.1)
    await raw.request(7)  # the id of a running stream: protocol violation
    await raw.expect_closed()
    raw.close()
    await asyncio.sleep(0.1)
    assert rec.cancelled == ["5"]  # the running handler was cancelled with its connection
    await stop(server)


@aio
async def test_streaming_requests_and_data_frames(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    await raw.send_frame(1, fr.TYPE_REQUEST, request_bytes(), flags=fr.FLAG_REMOTE_OPEN)
    sid, resp = await raw.response()
    assert sid == 1 and resp.status.code == Code.UNIMPLEMENTED
    await raw.send_frame(1, fr.TYPE_DATA, b"ignored", flags=fr.FLAG_REMOTE_CLOSED)
    await raw.request(3, payload=b"ok")
    assert (await raw.response())[1].payload == b"ok"
    raw.close()
    await stop(server)


# --------------------------------------------------------- client and server


@aio
async def test_handler_errors(sockdir):
    server, path, rec = await start_server(sockdir)
    async with await Client.connect(path) as c:
        with pytest.raises(TtrpcError) as e:
            await c.call(SVC, "Fail", b"")
        assert (e.value.code, e.value.message) == (Code.UNKNOWN, "boom")
        with pytest.raises(TtrpcError) as e:
            await c.call(SVC, "NotFound", b"")
        assert (e.value.code, e.value.message) == (Code.NOT_FOUND, "no such thing")
        assert "NOT_FOUND" in str(e.value)
        assert await c.call(SVC, "Echo", b"fine") == b"fine"
    await stop(server)


@aio
async def test_concurrent_calls_are_multiplexed(sockdir):
    server, path, rec = await start_server(sockdir)
    async with await Client.connect(path) as c:
        # 40 calls whose handlers finish in the reverse order of the calls
        delays = [f"{(40 - i) * 0.01:.2f}" for i in range(40)]
        results = await asyncio.gather(*(c.call(SVC, "Sleep", d.encode()) for d in delays))
        assert results == [b"slept " + d.encode() for d in delays]
        # a call waits for a later call on the same connection: needs concurrency
        waiting = asyncio.create_task(c.call(SVC, "WaitGate", b""))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await c.call(SVC, "OpenGate", b"") == b"opened"
        assert await asyncio.wait_for(waiting, 5) == b"gate passed"
    # the client used odd ids from 1, in steps of 2
    ids = [sid for _, sid in rec.calls]
    assert sorted(ids) == list(range(1, 2 * len(ids), 2))
    await stop(server)


@aio
async def test_stream_ids_and_payload_types(sockdir):
    server, path, rec = await start_server(sockdir)
    async with await Client.connect(path) as c:
        for expected in (1, 3, 5):
            out = json.loads(await c.call(SVC, "Context", b""))
            assert out["stream_id"] == expected
        from google.protobuf.wrappers_pb2 import StringValue
        back = await c.call(SVC, "Echo", StringValue(value="typed"), StringValue)
        assert back.value == "typed"
        assert await c.call(SVC, "Echo", None) == b""
        with pytest.raises(TypeError):
            await c.call(SVC, "Echo", "a str is not a message")
    await stop(server)


@aio
async def test_server_honours_timeout_nano(sockdir):
    server, path, rec = await start_server(sockdir)
    raw = await RawConn.open(path)
    t0 = time.monotonic()
    await raw.request(1, method="Sleep", payload=b"10", timeout_nano=200_000_000)
    sid, resp = await raw.response()
    elapsed = time.monotonic() - t0
    assert sid == 1 and resp.status.code == Code.DEADLINE_EXCEEDED
    assert 0.15 < elapsed < 3
    assert rec.cancelled == ["10"]
    # no timeout_nano: no deadline
    await raw.request(3, method="Context")
    assert json.loads((await raw.response())[1].payload)["remaining"] is None
    raw.close()
    await stop(server)


@aio
async def test_client_timeout(sockdir):
    server, path, rec = await start_server(sockdir)
    async with await Client.connect(path) as c:
        t0 = time.monotonic()
        with pytest.raises(TtrpcError) as e:
            await c.call(SVC, "Sleep", b"10", timeout=0.2)
        assert e.value.code == Code.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 3
        # the server saw the deadline too
        out = json.loads(await c.call(SVC, "Context", b"", timeout=30))
        assert 25 < out["remaining"] <= 30
        # the connection survives the timed-out call
        assert await c.call(SVC, "Echo", b"again") == b"again"
    await asyncio.sleep(0.1)
    assert rec.cancelled == ["10"]
    await stop(server)


@aio
async def test_metadata_reaches_handlers(sockdir):
    server, path, rec = await start_server(sockdir)
    async with await Client.connect(path) as c:
        out = json.loads(await c.call(SVC, "Context", b"", metadata={
            "containerd-namespace-ttrpc": "k8s.io", "multi": ["a", "b"]}))
        assert out["metadata"] == {"containerd-namespace-ttrpc": ["k8s.io"], "multi": ["a", "b"]}
        out = json.loads(await c.call(SVC, "Context", b"", metadata=[("k", "1"), ("k", "2")]))
        assert out["metadata"] == {"k": ["1", "2"]}
        assert out["peer_uid"] == os.geteuid()
    assert rec.contexts[0].get_metadata("containerd-namespace-ttrpc") == "k8s.io"
    assert rec.contexts[0].get_metadata("absent", "dflt") == "dflt"
    # and on the wire they are KeyValue{key=1, value=2} in Request field 5
    raw = await RawConn.open(path)
    await raw.request(1, method="Context", metadata=[("x", "y")])
    assert json.loads((await raw.response())[1].payload)["metadata"] == {"x": ["y"]}
    raw.close()
    await stop(server)


@aio
async def test_oversized_messages_from_either_side(sockdir):
    server, path, rec = await start_server(sockdir)
    async with await Client.connect(path) as c:
        with pytest.raises(OversizedMessageError) as e:
            await c.call(SVC, "Echo", b"x" * fr.MAX_PAYLOAD)
        assert e.value.code == Code.RESOURCE_EXHAUSTED
        assert rec.calls == []  # never sent
        with pytest.raises(TtrpcError) as e:
            await c.call(SVC, "Big", str(5 * MiB).encode())
        assert e.value.code == Code.RESOURCE_EXHAUSTED
        assert len(await c.call(SVC, "Big", str(3 * MiB).encode())) == 3 * MiB
        assert await c.call(SVC, "Echo", b"small") == b"small"
    await stop(server)


@aio
async def test_connection_loss_fails_pending_calls(sockdir):
    server, path, rec = await start_server(sockdir)
    c = await Client.connect(path)
    pending = [asyncio.create_task(c.call(SVC, "Sleep", b"10")) for _ in range(3)]
    await asyncio.sleep(0.1)
    server.close()
    await server.wait_closed()
    for task in pending:
        with pytest.raises(ConnectionClosedError) as e:
            await asyncio.wait_for(task, 5)
        assert e.value.code == Code.UNAVAILABLE
    assert c.closed
    with pytest.raises(ConnectionClosedError):
        await c.call(SVC, "Echo", b"")
    assert sorted(rec.cancelled) == ["10", "10", "10"]
    assert not os.path.exists(path)  # close() removed the socket file
    await c.close()


@aio
async def test_client_close_fails_pending_and_cancels_server_side(sockdir):
    server, path, rec = await start_server(sockdir)
    c = await Client.connect(path)
    task = asyncio.create_task(c.call(SVC, "Sleep", b"7"))
    await asyncio.sleep(0.1)
    await c.close()
    with pytest.raises(ConnectionClosedError):
        await task
    for _ in range(50):
        if rec.cancelled:
            break
        await asyncio.sleep(0.02)
    assert rec.cancelled == ["7"]
    await stop(server)


async def fake_server(sockdir, reply):
    """A unix server that answers every request frame with reply(stream_id)."""
    async def handle(reader, writer):
        frames = fr.FrameReader(reader)
        while (frame := await frames.read_frame()) is not None:
            writer.write(reply(frame.stream_id))
            await writer.drain()
        writer.close()
    path = os.path.join(sockdir, "fake.sock")
    return await asyncio.start_unix_server(handle, path=path), path


@aio
async def test_client_handles_bad_responses(sockdir):
    def reply(sid):
        if sid == 1:   # oversized: discarded by the client
            n = fr.MAX_PAYLOAD + 1
            return fr.encode_header(n, sid, fr.TYPE_RESPONSE) + b"\0" * n
        if sid == 3:   # not a Response
            return fr.encode_frame(sid, fr.TYPE_RESPONSE, b"\xff\xff")
        if sid == 5:   # a response for a stream nobody waits for, then the real one
            return (fr.encode_frame(99, fr.TYPE_RESPONSE, Response(payload=b"stray").SerializeToString())
                    + fr.encode_frame(sid, fr.TYPE_RESPONSE, Response(payload=b"good").SerializeToString()))
        return fr.encode_frame(sid, 9, b"")  # unknown type: the client hangs up
    srv, path = await fake_server(sockdir, reply)
    c = await Client.connect(path)
    with pytest.raises(TtrpcError) as e:
        await c.call(SVC, "Echo", b"", timeout=10)
    assert e.value.code == Code.RESOURCE_EXHAUSTED
    with pytest.raises(TtrpcError) as e:
        await c.call(SVC, "Echo", b"", timeout=5)
    assert e.value.code == Code.INTERNAL
    assert await c.call(SVC, "Echo", b"", timeout=5) == b"good"
    with pytest.raises(ConnectionClosedError):
        await c.call(SVC, "Echo", b"", timeout=5)
    await c.close()
    srv.close()


@aio
async def test_serve_socket_file_handling(sockdir):
    server, path, rec = await start_server(sockdir)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666)
    other = Server()
    with pytest.raises(OSError):  # somebody listens there
        await other.serve(path)
    await stop(server)
    assert not os.path.exists(path)
    # a stale socket file (nobody listening) is replaced
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    server, path, rec = await start_server(sockdir)
    await assert_serving("unix://" + path)
    await stop(server)
    # an inherited listening socket (the shim gets one as fd 3)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.listen()
    server = Server()
    server.register(SVC, make_service(Recorder()))
    await server.serve(sock=sock)
    await assert_serving(path)
    await stop(server)


@aio
async def test_graceful_shutdown_waits_for_running_calls(sockdir):
    server, path, rec = await start_server(sockdir)
    c = await Client.connect(path)
    task = asyncio.create_task(c.call(SVC, "Sleep", b"0.2"))
    await asyncio.sleep(0.05)
    await server.shutdown(timeout=5)
    assert await task == b"slept 0.2"
    with pytest.raises(OSError):
        await Client.connect(path)
    await c.close()


@aio
async def test_shutdown_requested_by_a_handler(sockdir):
    """The shim's Shutdown RPC pattern: reply, then the server goes away."""
    server, path, rec = await start_server(sockdir)

    async def shutdown(payload, ctx):
        asyncio.create_task(server.shutdown(timeout=5))
        return b"bye"

    server.register(SVC, {"Shutdown": shutdown})
    c = await Client.connect(path)
    assert await c.call(SVC, "Shutdown", b"", timeout=5) == b"bye"
    for _ in range(100):
        if c.closed:
            break
        await asyncio.sleep(0.02)
    assert c.closed and not os.path.exists(path)
    await c.close()


# ------------------------------------------------------------ peer credentials

def peer_child(path: str, uid: int, out_fd: int) -> None:
    """In a forked child: become uid, send one Echo request with a plain
    socket, write "<uid> <hex of the bytes received>" to out_fd, exit."""
    code = 1
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

        def field(n, b):
            return bytes([n << 3 | 2, len(b)]) + b
        req = field(1, SVC.encode()) + field(2, b"Echo") + field(3, b"hi")
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(path)
        got = b""
        try:
            s.sendall(fr.encode_header(len(req), 1, fr.TYPE_REQUEST) + req)
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                if len(got) >= 10 and len(got) >= 10 + fr.decode_header(got[:10]).length:
                    break
        except (ConnectionResetError, BrokenPipeError):
            pass
        os.write(out_fd, f"{os.getuid()} {got.hex()}".encode())
        code = 0
    except BaseException as e:  # report, never return into pytest
        os.write(out_fd, f"error {e!r}".encode())
    finally:
        os._exit(code)


async def run_peer(path, uid) -> tuple[int, bytes]:
    """Connect as uid from a forked child; (its uid, the bytes it received)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        peer_child(path, uid, wfd)
    os.close(wfd)

    def collect():
        data = b""
        while chunk := os.read(rfd, 65536):
            data += chunk
        os.close(rfd)
        return data, os.waitpid(pid, 0)[1]
    data, status = await asyncio.get_running_loop().run_in_executor(None, collect)
    assert os.waitstatus_to_exitcode(status) == 0, data.decode()
    child_uid, _, hexdata = data.decode().partition(" ")
    return int(child_uid), bytes.fromhex(hexdata)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another uid")
@aio
async def test_peer_with_another_uid_is_refused(sockdir):
    server, path, rec = await start_server(sockdir)
    uid, got = await run_peer(path, 65534)
    assert uid == 65534
    assert got == b""  # closed without an answer
    assert rec.calls == []
    # control: root gets an answer through the same child program
    uid, got = await run_peer(path, 0)
    assert uid == 0
    header = fr.decode_header(got[:10])
    assert header.stream_id == 1 and header.type == fr.TYPE_RESPONSE
    assert Response.FromString(got[10:]).payload == b"hi"
    await stop(server)
    # a server that allows uid 65534 answers it
    server, path, rec = await start_server(sockdir, allowed_uids={0, 65534})
    uid, got = await run_peer(path, 65534)
    assert uid == 65534 and Response.FromString(got[10:]).payload == b"hi"
    assert rec.calls == [("Echo", 1)]
    await stop(server)


def test_peer_credentials_of_a_socketpair():
    a, b = socket.socketpair(socket.AF_UNIX)
    try:
        cred = ttrpc.peer_credentials(a)
        assert cred == (os.getpid(), os.geteuid(), os.getegid())
    finally:
        a.close()
        b.close()


# ------------------------------------------------- interop with containerd

CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")
needs_containerd = pytest.mark.skipif(
    not (CONTAINERD and CTR and os.geteuid() == 0),
    reason="containerd and ctr (Debian package `containerd`) and root are needed")


@pytest.fixture(scope="module")
def containerd():
    """A private containerd (tests/containerd_env.py: own root, state and
    sockets, CRI disabled); yields its gRPC socket path (the ttrpc one is that
    + '.ttrpc')."""
    with private_containerd() as c:
        yield c.socket


@needs_containerd
@aio
async def test_client_forwards_an_event_to_containerd(containerd):
    """Our client → containerd's ttrpc Events.Forward; `ctr events` sees it."""
    from google.protobuf import empty_pb2
    from ringfence.proto import typeurl
    from ringfence.proto.containerd.events.task_pb2 import TaskExit
    from ringfence.proto.containerd.services.ttrpc.events.v1 import events_pb2

    watcher = await asyncio.create_subprocess_exec(
        CTR, "--address", containerd, "events", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    client = await Client.connect("unix://" + containerd + ".ttrpc")
    try:
        cid = f"rf-ttrpc-{os.getpid()}"
        envelope = events_pb2.Envelope(namespace="default", topic="/tasks/exit",
                                       event=typeurl.pack(TaskExit(container_id=cid, id=cid, pid=4242,
                                                                   exit_status=3)))
        envelope.timestamp.GetCurrentTime()
        seen = b""
        for _ in range(20):  # until the watcher has subscribed
            resp = await client.call("containerd.services.events.ttrpc.v1.Events", "Forward",
                                     events_pb2.ForwardRequest(envelope=envelope), empty_pb2.Empty,
                                     timeout=5, metadata={"containerd-namespace-ttrpc": "default"})
            assert resp == empty_pb2.Empty()
            try:
                seen += await asyncio.wait_for(watcher.stdout.readline(), 0.5)
            except asyncio.TimeoutError:
                continue
            if cid.encode() in seen:
                break
        line = seen.decode()
        assert "/tasks/exit" in line and '"pid":4242' in line and '"exit_status":3' in line, line
        # containerd's ttrpc server: unknown method / garbage body, decoded as statuses
        with pytest.raises(TtrpcError) as e:
            await client.call("containerd.services.events.ttrpc.v1.Events", "NoSuch", b"")
        assert (e.value.code, e.value.message) == (Code.UNIMPLEMENTED, "method NoSuch")
        with pytest.raises(TtrpcError) as e:
            await client.call("no.such.Service", "Forward", b"")
        assert e.value.code == Code.UNIMPLEMENTED
        with pytest.raises(TtrpcError) as e:
            await client.call("containerd.services.events.ttrpc.v1.Events", "Forward", b"\xff\xff")
        assert e.value.code != Code.OK
    finally:
        await client.close()
        watcher.kill()
        await watcher.wait()


@needs_containerd
@aio
async def test_ctr_shim_calls_our_server(containerd):
    """containerd's Go ttrpc client (`ctr shim`) → our server's Task service."""
    from ringfence.proto.containerd.task.v2 import shim_pb2

    cid = f"rf-ttrpc-{os.getpid()}"
    # where `ctr shim` looks for a shim: /run/containerd/s/sha256(<address>/<ns>/<id>)
    digest = hashlib.sha256(os.path.join(containerd, "default", cid).encode()).hexdigest()
    path = f"/run/containerd/s/{digest}"
    made = [p for p in ("/run/containerd", "/run/containerd/s") if not os.path.isdir(p)]
    os.makedirs("/run/containerd/s", exist_ok=True)
    calls = []

    class Task:
        async def State(self, req, ctx):
            calls.append(("State", req.id))
            return shim_pb2.StateResponse(id=req.id, bundle="/bundle/" + req.id, pid=4242, status=2,
                                          exit_status=0, exec_id=req.exec_id)

    server = Server()
    server.register_service(shim_pb2.DESCRIPTOR.services_by_name["Task"], Task())
    await server.serve(path, mode=0o600)
    try:
        async def ctr(*args):
            p = await asyncio.create_subprocess_exec(
                CTR, "--address", containerd, "shim", "--id", cid, *args,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await asyncio.wait_for(p.communicate(), 20)
            return p.returncode, out.decode(), err.decode()

        rc, out, err = await ctr("state")
        assert rc == 0, err
        state = json.loads(out)
        assert (state["id"], state["bundle"], state["pid"], state["status"]) == (
            cid, "/bundle/" + cid, 4242, 2)
        assert calls == [("State", cid)]
        rc, out, err = await ctr("start")  # our Task has no Start: Unimplemented reaches ctr
        assert rc != 0 and "Unimplemented" in err and "method Start" in err, err
    finally:
        server.close()
        await server.wait_closed()
        for p in reversed(made):
            try:
                os.rmdir(p)
            except OSError:
                pass
