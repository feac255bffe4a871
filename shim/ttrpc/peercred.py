"""Peer credentials of a unix socket connection (SO_PEERCRED)."""
from __future__ import annotations

import os
import socket
import struct
from typing import Iterable, NamedTuple

_UCRED = struct.Struct("3i")


class PeerCred(NamedTuple):
    """pid, uid and gid of the peer process when it connected."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock) -> PeerCred:
    """The credentials of the process at the other end of a connected unix
    socket (a socket.socket or asyncio's TransportSocket)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return PeerCred(*_UCRED.unpack(raw))


def default_allowed_uids() -> frozenset[int]:
    """root and the uid this process runs as."""
    return frozenset({0, os.geteuid()})


def uid_allowed(cred: PeerCred, allowed: Iterable[int]) -> bool:
    return cred.uid in allowed
