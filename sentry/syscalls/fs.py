"""File-system syscalls: descriptors, paths, reads and writes, attributes, polling.

Handlers take the raw unsigned 64-bit arguments and convert them (`s32` for
fds, dirfds and ids, `s64` for offsets).  Path semantics live in `vfs.ops`
and `vfs.walk`; this module decodes arguments, checks descriptors and
encodes results.
"""
from __future__ import annotations

import functools
import struct
import time

from ..abi.errno import (E2BIG, EACCES, EAGAIN, EBADF, EFAULT, EFBIG, EINTR, EINVAL, EISDIR, ENODEV, ENOENT, ENOTDIR,
                         EOPNOTSUPP, EPERM, ERANGE, ESPIPE)
from ..abi.fs import (AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT, AT_REMOVEDIR, AT_STATX_SYNC_TYPE,
                      AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, CLOSE_RANGE_CLOEXEC, CLOSE_RANGE_UNSHARE,
                      FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                      FALLOC_FL_UNSHARE_RANGE, FALLOC_FL_WRITE_ZEROES, FALLOC_FL_ZERO_RANGE, FD_CLOEXEC, FLOCK,
                      F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_GETLK, F_GETPIPE_SZ, F_OFD_GETLK, F_OFD_SETLK,
                      F_OFD_SETLKW, F_RDLCK, F_SETFD, F_SETFL, F_SETLK, F_SETLKW, F_SETPIPE_SZ, F_UNLCK, F_WRLCK,
                      INT_PAIR, IOV_MAX, LOCK_EX, LOCK_MAND, LOCK_NB, LOCK_SH, LOCK_UN, MAX_RW_COUNT, OFFSET_MAX,
                      OPEN_HOW, OPEN_HOW_SIZE_MAX, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NONBLOCK, O_PATH,
                      O_PATH_FLAGS, O_SETFL_MASK, O_TMPFILE_BIT, O_TRUNC, O_WRONLY, PATH_MAX, POLLERR, POLLFD,
                      POLLHUP, POLLNVAL, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, RESOLVE_ALL,
                      RESOLVE_BENEATH, RESOLVE_CACHED, RESOLVE_IN_ROOT, RWF_APPEND, RWF_DSYNC, RWF_NOAPPEND,
                      RWF_NOWAIT, RWF_SUPPORTED, RWF_SYNC, SEEK_CUR, SEEK_END, SEEK_SET, SELECT_EX, SELECT_IN,
                      SELECT_OUT, STATX__RESERVED, SYNC_FILE_RANGE_ALL, S_IALLUGO, S_IFBLK, S_IFDIR, S_IFIFO, S_IFLNK,
                      S_IFREG, TIMESPEC, UTIME_NOW, UTIME_OMIT, VALID_OPEN_FLAGS, X_OK)
from ..abi.ioctl import FIOCLEX, FIONBIO, FIONCLEX
from ..abi.mm import TASK_SIZE
from ..fs.memfd import F_ADD_SEALS, F_GET_SEALS, seals_fcntl
from ..fs.pipe import new_pipe, pipe_fcntl
from ..kernel.errors import SysError
from ..kernel.signals import deliverable, with_sigmask
from ..kernel.waitqueue import Block
from ..vfs import encode, fsnotify, lock, ops
from ..vfs.dentry import Location
from ..vfs.file import File
from ..vfs.perm import may_access
from ..vfs.walk import Walker, path_of
from .args import s32, s64, u32

_NS = 1_000_000_000
_SIGSET_ARG = struct.Struct("<QQ")  # pselect6's {const sigset_t *ss, size_t ss_len}
_STAT_AT_FLAGS = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT


# -- argument helpers ----------------------------------------------------------
def _file(t, fd: int) -> File:
    """The open file at raw fd `fd`; EBADF for O_PATH files (they allow no I/O)."""
    f = t.fdtable.get(s32(fd))
    if f.flags & O_PATH:
        raise SysError(EBADF)
    return f


def _path(t, addr: int) -> bytes:
    """The NUL-terminated path at `addr`."""
    return t.mm.read_cstr(addr, PATH_MAX)


def _resolve(t, dirfd: int, addr: int, flags: int = 0, allowed: int = 0, follow: bool = True) -> Location:
    """Resolve the path at `addr` from raw `dirfd`, honouring AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH."""
    if flags & ~allowed:
        raise SysError(EINVAL)
    return Walker(t).resolve(s32(dirfd), _path(t, addr), follow=follow and not flags & AT_SYMLINK_NOFOLLOW,
                             empty_ok=bool(flags & AT_EMPTY_PATH))


def _count(count: int, addr: int) -> int:
    """A read/write length: EFAULT if the buffer leaves user space, EINVAL if negative as ssize_t,
    clamped to MAX_RW_COUNT."""
    if addr + count > TASK_SIZE:
        raise SysError(EFAULT)
    if count > MAX_RW_COUNT:
        if count >> 63:
            raise SysError(EINVAL)
        return MAX_RW_COUNT
    return count


def _offset(offset: int) -> int:
    """A file offset argument; EINVAL if negative."""
    offset = s64(offset)
    if offset < 0:
        raise SysError(EINVAL)
    return offset


def _readable(t, fd: int) -> File:
    """The file at raw fd `fd`, which must be open for reading."""
    f = t.fdtable.get(s32(fd))
    if not f.readable:
        raise SysError(EBADF)
    return f


def _writable(t, fd: int) -> File:
    """The file at raw fd `fd`, which must be open for writing."""
    f = t.fdtable.get(s32(fd))
    if not f.writable:
        raise SysError(EBADF)
    return f


def _store(t, f: File, addr: int, data):
    """Copy what a read returned to `addr` (given back to the file on EFAULT); a Block passes through."""
    if data.__class__ is Block:
        return data
    try:
        t.mm.write(addr, data)
    except SysError:
        f.unread(data)
        raise
    return len(data)


# -- read and write ------------------------------------------------------------
def read(t, fd, buf, count, *_):
    """read(2) at the file offset; a pipe or host fd with nothing to read blocks."""
    f = _readable(t, fd)
    return fsnotify.read_done(f, _store(t, f, buf, f.read(t, _count(count, buf))))


def write(t, fd, buf, count, *_):
    """write(2); a full pipe blocks (PIPE_BUF writes are atomic)."""
    f = _writable(t, fd)
    return fsnotify.write_done(f, f.write(t, t.mm.read(buf, _count(count, buf))))


def pread64(t, fd, buf, count, offset, *_):
    """pread(2) at an explicit offset (ESPIPE on pipes and terminals)."""
    f = _readable(t, fd)
    offset = _offset(offset)
    data = f.pread(_count(count, buf), offset)
    t.mm.write(buf, data)
    return fsnotify.read_done(f, len(data))


def pwrite64(t, fd, buf, count, offset, *_):
    """pwrite(2) at an explicit offset (appends on O_APPEND files, as Linux does)."""
    f = _writable(t, fd)
    offset = _offset(offset)
    if not f.seekable:
        raise SysError(ESPIPE)
    data = t.mm.read(buf, _count(count, buf))
    return fsnotify.write_done(f, f.pwrite(data, f.size() if f.flags & O_APPEND else offset))


def iovecs(t, iov: int, iovcnt: int) -> list[tuple[int, int]]:
    """The (base, length) pairs of an iovec array (see MemoryManager.read_iovecs)."""
    n = s32(iovcnt)
    if not 0 <= n <= IOV_MAX:
        raise SysError(EINVAL)
    return t.mm.read_iovecs(iov, n)


def _read_into(t, f: File, vecs: list[tuple[int, int]], offset: int | None = None):
    """One read (at `offset`, else at the file offset) scattered over `vecs`: the count copied
    (short at a fault after the first byte), or a Block."""
    n = min(sum(length for _, length in vecs), MAX_RW_COUNT)
    data = f.read(t, n) if offset is None else f.pread(n, offset)
    if data.__class__ is Block:
        return data
    done = scatter(t, vecs, data, f.unread if offset is None else None)
    return fsnotify.read_done(f, done)


def scatter(t, vecs: list[tuple[int, int]], data: bytes, unread=None) -> int:
    """Copy `data` over `vecs`: the count copied, short at a fault after the first byte (the
    rest handed to `unread`, if given; a fault at the first byte raises after that)."""
    done = 0
    try:
        for base, length in vecs:
            if done >= len(data):
                break
            t.mm.write(base, data[done:done + length])
            done += min(length, len(data) - done)
    except SysError:
        if unread is not None:
            unread(data[done:])
        if not done:
            raise
    return done


def gather(t, vecs: list[tuple[int, int]]) -> bytes:
    """The bytes of `vecs` (at most MAX_RW_COUNT), up to a fault after the first iovec."""
    parts, left = [], MAX_RW_COUNT
    for base, length in vecs:
        try:
            parts.append(t.mm.read(base, min(length, left)))
        except SysError:
            if not parts:
                raise
            break
        left -= len(parts[-1])
    return b"".join(parts)


def readv(t, fd, iov, iovcnt, *_):
    """readv(2): one read scattered over the iovecs."""
    f = _readable(t, fd)
    return _read_into(t, f, iovecs(t, iov, iovcnt))


def writev(t, fd, iov, iovcnt, *_):
    """writev(2): the iovecs gathered into one write."""
    f = _writable(t, fd)
    return fsnotify.write_done(f, f.write(t, gather(t, iovecs(t, iov, iovcnt))))


def _position(pos: int, current_ok: bool) -> int | None:
    """A preadv/pwritev offset: None (the file offset) for -1 if `current_ok` (the *v2 calls);
    EINVAL if negative."""
    pos = s64(pos)
    if pos == -1 and current_ok:
        return None
    if pos < 0:
        raise SysError(EINVAL)
    return pos


def _vector_file(t, fd: int, offset: int | None, write: bool) -> File:
    """The file of a preadv/pwritev family call: ESPIPE for an offset on an unseekable file,
    then EBADF unless open for reading (writing if `write`)."""
    f = _file(t, fd)
    if offset is not None and not f.seekable:
        raise SysError(ESPIPE)
    if not (f.writable if write else f.readable):
        raise SysError(EBADF)
    return f


def _rwf(flags: int) -> int:
    """preadv2/pwritev2 flags: EOPNOTSUPP for unknown ones, EINVAL for RWF_APPEND|RWF_NOAPPEND."""
    flags = u32(flags)
    if flags & ~RWF_SUPPORTED:
        raise SysError(EOPNOTSUPP)
    if flags & RWF_APPEND and flags & RWF_NOAPPEND:
        raise SysError(EINVAL)
    return flags


def _with_flags(f: File, flags: int, mask: int, op):
    """Run `op()` with the status flags in `mask` set to `flags` for this call only (RWF_NOWAIT as
    O_NONBLOCK, RWF_APPEND/RWF_NOAPPEND as O_APPEND)."""
    saved = f.flags
    f.flags = saved & ~mask | flags & mask
    try:
        return op()
    finally:
        f.flags = saved


def _preadv(t, fd: int, iov: int, iovcnt: int, offset: int | None, flags: int):
    f = _vector_file(t, fd, offset, False)
    vecs = iovecs(t, iov, iovcnt)
    if not any(length for _, length in vecs):
        return 0
    if _rwf(flags) & RWF_NOWAIT:
        return _with_flags(f, O_NONBLOCK, O_NONBLOCK, lambda: _read_into(t, f, vecs, offset))
    return _read_into(t, f, vecs, offset)


def _pwritev(t, fd: int, iov: int, iovcnt: int, offset: int | None, flags: int):
    f = _vector_file(t, fd, offset, True)
    vecs = iovecs(t, iov, iovcnt)
    if not any(length for _, length in vecs):
        return 0
    flags = _rwf(flags)
    regular = f.loc.inode.kind == S_IFREG
    if flags & RWF_NOWAIT and regular:
        raise SysError(EOPNOTSUPP)  # (as buffered writes to a disk file system answer)
    data = gather(t, vecs)
    append = bool(f.flags & O_APPEND or flags & RWF_APPEND) and not flags & RWF_NOAPPEND
    if offset is None:
        status = (O_NONBLOCK if flags & RWF_NOWAIT else 0) | (O_APPEND if append else 0)
        n = _with_flags(f, status, O_NONBLOCK | O_APPEND, lambda: f.write(t, data))
    else:
        n = f.pwrite(data, f.size() if append else offset)
    if flags & (RWF_DSYNC | RWF_SYNC) and regular and n.__class__ is int and n > 0:
        f.fsync(t)
    return fsnotify.write_done(f, n)


def preadv(t, fd, iov, iovcnt, pos_l, pos_h, *_):
    """preadv(2): readv at an offset (ESPIPE on pipes and terminals)."""
    return _preadv(t, fd, iov, iovcnt, _position(pos_l, False), 0)


def pwritev(t, fd, iov, iovcnt, pos_l, pos_h, *_):
    """pwritev(2): writev at an offset (appends on O_APPEND files, as Linux does)."""
    return _pwritev(t, fd, iov, iovcnt, _position(pos_l, False), 0)


def preadv2(t, fd, iov, iovcnt, pos_l, pos_h, flags, *_):
    """preadv2(2): preadv, at the file offset for -1; RWF_NOWAIT reads without blocking."""
    return _preadv(t, fd, iov, iovcnt, _position(pos_l, True), flags)


def pwritev2(t, fd, iov, iovcnt, pos_l, pos_h, flags, *_):
    """pwritev2(2): pwritev, at the file offset for -1; RWF_APPEND/RWF_NOAPPEND override O_APPEND,
    RWF_DSYNC/RWF_SYNC flush the file after writing, RWF_NOWAIT: EOPNOTSUPP on regular files."""
    return _pwritev(t, fd, iov, iovcnt, _position(pos_l, True), flags)


def lseek(t, fd, offset, whence, *_):
    """lseek(2) with SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA and SEEK_HOLE."""
    return _file(t, fd).seek(s64(offset), u32(whence))


def getdents64(t, fd, dirp, count, *_):
    """getdents64(2): linux_dirent64 records; d_off resumes after its entry."""
    f = _file(t, fd)
    count = u32(count)
    if dirp + count > TASK_SIZE:
        raise SysError(EFAULT)
    offset = f.offset
    data = f.getdents(t, count)
    try:
        t.mm.write(dirp, data)
    except SysError:
        f.offset = offset
        raise
    fsnotify.accessed(f)
    return len(data)


# -- descriptors ---------------------------------------------------------------
def _open(t, dirfd: int, addr: int, flags: int, mode: int, resolve: int = 0) -> int:
    """open, openat and openat2 (with its RESOLVE_* flags `resolve`); EINVAL for O_CREAT|O_DIRECTORY."""
    if flags & O_CREAT and flags & O_DIRECTORY and not flags & O_PATH:
        raise SysError(EINVAL)
    return _install(t, ops.open_file(t, dirfd, _path(t, addr), flags, mode, resolve=resolve), flags)


def _install(t, f, flags: int):
    """Give opened file `f` its fd; a Block (a FIFO waiting for its other end) installs the file
    its retry returns."""
    if f.__class__ is Block:
        retry = f.retry
        f.retry = lambda: _install(t, retry(), flags)
        return f
    return t.fdtable.install(f, bool(flags & O_CLOEXEC))


def open(t, path, flags, mode, *_):
    """open(2)."""
    return _open(t, AT_FDCWD, path, u32(flags), u32(mode))


def openat(t, dirfd, path, flags, mode, *_):
    """openat(2)."""
    return _open(t, s32(dirfd), path, u32(flags), u32(mode))


def openat2(t, dirfd, path, how, size, *_):
    """openat2(2): openat with a struct open_how: unknown flags, a mode when not creating, and
    flags O_PATH does not take are EINVAL; RESOLVE_* flags restrict the walk (vfs/walk.py);
    RESOLVE_CACHED walks as usual (EAGAIN only with O_CREAT, O_TRUNC or O_TMPFILE, as Linux)."""
    if size < OPEN_HOW.size:
        raise SysError(EINVAL)
    if size > OPEN_HOW_SIZE_MAX:
        raise SysError(E2BIG)
    raw = t.mm.read(how, size)
    if raw.count(0, OPEN_HOW.size) != size - OPEN_HOW.size:
        raise SysError(E2BIG)
    flags, mode, resolve = OPEN_HOW.unpack_from(raw)
    if flags & ~VALID_OPEN_FLAGS or resolve & ~RESOLVE_ALL or \
            resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        raise SysError(EINVAL)
    if (mode & ~S_IALLUGO if flags & (O_CREAT | O_TMPFILE_BIT) else mode) or \
            flags & O_PATH and flags & ~O_PATH_FLAGS:
        raise SysError(EINVAL)
    if resolve & RESOLVE_CACHED and flags & (O_CREAT | O_TRUNC | O_TMPFILE_BIT):
        raise SysError(EAGAIN)
    return _open(t, s32(dirfd), path, flags, mode, resolve)


def creat(t, path, mode, *_):
    """creat(2): open(O_CREAT|O_WRONLY|O_TRUNC)."""
    return _open(t, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, u32(mode))


def close(t, fd, *_):
    """close(2)."""
    t.fdtable.close(s32(fd))
    return 0


def close_range(t, first, last, flags, *_):
    """close_range(2): close (or, with CLOSE_RANGE_CLOEXEC, mark close-on-exec) the fds from
    `first` to `last`; CLOSE_RANGE_UNSHARE first gives the thread its own fd table if shared."""
    first, last, flags = u32(first), u32(last), u32(flags)
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise SysError(EINVAL)
    if flags & CLOSE_RANGE_UNSHARE and any(o is not t and o.fdtable is t.fdtable for o in t.tg.tasks.values()):
        t.fdtable = t.fdtable.fork()
    t.fdtable.close_range(first, last, bool(flags & CLOSE_RANGE_CLOEXEC))
    return 0


def dup(t, fd, *_):
    """dup(2)."""
    return t.fdtable.install(t.fdtable.get(s32(fd)).ref())


def dup2(t, oldfd, newfd, *_):
    """dup2(2)."""
    oldfd, newfd = s32(oldfd), s32(newfd)
    f = t.fdtable.get(oldfd)
    if oldfd != newfd:
        t.fdtable.install_at(newfd, f.ref())
    return newfd


def dup3(t, oldfd, newfd, flags, *_):
    """dup3(2) with O_CLOEXEC."""
    oldfd, newfd, flags = s32(oldfd), s32(newfd), u32(flags)
    if flags & ~O_CLOEXEC or oldfd == newfd:
        raise SysError(EINVAL)
    t.fdtable.install_at(newfd, t.fdtable.get(oldfd).ref(), bool(flags & O_CLOEXEC))
    return newfd


def _pipe(t, fds: int, flags: int) -> int:
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SysError(EINVAL)
    return install_pair(t, *new_pipe(t, flags), bool(flags & O_CLOEXEC), fds)


def install_pair(t, a: File, b: File, cloexec: bool, addr: int) -> int:
    """Install new files `a` and `b` (pipe2, socketpair) and write their fds, as two ints, at
    `addr`; on a failure neither stays installed (nor referenced).  Returns 0."""
    fdt = t.fdtable
    try:
        afd = fdt.install(a, cloexec)
    except SysError:
        b.unref()
        raise
    try:
        bfd = fdt.install(b, cloexec)
    except SysError:
        fdt.close(afd)
        raise
    try:
        t.mm.write(addr, INT_PAIR.pack(afd, bfd))
    except SysError:
        fdt.close(afd)
        fdt.close(bfd)
        raise
    return 0


def pipe(t, fds, *_):
    """pipe(2)."""
    return _pipe(t, fds, 0)


def pipe2(t, fds, flags, *_):
    """pipe2(2) with O_CLOEXEC and O_NONBLOCK (no O_DIRECT packet mode)."""
    return _pipe(t, fds, u32(flags))


def _lock(t, f: File, cmd: int, arg: int) -> int:
    """Record locks, POSIX (owned by the fd table) and OFD (owned by the open file), held in the
    sentry (vfs/lock.py); F_GETLK reports the sandbox pid of a POSIX lock's process, -1 for OFD."""
    if f.flags & O_PATH:
        raise SysError(EBADF)
    ltype, whence, start, length, pid = FLOCK.unpack(t.mm.read(arg, FLOCK.size))
    getlk = cmd in (F_GETLK, F_OFD_GETLK)
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    if getlk and ltype not in (F_RDLCK, F_WRLCK):
        raise SysError(EINVAL)
    if whence == SEEK_SET:
        base = 0
    elif whence == SEEK_CUR:
        base = f.offset
    elif whence == SEEK_END:
        base = f.size()
    else:
        raise SysError(EINVAL)
    first, last = lock.lock_range(base, start, length)
    if ltype not in (F_RDLCK, F_WRLCK, F_UNLCK):
        raise SysError(EINVAL)
    if not getlk and (ltype == F_RDLCK and not f.readable or ltype == F_WRLCK and not f.writable):
        raise SysError(EBADF)
    if ofd and pid:
        raise SysError(EINVAL)
    owner = f if ofd else t.fdtable
    if not getlk:
        return lock.set_record(f.lock_key(), ltype, first, last, owner, t.tg.pid, ofd, cmd in (F_SETLKW, F_OFD_SETLKW))
    held = lock.conflicting(f.lock_key(), ltype, first, last, owner)
    if held is None:
        t.mm.write(arg, FLOCK.pack(F_UNLCK, whence, start, length, pid))
    else:
        t.mm.write(arg, FLOCK.pack(held.type, SEEK_SET, held.start,
                                   0 if held.end == OFFSET_MAX else held.end - held.start + 1,
                                   -1 if held.ofd else held.pid))
    return 0


_FLOCK_TYPES = {LOCK_SH: F_RDLCK, LOCK_EX: F_WRLCK, LOCK_UN: F_UNLCK}


def flock(t, fd, operation, *_):
    """flock(2): LOCK_SH, LOCK_EX, LOCK_UN, with LOCK_NB; held in the sentry, owned by the open file."""
    op = u32(operation)
    if op & LOCK_MAND:
        return 0
    ltype = _FLOCK_TYPES.get(op & ~LOCK_NB)
    if ltype is None:
        raise SysError(EINVAL)
    f = _file(t, fd)
    return lock.flock(f.lock_key(), f, ltype, not op & LOCK_NB)


def fcntl(t, fd, cmd, arg, *_):
    """fcntl(2): F_DUPFD(_CLOEXEC), F_GETFD/SETFD, F_GETFL/SETFL, record and OFD locks, pipe sizes, memfd
    seals."""
    fd, cmd = s32(fd), s32(cmd)
    fdt = t.fdtable
    f = fdt.get(fd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        if arg >= fdt.limit:
            raise SysError(EINVAL)
        return fdt.install(f.ref(), cmd == F_DUPFD_CLOEXEC, arg)
    if cmd == F_GETFD:
        return FD_CLOEXEC if fdt.cloexec(fd) else 0
    if cmd == F_SETFD:
        fdt.set_cloexec(fd, bool(arg & FD_CLOEXEC))
        return 0
    if cmd == F_GETFL:
        return f.flags
    if cmd == F_SETFL:
        if f.flags & O_PATH:
            raise SysError(EBADF)
        f.flags = f.flags & ~O_SETFL_MASK | arg & O_SETFL_MASK
        return 0
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        return _lock(t, f, cmd, arg)
    if cmd in (F_ADD_SEALS, F_GET_SEALS):
        return seals_fcntl(f, cmd, arg)
    if cmd in (F_SETPIPE_SZ, F_GETPIPE_SZ):
        return pipe_fcntl(t, f, cmd, arg)
    raise SysError(EINVAL)


def ioctl(t, fd, cmd, arg, *_):
    """ioctl(2): FIOCLEX, FIONCLEX, FIONBIO here; the file answers the rest."""
    fd, cmd = s32(fd), u32(cmd)
    f = _file(t, fd)
    if cmd in (FIOCLEX, FIONCLEX):
        t.fdtable.set_cloexec(fd, cmd == FIOCLEX)
        return 0
    if cmd == FIONBIO:
        on = int.from_bytes(t.mm.read(arg, 4), "little")
        f.flags = f.flags | O_NONBLOCK if on else f.flags & ~O_NONBLOCK
        return 0
    return f.ioctl(t, cmd, arg)


def fsync(t, fd, *_):
    """fsync(2): the file system flushes the file (a gofer file: on the host)."""
    _file(t, fd).fsync(t)
    return 0


fdatasync = fsync  # fdatasync(2)


def sync(t, *_):
    """sync(2): nothing to flush."""
    return 0


def syncfs(t, fd, *_):
    """syncfs(2): the host file system of a gofer file is synced; the sandbox's memory file
    systems hold nothing to flush."""
    _file(t, fd).syncfs(t)
    return 0


def sync_file_range(t, fd, offset, nbytes, flags, *_):
    """sync_file_range(2): flags and range checked; with any flag the file is flushed as fsync
    does (a gofer file: on the host)."""
    f = _file(t, fd)
    flags, offset, nbytes = u32(flags), s64(offset), s64(nbytes)
    if flags & ~SYNC_FILE_RANGE_ALL or offset < 0 or nbytes < 0 or offset + nbytes > OFFSET_MAX:
        raise SysError(EINVAL)
    if f.loc.inode.kind not in (S_IFREG, S_IFDIR, S_IFLNK, S_IFBLK):
        raise SysError(ESPIPE)
    if flags:
        f.fsync(t)
    return 0


_FALLOC_MODES = (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE
                 | FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_WRITE_ZEROES)  # FALLOC_FL_MODE_MASK


def fallocate(t, fd, mode, offset, length, *_):
    """fallocate(2) on regular files: checked as Linux does, then done by the file system (a gofer
    file: by the host's; the sandbox's memory files: allocate, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE)."""
    f = _file(t, fd)
    mode, offset, length = s32(mode), s64(offset), s64(length)
    if offset < 0 or length <= 0:
        raise SysError(EINVAL)
    op, keep = mode & _FALLOC_MODES, mode & FALLOC_FL_KEEP_SIZE
    if mode & ~(_FALLOC_MODES | FALLOC_FL_KEEP_SIZE) or op & (op - 1) or op == FALLOC_FL_PUNCH_HOLE and not keep \
            or op in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_WRITE_ZEROES) and keep:
        raise SysError(EOPNOTSUPP)
    if not f.writable:
        raise SysError(EBADF)
    kind = f.loc.inode.kind
    if kind == S_IFIFO:
        raise SysError(ESPIPE)
    if kind == S_IFDIR:
        raise SysError(EISDIR)
    if kind != S_IFREG:
        raise SysError(ENODEV)
    if offset + length > OFFSET_MAX:
        raise SysError(EFBIG)
    f.fallocate(mode, offset, length)
    fsnotify.modified(f)
    return 0


POSIX_FADV_MAX = 5  # NORMAL, RANDOM, SEQUENTIAL, WILLNEED, DONTNEED, NOREUSE


def fadvise64(t, fd, offset, length, advice, *_):
    """fadvise64(2): advice is checked, then has nothing to act on (no page cache of our own)."""
    f = _file(t, fd)
    if not f.seekable:
        raise SysError(ESPIPE)
    if not 0 <= s32(advice) <= POSIX_FADV_MAX or s64(length) < 0:
        raise SysError(EINVAL)
    return 0


# -- attributes ----------------------------------------------------------------
def _put_stat(t, attr, buf: int) -> int:
    t.mm.write(buf, encode.stat(attr))
    return 0


def stat(t, path, buf, *_):
    """stat(2)."""
    return _put_stat(t, _resolve(t, AT_FDCWD, path).inode.stat(), buf)


def lstat(t, path, buf, *_):
    """lstat(2)."""
    return _put_stat(t, _resolve(t, AT_FDCWD, path, follow=False).inode.stat(), buf)


def fstat(t, fd, buf, *_):
    """fstat(2) (O_PATH fds too)."""
    return _put_stat(t, t.fdtable.get(s32(fd)).stat(), buf)


def newfstatat(t, dirfd, path, buf, flags, *_):
    """newfstatat(2) with AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH."""
    return _put_stat(t, _resolve(t, dirfd, path, u32(flags), _STAT_AT_FLAGS).inode.stat(), buf)


def statx(t, dirfd, path, flags, mask, buf, *_):
    """statx(2): the basic stats and the mount id, whatever the mask asks."""
    flags = u32(flags)
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or u32(mask) & STATX__RESERVED:
        raise SysError(EINVAL)
    loc = _resolve(t, dirfd, path, flags, _STAT_AT_FLAGS | AT_STATX_SYNC_TYPE)
    t.mm.write(buf, encode.statx(loc.inode.stat(), loc.mount.id))
    return 0


def _put_statfs(t, loc: Location, buf: int) -> int:
    t.mm.write(buf, encode.statfs(loc.inode.fs.statfs(), loc.mount.flags))
    return 0


def statfs(t, path, buf, *_):
    """statfs(2)."""
    return _put_statfs(t, _resolve(t, AT_FDCWD, path), buf)


def fstatfs(t, fd, buf, *_):
    """fstatfs(2)."""
    return _put_statfs(t, t.fdtable.get(s32(fd)).loc, buf)


def _access(t, dirfd, path, mode, flags) -> int:
    mode, flags = u32(mode), u32(flags)
    if mode & ~7:
        raise SysError(EINVAL)
    loc = _resolve(t, dirfd, path, flags, AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    ops.access(t, loc, mode, bool(flags & AT_EACCESS))
    return 0


def access(t, path, mode, *_):
    """access(2) with the real ids."""
    return _access(t, AT_FDCWD, path, mode, 0)


def faccessat(t, dirfd, path, mode, *_):
    """faccessat(2) with the real ids."""
    return _access(t, dirfd, path, mode, 0)


def faccessat2(t, dirfd, path, mode, flags, *_):
    """faccessat2(2) with AT_EACCESS, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH."""
    return _access(t, dirfd, path, mode, flags)


def chmod(t, path, mode, *_):
    """chmod(2)."""
    ops.chmod(t, _resolve(t, AT_FDCWD, path), u32(mode))
    return 0


def fchmodat(t, dirfd, path, mode, *_):
    """fchmodat(2)."""
    ops.chmod(t, _resolve(t, dirfd, path), u32(mode))
    return 0


def fchmod(t, fd, mode, *_):
    """fchmod(2)."""
    ops.chmod(t, _file(t, fd).loc, u32(mode))
    return 0


def _chown(t, loc: Location, uid: int, gid: int) -> int:
    ops.chown(t, loc, s32(uid), s32(gid))
    return 0


def chown(t, path, uid, gid, *_):
    """chown(2)."""
    return _chown(t, _resolve(t, AT_FDCWD, path), uid, gid)


def lchown(t, path, uid, gid, *_):
    """lchown(2)."""
    return _chown(t, _resolve(t, AT_FDCWD, path, follow=False), uid, gid)


def fchown(t, fd, uid, gid, *_):
    """fchown(2)."""
    return _chown(t, _file(t, fd).loc, uid, gid)


def fchownat(t, dirfd, path, uid, gid, flags, *_):
    """fchownat(2) with AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH."""
    return _chown(t, _resolve(t, dirfd, path, u32(flags), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), uid, gid)


def truncate(t, path, length, *_):
    """truncate(2)."""
    length = s64(length)
    if length < 0:
        raise SysError(EINVAL)
    ops.truncate(t, _resolve(t, AT_FDCWD, path), length)
    return 0


def ftruncate(t, fd, length, *_):
    """ftruncate(2) (EINVAL unless open for writing)."""
    f = _file(t, fd)
    length = s64(length)
    if length < 0 or not f.writable or f.loc.inode.kind != S_IFREG:
        raise SysError(EINVAL)
    f.loc.inode.setattr(size=length)
    fsnotify.modified(f)
    return 0


def _utime(sec: int, nsec: int, now: int) -> int | None:
    """A timespec of utimensat as nanoseconds (None: UTIME_OMIT)."""
    if nsec == UTIME_NOW:
        return now
    if nsec == UTIME_OMIT:
        return None
    if not 0 <= nsec < _NS:
        raise SysError(EINVAL)
    return sec * _NS + nsec


def utimensat(t, dirfd, path, times, flags, *_):
    """utimensat(2) and futimens (NULL path), UTIME_NOW and UTIME_OMIT."""
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SysError(EINVAL)
    now = time.time_ns()
    if times:
        asec, ansec, msec, mnsec = TIMESPEC.unpack(t.mm.read(times, TIMESPEC.size)) + \
            TIMESPEC.unpack(t.mm.read(times + TIMESPEC.size, TIMESPEC.size))
        atime, mtime = _utime(asec, ansec, now), _utime(msec, mnsec, now)
        to_now = ansec == UTIME_NOW and mnsec == UTIME_NOW
    else:
        atime = mtime = now
        to_now = True
    if path:
        loc = _resolve(t, dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
    elif s32(dirfd) == AT_FDCWD:
        raise SysError(EFAULT)
    else:
        loc = t.fdtable.get(s32(dirfd)).loc
    if atime is None and mtime is None:
        return 0
    ops.utimes(t, loc, atime, mtime, to_now)
    return 0


# -- names -------------------------------------------------------------------
def mkdir(t, path, mode, *_):
    """mkdir(2)."""
    ops.mkdir(t, AT_FDCWD, _path(t, path), u32(mode))
    return 0


def mkdirat(t, dirfd, path, mode, *_):
    """mkdirat(2)."""
    ops.mkdir(t, s32(dirfd), _path(t, path), u32(mode))
    return 0


def mknod(t, path, mode, dev, *_):
    """mknod(2)."""
    ops.mknod(t, AT_FDCWD, _path(t, path), u32(mode), u32(dev))
    return 0


def mknodat(t, dirfd, path, mode, dev, *_):
    """mknodat(2): regular files, FIFOs, sockets; device nodes with CAP_MKNOD."""
    ops.mknod(t, s32(dirfd), _path(t, path), u32(mode), u32(dev))
    return 0


def rmdir(t, path, *_):
    """rmdir(2)."""
    ops.unlink(t, AT_FDCWD, _path(t, path), True)
    return 0


def unlink(t, path, *_):
    """unlink(2)."""
    ops.unlink(t, AT_FDCWD, _path(t, path), False)
    return 0


def unlinkat(t, dirfd, path, flags, *_):
    """unlinkat(2) with AT_REMOVEDIR."""
    flags = u32(flags)
    if flags & ~AT_REMOVEDIR:
        raise SysError(EINVAL)
    ops.unlink(t, s32(dirfd), _path(t, path), bool(flags & AT_REMOVEDIR))
    return 0


def renameat2(t, olddirfd, oldpath, newdirfd, newpath, flags, *_):
    """renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE (RENAME_WHITEOUT: EINVAL)."""
    flags = u32(flags)
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or \
            flags & RENAME_NOREPLACE and flags & RENAME_EXCHANGE or flags & RENAME_WHITEOUT:
        raise SysError(EINVAL)
    ops.rename(t, s32(olddirfd), _path(t, oldpath), s32(newdirfd), _path(t, newpath), flags)
    return 0


def renameat(t, olddirfd, oldpath, newdirfd, newpath, *_):
    """renameat(2)."""
    return renameat2(t, olddirfd, oldpath, newdirfd, newpath, 0)


def rename(t, oldpath, newpath, *_):
    """rename(2)."""
    return renameat2(t, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)


def linkat(t, olddirfd, oldpath, newdirfd, newpath, flags, *_):
    """linkat(2) with AT_SYMLINK_FOLLOW and AT_EMPTY_PATH."""
    flags = u32(flags)
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise SysError(EINVAL)
    old = Walker(t).resolve(s32(olddirfd), _path(t, oldpath), follow=bool(flags & AT_SYMLINK_FOLLOW),
                            empty_ok=bool(flags & AT_EMPTY_PATH))
    ops.link(t, old, s32(newdirfd), _path(t, newpath))
    return 0


def link(t, oldpath, newpath, *_):
    """link(2)."""
    return linkat(t, AT_FDCWD, oldpath, AT_FDCWD, newpath, 0)


def symlinkat(t, target, newdirfd, linkpath, *_):
    """symlinkat(2)."""
    ops.symlink(t, _path(t, target), s32(newdirfd), _path(t, linkpath))
    return 0


def symlink(t, target, linkpath, *_):
    """symlink(2)."""
    return symlinkat(t, target, AT_FDCWD, linkpath)


def readlinkat(t, dirfd, path, buf, bufsiz, *_):
    """readlinkat(2); an empty path reads an O_PATH symlink fd."""
    size = s32(bufsiz)
    if size <= 0:
        raise SysError(EINVAL)
    data = ops.readlink(t, s32(dirfd), _path(t, path))[:size]
    t.mm.write(buf, data)
    return len(data)


def readlink(t, path, buf, bufsiz, *_):
    """readlink(2)."""
    return readlinkat(t, AT_FDCWD, path, buf, bufsiz)


# -- working directory, root, umask ---------------------------------------------
def getcwd(t, buf, size, *_):
    """getcwd(2): ENOENT if the cwd was removed, ERANGE if `size` is too small."""
    cwd = t.fs.cwd
    if cwd.dentry.dead:
        raise SysError(ENOENT)
    path = path_of(cwd, t.fs.root) + b"\0"
    if len(path) > size:
        raise SysError(ERANGE)
    t.mm.write(buf, path)
    return len(path)


def _searchable_dir(t, loc: Location) -> Location:
    if loc.inode.kind != S_IFDIR:
        raise SysError(ENOTDIR)
    if not may_access(t.creds, loc.inode.stat(), X_OK):
        raise SysError(EACCES)
    return loc


def chdir(t, path, *_):
    """chdir(2)."""
    t.fs.cwd = _searchable_dir(t, _resolve(t, AT_FDCWD, path))
    return 0


def fchdir(t, fd, *_):
    """fchdir(2)."""
    t.fs.cwd = _searchable_dir(t, t.fdtable.get(s32(fd)).loc)
    return 0


def chroot(t, path, *_):
    """chroot(2) (needs euid 0)."""
    if t.creds.euid != 0:
        raise SysError(EPERM)
    t.fs.root = _searchable_dir(t, _resolve(t, AT_FDCWD, path))
    return 0


def umask(t, mask, *_):
    """umask(2)."""
    old = t.fs.umask
    t.fs.umask = mask & 0o777
    return old


# -- poll and select -----------------------------------------------------------
def _waits(pairs) -> tuple[tuple, tuple]:
    """(wait queues, host fds) to wait on for the (file, events) pairs."""
    queues, host_fds = (), ()
    for f, events in pairs:
        q, h = f.wait_sources(events)
        queues += q
        host_fds += h
    return queues, host_fds


def _deadline(t, addr: int, usec: bool) -> float | None:
    """The monotonic deadline of a timespec (timeval if `usec`) at `addr`; None if NULL."""
    if not addr:
        return None
    sec, frac = TIMESPEC.unpack(t.mm.read(addr, TIMESPEC.size))
    if sec < 0 or not 0 <= frac < (1_000_000 if usec else _NS):
        raise SysError(EINVAL)
    return time.monotonic() + sec + frac / (1_000_000 if usec else _NS)


def _put_remaining(t, addr: int, deadline: float | None, usec: bool) -> None:
    """Write the time left before `deadline` back to the timeout argument, as Linux does when
    the wait ends (interrupted too), ignoring a fault (read-only memory) as Linux does."""
    if addr and deadline is not None:
        left = max(0.0, deadline - time.monotonic())
        sec = int(left)
        try:
            t.mm.write(addr, TIMESPEC.pack(sec, int((left - sec) * (1_000_000 if usec else _NS))))
        except (SysError, OSError):
            pass


def _poll(t, addr: int, nfds: int, deadline: float | None, timeout_addr: int = 0):
    if nfds > t.fdtable.limit:
        raise SysError(EINVAL)
    raw = t.mm.read(addr, nfds * POLLFD.size)
    wanted = [POLLFD.unpack_from(raw, i * POLLFD.size)[:2] for i in range(nfds)]
    remaining = functools.partial(_put_remaining, t, timeout_addr, deadline, False)

    def attempt():
        revents, files = [], []
        for fd, events in wanted:
            if fd < 0:
                revents.append(0)
                continue
            try:
                f = t.fdtable.get(fd)
            except SysError:
                revents.append(POLLNVAL)
                continue
            revents.append(f.readiness() & (events | POLLERR | POLLHUP))
            files.append((f, events))
        ready = sum(1 for r in revents if r)
        if not ready and deliverable(t):
            remaining()
            raise SysError(EINTR)  # (even when the time is up, as Linux's do_poll)
        if ready or deadline is not None and time.monotonic() >= deadline:
            t.mm.write(addr, b"".join(POLLFD.pack(fd, events, r) for (fd, events), r in zip(wanted, revents)))
            remaining()
            return ready
        queues, host_fds = _waits(files)
        return Block(queues, deadline, host_fds, retry=attempt, restartable=False, cancel=remaining)

    return attempt()


def poll(t, fds, nfds, timeout, *_):
    """poll(2) over the files' readiness."""
    timeout = s32(timeout)
    return _poll(t, fds, u32(nfds), None if timeout < 0 else time.monotonic() + timeout / 1000)


def ppoll(t, fds, nfds, tsp, sigmask, sigsetsize, *_):
    """ppoll(2): poll with a timespec timeout and the signal mask `sigmask` during the wait."""
    deadline = _deadline(t, tsp, False)
    return with_sigmask(t, sigmask, sigsetsize, lambda: _poll(t, fds, u32(nfds), deadline, tsp))


def _select(t, nfds: int, sets: tuple[int, int, int], deadline: float | None, timeout_addr: int, usec: bool):
    n = s32(nfds)
    if n < 0:
        raise SysError(EINVAL)
    n = min(n, t.fdtable.limit)
    nbytes = (n + 63) // 64 * 8
    bits = [int.from_bytes(t.mm.read(addr, nbytes), "little") if addr else 0 for addr in sets]
    classes = (SELECT_IN, SELECT_OUT, SELECT_EX)
    wanted = []
    for fd in range(n):
        events = sum(cls for cls, b in zip(classes, bits) if b >> fd & 1)
        if events:
            wanted.append((fd, t.fdtable.get(fd), events))
    mask = (1 << n) - 1
    remaining = functools.partial(_put_remaining, t, timeout_addr, deadline, usec)

    def attempt():
        out = [0, 0, 0]
        for fd, f, events in wanted:
            ready = f.readiness() & events
            for i, cls in enumerate(classes):
                if ready & cls and bits[i] >> fd & 1:
                    out[i] |= 1 << fd
        count = sum(bin(o & mask).count("1") for o in out)
        if not count and deliverable(t):
            remaining()
            raise SysError(EINTR)
        if count or deadline is not None and time.monotonic() >= deadline:
            for addr, o in zip(sets, out):
                if addr:
                    t.mm.write(addr, o.to_bytes(nbytes, "little"))
            remaining()
            return count
        queues, host_fds = _waits((f, events) for _, f, events in wanted)
        return Block(queues, deadline, host_fds, retry=attempt, restartable=False, cancel=remaining)

    return attempt()


def select(t, nfds, readfds, writefds, exceptfds, timeout, *_):
    """select(2), writing back the time left."""
    return _select(t, nfds, (readfds, writefds, exceptfds), _deadline(t, timeout, True), timeout, True)


def pselect6(t, nfds, readfds, writefds, exceptfds, timeout, sigmask, *_):
    """pselect6(2): select with a timespec timeout; `sigmask` points to {sigset_t *, size}, the
    signal mask during the wait."""
    mask_addr, size = _SIGSET_ARG.unpack(t.mm.read(sigmask, 16)) if sigmask else (0, 0)
    deadline = _deadline(t, timeout, False)
    return with_sigmask(t, mask_addr, size,
                        lambda: _select(t, nfds, (readfds, writefds, exceptfds), deadline, timeout, False))


# -- extended attributes ------------------------------------------------------------------
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_CREATE, XATTR_REPLACE = 1, 2


def _xattr_name(t, addr: int) -> bytes:
    name = t.mm.read_cstr(addr, XATTR_NAME_MAX + 1)
    if not name or len(name) > XATTR_NAME_MAX:
        raise SysError(ERANGE)
    return name


def _xattr_out(t, data: bytes, buf: int, size: int) -> int:
    """Copy a value or name list to the caller: its length when `size` is 0 (a query), ERANGE
    when it does not fit."""
    if size:
        if len(data) > size:
            raise SysError(ERANGE)
        t.mm.write(buf, data)
    return len(data)


def _getxattr(t, loc: Location, name: int, value: int, size: int) -> int:
    return _xattr_out(t, ops.getxattr(t, loc, _xattr_name(t, name)), value, size)


def _listxattr(t, loc: Location, buf: int, size: int) -> int:
    return _xattr_out(t, b"".join(n + b"\0" for n in ops.listxattr(t, loc)), buf, size)


def _setxattr(t, loc: Location, name: int, value: int, size: int, flags: int) -> int:
    name = _xattr_name(t, name)
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise SysError(EINVAL)
    if size > XATTR_SIZE_MAX:
        raise SysError(E2BIG)
    ops.setxattr(t, loc, name, t.mm.read(value, size) if size else b"", flags)
    return 0


def _removexattr(t, loc: Location, name: int) -> int:
    ops.removexattr(t, loc, _xattr_name(t, name))
    return 0


def _xattr_file(t, fd: int) -> Location:
    return t.fdtable.get(s32(fd)).loc


def getxattr(t, path, name, value, size, *_):
    """getxattr(2)."""
    return _getxattr(t, _resolve(t, AT_FDCWD, path), name, value, size)


def lgetxattr(t, path, name, value, size, *_):
    """lgetxattr(2): as getxattr, not following a final symlink."""
    return _getxattr(t, _resolve(t, AT_FDCWD, path, follow=False), name, value, size)


def fgetxattr(t, fd, name, value, size, *_):
    """fgetxattr(2): as getxattr, on an open file."""
    return _getxattr(t, _xattr_file(t, fd), name, value, size)


def listxattr(t, path, buf, size, *_):
    """listxattr(2): the names, each NUL-terminated."""
    return _listxattr(t, _resolve(t, AT_FDCWD, path), buf, size)


def llistxattr(t, path, buf, size, *_):
    """llistxattr(2): as listxattr, not following a final symlink."""
    return _listxattr(t, _resolve(t, AT_FDCWD, path, follow=False), buf, size)


def flistxattr(t, fd, buf, size, *_):
    """flistxattr(2): as listxattr, on an open file."""
    return _listxattr(t, _xattr_file(t, fd), buf, size)


def setxattr(t, path, name, value, size, flags, *_):
    """setxattr(2)."""
    return _setxattr(t, _resolve(t, AT_FDCWD, path), name, value, size, flags)


def lsetxattr(t, path, name, value, size, flags, *_):
    """lsetxattr(2): as setxattr, not following a final symlink."""
    return _setxattr(t, _resolve(t, AT_FDCWD, path, follow=False), name, value, size, flags)


def fsetxattr(t, fd, name, value, size, flags, *_):
    """fsetxattr(2): as setxattr, on an open file."""
    return _setxattr(t, _xattr_file(t, fd), name, value, size, flags)


def removexattr(t, path, name, *_):
    """removexattr(2)."""
    return _removexattr(t, _resolve(t, AT_FDCWD, path), name)


def lremovexattr(t, path, name, *_):
    """lremovexattr(2): as removexattr, not following a final symlink."""
    return _removexattr(t, _resolve(t, AT_FDCWD, path, follow=False), name)


def fremovexattr(t, fd, name, *_):
    """fremovexattr(2): as removexattr, on an open file."""
    return _removexattr(t, _xattr_file(t, fd), name)
