"""Open file descriptions: the `File` base class, directories and fixed-content files.

A File is shared by every fd (in every fd table) that refers to it; `ref()` and
`unref()` count those references and `release()` runs when the last goes.
Subclasses implement what their kind of file supports; the defaults fail as
Linux does for a file that lacks the operation.
"""
from __future__ import annotations

from ..abi.errno import EINVAL, EISDIR, ENOTDIR, ENOTTY, ENXIO, EOPNOTSUPP, ESPIPE
from ..abi.fs import (DT_SHIFT, O_ACCMODE, O_APPEND, O_NOCTTY, O_PATH, O_RDONLY, O_RDWR, O_WRONLY, POLLIN, POLLOUT,
                      POLLRDNORM, POLLWRNORM, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE, SEEK_SET, S_IFDIR, S_IFREG, INT)
from ..abi.ioctl import FIONREAD
from ..kernel.errors import SysError
from . import fsnotify
from .dentry import Location
from .encode import dirent
from .inode import Attr
from .lock import release_file
from .walk import path_of

_ALWAYS_READY = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM


class File:
    """An open file description: location, status flags, offset and reference count.

    `readable` and `writable` follow from the access mode, which never changes (O_PATH files are
    neither).
    """

    __slots__ = ("loc", "flags", "offset", "refs", "readable", "writable")
    seekable = True  # False for pipes and terminals: lseek/pread/pwrite fail with ESPIPE

    def __init__(self, loc: Location, flags: int):
        self.loc = loc
        self.flags = flags & ~O_NOCTTY  # (an open-time flag that only terminals see, see vfs.ops)
        self.offset = 0
        self.refs = 1
        acc = -1 if flags & O_PATH else flags & O_ACCMODE
        self.readable = acc in (O_RDONLY, O_RDWR)
        self.writable = acc in (O_WRONLY, O_RDWR)

    @property
    def path(self) -> bytes:
        """The file's absolute path in the sandbox (its internal name if it has none)."""
        mount = self.loc.mount
        return path_of(self.loc, mount.ns.root_location() if mount.ns else self.loc)

    def ref(self) -> File:
        """Take one more reference; returns self."""
        self.refs += 1
        return self

    def unref(self) -> None:
        """Drop a reference; the last one releases the file."""
        self.refs -= 1
        if self.refs == 0:
            fsnotify.closed(self)
            release_file(self)
            self.release()

    def release(self) -> None:
        """Free what the open file holds (host fds, pipe ends)."""

    def lock_key(self):
        """What every open of this file shares, where its locks are kept (vfs/lock.py)."""
        return self.loc.inode

    def fsync(self, t) -> None:
        """fsync(2): flush what the file system holds for the file (memory files hold nothing to flush)."""

    def syncfs(self, t) -> None:
        """syncfs(2): flush the file system the file is on (memory file systems hold nothing to flush)."""

    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2) on a regular file, its arguments checked; files that cannot: EOPNOTSUPP."""
        raise SysError(EOPNOTSUPP)

    def stat(self) -> Attr:
        """The attributes of the file's inode."""
        return self.loc.dentry.inode.stat()

    def size(self) -> int:
        """Current size in bytes (for SEEK_END and O_APPEND)."""
        return self.stat().st_size

    def read(self, t, n: int):
        """Read up to `n` bytes at the file offset: bytes, or a Block to wait."""
        data = self.pread(n, self.offset)
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        """Take back bytes `read` returned that could not be copied to the program (EFAULT)."""
        if self.seekable:
            self.offset -= len(data)

    def write(self, t, data: bytes):
        """Write at the file offset (at the end with O_APPEND): count, or a Block to wait."""
        if self.flags & O_APPEND:
            self.offset = self.size()
        n = self.pwrite(data, self.offset)
        self.offset += n
        return n

    def pread(self, n: int, offset: int) -> bytes:
        """Read up to `n` bytes at `offset`."""
        raise SysError(EINVAL if self.seekable else ESPIPE)

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write `data` at `offset`."""
        raise SysError(EINVAL if self.seekable else ESPIPE)

    def seek(self, offset: int, whence: int) -> int:
        """lseek(2) for SEEK_SET, SEEK_CUR and SEEK_END."""
        if not self.seekable:
            raise SysError(ESPIPE)
        if whence == SEEK_SET:
            new = offset
        elif whence == SEEK_CUR:
            new = self.offset + offset
        elif whence == SEEK_END:
            new = self.size() + offset
        elif whence in (SEEK_DATA, SEEK_HOLE):
            new = self.data_offset(offset, whence == SEEK_HOLE)
        else:
            raise SysError(EINVAL)
        if new < 0:
            raise SysError(EINVAL)
        self.offset = new
        return new

    def data_offset(self, offset: int, hole: bool) -> int:
        """SEEK_DATA (SEEK_HOLE if `hole`) from `offset`: here the whole file is data (Linux's
        generic answer); ENXIO at or past the end."""
        size = self.size()
        if not 0 <= offset < size:
            raise SysError(ENXIO)
        return size if hole else offset

    def getdents(self, t, size: int) -> bytes:
        """linux_dirent64 records filling at most `size` bytes."""
        raise SysError(ENOTDIR)

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """Device-specific request; regular files answer FIONREAD."""
        if cmd == FIONREAD and self.loc.dentry.inode.kind == S_IFREG:
            t.mm.write(arg, INT.pack(max(0, min(self.size() - self.offset, 0x7FFFFFFF))))
            return 0
        raise SysError(ENOTTY)

    def readiness(self) -> int:
        """The poll events true now (POLLERR and POLLHUP included when they hold)."""
        return _ALWAYS_READY

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """(wait queues, host (fd, events) pairs) whose activity may make `events` ready."""
        return (), ()


class DirFile(File):
    """An open directory: getdents over a listing taken at offset 0."""

    __slots__ = ("_entries",)

    def __init__(self, loc: Location, flags: int):
        super().__init__(loc, flags)
        self._entries: list[tuple[bytes, int, int]] = []

    def read(self, t, n: int):
        """Directories cannot be read."""
        raise SysError(EISDIR)

    def pread(self, n: int, offset: int) -> bytes:
        """Directories cannot be read."""
        raise SysError(EISDIR)

    def seek(self, offset: int, whence: int) -> int:
        """SEEK_SET and SEEK_CUR move among the entries."""
        if whence == SEEK_END:
            raise SysError(EINVAL)
        return super().seek(offset, whence)

    def getdents(self, t, size: int) -> bytes:
        """Records from the current entry on; EINVAL if even the first does not fit."""
        if self.offset == 0 or not self._entries:
            dentry = self.loc.dentry
            dot = S_IFDIR >> DT_SHIFT
            self._entries = [(b".", dentry.inode.stat().st_ino, dot),
                             (b"..", (dentry.parent or dentry).inode.stat().st_ino, dot)]
            listing = dentry.inode.readdir()
            self._entries += listing
            # Mount points made in the sentry's view only (vfs/setup.py) are listed too.
            extra = [d for d in dentry.children.values() if d.pinned]
            if extra:
                names = {name for name, _, _ in listing}
                self._entries += [(d.name, d.inode.stat().st_ino, d.inode.kind >> DT_SHIFT) for d in extra
                                  if d.name not in names and not d.dead]
        out = bytearray()
        i = self.offset
        while i < len(self._entries):
            name, ino, dtype = self._entries[i]
            rec = dirent(ino, i + 1, dtype, name)
            if len(out) + len(rec) > size:
                if not out:
                    raise SysError(EINVAL)
                break
            out += rec
            i += 1
        self.offset = i
        return bytes(out)


class SnapshotFile(File):
    """A read-only file whose content is fixed when it is opened (proc files)."""

    __slots__ = ("data",)

    def __init__(self, loc: Location, flags: int, data: bytes):
        super().__init__(loc, flags)
        self.data = data

    def size(self) -> int:
        """Length of the snapshot."""
        return len(self.data)

    def pread(self, n: int, offset: int) -> bytes:
        """Bytes of the snapshot."""
        return self.data[offset:offset + n]
