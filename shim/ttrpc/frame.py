"""The ttrpc frame codec, shared by client and server.

A frame is a 10-byte header followed by ``length`` bytes of payload::

    0       4          8      9      10
    | length | stream id | type | flags | payload ...
      u32 BE    u32 BE      u8     u8

Types: 1 request, 2 response, 3 data. The payload of one frame is at most
4 MiB (``MAX_PAYLOAD``). A frame over the maximum is *discarded* by the
reader when its length is at most ``discard_limit`` (the stream can then be
answered with RESOURCE_EXHAUSTED and the connection stays usable); a longer
one cannot be skipped at a reasonable cost and the connection is closed.
"""
from __future__ import annotations

import asyncio
import struct
from typing import NamedTuple

from .errors import OversizedFrameError, OversizedMessageError, TruncatedFrameError

HEADER = struct.Struct(">IIBB")
HEADER_SIZE = HEADER.size  # 10
MAX_PAYLOAD = 4 << 20
# An oversized frame up to this length is read and thrown away; beyond it the
# connection is closed instead.
DISCARD_LIMIT = 16 << 20
MAX_STREAM_ID = 0xFFFFFFFF

TYPE_REQUEST = 0x01
TYPE_RESPONSE = 0x02
TYPE_DATA = 0x03
KNOWN_TYPES = frozenset({TYPE_REQUEST, TYPE_RESPONSE, TYPE_DATA})

FLAG_REMOTE_CLOSED = 0x01  # request and data: the sender sends nothing more
FLAG_REMOTE_OPEN = 0x02    # request: the sender will stream data frames
FLAG_NO_DATA = 0x04        # data: the frame carries no data

_CHUNK = 64 << 10


class Header(NamedTuple):
    """A decoded frame header."""

    length: int
    stream_id: int
    type: int
    flags: int


class Frame(NamedTuple):
    """A frame read off the connection."""

    stream_id: int
    type: int
    flags: int
    payload: bytes


def encode_header(length: int, stream_id: int, type_: int, flags: int = 0) -> bytes:
    """The 10 header bytes (raises struct.error for out-of-range fields)."""
    return HEADER.pack(length, stream_id, type_, flags)


def decode_header(data: bytes) -> Header:
    """Decode 10 header bytes."""
    if len(data) != HEADER_SIZE:
        raise ValueError(f"a frame header is {HEADER_SIZE} bytes, not {len(data)}")
    return Header(*HEADER.unpack(data))


def encode_frame(stream_id: int, type_: int, payload: bytes, flags: int = 0,
                 max_payload: int = MAX_PAYLOAD) -> bytes:
    """Header + payload; OversizedMessageError when payload is over max_payload."""
    if len(payload) > max_payload:
        raise OversizedMessageError(len(payload), max_payload)
    return encode_header(len(payload), stream_id, type_, flags) + bytes(payload)


class FrameReader:
    """Reads frames from an asyncio StreamReader."""

    def __init__(self, reader: asyncio.StreamReader, max_payload: int = MAX_PAYLOAD,
                 discard_limit: int = DISCARD_LIMIT):
        self.reader = reader
        self.max_payload = max_payload
        self.discard_limit = max(discard_limit, max_payload)

    async def read_header(self) -> Header | None:
        """The next header, or None at a clean end of stream (EOF between
        frames). TruncatedFrameError for EOF inside the header."""
        try:
            data = await self.reader.readexactly(HEADER_SIZE)
        except asyncio.IncompleteReadError as e:
            if not e.partial:
                return None
            raise TruncatedFrameError(
                f"connection closed after {len(e.partial)} of {HEADER_SIZE} header bytes") from None
        return decode_header(data)

    async def read_payload(self, header: Header) -> bytes:
        """The payload announced by header (which must be within the maximum)."""
        if header.length == 0:
            return b""
        try:
            return await self.reader.readexactly(header.length)
        except asyncio.IncompleteReadError as e:
            raise TruncatedFrameError(
                f"connection closed after {len(e.partial)} of {header.length} payload bytes "
                f"on stream {header.stream_id}") from None

    async def discard(self, length: int) -> None:
        """Read and drop length bytes."""
        remaining = length
        while remaining:
            try:
                chunk = await self.reader.readexactly(min(remaining, _CHUNK))
            except asyncio.IncompleteReadError as e:
                raise TruncatedFrameError(
                    f"connection closed after {length - remaining + len(e.partial)} of "
                    f"{length} bytes of an oversized frame") from None
            remaining -= len(chunk)

    async def skip_oversized(self, header: Header) -> None:
        """Deal with a header over the maximum: always raises
        OversizedFrameError, after discarding the payload when it is within
        discard_limit (``discarded`` tells which)."""
        if header.length <= self.discard_limit:
            await self.discard(header.length)
            raise OversizedFrameError(header, self.max_payload, discarded=True)
        raise OversizedFrameError(header, self.max_payload, discarded=False)

    async def read_frame(self) -> Frame | None:
        """The next whole frame, or None at a clean EOF. Raises
        TruncatedFrameError or OversizedFrameError (see skip_oversized)."""
        header = await self.read_header()
        if header is None:
            return None
        if header.length > self.max_payload:
            await self.skip_oversized(header)
        payload = await self.read_payload(header)
        return Frame(header.stream_id, header.type, header.flags, payload)


class FrameWriter:
    """Writes frames to an asyncio StreamWriter.

    ``send`` puts a whole frame into the transport in one synchronous call, so
    frames of concurrent streams never interleave and a caller can allocate a
    stream id and send without another task slipping in between."""

    def __init__(self, writer: asyncio.StreamWriter, max_payload: int = MAX_PAYLOAD):
        self.writer = writer
        self.max_payload = max_payload

    def send(self, stream_id: int, type_: int, payload: bytes, flags: int = 0) -> None:
        """Queue one frame (OversizedMessageError if payload is too large)."""
        self.writer.write(encode_frame(stream_id, type_, payload, flags, self.max_payload))

    async def drain(self) -> None:
        await self.writer.drain()

    async def write(self, stream_id: int, type_: int, payload: bytes, flags: int = 0) -> None:
        """send() then drain()."""
        self.send(stream_id, type_, payload, flags)
        await self.writer.drain()
