"""The gofer wire protocol: one message per SOCK_SEQPACKET datagram.

Every message starts with HEADER: u32 total length (header included), u32 request id, u16
opcode; then the fields of that opcode, little-endian, in the order of its SPEC entry: fixed
integers packed with `struct`, byte strings as u32 length + bytes, lists as u32 count + items.
A reply repeats the request id and either the request's opcode followed by the reply fields
(and, for OPEN and CREATE, one host fd as SCM_RIGHTS) or ERROR followed by a u32 Linux errno.
A request that cannot be parsed is answered with ERROR and request id 0 if even its header is
unreadable. Messages are at most MAX_MESSAGE bytes in both directions.

Handles name nodes the gofer holds. ATTACH takes a mount id: 0 is the container's root, 1..n
the extra trees (OCI bind mount sources) the gofer was started with, each read-only or not.
Requests marked `writes` in SPEC (and OPEN with write flags) answer EROFS on a read-only mount;
LINK and RENAME between two mounts answer EXDEV.
"""
import enum
import errno
import struct
from typing import NamedTuple

HEADER = struct.Struct("<IIH")
MAX_MESSAGE = 64 * 1024
NAME_MAX = 255
PATH_MAX = 4096
XATTR_NAME_MAX = 255
ERROR = 0xFFFF

NO_ID = 0xFFFFFFFF            # a uid or gid to leave unchanged
AT_REMOVEDIR = 0x200          # UNLINK flags
RENAME_NOREPLACE = 1          # RENAME flags
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1     # Timespec.nsec values of SETATTR
UTIME_OMIT = (1 << 30) - 2
SETATTR_MODE = 0x2            # SETATTR mask: the statx(2) STATX_* bits
SETATTR_UID = 0x8
SETATTR_GID = 0x10
SETATTR_ATIME = 0x20
SETATTR_MTIME = 0x40
SETATTR_SIZE = 0x200


class Op(enum.IntEnum):
    """Request opcodes."""

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
    FSYNC = 17
    GETXATTR = 18
    SETXATTR = 19
    LISTXATTR = 20
    REMOVEXATTR = 21
    DIRSTAT = 22


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


class DirStat(NamedTuple):
    """One directory entry with its attributes (the entry's own: a symlink is not followed)."""

    name: bytes
    stat: Stat


class Timespec(NamedTuple):
    """A time for SETATTR, as utimensat(2) takes it: nsec may be UTIME_NOW or UTIME_OMIT."""

    sec: int
    nsec: int


class Spec(NamedTuple):
    """One opcode's wire layout: request and reply fields ({name: codec}, in wire order), the
    fds its reply carries, and whether it changes the tree (EROFS on a read-only mount)."""

    request: dict
    reply: dict
    fds: int = 0
    writes: bool = False


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


_U8, _U32, _U64 = _Fixed("B"), _Fixed("I"), _Fixed("Q")
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


class _CString(_Bytes):
    """A byte string the kernel takes as a C string: no NUL, not empty (errno `empty`), at
    most `limit` bytes (errno `too_long`)."""

    def __init__(self, limit: int, too_long: int, empty: int):
        self.limit, self.too_long, self.empty = limit, too_long, empty

    def unpack(self, buf: bytes, off: int):
        value, off = super().unpack(buf, off)
        if not value:
            raise _Malformed(self.empty, "empty string")
        if b"\0" in value:
            raise _Malformed(errno.EINVAL, "NUL in a string")
        if len(value) > self.limit:
            raise _Malformed(self.too_long, "string too long")
        return value, off


class _Name(_CString):
    """One path component: a C string of at most NAME_MAX bytes, no '/', not '.' or '..'."""

    def __init__(self):
        super().__init__(NAME_MAX, errno.ENAMETOOLONG, errno.EINVAL)

    def unpack(self, buf: bytes, off: int):
        name, off = super().unpack(buf, off)
        if name in (b".", b"..") or b"/" in name:
            raise _Malformed(errno.EINVAL, f"invalid name {name!r}")
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
_TARGET = _CString(PATH_MAX - 1, errno.ENAMETOOLONG, errno.ENOENT)
_XATTR = _CString(XATTR_NAME_MAX, errno.ERANGE, errno.ERANGE)
_STAT = _Fixed("IQQQIIQqqqqqq", Stat)
_STATFS = _Fixed("qqQQQQQQqqq", StatFS)
_TIMESPEC = _Fixed("qq", Timespec)
_DIRENTS = _List(_Record(Dirent, _U64, _U8, _NAME))
_DIRSTATS = _List(_Record(DirStat, _NAME, _STAT))
# A listing's page (GETDENTS, DIRSTAT): the room for its entries, and an entry's size, its name's
# bytes excepted.
PAGE_ROOM = MAX_MESSAGE - HEADER.size - _U64.struct.size - _U32.struct.size
DIRENT_ENTRY = _U64.struct.size + _U8.struct.size + _U32.struct.size
DIRSTAT_ENTRY = _U32.struct.size + _STAT.struct.size
_NODE = dict(handle=_HANDLE, stat=_STAT)
_ENTRY = dict(parent=_HANDLE, name=_NAME)

# opcode: Spec(request fields, reply fields, ...). The handlers in server.py take the request
# fields as arguments of the same names. `parent` is a directory handle, `name` one entry of
# it; `mode` holds permission bits (MKNOD: plus S_IFREG, S_IFIFO or S_IFSOCK, a node the
# sandbox binds its own sockets to, where no host socket listens); uid/gid NO_ID: unchanged.
SPEC = {
    Op.ATTACH: Spec(dict(mount=_U32), _NODE),                     # 0: the container's root
    Op.WALK: Spec(dict(parent=_HANDLE, name=_NAME), _NODE),       # never follows a symlink
    Op.STAT: Spec(dict(handle=_HANDLE), dict(stat=_STAT)),
    Op.OPEN: Spec(dict(handle=_HANDLE, flags=_U32), {}, fds=1),   # O_* flags -> a host fd
    Op.READLINK: Spec(dict(handle=_HANDLE), dict(target=_BYTES)),
    # a page, as many entries as fit one message; cookie 0: from the start; the reply's cookie
    # continues; no entries: the end
    Op.GETDENTS: Spec(dict(handle=_HANDLE, cookie=_U64), dict(cookie=_U64, entries=_DIRENTS)),
    # GETDENTS with each entry's attributes instead of its inode number and type
    Op.DIRSTAT: Spec(dict(handle=_HANDLE, cookie=_U64), dict(cookie=_U64, entries=_DIRSTATS)),
    Op.STATFS: Spec(dict(handle=_HANDLE), dict(statfs=_STATFS)),
    # every handle released; one unknown or listed twice: EBADF/EINVAL and none released
    Op.CLOSE: Spec(dict(handles=_List(_HANDLE)), {}),
    # O_CREAT|O_EXCL added to flags; the reply carries the opened fd
    Op.CREATE: Spec(dict(**_ENTRY, flags=_U32, mode=_U32, uid=_U32, gid=_U32), _NODE, fds=1,
                    writes=True),
    Op.MKDIR: Spec(dict(**_ENTRY, mode=_U32, uid=_U32, gid=_U32), _NODE, writes=True),
    Op.MKNOD: Spec(dict(**_ENTRY, mode=_U32, uid=_U32, gid=_U32), _NODE, writes=True),
    Op.SYMLINK: Spec(dict(**_ENTRY, target=_TARGET, uid=_U32, gid=_U32), _NODE, writes=True),
    Op.LINK: Spec(dict(**_ENTRY, target=_HANDLE), _NODE, writes=True),  # target: not a dir
    Op.UNLINK: Spec(dict(**_ENTRY, flags=_U32), {}, writes=True),       # flags: AT_REMOVEDIR
    # flags: RENAME_NOREPLACE or RENAME_EXCHANGE
    Op.RENAME: Spec(dict(**_ENTRY, new_parent=_HANDLE, new_name=_NAME, flags=_U32), {},
                    writes=True),
    # mask: SETATTR_* bits choosing the fields to apply
    Op.SETATTR: Spec(dict(handle=_HANDLE, mask=_U32, mode=_U32, uid=_U32, gid=_U32, size=_U64,
                          atime=_TIMESPEC, mtime=_TIMESPEC), dict(stat=_STAT), writes=True),
    Op.FSYNC: Spec(dict(handle=_HANDLE), {}),
    # xattr names: user.* only (else EOPNOTSUPP); SETXATTR flags: XATTR_CREATE, XATTR_REPLACE
    Op.GETXATTR: Spec(dict(handle=_HANDLE, name=_XATTR), dict(value=_BYTES)),
    Op.SETXATTR: Spec(dict(handle=_HANDLE, name=_XATTR, value=_BYTES, flags=_U32), {},
                      writes=True),
    Op.LISTXATTR: Spec(dict(handle=_HANDLE), dict(names=_List(_BYTES))),
    Op.REMOVEXATTR: Spec(dict(handle=_HANDLE, name=_XATTR), {}, writes=True),
}


def _encode(op: int, req_id: int, fields: dict, values) -> bytes:
    if len(values) != len(fields):
        raise TypeError(f"{Op(op).name}: fields {', '.join(fields)} expected, got {values!r}")
    body = b"".join(f.pack(v) for f, v in zip(fields.values(), values))
    if HEADER.size + len(body) > MAX_MESSAGE:
        raise OSError(errno.E2BIG, f"{Op(op).name} message over {MAX_MESSAGE} bytes")
    return HEADER.pack(HEADER.size + len(body), req_id, op) + body


def _decode(fields: dict, data: bytes) -> tuple:
    values, off = [], HEADER.size
    for f in fields.values():
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
    """A request message for `op` with the SPEC request fields `args`; OSError(E2BIG) if it
    would exceed MAX_MESSAGE."""
    return _encode(op, req_id, SPEC[op].request, args)


def decode_request(data: bytes) -> tuple[int, Op, tuple]:
    """(request id, opcode, fields) of a request; RequestError if it is malformed."""
    req_id = HEADER.unpack_from(data)[1] if len(data) >= HEADER.size else 0
    try:
        _, op = _header(data)
        if op not in SPEC:
            raise _Malformed(errno.EINVAL, f"unknown opcode {op}")
        return req_id, Op(op), _decode(SPEC[op].request, data)
    except _Malformed as e:
        raise RequestError(e.errno, str(e), req_id) from None


def encode_reply(op: Op, req_id: int, *values) -> bytes:
    """A successful reply to `op` with the SPEC reply fields `values`; OSError(E2BIG) if it
    would exceed MAX_MESSAGE."""
    return _encode(op, req_id, SPEC[op].reply, values)


def encode_error(req_id: int, err: int) -> bytes:
    """An error reply carrying Linux errno `err`."""
    return HEADER.pack(HEADER.size + _U32.struct.size, req_id, ERROR) + _U32.pack(err)


def decode_reply(op: Op, data: bytes) -> tuple[int, int, tuple]:
    """(request id, errno, fields) of a reply to `op`: errno 0 and the SPEC reply fields on
    success, the error's errno and () on an error reply. OSError(EPROTO) if malformed."""
    try:
        req_id, reply_op = _header(data)
        if reply_op == ERROR:
            (err,) = _decode(dict(errno=_U32), data)
            return req_id, err or errno.EIO, ()
        if reply_op != op:
            raise _Malformed(errno.EPROTO, f"reply opcode {reply_op} to {op.name}")
        return req_id, 0, _decode(SPEC[op].reply, data)
    except _Malformed as e:
        raise OSError(errno.EPROTO, f"malformed gofer reply: {e}") from None
