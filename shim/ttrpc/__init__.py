"""ttrpc for ringfence: containerd's small RPC protocol (protobuf messages in
length-prefixed frames over a unix socket), client and server on asyncio.

Modules: ``frame`` (the frame codec both sides use), ``messages`` (the
``ttrpc.Request`` / ``ttrpc.Response`` wire messages), ``server``,
``client``, ``errors`` and ``codes`` (gRPC status codes), ``peercred``
(SO_PEERCRED). The names below are the public API.
"""
from .codes import Code
from .errors import (ConnectionClosedError, FrameError, OversizedFrameError, OversizedMessageError,
                     TruncatedFrameError, TtrpcError)
from .frame import (DISCARD_LIMIT, FLAG_NO_DATA, FLAG_REMOTE_CLOSED, FLAG_REMOTE_OPEN, HEADER_SIZE,
                    MAX_PAYLOAD, TYPE_DATA, TYPE_REQUEST, TYPE_RESPONSE, Frame, FrameReader,
                    FrameWriter, Header, decode_header, encode_frame, encode_header)
from .peercred import PeerCred, peer_credentials
from .server import Context, Handler, Server
from .client import Client, Stub

__all__ = [
    "Client", "Stub", "Server", "Context", "Handler", "Code", "TtrpcError", "ConnectionClosedError",
    "OversizedMessageError", "FrameError", "TruncatedFrameError", "OversizedFrameError",
    "PeerCred", "peer_credentials", "Frame", "Header", "FrameReader", "FrameWriter",
    "encode_header", "decode_header", "encode_frame", "HEADER_SIZE", "MAX_PAYLOAD",
    "DISCARD_LIMIT", "TYPE_REQUEST", "TYPE_RESPONSE", "TYPE_DATA", "FLAG_REMOTE_CLOSED",
    "FLAG_REMOTE_OPEN", "FLAG_NO_DATA",
]
