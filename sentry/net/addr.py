"""AF_UNIX addresses: decoding struct sockaddr_un, and the names sockets are bound to.

A path name is an S_IFSOCK node made through the VFS; the bound socket is found again by the
node's inode identity (so a renamed or hard-linked node still reaches it, and a new node at
the same path does not).  Abstract names (sun_path[0] == 0) live in a table of their own.
Both tables are the sandbox's: one network namespace.
"""
from __future__ import annotations

import itertools

from ..abi.errno import EACCES, EADDRINUSE, ECONNREFUSED, EEXIST, EINVAL, EPROTOTYPE
from ..abi.fs import AT_FDCWD, S_IFSOCK, W_OK
from ..abi.socket import AF_UNIX, SA_FAMILY, SUN_PATH_OFFSET, UNIX_PATH_MAX
from ..kernel.errors import SysError
from ..vfs import ops
from ..vfs.perm import may_access
from ..vfs.walk import Walker

UNNAMED = SA_FAMILY.pack(AF_UNIX)  # the address of a socket bound to nothing
_ABSTRACT: dict[bytes, object] = {}
_BOUND: dict[object, object] = {}
_AUTOBIND = itertools.count(1)


def decode(raw: bytes) -> bytes:
    """The sun_path of sockaddr_un `raw` (abstract names keep their leading NUL, paths end at
    their first NUL); EINVAL for a short or long address, another family or an empty path."""
    if not SUN_PATH_OFFSET < len(raw) <= SUN_PATH_OFFSET + UNIX_PATH_MAX:
        raise SysError(EINVAL)
    if SA_FAMILY.unpack_from(raw)[0] != AF_UNIX:
        raise SysError(EINVAL)
    path = raw[SUN_PATH_OFFSET:]
    if path[0] == 0:
        return path
    return path.split(b"\0", 1)[0]


def encode(path: bytes) -> bytes:
    """The sockaddr_un a socket bound to `path` reports (a path name with its NUL)."""
    return UNNAMED + (path if path[:1] == b"\0" else path + b"\0")


def bind(t, sock, path: bytes) -> bytes:
    """Give `sock` the name `path` (a decoded sun_path; b"" autobinds an abstract name): its
    address.  A path makes a socket node (0777 less the umask); EADDRINUSE if the name is taken,
    else EINVAL if `sock` is bound already (the node made is removed again, as Linux)."""
    if path and path[0] != 0:
        return _bind_path(t, sock, path)
    if sock.bound_key is not None:
        raise SysError(EINVAL)
    if not path:
        while True:
            path = b"\0%05x" % (next(_AUTOBIND) & 0xFFFFF)
            if path not in _ABSTRACT:
                break
    if path in _ABSTRACT:
        raise SysError(EADDRINUSE)
    _ABSTRACT[path] = sock
    sock.bound_key = (_ABSTRACT, path)
    return encode(path)


def _bind_path(t, sock, path: bytes) -> bytes:
    """bind() to a path name: the socket node first (EADDRINUSE if the path exists)."""
    try:
        node = ops.mknod(t, AT_FDCWD, path, S_IFSOCK | 0o777, 0)
    except SysError as e:
        raise SysError(EADDRINUSE) if e.errno == EEXIST else e
    if sock.bound_key is not None:
        ops.unlink(t, AT_FDCWD, path, False)
        raise SysError(EINVAL)
    key = node.identity()
    _BOUND[key] = sock
    sock.bound_key = (_BOUND, key)
    return encode(path)


def unbind(sock) -> None:
    """Free the name `sock` holds (its socket node stays, as on Linux, but leads nowhere)."""
    table, key = sock.bound_key
    if table.get(key) is sock:
        del table[key]


def lookup(t, path: bytes, stype: int):
    """The socket bound to `path` (a decoded sun_path): ENOENT and the walk's errors for a
    path, EACCES without write permission on its node, ECONNREFUSED if nothing is bound
    there (or the node is no socket), EPROTOTYPE if its type is not `stype`."""
    if path[0] == 0:
        sock = _ABSTRACT.get(path)
    else:
        inode = Walker(t).resolve(AT_FDCWD, path).inode
        if inode.kind != S_IFSOCK:
            raise SysError(ECONNREFUSED)
        if not may_access(t.creds, inode.stat(), W_OK):
            raise SysError(EACCES)
        sock = _BOUND.get(inode.identity())
    if sock is None:
        raise SysError(ECONNREFUSED)
    if sock.stype != stype:
        raise SysError(EPROTOTYPE)
    return sock
