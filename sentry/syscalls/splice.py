"""Data-moving syscalls: sendfile, splice, tee and copy_file_range.

All are done in the sentry through the files' own read/write and pread/pwrite paths (never by
the host's splice): pipe bytes move between the sentry's pipe buffers, file bytes go through
memory at most _CHUNK bytes at a time.  As on Linux, splice and sendfile into a pipe move what
fits (waiting for room unless non-blocking), out of a pipe what it holds (waiting for data);
file-to-file copies go on to the end of the range or the file.  Each call checks its arguments
in Linux's order, so the same bad call fails with the same errno.
"""
from __future__ import annotations

from ..abi.errno import EAGAIN, EBADF, EINVAL, EISDIR, EOVERFLOW, ESPIPE, EXDEV
from ..abi.fs import LOFF, MAX_RW_COUNT, O_APPEND, O_NONBLOCK, OFFSET_MAX, S_IFDIR, S_IFREG, SPLICE_F_ALL, \
    SPLICE_F_NONBLOCK
from ..abi.mm import PAGE_SIZE
from ..fs.pipe import Pipe, PipeFile, broken_pipe
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block
from ..vfs import fsnotify
from ..vfs.file import File
from .args import s32, u32

_CHUNK = 1 << 20


def _pipe(f: File) -> Pipe | None:
    """The pipe `f` is an end of, or None."""
    return f.pipe if isinstance(f, PipeFile) else None


def _verify(pos: int, count: int) -> None:
    """Linux's rw_verify_area: EINVAL for a negative count or offset, or a range past OFFSET_MAX."""
    if count >> 63 or pos < 0 or pos + count > OFFSET_MAX:
        raise SysError(EINVAL)


def _get_offset(t, addr: int) -> int:
    return LOFF.unpack(t.mm.read(addr, LOFF.size))[0]


def _await_data(pipe: Pipe, nonblock: bool) -> Block | None:
    """None once the pipe holds bytes or has no writer (end of file); else EAGAIN or a Block."""
    if pipe.buf or not pipe.writers:
        return None
    if nonblock:
        raise SysError(EAGAIN)
    return Block((pipe.rq,))


def _await_room(t, pipe: Pipe, nonblock: bool) -> Block | None:
    """None once the pipe has room; EPIPE (and SIGPIPE) without a reader; else EAGAIN or a Block."""
    if not pipe.readers:
        raise broken_pipe(t)
    if pipe.page_room() > 0:
        return None
    if nonblock:
        raise SysError(EAGAIN)
    return Block((pipe.wq,))


def _read_at(t, src: File, n: int, pos: int | None):
    """Up to `n` bytes of `src` at `pos` (None: through read(), e.g. a terminal); may be a Block."""
    return src.read(t, n) if pos is None else src.pread(n, pos)


def _write_at(t, dst: File, data: bytes, pos: int | None):
    """Write `data` to `dst` at `pos` (None: through write(), e.g. a terminal); count or Block."""
    return dst.write(t, data) if pos is None else dst.pwrite(data, pos)


def _file_to_pipe(t, src: File, pos: int | None, pipe: Pipe, count: int, nonblock: bool):
    """Move what fits of `count` bytes of `src` (at `pos`, None: through read()) into `pipe`: as
    Linux, a page of the file per free page of the pipe (the first one from `pos` on)."""
    wait = _await_room(t, pipe, nonblock)
    if wait is not None:
        return wait
    room = pipe.room() if pos is None else pipe.page_room() - pos % PAGE_SIZE
    data = _read_at(t, src, min(count, room), pos)
    if data.__class__ is Block:
        return data
    pipe.put(data)
    return len(data)


def _pipe_to_file(t, pipe: Pipe, dst: File, pos: int | None, count: int, nonblock: bool):
    """Move up to `count` buffered bytes of `pipe` to `dst` at `pos` (None: through write());
    the pipe keeps what `dst` did not take."""
    wait = _await_data(pipe, nonblock)
    if wait is not None:
        return wait
    done = _write_at(t, dst, bytes(pipe.buf[:count]), pos) if pipe.buf else 0
    if done.__class__ is int:
        pipe.take(done)
    return done


def _copy(t, src: File, in_pos: int, dst: File, out_pos: int | None, count: int):
    """Copy up to `count` bytes of seekable `src` from `in_pos` to `dst` at `out_pos` (None:
    through write()), a chunk at a time, stopping at the end of `src`; the count copied, or a
    Block if `dst` could take nothing yet."""
    done = 0
    while done < count:
        data = src.pread(min(_CHUNK, count - done), in_pos + done)
        if not data:
            break
        n = _write_at(t, dst, data, None if out_pos is None else out_pos + done)
        if n.__class__ is Block:
            return n if not done else done
        done += n
        if n < len(data):
            break
    return done


def _advance(t, f, off_ptr: int, pos: int | None, done):
    """After `done` bytes moved at `pos` of file `f`: the caller's offset (at `off_ptr`) or
    else the file's own moves past them.  Returns `done` (a Block passes through)."""
    if done.__class__ is int and pos is not None:
        if off_ptr:
            t.mm.write(off_ptr, LOFF.pack(pos + done))
        else:
            f.offset = pos + done
    return done


# -- sendfile -------------------------------------------------------------------
def sendfile(t, out_fd, in_fd, offset_ptr, count, *_):
    """sendfile(2): from a file (not a pipe) at `*offset_ptr` or its offset, into a pipe (what fits)
    or any other file (everything, for a regular file; what it takes, for a terminal or socket)."""
    src = t.fdtable.get(s32(in_fd))
    if not src.readable:
        raise SysError(EBADF)
    if offset_ptr:
        pos = _get_offset(t, offset_ptr)
        if not src.seekable:
            raise SysError(ESPIPE)
    else:
        pos = src.offset
    _verify(pos, count)
    count = min(count, MAX_RW_COUNT)
    dst = t.fdtable.get(s32(out_fd))
    if not dst.writable:
        raise SysError(EBADF)
    opipe = _pipe(dst)
    if opipe is None and dst.flags & O_APPEND or _pipe(src) is not None or src.loc.inode.kind == S_IFDIR:
        raise SysError(EINVAL)
    if not src.seekable:  # a terminal or socket: its read() decides how much
        done = _write_pending(t, dst, src.read(t, min(count, _CHUNK)))
    elif opipe is not None:
        done = _file_to_pipe(t, src, pos, opipe, count, bool(dst.flags & O_NONBLOCK))
    else:
        out_pos = dst.offset if dst.seekable else None
        done = _advance(t, dst, 0, out_pos, _copy(t, src, pos, dst, out_pos, count))
    _advance(t, src, offset_ptr, pos if src.seekable else None, done)
    return fsnotify.write_done(dst, fsnotify.read_done(src, done))


def _write_pending(t, f: File, data):
    """Write data already taken from its source (a Block from the source passes through): if
    the write must wait, the retry writes the same data again rather than re-running the syscall."""
    if data.__class__ is Block or not data:
        return data if data.__class__ is Block else 0
    res = f.write(t, data)
    if res.__class__ is Block and res.retry is None:
        res.retry = lambda: _write_pending(t, f, data)
    return res


# -- splice and tee ---------------------------------------------------------------
def splice(t, fd_in, off_in, fd_out, off_out, length, flags, *_):
    """splice(2): pipe to pipe, file to pipe (what fits), pipe to file (what the pipe holds);
    EINVAL unless one end is a pipe, ESPIPE for an offset on a pipe end."""
    flags = u32(flags)
    if not length:
        return 0
    if flags & ~SPLICE_F_ALL:
        raise SysError(EINVAL)
    src, dst = t.fdtable.get(s32(fd_in)), t.fdtable.get(s32(fd_out))
    ipipe, opipe = _pipe(src), _pipe(dst)
    if ipipe is not None and off_in or opipe is not None and off_out:
        raise SysError(ESPIPE)
    out_pos = _get_offset(t, off_out) if off_out else None
    in_pos = _get_offset(t, off_in) if off_in else None
    if not src.readable or not dst.writable:
        raise SysError(EBADF)
    nonblock = bool(flags & SPLICE_F_NONBLOCK)
    if ipipe is not None and opipe is not None:
        if ipipe is opipe:
            raise SysError(EINVAL)
        return _pipe_to_pipe(t, ipipe, opipe, length, nonblock or bool((src.flags | dst.flags) & O_NONBLOCK), True)
    if ipipe is not None:
        if out_pos is not None and not dst.seekable or dst.flags & O_APPEND:
            raise SysError(EINVAL)
        pos = dst.offset if out_pos is None and dst.seekable else out_pos
        _verify(pos or 0, length)
        done = _pipe_to_file(t, ipipe, dst, pos, length, nonblock or bool(src.flags & O_NONBLOCK))
        return fsnotify.write_done(dst, _advance(t, dst, off_out, pos, done))
    if opipe is not None:
        if in_pos is not None and not src.seekable or src.loc.inode.kind == S_IFDIR:
            raise SysError(EINVAL)
        pos = src.offset if in_pos is None and src.seekable else in_pos
        _verify(pos or 0, length)
        done = _file_to_pipe(t, src, pos, opipe, length, nonblock or bool(dst.flags & O_NONBLOCK))
        return fsnotify.read_done(src, _advance(t, src, off_in, pos, done))
    raise SysError(EINVAL)


def _pipe_to_pipe(t, ipipe: Pipe, opipe: Pipe, length: int, nonblock: bool, consume: bool):
    """splice (`consume`) or tee between two pipes: up to `length` bytes, as many as are buffered
    and fit; 0 when the input is empty and has no writer."""
    wait = _await_data(ipipe, nonblock) or _await_room(t, opipe, nonblock)
    if wait is not None:
        return wait
    n = min(length, len(ipipe.buf), opipe.room())
    opipe.put(ipipe.take(n) if consume else bytes(ipipe.buf[:n]))
    return n


def tee(t, fd_in, fd_out, length, flags, *_):
    """tee(2): copy up to `length` bytes from one pipe to another without consuming them."""
    flags = u32(flags)
    if flags & ~SPLICE_F_ALL:
        raise SysError(EINVAL)
    if not length:
        return 0
    src, dst = t.fdtable.get(s32(fd_in)), t.fdtable.get(s32(fd_out))
    if not src.readable or not dst.writable:
        raise SysError(EBADF)
    ipipe, opipe = _pipe(src), _pipe(dst)
    if ipipe is None or opipe is None or ipipe is opipe:
        raise SysError(EINVAL)
    nonblock = bool(flags & SPLICE_F_NONBLOCK or (src.flags | dst.flags) & O_NONBLOCK)
    return _pipe_to_pipe(t, ipipe, opipe, length, nonblock, False)


# -- copy_file_range ----------------------------------------------------------------
def copy_file_range(t, fd_in, off_in, fd_out, off_out, length, flags, *_):
    """copy_file_range(2) between regular files of one file system (EXDEV across file systems,
    as Linux 5.19+ for file systems without their own copy method), by reading and writing."""
    src, dst = t.fdtable.get(s32(fd_in)), t.fdtable.get(s32(fd_out))
    pos_in = _get_offset(t, off_in) if off_in else src.offset
    pos_out = _get_offset(t, off_out) if off_out else dst.offset
    if u32(flags):
        raise SysError(EINVAL)
    kinds = (src.loc.inode.kind, dst.loc.inode.kind)
    if S_IFDIR in kinds:
        raise SysError(EISDIR)
    if kinds != (S_IFREG, S_IFREG):
        raise SysError(EINVAL)
    if not src.readable or not dst.writable or dst.flags & O_APPEND:
        raise SysError(EBADF)
    if src.loc.inode.fs is not dst.loc.inode.fs:
        raise SysError(EXDEV)
    mask = (1 << 64) - 1
    if (pos_in + length) & mask < pos_in & mask or (pos_out + length) & mask < pos_out & mask:
        raise SysError(EOVERFLOW)
    size = src.size()
    count = 0 if pos_in >= size else min(length, size - pos_in)
    if src.lock_key() is dst.lock_key() and pos_out + count > pos_in and pos_out < pos_in + count:
        raise SysError(EINVAL)
    _verify(pos_in, count)
    _verify(pos_out, count)
    if not count:
        return 0
    done = _copy(t, src, pos_in, dst, pos_out, min(count, MAX_RW_COUNT))
    if done:
        _advance(t, src, off_in, pos_in, done)
        _advance(t, dst, off_out, pos_out, done)
    return fsnotify.write_done(dst, fsnotify.read_done(src, done))
