"""Exceptions of the ttrpc library and the mapping of Python exceptions to
status codes (what a handler's exception becomes on the wire)."""
from __future__ import annotations

import asyncio
from typing import Sequence

from .codes import Code, to_code


class TtrpcError(Exception):
    """A call failed with a gRPC status.

    Raised by the client for a non-OK Response, and by handlers to choose the
    status the server sends: ``raise TtrpcError(Code.NOT_FOUND, "no such task")``.
    ``details`` holds ``google.protobuf.Any`` messages (Status.details).
    """

    def __init__(self, code: int, message: str = "", details: Sequence = ()):
        self.code = to_code(code)
        self.message = message
        self.details = list(details)
        super().__init__(code, message)

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, Code) else str(self.code)
        return f"ttrpc: {name}: {self.message}" if self.message else f"ttrpc: {name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class ConnectionClosedError(TtrpcError):
    """The connection is closed (or was lost while the call was pending)."""

    def __init__(self, message: str = "ttrpc: closed"):
        super().__init__(Code.UNAVAILABLE, message)


class OversizedMessageError(TtrpcError):
    """A message to send is larger than the maximum frame payload."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(Code.RESOURCE_EXHAUSTED,
                         f"message length {size} exceed maximum message size of {limit}")


class FrameError(Exception):
    """The byte stream does not hold a well-formed frame: the connection must
    be closed (or, for a discarded oversized frame, the stream answered)."""


class TruncatedFrameError(FrameError):
    """The peer closed the connection in the middle of a frame."""


class OversizedFrameError(FrameError):
    """A frame header announced a payload over the maximum.

    ``discarded`` tells whether its payload was read and thrown away (the
    connection is still in sync and the stream can be answered with
    RESOURCE_EXHAUSTED) or not (the connection must be closed)."""

    def __init__(self, header, limit: int, discarded: bool):
        self.header = header
        self.limit = limit
        self.discarded = discarded
        super().__init__(f"frame payload of {header.length} bytes on stream "
                         f"{header.stream_id} exceeds the maximum of {limit}")


def status_of(exc: BaseException) -> tuple[int, str]:
    """(code, message) that a handler's exception is answered with.

    TtrpcError passes its own status; a few Python exceptions map like the Go
    ttrpc server maps Go errors; anything else is UNKNOWN."""
    if isinstance(exc, TtrpcError):
        return exc.code, exc.message
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Code.DEADLINE_EXCEEDED, str(exc) or "context deadline exceeded"
    if isinstance(exc, NotImplementedError):
        return Code.UNIMPLEMENTED, str(exc) or "not implemented"
    if isinstance(exc, FileNotFoundError):
        return Code.NOT_FOUND, str(exc)
    if isinstance(exc, FileExistsError):
        return Code.ALREADY_EXISTS, str(exc)
    if isinstance(exc, PermissionError):
        return Code.PERMISSION_DENIED, str(exc)
    if isinstance(exc, EOFError):
        return Code.OUT_OF_RANGE, str(exc) or "EOF"
    return Code.UNKNOWN, str(exc) or type(exc).__name__
