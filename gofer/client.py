"""The sentry's side of the gofer protocol: one synchronous request at a time.

Uses only sendmsg, recvmsg and close on the socket, which the sentry's seccomp filter allows.
"""
import errno
import os
import socket
import struct

from .protocol import MAX_MESSAGE, SPEC, Dirent, Op, Stat, StatFS, decode_reply, encode_request

_FD = struct.Struct("i")


class GoferClient:
    """Requests to the gofer at the other end of SOCK_SEQPACKET `sock`.

    Error replies raise OSError(errno, message); a gofer that hung up raises
    ConnectionResetError and a malformed reply OSError(EPROTO).
    """

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._last_id = 0

    def _call(self, op: Op, *args) -> tuple:
        """Send one request and return the reply's fields (plus its donated fds, if any)."""
        self._last_id = self._last_id % 0xFFFFFFFF + 1
        self._sock.sendmsg([encode_request(op, self._last_id, *args)])
        nfds = SPEC[op][2]
        data, anc, flags, _ = self._sock.recvmsg(MAX_MESSAGE + 1, socket.CMSG_SPACE(_FD.size),
                                                 socket.MSG_CMSG_CLOEXEC)
        fds = [fd for level, kind, payload in anc
               if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
               for (fd,) in _FD.iter_unpack(payload[:len(payload) - len(payload) % _FD.size])]
        try:
            if not data:
                raise ConnectionResetError(errno.ECONNRESET, "the gofer closed the connection")
            req_id, err, values = decode_reply(op, data)
            if req_id != self._last_id:
                raise OSError(errno.EPROTO, f"reply to request {req_id}, not {self._last_id}")
            if err:
                raise OSError(err, f"gofer {op.name}{args!r}: {os.strerror(err)}")
            if flags & socket.MSG_CTRUNC or len(fds) != nfds:
                raise OSError(errno.EPROTO, f"{op.name} reply carries {len(fds)} fds, not {nfds}")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return values + tuple(fds)

    def attach(self) -> tuple[int, Stat]:
        """A handle on the root of the served tree, and its attributes."""
        return self._call(Op.ATTACH)

    def walk(self, handle: int, name: bytes) -> tuple[int, Stat]:
        """A handle on entry `name` (one component) of directory `handle`; never follows a
        symlink (a symlink comes back as a node of type S_IFLNK)."""
        return self._call(Op.WALK, handle, name)

    def stat(self, handle: int) -> Stat:
        """Fresh attributes of `handle`."""
        return self._call(Op.STAT, handle)[0]

    def open(self, handle: int, flags: int) -> int:
        """A host fd (O_CLOEXEC, owned by the caller) for regular file or directory `handle`."""
        return self._call(Op.OPEN, handle, flags)[0]

    def readlink(self, handle: int) -> bytes:
        """The raw target of symlink `handle`."""
        return self._call(Op.READLINK, handle)[0]

    def getdents(self, handle: int) -> list[Dirent]:
        """All entries of directory `handle` but '.' and '..', as (ino, d_type, name)."""
        entries, cookie = [], 0
        while True:
            cookie, page = self._call(Op.GETDENTS, handle, cookie)
            if not page:
                return entries
            entries.extend(page)

    def statfs(self, handle: int) -> StatFS:
        """Attributes of the file system holding `handle`."""
        return self._call(Op.STATFS, handle)[0]

    def close(self, handle: int) -> None:
        """Release `handle`."""
        self._call(Op.CLOSE, handle)
