"""The gofer: the one process that opens a container's files, serving them to the sentry.

It keeps every node the sentry has walked to as a handle (an O_PATH fd, with its parent and
name), resolves exactly one path component per WALK (openat2 RESOLVE_BENEATH|NO_SYMLINKS|
NO_MAGICLINKS, never following a symlink) and donates host fds for OPEN.

Implemented: ATTACH, WALK, STAT, OPEN, READLINK, GETDENTS, STATFS, CLOSE. OPEN honours write
flags (O_WRONLY, O_RDWR, O_TRUNC) when not read-only. The other write ops (CREATE, MKDIR,
MKNOD, SYMLINK, LINK, UNLINK, RENAME, SETATTR) have a wire format only: they answer EROFS
when read-only and ENOSYS otherwise.
"""
import errno
import fcntl
import gc
import locale
import os
import resource
import select
import signal
import socket
import stat
import struct

import pyseccomp

from . import _linux
from .protocol import (MAX_MESSAGE, SPEC, Op, RequestError, Stat, StatFS, Dirent,
                       decode_request, encode_error, encode_reply)

MAX_HANDLES = 1 << 20
_DIRENT_BUF = 32 * 1024
_O_LARGEFILE = 0o100000  # the kernel's value (os.O_LARGEFILE is 0 on x86_64)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_CREAT
_OPEN_FLAGS = (os.O_ACCMODE | os.O_TRUNC | os.O_APPEND | os.O_NONBLOCK | os.O_DIRECTORY
               | os.O_NOATIME | os.O_SYNC | os.O_DIRECT | _O_LARGEFILE | os.O_NOCTTY
               | os.O_CLOEXEC | os.O_NOFOLLOW)
_WRITE_OPS = (Op.CREATE, Op.MKDIR, Op.MKNOD, Op.SYMLINK, Op.LINK, Op.UNLINK, Op.RENAME,
              Op.SETATTR)
_SCM_INT = struct.Struct("i")

# What the request loop (and the Python runtime under it) calls; everything else is EPERM.
_SYSCALLS = (
    "read", "write", "recvmsg", "sendmsg", "poll", "openat2", "close", "fstat", "newfstatat",
    "statx", "getdents64", "readlinkat", "fstatfs", "lseek", "fcntl", "mmap", "munmap",
    "mremap", "mprotect", "brk", "madvise", "futex", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "sigaltstack", "getpid", "gettid", "clock_gettime", "exit", "exit_group",
    "getrandom",
)


class _Node:
    """A file the sentry holds a handle to: an O_PATH fd, kept alive by its handles and children."""

    __slots__ = ("fd", "parent", "name", "refs")

    def __init__(self, fd: int, parent: "_Node | None", name: bytes):
        self.fd, self.parent, self.name, self.refs = fd, parent, name, 0
        if parent is not None:
            parent.refs += 1


def _fstat(fd: int) -> Stat:
    st = os.fstat(fd)
    return Stat(st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                st.st_rdev, st.st_size, st.st_blksize, st.st_blocks, st.st_atime_ns,
                st.st_mtime_ns, st.st_ctime_ns)


class _Server:
    """The request handlers and the handle table of one connection."""

    def __init__(self, root_fd: int, readonly: bool):
        self._root = _Node(root_fd, None, b".")
        self._root.refs = 1  # the server's own reference: root_fd belongs to the caller
        self._readonly = readonly
        self._handles: dict[int, _Node] = {}
        self._next_handle = 1
        self._ops = {
            Op.ATTACH: self._attach, Op.WALK: self._walk, Op.STAT: self._stat,
            Op.OPEN: self._open, Op.READLINK: self._readlink, Op.GETDENTS: self._getdents,
            Op.STATFS: self._statfs, Op.CLOSE: self._close,
        }
        self._ops.update((op, self._unimplemented) for op in _WRITE_OPS)

    def handle(self, data: bytes) -> tuple[bytes, list[int]]:
        """The reply to one request message, and the fds to donate with it (caller closes)."""
        try:
            req_id, op, args = decode_request(data)
        except RequestError as e:
            return encode_error(e.req_id, e.errno), []
        try:
            result = self._ops[op](*args)
        except OSError as e:
            return encode_error(req_id, e.errno or errno.EIO), []
        nfds = SPEC[op][2]
        values, fds = result[:len(result) - nfds], list(result[len(result) - nfds:])
        return encode_reply(op, req_id, *values), fds

    def release_all(self) -> None:
        """Close every handle."""
        for handle in list(self._handles):
            self._close(handle)

    def _node(self, handle: int) -> _Node:
        try:
            return self._handles[handle]
        except KeyError:
            raise OSError(errno.EBADF, f"unknown handle {handle}") from None

    def _check_room(self) -> None:
        if len(self._handles) >= MAX_HANDLES:
            raise OSError(errno.ENFILE, "too many handles")

    def _new_handle(self, node: _Node) -> int:
        handle, self._next_handle = self._next_handle, self._next_handle + 1
        node.refs += 1
        self._handles[handle] = node
        return handle

    def _release(self, node: _Node | None) -> None:
        while node is not None:
            node.refs -= 1
            if node.refs:
                return
            os.close(node.fd)
            node = node.parent

    def _reopen(self, node: _Node, flags: int) -> int:
        """Open `node` for I/O with `flags`, checking it is still the file the handle names."""
        dirfd, name = (node.fd, b".") if node.parent is None else (node.parent.fd, node.name)
        fd = os.open(name, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC,
                     dir_fd=dirfd)
        try:
            new, old = os.fstat(fd), os.fstat(node.fd)
            if (new.st_dev, new.st_ino) != (old.st_dev, old.st_ino):
                raise OSError(errno.ESTALE, "the file was replaced")
            if not flags & os.O_NONBLOCK:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _attach(self):
        self._check_room()
        return self._new_handle(self._root), _fstat(self._root.fd)

    def _walk(self, handle: int, name: bytes):
        parent = self._node(handle)
        self._check_room()
        fd = _linux.open_beneath(parent.fd, name, os.O_PATH)
        try:
            st = _fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        return self._new_handle(_Node(fd, parent, name)), st

    def _stat(self, handle: int):
        return (_fstat(self._node(handle).fd),)

    def _open(self, handle: int, flags: int):
        node = self._node(handle)
        if self._readonly and flags & _WRITE_FLAGS:
            raise OSError(errno.EROFS, "read-only gofer")
        if flags & ~_OPEN_FLAGS:
            raise OSError(errno.EINVAL, f"open flags {flags:#o} not allowed")
        mode = os.fstat(node.fd).st_mode
        if stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, "the node is a symlink")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise OSError(errno.ENXIO, "only regular files and directories are opened")
        return (self._reopen(node, flags),)

    def _readlink(self, handle: int):
        node = self._node(handle)
        if not stat.S_ISLNK(os.fstat(node.fd).st_mode):
            raise OSError(errno.EINVAL, "not a symlink")
        return (os.readlink(b"", dir_fd=node.fd),)

    def _getdents(self, handle: int, cookie: int):
        """Entries after `cookie` (0: from the start) but '.' and '..', as many as one
        getdents64 buffer holds, and the cookie to continue from; no entries at the end."""
        if cookie >= 1 << 63:
            raise OSError(errno.EINVAL, "bad directory cookie")
        fd = self._reopen(self._node(handle), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.lseek(fd, cookie, os.SEEK_SET)
            while batch := _linux.getdents64(fd, _DIRENT_BUF):
                cookie = batch[-1][1]
                entries = [Dirent(ino, dtype, name) for ino, _, dtype, name in batch
                           if name not in (b".", b"..")]
                if entries:
                    return cookie, entries
            return cookie, []
        finally:
            os.close(fd)

    def _statfs(self, handle: int):
        return (StatFS(*_linux.fstatfs(self._node(handle).fd)),)

    def _close(self, handle: int):
        node = self._node(handle)
        del self._handles[handle]
        self._release(node)
        return ()

    def _unimplemented(self, *_args):
        if self._readonly:
            raise OSError(errno.EROFS, "read-only gofer")
        raise OSError(errno.ENOSYS, "write operations are not implemented yet")


def _peer_gone(sock: socket.socket) -> bool:
    """After an empty read: True if the peer closed, False if it sent an empty message."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    return any(ev & (select.POLLRDHUP | select.POLLHUP) for _, ev in poller.poll(0))


def serve(sock: socket.socket, root_fd: int, readonly: bool = True) -> None:
    """Answer requests on SOCK_SEQPACKET `sock` for the tree at `root_fd` (an O_PATH or
    directory fd, left open) until the peer closes the socket."""
    if sock.type != socket.SOCK_SEQPACKET:
        raise ValueError("the gofer protocol needs a SOCK_SEQPACKET socket")
    server = _Server(root_fd, readonly)
    try:
        while True:
            data, _, flags, _ = sock.recvmsg(MAX_MESSAGE + 1)
            if not data and _peer_gone(sock):
                return
            if flags & socket.MSG_CTRUNC:  # the peer sent fds; the kernel dropped them
                reply, fds = encode_error(0, errno.EINVAL), []
            else:
                reply, fds = server.handle(data)
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _SCM_INT.pack(fds[0]))] if fds else []
            try:
                sock.sendmsg([reply], anc, socket.MSG_NOSIGNAL)
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                for fd in fds:
                    os.close(fd)
    finally:
        server.release_all()


def _seccomp_filter(readonly: bool) -> pyseccomp.SyscallFilter:
    """The gofer's allowlist. When read-only, openat may not ask for write access (openat2's
    flags are in memory seccomp cannot read: the gofer only calls it with O_PATH)."""
    filt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    for name in _SYSCALLS:
        filt.add_rule(pyseccomp.ALLOW, name)
    if readonly:
        mask = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
        filt.add_rule(pyseccomp.ALLOW, "openat", pyseccomp.Arg(2, pyseccomp.MASKED_EQ, mask, 0))
    else:
        filt.add_rule(pyseccomp.ALLOW, "openat")
    return filt


def _confine(root: str, keep: set[int], parent_pid: int) -> int:
    """Child side of start(): isolate this process and return the root fd (after chroot)."""
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)
    _linux.prctl(_linux.PR_SET_NAME, b"ringfence-gofer")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sentry decides when we stop
    gc.freeze()  # the parent's garbage may hold fds closed below: never finalize it here
    null = os.open("/dev/null", os.O_RDWR)
    for fd in {0, 1, 2} - keep:
        os.dup2(null, fd)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 3
    for fd in sorted({fd for fd in keep if fd >= low} | {hard}):
        os.closerange(low, fd)
        low = fd + 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    locale.setlocale(locale.LC_ALL, "C")  # strerror must not read the container's locales
    _linux.unshare(_linux.CLONE_NEWNS)
    _linux.mount(None, b"/", None, _linux.MS_REC | _linux.MS_PRIVATE)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")
    return root_fd


def start(root: str, readonly: bool = True) -> tuple[int, socket.socket]:
    """Fork a gofer serving directory `root`; return (its pid, the sentry's end of the socket).

    Returns once the gofer is chrooted and seccomp-confined; raises OSError if its setup
    failed. The gofer exits when the socket is closed (reap it with os.waitpid) and is killed
    if the thread that called start() dies. Needs CAP_SYS_ADMIN (unshare, mount, chroot).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    report_r, report_w = os.pipe()
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            root_fd = _confine(root, {theirs.fileno(), report_w}, parent_pid)
            _seccomp_filter(readonly).load()
            os.write(report_w, struct.pack("<i", 0))
            os.close(report_w)
        except BaseException as e:
            err = e.errno if isinstance(e, OSError) and e.errno else errno.EIO
            os.write(report_w, struct.pack("<i", err) + str(e).encode()[:200])
            os._exit(1)
        try:
            serve(theirs, root_fd, readonly)
        except BaseException:
            os._exit(1)
        os._exit(0)
    os.close(report_w)
    theirs.close()
    with open(report_r, "rb") as report:
        status = report.read()
    if status != struct.pack("<i", 0):
        ours.close()
        os.waitpid(pid, 0)
        if len(status) < 4:
            raise ChildProcessError(f"gofer for {root} died during setup")
        raise OSError(struct.unpack_from("<i", status)[0],
                      f"gofer setup for {root} failed: {status[4:].decode(errors='replace')}")
    return pid, ours
