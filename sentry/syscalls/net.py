"""Socket syscalls: AF_UNIX sockets of the sentry (net/unix.py); other families are refused.

Handlers decode addresses, msghdrs and control messages (SCM_RIGHTS, SCM_CREDENTIALS) and
leave the protocol to the socket.
"""
from __future__ import annotations

import time

import structlog

from ..abi.caps import CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN
from ..abi.errno import (EAFNOSUPPORT, EDOM, EINVAL, EISCONN, EMSGSIZE, ENOBUFS, ENOPROTOOPT, ENOTCONN, ENOTSOCK,
                         EOPNOTSUPP, EPERM, EPROTONOSUPPORT, ESOCKTNOSUPPORT)
from ..abi.fs import INT, IOV_MAX, MAX_RW_COUNT
from ..abi.socket import (AF_MAX, AF_UNIX, AF_UNSPEC, CMSGHDR, MMSGHDR, MSG_CMSG_CLOEXEC, MSG_CTRUNC,
                          MSG_DONTWAIT, MSG_OOB, MSG_TRUNC, MSG_WAITFORONE,
                          MSGHDR, SA_FAMILY, SCM_CREDENTIALS, SCM_MAX_FD, SCM_RIGHTS, SO_ACCEPTCONN, SO_BROADCAST,
                          SO_DOMAIN, SO_DONTROUTE, SO_ERROR, SO_KEEPALIVE, SO_LINGER, SO_OOBINLINE, SO_PASSCRED,
                          SO_PEERCRED, SO_PROTOCOL, SO_RCVBUF, SO_RCVBUFFORCE, SO_RCVLOWAT, SO_RCVTIMEO, SO_REUSEADDR,
                          SO_SNDBUF, SO_SNDBUFFORCE, SO_SNDTIMEO, SO_TYPE, SOCKADDR_STORAGE_SIZE, SOCK_BUF_MAX,
                          SOCK_CLOEXEC, SOCK_DGRAM, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, SOCK_NONBLOCK, SOCK_RAW,
                          SOCK_SEQPACKET, SOCK_STREAM, SOCK_TYPE_MASK, SOL_SOCKET, TIMEVAL, UCRED, cmsg_align)
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, then
from ..net import addr
from ..net.unix import UnixSocket, socketpair as _socketpair
from .args import s32, u32
from .fs import gather, install_pair, iovecs, scatter
from .time import read_timespec, write_timespec

log = structlog.get_logger("ringfence.sentry")
# Options only stored and read back (no effect on AF_UNIX here): option -> (size, default).
_STORED_OPTS = {**{o: (INT.size, 0) for o in (SO_REUSEADDR, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE)},
                SO_RCVLOWAT: (INT.size, 1), SO_LINGER: (8, 0), SO_RCVTIMEO: (TIMEVAL.size, 0),
                SO_SNDTIMEO: (TIMEVAL.size, 0)}
_refused_families: set[int] = set()


# -- helpers --------------------------------------------------------------------
def _sock(t, fd: int) -> UnixSocket:
    """The socket at raw fd `fd`; ENOTSOCK if the file is no socket."""
    f = t.fdtable.get(s32(fd))
    if not isinstance(f, UnixSocket):
        raise SysError(ENOTSOCK)
    return f


def _sockaddr(t, ptr: int, length: int) -> bytes:
    """The address of `length` bytes the program passes; EINVAL beyond sockaddr_storage."""
    length = s32(length)
    if not 0 <= length <= SOCKADDR_STORAGE_SIZE:
        raise SysError(EINVAL)
    return t.mm.read(ptr, length)


def _put_addr(t, raw: bytes, ptr: int, lenptr: int) -> None:
    """move_addr_to_user: as much of `raw` as the program's *lenptr allows, and its length there."""
    if not ptr:
        return
    room = INT.unpack(t.mm.read(lenptr, 4))[0]
    if room < 0:
        raise SysError(EINVAL)
    if room and raw:
        t.mm.write(ptr, raw[:room])
    t.mm.write(lenptr, INT.pack(len(raw)))


def _install_new(t, f, flags: int) -> int:
    """An fd for new socket `f`, with SOCK_CLOEXEC from `flags`."""
    return t.fdtable.install(f, bool(flags & SOCK_CLOEXEC))


def _unix_type(t, domain: int, stype: int, protocol: int) -> tuple[int, int]:
    """(type, SOCK_NONBLOCK|SOCK_CLOEXEC flags) of socket(2)'s arguments; other families than
    AF_UNIX: EAFNOSUPPORT (logged once per family)."""
    flags = stype & ~SOCK_TYPE_MASK
    kind = stype & SOCK_TYPE_MASK
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise SysError(EINVAL)
    if domain != AF_UNIX:
        if 0 <= domain < AF_MAX and domain not in _refused_families:
            _refused_families.add(domain)
            log.warning("socket family not supported", family=domain)
        raise SysError(EAFNOSUPPORT)
    if kind == SOCK_RAW:
        kind = SOCK_DGRAM  # as Linux's AF_UNIX does
    if kind not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise SysError(ESOCKTNOSUPPORT)
    if protocol not in (0, AF_UNIX):
        raise SysError(EPROTONOSUPPORT)
    return kind, flags


# -- creation, names, connections -------------------------------------------------------
def socket(t, domain, stype, protocol, *_):
    """socket(2): AF_UNIX stream, datagram or seqpacket sockets."""
    kind, flags = _unix_type(t, s32(domain), s32(stype), s32(protocol))
    return _install_new(t, UnixSocket(t, kind, flags), flags)


def socketpair(t, domain, stype, protocol, sv, *_):
    """socketpair(2): two connected AF_UNIX sockets."""
    kind, flags = _unix_type(t, s32(domain), s32(stype), s32(protocol))
    return install_pair(t, *_socketpair(t, kind, flags), bool(flags & SOCK_CLOEXEC), sv)


def bind(t, fd, umyaddr, addrlen, *_):
    """bind(2) to a path (a socket node), an abstract name, or an autobound one (family only)."""
    sock = _sock(t, fd)
    raw = _sockaddr(t, umyaddr, addrlen)
    if len(raw) == SA_FAMILY.size and SA_FAMILY.unpack(raw)[0] == AF_UNIX:
        sock.bind(t, b"")
    else:
        sock.bind(t, addr.decode(raw))
    return 0


def listen(t, fd, backlog, *_):
    """listen(2); the backlog is capped at net.core.somaxconn."""
    _sock(t, fd).listen(t, s32(backlog))
    return 0


def connect(t, fd, uservaddr, addrlen, *_):
    """connect(2): a stream/seqpacket connection to a listener, a datagram default destination."""
    sock = _sock(t, fd)
    raw = _sockaddr(t, uservaddr, addrlen)
    if sock.stype == SOCK_DGRAM:
        if len(raw) >= SA_FAMILY.size and SA_FAMILY.unpack_from(raw)[0] == AF_UNSPEC:
            return sock.connect_dgram(t, None)
        return sock.connect_dgram(t, addr.lookup(t, addr.decode(raw), sock.stype))
    return sock.connect_stream(t, addr.lookup(t, addr.decode(raw), sock.stype))


def _accept(t, fd, upeer, upeerlen, flags: int):
    if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise SysError(EINVAL)
    sock = _sock(t, fd)
    if upeer:  # check the length before taking the connection
        if INT.unpack(t.mm.read(upeerlen, 4))[0] < 0:
            raise SysError(EINVAL)
    server = sock.accept(t)
    if server.__class__ is Block:
        return server
    server.flags |= flags & SOCK_NONBLOCK
    newfd = _install_new(t, server, flags)
    try:
        _put_addr(t, server.peer.addr if server.peer is not None else addr.UNNAMED, upeer, upeerlen)
    except SysError:
        t.fdtable.close(newfd)
        raise
    return newfd


def accept(t, fd, upeer, upeerlen, *_):
    """accept(2)."""
    return _accept(t, fd, upeer, upeerlen, 0)


def accept4(t, fd, upeer, upeerlen, flags, *_):
    """accept4(2) with SOCK_NONBLOCK and SOCK_CLOEXEC."""
    return _accept(t, fd, upeer, upeerlen, s32(flags))


def getsockname(t, fd, usockaddr, usockaddr_len, *_):
    """getsockname(2): the bound name (the family alone if unbound)."""
    _put_addr(t, _sock(t, fd).addr, usockaddr, usockaddr_len)
    return 0


def getpeername(t, fd, usockaddr, usockaddr_len, *_):
    """getpeername(2): the peer's name; ENOTCONN without a peer."""
    peer = _sock(t, fd).peer
    if peer is None:
        raise SysError(ENOTCONN)
    _put_addr(t, peer.addr, usockaddr, usockaddr_len)
    return 0


def shutdown(t, fd, how, *_):
    """shutdown(2) with SHUT_RD, SHUT_WR or SHUT_RDWR."""
    _sock(t, fd).shut(s32(how))
    return 0


# -- options --------------------------------------------------------------------
def _buf_size(value: int, minimum: int) -> int:
    """SO_SNDBUF/SO_RCVBUF: twice the value asked (for bookkeeping, as Linux), within limits."""
    return max(min(value & 0xFFFFFFFF, SOCK_BUF_MAX) * 2, minimum)


def setsockopt(t, fd, level, optname, optval, optlen, *_):
    """setsockopt(2): SOL_SOCKET buffer sizes, SO_PASSCRED; a few more are only stored."""
    sock = _sock(t, fd)
    level, optname, optlen = s32(level), s32(optname), s32(optlen)
    if level != SOL_SOCKET:
        raise SysError(EOPNOTSUPP)
    if optlen < 0:
        raise SysError(EINVAL)
    if optname in _STORED_OPTS:
        size = _STORED_OPTS[optname][0]
        if optlen < size:
            raise SysError(EINVAL)
        value = t.mm.read(optval, size)
        if size == INT.size and optname != SO_RCVLOWAT:
            value = INT.pack(INT.unpack(value)[0] != 0)
        if optname in (SO_RCVTIMEO, SO_SNDTIMEO):
            value = _set_timeout(sock, optname, value)
        sock.opts[optname] = value
        return 0
    if optlen < INT.size:
        raise SysError(EINVAL)
    value = INT.unpack(t.mm.read(optval, INT.size))[0]
    if optname in (SO_SNDBUF, SO_SNDBUFFORCE):
        sock.sndbuf = _buf_size(value, SOCK_MIN_SNDBUF)
        sock.wq.notify()
    elif optname in (SO_RCVBUF, SO_RCVBUFFORCE):
        sock.rcvbuf = _buf_size(value, SOCK_MIN_RCVBUF)
    elif optname == SO_PASSCRED:
        sock.passcred = bool(value)
    else:
        raise SysError(ENOPROTOOPT)
    return 0


def _set_timeout(sock: UnixSocket, optname: int, raw: bytes) -> bytes:
    """SO_RCVTIMEO/SO_SNDTIMEO from struct timeval `raw` (EDOM for bad microseconds; 0: no
    timeout; a negative one: do not wait, read back as 0): the value getsockopt shows."""
    sec, usec = TIMEVAL.unpack(raw)
    if not 0 <= usec < 1_000_000:
        raise SysError(EDOM)
    if sec < 0:
        sock.timeouts[optname] = 0.0
        return TIMEVAL.pack(0, 0)
    if sec or usec:
        sock.timeouts[optname] = sec + usec / 1e6
    else:
        sock.timeouts.pop(optname, None)
    return raw


def getsockopt(t, fd, level, optname, optval, optlen, *_):
    """getsockopt(2) of SOL_SOCKET options (SO_PEERCRED: the peer's creator, as the sandbox sees it)."""
    sock = _sock(t, fd)
    level, optname = s32(level), s32(optname)
    if level != SOL_SOCKET:
        raise SysError(EOPNOTSUPP)
    length = INT.unpack(t.mm.read(optlen, 4))[0]
    if length < 0:
        raise SysError(EINVAL)
    if optname == SO_PEERCRED:
        value = UCRED.pack(*sock.peercred)
    elif optname in _STORED_OPTS:
        size, default = _STORED_OPTS[optname]
        value = sock.opts.get(optname, default.to_bytes(size, "little"))
    else:
        value = INT.pack(_int_option(sock, optname))
    value = value[:length]
    t.mm.write(optval, value)
    t.mm.write(optlen, INT.pack(len(value)))
    return 0


def _int_option(sock: UnixSocket, optname: int) -> int:
    """The value of an int SOL_SOCKET option; ENOPROTOOPT for an unknown one."""
    if optname == SO_TYPE:
        return sock.stype
    if optname == SO_DOMAIN:
        return AF_UNIX
    if optname == SO_PROTOCOL:
        return 0
    if optname == SO_ERROR:
        err, sock.err = sock.err, 0
        return err
    if optname == SO_SNDBUF:
        return sock.sndbuf
    if optname == SO_RCVBUF:
        return sock.rcvbuf
    if optname == SO_PASSCRED:
        return int(sock.passcred)
    if optname == SO_ACCEPTCONN:
        return int(sock.listening)
    raise SysError(ENOPROTOOPT)


# -- sending ----------------------------------------------------------------------
def _control(t, sock: UnixSocket, ptr: int, length: int):
    """The files (new references) and credentials of the control messages at `ptr`: EINVAL for a
    malformed message or more than SCM_MAX_FD files, EBADF for a closed fd, EPERM for credentials
    the sender may not claim."""
    files, creds = [], None
    data = t.mm.read(ptr, length) if length else b""
    off = 0
    try:
        while off + CMSGHDR.size <= len(data):
            clen, level, ctype = CMSGHDR.unpack_from(data, off)
            if clen < CMSGHDR.size or clen > len(data) - off:
                raise SysError(EINVAL)
            body = data[off + CMSGHDR.size:off + clen]
            if level == SOL_SOCKET:
                if ctype == SCM_RIGHTS:
                    fds = [INT.unpack_from(body, i)[0] for i in range(0, len(body) - 3, 4)]
                    if len(files) + len(fds) > SCM_MAX_FD:
                        raise SysError(EINVAL)
                    for fd in fds:
                        files.append(t.fdtable.get(fd).ref())
                elif ctype == SCM_CREDENTIALS and len(body) == UCRED.size:
                    creds = _claimed_creds(t, UCRED.unpack(body))
                else:
                    raise SysError(EINVAL)
            off += cmsg_align(clen)
    except SysError:
        for f in files:
            f.unref()
        raise
    return files or None, creds


def _claimed_creds(t, creds: tuple[int, int, int]) -> tuple[int, int, int]:
    """SCM_CREDENTIALS a sender passes: its own pid and ids unless privileged (EPERM)."""
    pid, uid, gid = creds
    c = t.creds
    if pid != t.tg.pid and not c.capable(CAP_SYS_ADMIN) \
            or uid not in (c.uid, c.euid, c.suid) and not c.capable(CAP_SETUID) \
            or gid not in (c.gid, c.egid, c.sgid) and not c.capable(CAP_SETGID):
        raise SysError(EPERM)
    return creds


def _send(t, sock: UnixSocket, data: bytes, flags: int, raw_to: bytes | None, files=None, creds=None):
    """Send `data` (to the address `raw_to` if given): MSG_OOB is refused; a stream refuses an address."""
    if flags & MSG_OOB:
        raise SysError(EOPNOTSUPP)
    to = None
    if raw_to:
        if sock.stype == SOCK_STREAM:
            raise SysError(EISCONN if sock.connected else EOPNOTSUPP)
        if sock.stype == SOCK_DGRAM:
            to = addr.lookup(t, addr.decode(raw_to), SOCK_DGRAM)
    return sock.send(t, data, flags, to, files, creds)


def sendto(t, fd, buff, length, flags, daddr, addrlen, *_):
    """sendto(2) (send(2) without an address)."""
    sock = _sock(t, fd)
    raw_to = _sockaddr(t, daddr, addrlen) if daddr else None
    return _send(t, sock, t.mm.read(buff, min(length, MAX_RW_COUNT)), u32(flags), raw_to)


def _msghdr(t, ptr: int):
    """The struct msghdr at `ptr`: its fields (as MSGHDR has them) and its iovecs (EMSGSIZE for
    too many)."""
    fields = MSGHDR.unpack(t.mm.read(ptr, MSGHDR.size))
    if fields[3] > IOV_MAX:
        raise SysError(EMSGSIZE)
    return fields, iovecs(t, fields[2], fields[3])


def sendmsg(t, fd, msg, flags, *_):
    """sendmsg(2) with SCM_RIGHTS and SCM_CREDENTIALS."""
    sock = _sock(t, fd)
    (name, namelen, _, _, control, controllen, _), vecs = _msghdr(t, msg)
    if controllen > 0x7FFFFFFF:
        raise SysError(ENOBUFS)
    raw_to = _sockaddr(t, name, namelen) if name and namelen else None
    data = gather(t, vecs)
    files, creds = _control(t, sock, control, controllen)
    try:
        result = _send(t, sock, data, u32(flags), raw_to, files, creds)
    except SysError:
        for f in files or ():
            f.unref()
        raise
    if result.__class__ is Block and result.retry is None:
        for f in files or ():
            f.unref()  # nothing sent: taken again when the call is run again
    return result


# -- receiving ----------------------------------------------------------------------
class _Cmsgs:
    """Control messages written to the program's buffer as put_cmsg/scm_detach_fds do."""

    def __init__(self, t, ptr: int, length: int):
        self.t, self.ptr, self.room, self.used, self.flags = t, ptr, length, 0, 0

    def put(self, ctype: int, body: bytes) -> None:
        """One SOL_SOCKET message (cut, with MSG_CTRUNC, if it does not fit)."""
        if not self.ptr or self.room < CMSGHDR.size:
            self.flags |= MSG_CTRUNC
            return
        clen = CMSGHDR.size + len(body)
        raw = CMSGHDR.pack(clen, SOL_SOCKET, ctype) + body
        if self.room < clen:
            self.flags |= MSG_CTRUNC
            raw = raw[:self.room]
        self.t.mm.write(self.ptr + self.used, raw)
        step = min(cmsg_align(clen), self.room)
        self.used += step
        self.room -= step

    def rights(self, files: list, cloexec: bool) -> None:
        """Install as many of `files` as fit (MSG_CTRUNC, the others closed) and list their fds."""
        fit = max(0, (self.room - CMSGHDR.size) // INT.size) if self.ptr else 0
        fds = []
        for i, f in enumerate(files):
            if len(fds) < fit:
                try:
                    fds.append(self.t.fdtable.install(f, cloexec))
                    continue
                except SysError:
                    fit = 0  # install dropped f's reference
                    for g in files[i + 1:]:
                        g.unref()
                    break
            f.unref()
        if len(fds) < len(files):
            self.flags |= MSG_CTRUNC
        if fds:
            self.put(SCM_RIGHTS, b"".join(INT.pack(fd) for fd in fds))


def _recv(t, sock: UnixSocket, vecs, flags: int, finish):
    """One receive over `vecs`: finish(Received, count to return), or a Block."""
    if flags & MSG_OOB:
        raise SysError(EOPNOTSUPP if sock.stype != SOCK_STREAM else EINVAL)
    n = min(sum(length for _, length in vecs), MAX_RW_COUNT)
    return then(sock.recv(t, n, flags), lambda r: finish(r, _scatter(t, sock, vecs, r, flags)))


def _scatter(t, sock: UnixSocket, vecs, r, flags: int) -> int:
    """Copy a receive's bytes to `vecs`: the count to return (a datagram's full length with MSG_TRUNC)."""
    try:
        done = scatter(t, vecs, r.data)
    except SysError:
        for f in r.files:
            f.unref()
        raise
    return r.length if flags & MSG_TRUNC and sock.stype != SOCK_STREAM else done


def recvfrom(t, fd, ubuf, size, flags, addr_ptr, addr_len, *_):
    """recvfrom(2) (recv(2) without an address); files passed along are closed."""
    sock = _sock(t, fd)

    def finish(r, count: int) -> int:
        for f in r.files:
            f.unref()
        _put_addr(t, r.addr if r.addr != addr.UNNAMED else b"", addr_ptr, addr_len)
        return count
    return _recv(t, sock, [(ubuf, size)] if size else [], u32(flags), finish)


def recvmsg(t, fd, msg, flags, *_):
    """recvmsg(2) with SCM_RIGHTS (MSG_CMSG_CLOEXEC) and SCM_CREDENTIALS (with SO_PASSCRED)."""
    sock = _sock(t, fd)
    flags = u32(flags)
    (name, namelen, iov, iovlen, control, controllen, _), vecs = _msghdr(t, msg)
    if s32(namelen) < 0:
        raise SysError(EINVAL)

    def finish(r, count: int) -> int:
        cm = _Cmsgs(t, control, controllen)
        if sock.passcred:
            cm.put(SCM_CREDENTIALS, UCRED.pack(*r.creds))
        if r.files:
            cm.rights(r.files, bool(flags & MSG_CMSG_CLOEXEC))
        raw = r.addr if r.addr != addr.UNNAMED else b""
        if name and raw:
            t.mm.write(name, raw[:namelen])
        t.mm.write(msg, MSGHDR.pack(name, len(raw) if name else namelen, iov, iovlen, control, cm.used,
                                    r.flags | cm.flags))
        return count
    return _recv(t, sock, vecs, flags, finish)


# -- several messages ----------------------------------------------------------------
def _each_message(t, vec: int, vlen: int, one, stop=lambda: False):
    """one(msghdr address, first) for each struct mmsghdr of `vec`, its msg_len set to what
    that returned: the count done (the first message's error, or its Block, if none was).
    After the first, `one` must not wait; an error ends the run, as does stop()."""
    def record(count: int, done: int = 0) -> int:
        while True:
            t.mm.write(vec + done * MMSGHDR.size + MSGHDR.size, INT.pack(count))
            done += 1
            if done == vlen or stop():
                return done
            try:
                count = one(vec + done * MMSGHDR.size, False)
            except SysError:
                return done

    return then(one(vec, True), record) if vlen else 0


def sendmmsg(t, fd, msgvec, vlen, flags, *_):
    """sendmmsg(2): sendmsg of each message in turn (at most IOV_MAX), its msg_len set; the
    count sent.  Once one is sent, a message that would block ends the call."""
    flags = u32(flags)
    return _each_message(t, msgvec, min(u32(vlen), IOV_MAX),
                         lambda msg, first: sendmsg(t, fd, msg, flags if first else flags | MSG_DONTWAIT))


def recvmmsg(t, fd, msgvec, vlen, flags, timeout, *_):
    """recvmmsg(2): recvmsg into each message in turn (at most IOV_MAX), its msg_len set; the
    count received.  The first may wait; the others take what is there (MSG_WAITFORONE's
    way, whatever the flags); `timeout` is checked after each message, as Linux does, and
    what is left of it written back."""
    flags = u32(flags)
    deadline = None
    if timeout:
        deadline = time.monotonic() + read_timespec(t, timeout) / 1e9
    each = flags & ~MSG_WAITFORONE

    def finish(count: int) -> int:
        if deadline is not None:
            write_timespec(t, timeout, max(0, int((deadline - time.monotonic()) * 1e9)))
        return count
    return then(_each_message(t, msgvec, min(u32(vlen), IOV_MAX),
                              lambda msg, first: recvmsg(t, fd, msg, each if first else each | MSG_DONTWAIT),
                              lambda: deadline is not None and time.monotonic() >= deadline), finish)
