"""The channel that carries the sentry's memory files into stubs, to be mapped there.

Every stub holds one end of a datagram socket pair as fd RF_STUB_CHANNEL (the
master stub got it when it was created; stubs forked from it inherit it).  To
map a memory file (a mapping cache's memfd) into a stub, the sentry sends it
over its end with SCM_RIGHTS, then makes the stopped stub thread recvmsg it,
mmap it and close it: the stub never keeps the file's fd, and the program
(whose every syscall is caught) can never use the channel.  The sentry runs
one stub at a time, so the file it just sent is the one the stub receives; if
the stub does not take it (it died), the sentry drains its own copy of the
stubs' end so that no stale file waits in the queue.
"""
from __future__ import annotations

import os
import socket
import struct

from ...abi import sysno
from ...abi.errno import EIO
from ...abi.mm import MAP_FIXED, MAP_SHARED
from ._ptrace import lib

_NR_RECVMSG = sysno.NUMBERS["recvmsg"]
_NR_MMAP = sysno.NUMBERS["mmap"]
_NR_CLOSE = sysno.NUMBERS["close"]

# Where, in the scratch page, recvmsg's arguments go.
_IOV_AT, _DATA_AT, _CONTROL_AT = 64, 96, 128
_CONTROL_LEN = socket.CMSG_SPACE(4)
_MSGHDR = struct.Struct("<QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
_IOVEC = struct.Struct("<QQ")
_CMSG = struct.Struct("<Qiii")  # cmsg_len, level, type, the fd
_STUB_FD = lib.RF_STUB_CHANNEL


class Channel:
    """The sentry's ends of the socket pair shared with every stub."""

    __slots__ = ("sentry_end", "stub_end")

    def __init__(self):
        self.sentry_end, self.stub_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.stub_end.setblocking(False)  # drain() must not wait (recv_fds drops its flags)

    def map_into(self, space, tid: int, addr: int, length: int, prot: int, fd: int, offset: int) -> int:
        """mmap sentry fd `fd` MAP_SHARED|MAP_FIXED at `addr` in `space`'s stopped thread `tid`.

        [addr, addr + length) must already be mapped writable in the stub
        (its first page holds recvmsg's arguments).  Returns the raw result
        of the stub's mmap: `addr`, or -errno.
        """
        space.write(addr, _MSGHDR.pack(0, 0, addr + _IOV_AT, 1, addr + _CONTROL_AT, _CONTROL_LEN, 0)
                    + bytes(_IOV_AT - _MSGHDR.size) + _IOVEC.pack(addr + _DATA_AT, 1))
        socket.send_fds(self.sentry_end, [b"m"], [fd])
        got = -EIO
        try:
            got = space.syscall(tid, _NR_RECVMSG, _STUB_FD, addr, socket.MSG_DONTWAIT)
        finally:
            if got != 1:
                self.drain()
        if got != 1:
            return got if got < 0 else -EIO
        flags = _MSGHDR.unpack(space.read(addr, _MSGHDR.size))[6]
        clen, level, kind, stub_fd = _CMSG.unpack(space.read(addr + _CONTROL_AT, _CMSG.size))
        if flags & socket.MSG_CTRUNC or (clen, level, kind) != (socket.CMSG_LEN(4), socket.SOL_SOCKET, socket.SCM_RIGHTS):
            return -EIO  # not what the sentry sent (exactly one fd): nothing was received
        try:
            return space.syscall(tid, _NR_MMAP, addr, length, prot, MAP_SHARED | MAP_FIXED, stub_fd, offset)
        finally:
            space.syscall(tid, _NR_CLOSE, stub_fd)

    def drain(self) -> None:
        """Close every file waiting on the stubs' end (one a stub did not take)."""
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(self.stub_end, 1, 4)
            except (BlockingIOError, InterruptedError):
                return
            for fd in fds:
                os.close(fd)
