"""google.protobuf.Any the way containerd's typeurl package writes it.

containerd names a protobuf message in an Any by its bare full name
("containerd.events.TaskExit"), not with protobuf's default
"type.googleapis.com/" prefix; readers compare the last path component.
"""
from __future__ import annotations

from typing import TypeVar

from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


def type_url(message: Message | type[Message]) -> str:
    """The type URL containerd uses for a message (class or instance)."""
    return message.DESCRIPTOR.full_name


def pack(message: Message) -> Any:
    """An Any holding message, type URL = its full name."""
    return Any(type_url=type_url(message), value=message.SerializeToString())


def name_of(any_msg: Any) -> str:
    """The message name in an Any's type URL (text after the last '/')."""
    return any_msg.type_url.rsplit("/", 1)[-1]


def is_type(any_msg: Any, cls: type[Message]) -> bool:
    return name_of(any_msg) == cls.DESCRIPTOR.full_name


def unpack(any_msg: Any, cls: type[M]) -> M:
    """Decode an Any as cls (ValueError when it holds another type)."""
    if not is_type(any_msg, cls):
        raise ValueError(f"Any holds {any_msg.type_url!r}, not {cls.DESCRIPTOR.full_name}")
    msg = cls()
    msg.ParseFromString(any_msg.value)
    return msg
