"""The ttrpc wire messages (``ttrpc.Request`` / ``ttrpc.Response``, generated
from proto/ttrpc/request.proto) and helpers around them: metadata
conversion, status building, serialising a request or response body."""
from __future__ import annotations

from typing import Iterable, Mapping, Union

from google.protobuf.message import DecodeError, Message

from ringfence.proto.google.rpc.status_pb2 import Status
from ringfence.proto.ttrpc.request_pb2 import KeyValue, Request, Response

from .codes import Code

__all__ = ["Request", "Response", "KeyValue", "Status", "DecodeError", "Metadata",
           "MetadataLike", "metadata_to_pairs", "metadata_from_pairs", "to_bytes",
           "error_response", "ok_response", "parse_request", "parse_response"]

# Request metadata as handlers see it: key -> every value sent for it, in order.
Metadata = dict[str, list[str]]
# What callers may pass: {key: value or [values]} or an iterable of (key, value).
MetadataLike = Union[Mapping[str, Union[str, Iterable[str]]], Iterable[tuple[str, str]], None]


def metadata_to_pairs(metadata: MetadataLike) -> list[KeyValue]:
    """KeyValue messages for the Request.metadata field."""
    if not metadata:
        return []
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    pairs = []
    for key, value in items:
        values = [value] if isinstance(value, str) else list(value)
        for v in values:
            pairs.append(KeyValue(key=key, value=v))
    return pairs


def metadata_from_pairs(pairs: Iterable[KeyValue]) -> Metadata:
    md: Metadata = {}
    for kv in pairs:
        md.setdefault(kv.key, []).append(kv.value)
    return md


def to_bytes(message) -> bytes:
    """A message body on the wire: bytes as they are, a protobuf message
    serialised, None as the empty message."""
    if message is None:
        return b""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    if isinstance(message, Message):
        return message.SerializeToString()
    raise TypeError(f"cannot send {type(message).__name__}: need bytes or a protobuf message")


def ok_response(payload: bytes) -> bytes:
    """A serialised Response with status OK."""
    return Response(status=Status(code=Code.OK), payload=payload).SerializeToString()


def error_response(code: int, message: str, details: Iterable = ()) -> bytes:
    """A serialised Response carrying an error status."""
    # proto3 strings must be valid UTF-8: an exception text may hold surrogates.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return Response(status=Status(code=int(code), message=message, details=list(details))
                    ).SerializeToString()


def parse_request(data: bytes) -> Request:
    """Decode a Request frame payload (DecodeError for garbage)."""
    req = Request()
    req.ParseFromString(data)
    return req


def parse_response(data: bytes) -> Response:
    """Decode a Response frame payload (DecodeError for garbage)."""
    resp = Response()
    resp.ParseFromString(data)
    return resp
