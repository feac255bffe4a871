"""The sentry's side of the gofer protocol: one synchronous request at a time.

Uses only sendmsg, recvmsg and close on the socket, which the sentry's seccomp filter allows.
"""
import errno
import os
import socket
import struct

from .protocol import (MAX_MESSAGE, NO_ID, SETATTR_ATIME, SETATTR_GID, SETATTR_MODE, SETATTR_MTIME,
                       SETATTR_SIZE, SETATTR_UID, SPEC, UTIME_OMIT, Dirent, DirStat, Op, Stat, StatFS,
                       Timespec, decode_reply, encode_request)

_FD = struct.Struct("i")
_SETATTR_BITS = (SETATTR_MODE, SETATTR_UID, SETATTR_GID, SETATTR_SIZE, SETATTR_ATIME, SETATTR_MTIME)
_OMIT = Timespec(0, UTIME_OMIT)


class GoferClient:
    """Requests to the gofer at the other end of SOCK_SEQPACKET `sock`.

    Error replies raise OSError(errno, message); a gofer that hung up raises
    ConnectionResetError and a malformed reply OSError(EPROTO). Names are single path
    components (bytes); `uid`/`gid` of new files default to NO_ID: the gofer's own.
    """

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._last_id = 0

    def _call(self, op: Op, *args) -> tuple:
        """Send one request and return the reply's fields (plus its donated fds, if any)."""
        self._last_id = self._last_id % 0xFFFFFFFF + 1
        self._sock.sendmsg([encode_request(op, self._last_id, *args)])
        nfds = SPEC[op].fds
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

    def attach(self, mount: int = 0) -> tuple[int, Stat]:
        """A handle on the root of mount `mount` (0: the container's root), and its attributes."""
        return self._call(Op.ATTACH, mount)

    def walk(self, parent: int, name: bytes) -> tuple[int, Stat]:
        """A handle on entry `name` of directory `parent`; never follows a symlink (a
        symlink comes back as a node of type S_IFLNK)."""
        return self._call(Op.WALK, parent, name)

    def stat(self, handle: int) -> Stat:
        """Fresh attributes of `handle`."""
        return self._call(Op.STAT, handle)[0]

    def open(self, handle: int, flags: int) -> int:
        """A host fd (O_CLOEXEC, owned by the caller) for regular file or directory `handle`;
        O_WRONLY, O_RDWR, O_TRUNC and O_APPEND on a writable mount only."""
        return self._call(Op.OPEN, handle, flags)[0]

    def readlink(self, handle: int) -> bytes:
        """The raw target of symlink `handle`."""
        return self._call(Op.READLINK, handle)[0]

    def getdents(self, handle: int) -> list[Dirent]:
        """All entries of directory `handle` but '.' and '..', as (ino, d_type, name)."""
        return self._pages(Op.GETDENTS, handle)

    def dirstat(self, handle: int) -> list[DirStat]:
        """All entries of directory `handle` but '.' and '..', as (name, attributes)."""
        return self._pages(Op.DIRSTAT, handle)

    def _pages(self, op: Op, handle: int) -> list:
        """The entries of a listing `op` answers a page at a time (cookie, entries)."""
        entries, cookie = [], 0
        while True:
            cookie, page = self._call(op, handle, cookie)
            if not page:
                return entries
            entries.extend(page)

    def statfs(self, handle: int) -> StatFS:
        """Attributes of the file system holding `handle`."""
        return self._call(Op.STATFS, handle)[0]

    def close(self, *handles: int) -> None:
        """Release `handles` (one message for all)."""
        self._call(Op.CLOSE, list(handles))

    def create(self, parent: int, name: bytes, flags: int, mode: int, uid: int = NO_ID,
               gid: int = NO_ID) -> tuple[int, Stat, int]:
        """A new regular file `name` in `parent` (O_CREAT|O_EXCL, permission bits `mode`
        exactly): (handle, attributes, host fd opened with `flags`, owned by the caller)."""
        return self._call(Op.CREATE, parent, name, flags, mode, uid, gid)

    def mkdir(self, parent: int, name: bytes, mode: int, uid: int = NO_ID,
              gid: int = NO_ID) -> tuple[int, Stat]:
        """A new directory `name` in `parent`: (handle, attributes)."""
        return self._call(Op.MKDIR, parent, name, mode, uid, gid)

    def mknod(self, parent: int, name: bytes, mode: int, uid: int = NO_ID,
              gid: int = NO_ID) -> tuple[int, Stat]:
        """A new regular file or FIFO (S_IFREG or S_IFIFO in `mode`; devices and sockets are
        EPERM) `name` in `parent`: (handle, attributes)."""
        return self._call(Op.MKNOD, parent, name, mode, uid, gid)

    def symlink(self, parent: int, name: bytes, target: bytes, uid: int = NO_ID,
                gid: int = NO_ID) -> tuple[int, Stat]:
        """A new symlink `name` in `parent` pointing at `target`: (handle, attributes)."""
        return self._call(Op.SYMLINK, parent, name, target, uid, gid)

    def link(self, parent: int, name: bytes, target: int) -> tuple[int, Stat]:
        """A new name `name` in `parent` for the file `target` (not a directory; on the same
        mount): (handle, attributes)."""
        return self._call(Op.LINK, parent, name, target)

    def unlink(self, parent: int, name: bytes, flags: int = 0) -> None:
        """Remove `name` from `parent`; a directory with flags AT_REMOVEDIR."""
        self._call(Op.UNLINK, parent, name, flags)

    def rename(self, parent: int, name: bytes, new_parent: int, new_name: bytes,
               flags: int = 0) -> None:
        """renameat2(2) within one mount; flags RENAME_NOREPLACE or RENAME_EXCHANGE. A handle
        on the moved file(s) answers ESTALE where it would reopen: walk to the new name."""
        self._call(Op.RENAME, parent, name, new_parent, new_name, flags)

    def setattr(self, handle: int, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None,
                atime: tuple[int, int] | None = None,
                mtime: tuple[int, int] | None = None) -> Stat:
        """Change the given attributes (owner, then mode, size, times); the new attributes.
        Times are (sec, nsec), nsec possibly UTIME_NOW or UTIME_OMIT; mode and size apply to
        regular files and directories only. Changes made before a failing one stay made."""
        given = (mode, uid, gid, size, atime, mtime)
        mask = sum(bit for bit, value in zip(_SETATTR_BITS, given) if value is not None)
        return self._call(Op.SETATTR, handle, mask, mode or 0, uid or 0, gid or 0, size or 0,
                          atime or _OMIT, mtime or _OMIT)[0]

    def fsync(self, handle: int) -> None:
        """Flush regular file or directory `handle` to disk."""
        self._call(Op.FSYNC, handle)

    def getxattr(self, handle: int, name: bytes) -> bytes:
        """The value of extended attribute `name` (user.* only: ENOTSUP otherwise)."""
        return self._call(Op.GETXATTR, handle, name)[0]

    def setxattr(self, handle: int, name: bytes, value: bytes, flags: int = 0) -> None:
        """Set extended attribute `name`; flags XATTR_CREATE or XATTR_REPLACE."""
        self._call(Op.SETXATTR, handle, name, value, flags)

    def listxattr(self, handle: int) -> list[bytes]:
        """The names of the user.* extended attributes of `handle`."""
        return self._call(Op.LISTXATTR, handle)[0]

    def removexattr(self, handle: int, name: bytes) -> None:
        """Remove extended attribute `name`."""
        self._call(Op.REMOVEXATTR, handle, name)
