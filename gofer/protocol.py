"""The gofer wire protocol: one message per SOCK_SEQPACKET datagram.

Every message starts with HEADER: u32 total length (header included), u32 request id, u16
opcode; then the fields of that opcode, little-endian, in the order of the SPEC table: fixed
integers packed with `struct`, byte strings as u32 length + bytes, lists as u32 count + items.
A reply repeats the request id and either the request's opcode followed by the reply fields
(and, for OPEN and CREATE, one host fd as SCM_RIGHTS) or ERROR followed by a u32 Linux errno.
A request that cannot be parsed is answered with ERROR and request id 0 if even its header is
unreadable. Messages are at most MAX_MESSAGE bytes in both directions.
"""
import enum
import errno
import struct
from typing import NamedTuple

HEADER = struct.Struct("<IIH")
MAX_MESSAGE = 64 * 1024
NAME_MAX = 255
ERROR = 0xFFFF


class Op(enum.IntEnum):
    """Request opcodes. The write side (CREATE and after) has a wire format only."""

    ATTACH = 1
    WALK = 2
    STAT = 3
    OPEN = 4
    READLINK = 5
    GETDENTS = 6
    STATFS = 7
    CLOSE = 8
    CREATE = 9
    MKDIR = 10
    MKNOD = 11
    SYMLINK = 12
    LINK = 13
    UNLINK = 14
    RENAME = 15
    SETATTR = 16


class Stat(NamedTuple):
    """A node's attributes, as stat(2) gives them (times in nanoseconds)."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_rdev: int
    st_size: int
    st_blksize: int
    st_blocks: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int


class StatFS(NamedTuple):
    """A file system's attributes, as statfs(2) gives them (f_fsid as one u64)."""

    f_type: int
    f_bsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_fsid: int
    f_namelen: int
    f_frsize: int
    f_flags: int


class Dirent(NamedTuple):
    """One directory entry: inode number, d_type (DT_*) and name."""

    ino: int
    type: int
    name: bytes


class RequestError(OSError):
    """A request that cannot be decoded; `req_id` is its id (0 when unknown)."""

    def __init__(self, err: int, message: str, req_id: int = 0):
        super().__init__(err, message)
        self.req_id = req_id


class _Malformed(Exception):
    """Internal: a field does not decode; carries the errno to answer with."""

    def __init__(self, err: int, message: str):
        super().__init__(message)
        self.errno = err


class _Fixed:
    """A fixed-size field: one struct format, a scalar or (with `record`) a NamedTuple."""

    def __init__(self, fmt: str, record: type | None = None):
        self.struct = struct.Struct("<" + fmt)
        self.record = record

    def pack(self, value) -> bytes:
        return self.struct.pack(*value) if self.record else self.struct.pack(value)

    def unpack(self, buf: bytes, off: int):
        end = off + self.struct.size
        if end > len(buf):
            raise _Malformed(errno.EINVAL, "message too short")
        values = self.struct.unpack_from(buf, off)
        return (self.record._make(values) if self.record else values[0]), end


_U8, _U32, _U64, _I64 = _Fixed("B"), _Fixed("I"), _Fixed("Q"), _Fixed("q")
_HANDLE = _U64


class _Bytes:
    """A byte string: u32 length, then the bytes."""

    def pack(self, value: bytes) -> bytes:
        return _U32.pack(len(value)) + value

    def unpack(self, buf: bytes, off: int):
        n, off = _U32.unpack(buf, off)
        if off + n > len(buf):
            raise _Malformed(errno.EINVAL, "byte string overruns the message")
        return bytes(buf[off:off + n]), off + n


class _Name(_Bytes):
    """A byte string that must be one path component: no '/', no NUL, not '', '.' or '..'."""

    def unpack(self, buf: bytes, off: int):
        name, off = super().unpack(buf, off)
        if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
            raise _Malformed(errno.EINVAL, f"invalid name {name!r}")
        if len(name) > NAME_MAX:
            raise _Malformed(errno.ENAMETOOLONG, "name too long")
        return name, off


class _Record:
    """A NamedTuple made of other fields."""

    def __init__(self, record: type, *fields):
        self.record, self.fields = record, fields

    def pack(self, value) -> bytes:
        return b"".join(f.pack(v) for f, v in zip(self.fields, value))

    def unpack(self, buf: bytes, off: int):
        values = []
        for f in self.fields:
            v, off = f.unpack(buf, off)
            values.append(v)
        return self.record._make(values), off


class _List:
    """A list: u32 count, then the items."""

    def __init__(self, item):
        self.item = item

    def pack(self, value) -> bytes:
        return _U32.pack(len(value)) + b"".join(self.item.pack(v) for v in value)

    def unpack(self, buf: bytes, off: int):
        n, off = _U32.unpack(buf, off)
        items = []
        for _ in range(n):
            v, off = self.item.unpack(buf, off)
            items.append(v)
        return items, off


_BYTES, _NAME = _Bytes(), _Name()
_STAT = _Fixed("IQQQIIQqqqqqq", Stat)
_STATFS = _Fixed("qqQQQQQQqqq", StatFS)
_DIRENTS = _List(_Record(Dirent, _U64, _U8, _NAME))
_NODE = (_HANDLE, _STAT)

# opcode: (request fields, reply fields, fds carried by the reply)
SPEC = {
    Op.ATTACH: ((), _NODE, 0),
    Op.WALK: ((_HANDLE, _NAME), _NODE, 0),                        # handle, name
    Op.STAT: ((_HANDLE,), (_STAT,), 0),
    Op.OPEN: ((_HANDLE, _U32), (), 1),                            # handle, open flags
    Op.READLINK: ((_HANDLE,), (_BYTES,), 0),
    Op.GETDENTS: ((_HANDLE, _U64), (_U64, _DIRENTS), 0),          # cookie -> next cookie
    Op.STATFS: ((_HANDLE,), (_STATFS,), 0),
    Op.CLOSE: ((_HANDLE,), (), 0),
    Op.CREATE: ((_HANDLE, _NAME, _U32, _U32, _U32, _U32), _NODE, 1),  # flags, mode, uid, gid
    Op.MKDIR: ((_HANDLE, _NAME, _U32, _U32, _U32), _NODE, 0),         # mode, uid, gid
    Op.MKNOD: ((_HANDLE, _NAME, _U32, _U64, _U32, _U32), _NODE, 0),   # mode, rdev, uid, gid
    Op.SYMLINK: ((_HANDLE, _NAME, _BYTES, _U32, _U32), _NODE, 0),     # target, uid, gid
    Op.LINK: ((_HANDLE, _NAME, _HANDLE), _NODE, 0),                   # dir, name, target
    Op.UNLINK: ((_HANDLE, _NAME, _U32), (), 0),                       # flags (AT_REMOVEDIR)
    Op.RENAME: ((_HANDLE, _NAME, _HANDLE, _NAME, _U32), (), 0),       # flags (RENAME_*)
    # handle, mask, mode, uid, gid, size, atime_ns, mtime_ns
    Op.SETATTR: ((_HANDLE, _U32, _U32, _U32, _U32, _U64, _I64, _I64), (_STAT,), 0),
}


def _encode(op: int, req_id: int, fields, values) -> bytes:
    if len(values) != len(fields):
        raise TypeError(f"{Op(op).name}: {len(fields)} fields expected, got {len(values)}")
    body = b"".join(f.pack(v) for f, v in zip(fields, values))
    return HEADER.pack(HEADER.size + len(body), req_id, op) + body


def _decode(fields, data: bytes) -> tuple:
    values, off = [], HEADER.size
    for f in fields:
        v, off = f.unpack(data, off)
        values.append(v)
    if off != len(data):
        raise _Malformed(errno.EINVAL, "trailing bytes")
    return tuple(values)


def _header(data: bytes) -> tuple[int, int]:
    """(request id, opcode) of a message whose length field matches its size."""
    if len(data) < HEADER.size:
        raise _Malformed(errno.EINVAL, "short header")
    if len(data) > MAX_MESSAGE:
        raise _Malformed(errno.EMSGSIZE, "message too long")
    length, req_id, op = HEADER.unpack_from(data)
    if length != len(data):
        raise _Malformed(errno.EINVAL, f"length field {length} but message of {len(data)}")
    return req_id, op


def encode_request(op: Op, req_id: int, *args) -> bytes:
    """A request message for `op` with the SPEC request fields `args`."""
    return _encode(op, req_id, SPEC[op][0], args)


def decode_request(data: bytes) -> tuple[int, Op, tuple]:
    """(request id, opcode, fields) of a request; RequestError if it is malformed."""
    req_id = HEADER.unpack_from(data)[1] if len(data) >= HEADER.size else 0
    try:
        _, op = _header(data)
        if op not in SPEC:
            raise _Malformed(errno.EINVAL, f"unknown opcode {op}")
        return req_id, Op(op), _decode(SPEC[op][0], data)
    except _Malformed as e:
        raise RequestError(e.errno, str(e), req_id) from None


def encode_reply(op: Op, req_id: int, *values) -> bytes:
    """A successful reply to `op` with the SPEC reply fields `values`."""
    return _encode(op, req_id, SPEC[op][1], values)


def encode_error(req_id: int, err: int) -> bytes:
    """An error reply carrying Linux errno `err`."""
    return HEADER.pack(HEADER.size + _U32.struct.size, req_id, ERROR) + _U32.pack(err)


def decode_reply(op: Op, data: bytes) -> tuple[int, int, tuple]:
    """(request id, errno, fields) of a reply to `op`: errno 0 and the SPEC reply fields on
    success, the error's errno and () on an error reply. OSError(EPROTO) if malformed."""
    try:
        req_id, reply_op = _header(data)
        if reply_op == ERROR:
            (err,) = _decode((_U32,), data)
            return req_id, err or errno.EIO, ()
        if reply_op != op:
            raise _Malformed(errno.EPROTO, f"reply opcode {reply_op} to {op.name}")
        return req_id, 0, _decode(SPEC[op][1], data)
    except _Malformed as e:
        raise OSError(errno.EPROTO, f"malformed gofer reply: {e}") from None
