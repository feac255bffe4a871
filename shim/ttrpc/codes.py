"""gRPC status codes, as carried in ttrpc's ``Response.status.code``."""
from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """The canonical gRPC codes (google.rpc.Code); ttrpc uses the same numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def to_code(value: int) -> Code | int:
    """``Code(value)`` when it is a known code, else the plain integer."""
    try:
        return Code(value)
    except ValueError:
        return int(value)
