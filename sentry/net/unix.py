"""AF_UNIX sockets: stream, datagram and seqpacket, as net/unix/af_unix.c behaves.

Every socket is an open file (a `UnixSocket`) with a receive queue of `Packet`s: a stream
write or a message, with the files passed along (SCM_RIGHTS) and the sender's credentials.
A packet is charged to its sender's send buffer until the receiver takes it (a full buffer
blocks the sender); datagram receivers that are not connected back to the sender also cap
their queue at net.unix.max_dgram_qlen messages.  A listening socket's queue holds the
server ends of connections not yet accepted ("embryos": connect() makes them at once).
"""
from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

from ..abi.errno import (EAGAIN, ECONNREFUSED, ECONNRESET, EINVAL, EISCONN, EMSGSIZE, ENOTCONN, EOPNOTSUPP, EPERM,
                         EPIPE)
from ..abi.fs import (INT, O_NONBLOCK, O_RDWR, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM,
                      POLLWRBAND, POLLWRNORM, S_IFSOCK)
from ..abi.ioctl import FIONREAD, TIOCOUTQ
from ..abi.socket import (MSG_DONTWAIT, MSG_NOSIGNAL, MSG_PEEK, MSG_TRUNC, MSG_WAITALL, RCV_SHUTDOWN, SEND_SHUTDOWN,
                          SHUTDOWN_MASK, SO_RCVTIMEO, SO_SNDTIMEO, SOCK_BUF_DEFAULT, SOCK_DGRAM, SOCK_STREAM,
                          SOCKFS_MAGIC, SOMAXCONN, UNIX_MAX_DGRAM_QLEN)
from ..fs.pipe import broken_pipe
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, WaitQueue, then
from ..vfs.dentry import internal_location, internal_mount
from ..vfs.file import File
from ..vfs.inode import AttrInode, FileSystem
from . import addr

_DGRAM_OVERHEAD = 32  # what a datagram may not use of the send buffer (EMSGSIZE beyond)
NO_CREDS = (0, 0xFFFFFFFF, 0xFFFFFFFF)  # struct ucred of a socket with no peer


class SockFS(FileSystem):
    """Where socket inodes live."""

    name = "sockfs"
    magic = SOCKFS_MAGIC


_FS = SockFS()
_MOUNT = internal_mount(_FS)


def ucred(t, effective: bool = False) -> tuple[int, int, int]:
    """(pid, uid, gid) of task `t` as the sandbox sees it (effective ids for SO_PEERCRED)."""
    c = t.creds
    return (t.tg.pid, c.euid, c.egid) if effective else (t.tg.pid, c.uid, c.gid)


class Packet:
    """A unit of a receive queue: bytes, the files passed with them, the sender's credentials
    and address, and the sender whose send buffer it is charged to."""

    __slots__ = ("data", "files", "creds", "addr", "sender", "charge")

    def __init__(self, data: bytes, files: list | None, creds, sender: UnixSocket):
        self.data = bytearray(data)
        self.files = files
        self.creds = creds
        self.addr = sender.addr
        self.sender = sender
        self.charge = len(data)
        sender.wmem += self.charge

    def uncharge(self) -> None:
        """The receiver took it: its sender has the room again."""
        sender = self.sender
        sender.wmem -= self.charge
        self.charge = 0
        sender.wq.notify()

    def drop(self) -> None:
        """Discard it unread: uncharged, its files closed."""
        self.uncharge()
        for f in self.files or ():
            f.unref()
        self.files = None


class Received(NamedTuple):
    """What a receive returns: the bytes, the message's full length, the files passed (owned
    by the receiver now), the sender's credentials and address, and MSG_TRUNC if cut."""

    data: bytes
    length: int
    files: list
    creds: tuple
    addr: bytes
    flags: int


class UnixSocket(File):
    """An AF_UNIX socket of type `stype` (SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET)."""

    __slots__ = ("stype", "peer", "queue", "backlog", "shutdown", "err", "addr", "bound_key",
                 "wmem", "sndbuf", "rcvbuf", "passcred", "peercred", "opts", "timeouts", "dead", "embryo", "rq", "wq")
    seekable = False

    def __init__(self, t, stype: int, flags: int):
        inode = AttrInode(_FS, S_IFSOCK | 0o777, t.creds.fsuid, t.creds.fsgid)
        super().__init__(internal_location(_MOUNT, b"socket:[%d]" % inode.ino, inode), O_RDWR | flags & O_NONBLOCK)
        self.stype = stype
        self.peer: UnixSocket | None = None
        self.queue: deque[Packet] = deque()
        self.backlog = -1  # the listen() backlog; -1 while not listening
        self.shutdown = 0  # RCV_SHUTDOWN | SEND_SHUTDOWN
        self.err = 0  # sk_err, reported once (SO_ERROR, or a read that finds nothing)
        self.addr = addr.UNNAMED
        self.bound_key = None
        self.wmem = 0  # bytes of this socket's packets still queued at receivers
        self.sndbuf = self.rcvbuf = SOCK_BUF_DEFAULT
        self.passcred = False
        self.peercred = NO_CREDS
        self.opts: dict[int, bytes] = {}  # options as set (SO_REUSEADDR, SO_KEEPALIVE, timeouts...)
        self.timeouts: dict[int, float] = {}  # SO_RCVTIMEO, SO_SNDTIMEO in seconds (0: do not wait)
        self.dead = False
        self.embryo = False  # a connection waiting in a listener's queue
        self.rq = WaitQueue()  # readers: data, a connection to accept, end-of-file
        self.wq = WaitQueue()  # writers: send-buffer room, room in a listener's backlog

    # -- connection state ----------------------------------------------------------
    @property
    def listening(self) -> bool:
        """Whether listen() made it a listening socket."""
        return self.backlog >= 0

    @property
    def connected(self) -> bool:
        """Whether the socket has a peer (a stream's connection, or a datagram's default destination)."""
        return self.peer is not None

    def pair(self, other: UnixSocket, creds, other_creds) -> None:
        """Connect this socket and `other` to each other (socketpair, connect); each side's
        SO_PEERCRED is the other's creator."""
        self.peer, other.peer = other, self
        self.peercred, other.peercred = other_creds, creds

    def bind(self, t, path: bytes) -> None:
        """bind(2) to a decoded sun_path (b"": an autobound abstract name); EINVAL if bound."""
        self.addr = addr.bind(t, self, path)

    def autobind(self, t) -> None:
        """Give an unbound socket that passes credentials an abstract name (as Linux, on connect/send)."""
        if self.passcred and self.bound_key is None:
            self.bind(t, b"")

    def listen(self, t, backlog: int) -> None:
        """listen(2): EOPNOTSUPP for datagrams, EINVAL if unbound or connected."""
        if self.stype == SOCK_DGRAM:
            raise SysError(EOPNOTSUPP)
        if self.bound_key is None or self.connected:
            raise SysError(EINVAL)
        if not self.listening:
            self.peercred = ucred(t, True)
        self.backlog = min(max(backlog, 0), SOMAXCONN)
        self.wq.notify()  # connecting tasks waiting on a full backlog see the new size

    def connect_stream(self, t, other: UnixSocket):
        """connect(2) of a stream or seqpacket socket to `other`: 0, EAGAIN or a Block while
        `other`'s backlog is full, ECONNREFUSED if it does not listen."""
        if self.listening:
            raise SysError(EINVAL)
        if self.connected:
            raise SysError(EISCONN)
        if other.dead or not other.listening:
            raise SysError(ECONNREFUSED)
        if len(other.queue) > other.backlog:
            if self.flags & O_NONBLOCK:
                raise SysError(EAGAIN)
            return self._timed(t, SO_SNDTIMEO, Block(queues=(other.wq,)))
        self.autobind(t)
        server = UnixSocket(t, self.stype, 0)
        server.addr = other.addr
        server.passcred = other.passcred
        server.embryo = True
        server.pair(self, other.peercred, ucred(t, True))
        self.peercred = other.peercred
        other.queue.append(server)
        other.rq.notify()
        return 0

    def connect_dgram(self, t, other: UnixSocket | None) -> int:
        """connect(2) of a datagram socket: `other` becomes the default destination (None: AF_UNSPEC
        disconnects)."""
        if other is not None:
            self.autobind(t)
            if not other.may_receive_from(self):
                raise SysError(EPERM)
        self.peer = other
        self.wq.notify()
        return 0

    def accept(self, t):
        """The next connection of a listening socket (its new fd's File), EAGAIN or a Block."""
        if not self.listening:
            raise SysError(EINVAL if self.stype != SOCK_DGRAM else EOPNOTSUPP)
        if not self.queue:
            if self.flags & O_NONBLOCK:
                raise SysError(EAGAIN)
            return self._timed(t, SO_RCVTIMEO, Block(queues=(self.rq,)))
        server = self.queue.popleft()
        server.embryo = False
        self.wq.notify()
        return server

    def shut(self, how: int) -> None:
        """shutdown(2) with SHUT_RD/SHUT_WR/SHUT_RDWR (a stream peer sees the other half)."""
        mode = how + 1
        if not 0 < mode <= SHUTDOWN_MASK:
            raise SysError(EINVAL)
        self.shutdown |= mode
        self.rq.notify()
        self.wq.notify()
        peer = self.peer
        if peer is not None and self.stype != SOCK_DGRAM:
            peer.shutdown |= (SEND_SHUTDOWN if mode & RCV_SHUTDOWN else 0) \
                | (RCV_SHUTDOWN if mode & SEND_SHUTDOWN else 0)
            peer.rq.notify()
            peer.wq.notify()

    def release(self) -> None:
        """The last close: the name is freed, a stream peer is hung up (ECONNRESET if this side
        left data unread), queued packets and connections are dropped."""
        self.dead = True
        if self.bound_key is not None:
            addr.unbind(self)
        peer, self.peer = self.peer, None
        if peer is not None and self.stype != SOCK_DGRAM:
            peer.shutdown = SHUTDOWN_MASK
            if self.queue or self.embryo:
                peer.err = ECONNRESET
            peer.rq.notify()
            peer.wq.notify()
        queue, self.queue = self.queue, deque()
        for item in queue:
            if isinstance(item, UnixSocket):
                item.unref()
            else:
                item.drop()
        self.wq.notify()

    # -- sending -----------------------------------------------------------------
    def may_receive_from(self, sender: UnixSocket) -> bool:
        """unix_may_send: a datagram socket connected elsewhere takes nothing from `sender`."""
        return self.peer is None or self.peer is sender

    def _pipe_error(self, t, flags: int) -> SysError:
        """EPIPE, with SIGPIPE unless MSG_NOSIGNAL (streams only, as Linux)."""
        if self.stype == SOCK_STREAM and not flags & MSG_NOSIGNAL:
            return broken_pipe(t)
        return SysError(EPIPE)

    def _timed(self, t, option: int, result):
        """`result` of a call under the socket's timeout `option` (SO_RCVTIMEO, SO_SNDTIMEO): a
        Block ends at the timeout, counted from the call, which then returns what it moved
        (the Block's partial) or fails with EAGAIN; a signal interrupts it (EINTR, even with
        SA_RESTART), as Linux."""
        timeout = self.timeouts.get(option)
        if timeout is None or result.__class__ is not Block:
            return result
        if not t.rerun:
            t.timed_until = time.monotonic() + timeout
        deadline = t.timed_until
        if time.monotonic() >= deadline:
            if result.partial is not None:
                return result.partial()
            if result.cancel is not None:
                result.cancel()
            raise SysError(EAGAIN)
        result.deadline = deadline if result.deadline is None else min(result.deadline, deadline)
        result.restartable = False
        if result.retry is not None:
            retry = result.retry
            result.retry = lambda: self._timed(t, option, retry())
        return result

    def _nonblocking(self, flags: int) -> bool:
        return bool(self.flags & O_NONBLOCK or flags & MSG_DONTWAIT)

    def send(self, t, data: bytes, flags: int = 0, to: UnixSocket | None = None, files=None, creds=None):
        """sendmsg(2) of `data` with the files of SCM_RIGHTS (references the packet takes over)
        to the peer, or to `to` (a datagram's explicit destination): the count sent, or a Block.
        `creds` defaults to the sender's."""
        creds = creds or ucred(t)
        if self.stype == SOCK_STREAM:
            return self._timed(t, SO_SNDTIMEO, self._send_stream(t, data, flags, files, creds, 0))
        return self._timed(t, SO_SNDTIMEO, self._send_message(t, data, flags, to, files, creds))

    def _send_stream(self, t, data: bytes, flags: int, files, creds, done: int):
        peer = self.peer
        if peer is None:
            raise SysError(ENOTCONN)
        if self.shutdown & SEND_SHUTDOWN or peer.dead or peer.shutdown & RCV_SHUTDOWN:
            err = self._pipe_error(t, flags)
            if done:
                return done
            raise err
        while done < len(data) or not data and files:
            room = self.sndbuf - self.wmem
            if room <= 0:
                if self._nonblocking(flags):
                    if done:
                        return done
                    raise SysError(EAGAIN)
                if not done:
                    return Block(queues=(self.wq,))  # run again from the start
                return Block(queues=(self.wq,), retry=lambda: self._send_stream(t, data, flags, files, creds, done),
                             partial=lambda: done)
            chunk = data[done:done + room]
            peer.queue.append(Packet(chunk, files, creds, self))
            files = None
            done += len(chunk)
            peer.rq.notify()
        return done

    def _send_message(self, t, data: bytes, flags: int, to: UnixSocket | None, files, creds):
        if self.stype != SOCK_DGRAM and not self.connected:  # seqpacket: the connection only
            raise SysError(ENOTCONN)
        if len(data) > self.sndbuf - _DGRAM_OVERHEAD:
            raise SysError(EMSGSIZE)
        other = to or self.peer
        if other is None:
            raise SysError(ENOTCONN if self.stype == SOCK_DGRAM else EPIPE)
        if other.dead:
            if self.stype != SOCK_DGRAM:
                raise SysError(EPIPE)
            if self.peer is other:
                self.peer = None
            raise SysError(ECONNREFUSED)
        if not other.may_receive_from(self):
            raise SysError(EPERM)
        if other.shutdown & RCV_SHUTDOWN or self.stype != SOCK_DGRAM and self.shutdown & SEND_SHUTDOWN:
            raise self._pipe_error(t, flags)
        full = other.peer is not self and len(other.queue) > UNIX_MAX_DGRAM_QLEN
        if full or self.wmem + len(data) > self.sndbuf:
            if self._nonblocking(flags):
                raise SysError(EAGAIN)
            return Block(queues=(other.wq if full else self.wq,))
        if self.stype == SOCK_DGRAM:
            self.autobind(t)
        other.queue.append(Packet(data, files, creds, self))
        other.rq.notify()
        return len(data)

    def write(self, t, data: bytes):
        """write(2): send with no flags."""
        return self.send(t, data)

    # -- receiving ---------------------------------------------------------------
    def recv(self, t, n: int, flags: int = 0):
        """recvmsg(2) of up to `n` bytes with MSG_PEEK, MSG_WAITALL (streams), MSG_DONTWAIT:
        a Received, or a Block.  A stream read stops after the bytes that carried files."""
        return self._timed(t, SO_RCVTIMEO, self._recv(t, n, flags))

    def _recv(self, t, n: int, flags: int):
        if self.stype == SOCK_STREAM:
            if not self.connected:
                raise SysError(EINVAL)
            return self._recv_stream(t, n, flags, bytearray(), None)
        if self.stype != SOCK_DGRAM and not self.connected:
            raise SysError(ENOTCONN)
        if not self.queue:
            return self._empty(flags)
        pkt = self.queue[0]
        data = bytes(pkt.data[:n])
        files = pkt.files or []
        if flags & MSG_PEEK:
            files = [f.ref() for f in files]
        else:
            self._take(pkt)
        return Received(data, len(pkt.data), files, pkt.creds, pkt.addr, MSG_TRUNC if len(pkt.data) > n else 0)

    def _take(self, pkt: Packet) -> None:
        """Remove the head packet (its files now the receiver's)."""
        self.queue.popleft()
        pkt.files = None
        pkt.uncharge()
        self.wq.notify()  # datagram senders waiting for room in this queue

    def _empty(self, flags: int):
        """Nothing to read: the pending error, end-of-file, EAGAIN or a Block."""
        if self.err:
            err, self.err = self.err, 0
            raise SysError(err)
        if self.shutdown & RCV_SHUTDOWN:
            return Received(b"", 0, [], NO_CREDS, addr.UNNAMED, 0)
        if self._nonblocking(flags):
            raise SysError(EAGAIN)
        return Block(queues=(self.rq,))

    def _recv_stream(self, t, n: int, flags: int, got: bytearray, head):
        """Collect up to `n` bytes from the stream queue onto `got` (`head`: the first packet's
        credentials and address once some bytes came)."""
        peek = flags & MSG_PEEK
        files: list = []
        i = 0
        while len(got) < n and i < len(self.queue):
            pkt = self.queue[i]
            if head is None:
                head = (pkt.creds, pkt.addr)
            elif self.passcred and pkt.creds != head[0]:
                break
            take = min(n - len(got), len(pkt.data))
            got += pkt.data[:take]
            if peek:
                files = [f.ref() for f in pkt.files or ()]
                i += 1
            else:
                files = pkt.files or []
                pkt.files = None
                del pkt.data[:take]
                if not pkt.data:
                    self._take(pkt)
            if files:
                break
        if not got and not files:
            return self._empty(flags)
        if len(got) < n and not files and flags & MSG_WAITALL and not peek \
                and not (self.err or self.shutdown & RCV_SHUTDOWN or self._nonblocking(flags)):
            return Block(queues=(self.rq,), retry=lambda: self._recv_stream(t, n, flags, got, head),
                         cancel=lambda: self.unread(bytes(got)),
                         partial=lambda: Received(bytes(got), len(got), [], *head, 0))
        creds, address = head
        return Received(bytes(got), len(got), files, creds, address, 0)

    def read(self, t, n: int):
        """read(2): receive with no flags (files passed along are closed)."""
        return then(self.recv(t, n), _data_only)

    def unread(self, data: bytes) -> None:
        """Put bytes that could not be delivered back at the head of the queue (a stream's bytes,
        a datagram's first part)."""
        if data:
            self.queue.appendleft(Packet(data, None, NO_CREDS, self))

    def inq(self) -> int:
        """FIONREAD: bytes queued (a datagram socket: the next message's length)."""
        if self.listening:
            raise SysError(EINVAL)
        if self.stype == SOCK_DGRAM:
            return len(self.queue[0].data) if self.queue else 0
        return sum(len(p.data) for p in self.queue)

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """FIONREAD (SIOCINQ) and TIOCOUTQ (SIOCOUTQ: bytes sent and not yet read)."""
        if cmd == FIONREAD:
            t.mm.write(arg, INT.pack(self.inq()))
            return 0
        if cmd == TIOCOUTQ:
            t.mm.write(arg, INT.pack(self.wmem))
            return 0
        return super().ioctl(t, cmd, arg)

    # -- readiness ----------------------------------------------------------------
    def readiness(self) -> int:
        """unix_poll/unix_dgram_poll: readable with data, a connection to accept or end-of-file;
        writable while at most a quarter of the send buffer is in flight."""
        ev = POLLERR if self.err else 0
        if self.shutdown == SHUTDOWN_MASK:
            ev |= POLLHUP
        if self.shutdown & RCV_SHUTDOWN:
            ev |= POLLRDHUP | POLLIN | POLLRDNORM
        if self.queue:
            ev |= POLLIN | POLLRDNORM
        if self.stype != SOCK_DGRAM and not self.connected and not self.listening:
            ev |= POLLHUP
        if not self.listening and self.wmem * 4 <= self.sndbuf:
            other = self.peer
            if not (self.stype == SOCK_DGRAM and other is not None and other.peer is not self
                    and len(other.queue) > UNIX_MAX_DGRAM_QLEN):
                ev |= POLLOUT | POLLWRNORM | POLLWRBAND
        return ev

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """The socket's own queues (and a datagram peer's, whose queue may drain)."""
        queues = (self.rq, self.wq)
        if self.stype == SOCK_DGRAM and self.peer is not None:
            queues += (self.peer.wq,)
        return queues, ()


def _data_only(r: Received) -> bytes:
    """The bytes of a receive; the files passed along are closed."""
    for f in r.files:
        f.unref()
    return r.data


def socketpair(t, stype: int, flags: int) -> tuple[UnixSocket, UnixSocket]:
    """Two sockets of type `stype` connected to each other; `flags` may hold SOCK_NONBLOCK."""
    a, b = UnixSocket(t, stype, flags), UnixSocket(t, stype, flags)
    creds = ucred(t, True)
    a.pair(b, creds, creds)
    return a, b
