"""The gofer: the one process that opens a container's files, serving them to the sentry.

It serves trees: mount 0 is the container's root, mounts 1..n extra trees (OCI bind mount
sources, directories or single files), each read-only or writable. Every node the sentry has
walked to or created is a handle: an O_PATH fd, with its parent node, name and mount.

Nothing resolves more than one component, and nothing follows a symlink: WALK and CREATE open
one validated name with openat2 RESOLVE_BENEATH|NO_SYMLINKS|NO_MAGICLINKS (`_linux.open_beneath`);
MKDIR, MKNOD, SYMLINK, UNLINK and RENAME are *at calls on one name in a directory handle, which
never follow the last component; LINK, chown and utimes work on the node's own O_PATH fd
(AT_EMPTY_PATH); OPEN, chmod, truncate, FSYNC, GETDENTS, DIRSTAT and xattrs work on a fresh fd that
`_reopen` opens by the node's name through `open_beneath` and checks is still the same file.

A handle names its file by (parent, name): once that name is renamed or unlinked, the calls
that reopen it answer ESTALE, and the sentry walks to the file again.
"""
import contextlib
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
from typing import NamedTuple, Sequence

import pyseccomp

from . import _linux
from .protocol import (AT_REMOVEDIR, DIRENT_ENTRY, DIRSTAT_ENTRY, MAX_MESSAGE, NO_ID, PAGE_ROOM,
                       RENAME_EXCHANGE, RENAME_NOREPLACE, SETATTR_ATIME, SETATTR_GID, SETATTR_MODE, SETATTR_MTIME,
                       SETATTR_SIZE, SETATTR_UID, SPEC, UTIME_OMIT, Dirent, DirStat, Op, RequestError,
                       Stat, StatFS, decode_request, encode_error, encode_reply)

MAX_HANDLES = 1 << 20
_DIRENT_BUF = 32 * 1024
_O_LARGEFILE = 0o100000  # the kernel's value (os.O_LARGEFILE is 0 on x86_64)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_CREAT
_OPEN_FLAGS = (os.O_ACCMODE | os.O_TRUNC | os.O_APPEND | os.O_NONBLOCK | os.O_DIRECTORY
               | os.O_NOATIME | os.O_SYNC | os.O_DIRECT | _O_LARGEFILE | os.O_NOCTTY
               | os.O_CLOEXEC | os.O_NOFOLLOW)
_CREATE_FLAGS = _OPEN_FLAGS & ~os.O_DIRECTORY
_SETATTR_MASK = (SETATTR_MODE | SETATTR_UID | SETATTR_GID | SETATTR_SIZE | SETATTR_ATIME
                 | SETATTR_MTIME)
_OMIT = (0, UTIME_OMIT)
_S_IFMT = 0o170000
_XATTR_PREFIX = b"user."
_SCM_INT = struct.Struct("i")

# What the request loop (and the Python runtime under it) calls; everything else is EPERM.
_SYSCALLS = (
    "read", "write", "recvmsg", "sendmsg", "poll", "openat2", "close", "fstat", "newfstatat",
    "statx", "getdents64", "readlinkat", "fstatfs", "lseek", "fcntl", "fsync", "fgetxattr",
    "flistxattr", "mmap", "munmap", "mremap", "mprotect", "brk", "madvise", "futex",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "getpid", "gettid",
    "clock_gettime", "exit", "exit_group", "getrandom",
)
# ... and, when some mount is writable, what the write requests call.
_WRITE_SYSCALLS = ("openat", "mkdirat", "symlinkat", "unlinkat", "fchownat", "utimensat",
                   "fchmod", "ftruncate", "fsetxattr", "fremovexattr")


class Mount(NamedTuple):
    """A tree for start() to serve: a host directory or file, and whether it refuses writes."""

    source: str
    readonly: bool = True


class _Node:
    """A file the sentry holds a handle to: an O_PATH fd, kept alive by its handles and
    children, on mount number `mount` (inherited from the parent)."""

    __slots__ = ("fd", "parent", "name", "mount", "refs")

    def __init__(self, fd: int, parent: "_Node | None", name: bytes, mount: int = 0):
        self.fd, self.parent, self.name, self.refs = fd, parent, name, 0
        self.mount = mount if parent is None else parent.mount
        if parent is not None:
            parent.refs += 1


def _open_tree(path: str, mount: int) -> _Node:
    """The root node of mount `mount` over host path `path` (symlinks followed: the path comes
    from the runtime, not the container). A directory is its own root; a file is kept as a
    name in its directory, which no handle reaches. Never released."""
    path = os.path.realpath(path)
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        root = _Node(fd, None, b".", mount)
    else:
        os.close(fd)
        head, name = os.path.split(os.fsencode(path))
        parent = _Node(os.open(head, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), None, b".",
                       mount)
        root = _Node(_linux.open_beneath(parent.fd, name, os.O_PATH), parent, name)
    root.refs = 1
    return root


def _fstat(fd: int) -> Stat:
    return _stat_of(os.fstat(fd))


def _stat_of(st: os.stat_result) -> Stat:
    return Stat(st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                st.st_rdev, st.st_size, st.st_blksize, st.st_blocks, st.st_atime_ns,
                st.st_mtime_ns, st.st_ctime_ns)


def _mode(mode: int) -> int:
    """`mode` if it holds permission bits only, else EINVAL."""
    if mode & ~0o7777:
        raise OSError(errno.EINVAL, f"bad mode {mode:#o}")
    return mode


def _xattr_name(name: bytes) -> bytes:
    """`name` if it is in the user.* namespace, else EOPNOTSUPP."""
    if not name.startswith(_XATTR_PREFIX):
        raise OSError(errno.EOPNOTSUPP, "only user.* extended attributes are served")
    return name


class _Server:
    """The request handlers and the handle table of one connection. Handler `_op` serves
    Op.OP and takes the SPEC request fields as arguments of the same names."""

    def __init__(self, trees: Sequence[tuple[_Node, bool]]):
        self._trees = list(trees)  # by mount id: (root node, read-only)
        self._handles: dict[int, _Node] = {}
        self._next_handle = 1
        self._ops = {op: getattr(self, "_" + op.name.lower()) for op in Op}

    def handle(self, data: bytes) -> tuple[bytes, list[int]]:
        """The reply to one request message, and the fds to donate with it (caller closes)."""
        try:
            req_id, op, args = decode_request(data)
        except RequestError as e:
            return encode_error(e.req_id, e.errno), []
        fds = []
        try:
            spec = SPEC[op]
            if spec.writes:
                self._writable(self._node(args[0]))
            result = self._ops[op](*args)
            split = len(result) - spec.fds
            fds = list(result[split:])
            return encode_reply(op, req_id, *result[:split]), fds
        except (OSError, ValueError, OverflowError) as e:  # the last two: ints out of range
            for fd in fds:
                os.close(fd)
            err = e.errno if isinstance(e, OSError) and e.errno else errno.EINVAL
            return encode_error(req_id, err), []

    def release_all(self) -> None:
        """Close every handle."""
        for handle in list(self._handles):
            self._drop(handle)

    def _node(self, handle: int) -> _Node:
        try:
            return self._handles[handle]
        except KeyError:
            raise OSError(errno.EBADF, f"unknown handle {handle}") from None

    def _writable(self, node: _Node) -> None:
        if self._trees[node.mount][1]:
            raise OSError(errno.EROFS, f"mount {node.mount} is read-only")

    @staticmethod
    def _same_mount(a: _Node, b: _Node) -> None:
        if a.mount != b.mount:
            raise OSError(errno.EXDEV, "not on the same mount")

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
        """A new fd with `flags` on regular file or directory `node`, opened by its name and
        checked to still be that file (ESTALE otherwise)."""
        old = os.fstat(node.fd)
        if not (stat.S_ISREG(old.st_mode) or stat.S_ISDIR(old.st_mode)
                or stat.S_ISLNK(old.st_mode)):  # the open fails a symlink: ELOOP or ENOTDIR
            raise OSError(errno.ENXIO, "only regular files and directories are opened")
        dirfd, name = (node.fd, b".") if node.parent is None else (node.parent.fd, node.name)
        try:
            fd = _linux.open_beneath(dirfd, name, flags | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise OSError(errno.ESTALE, "the file was renamed or removed") from None
        try:
            new = os.fstat(fd)
            if (new.st_dev, new.st_ino) != (old.st_dev, old.st_ino):
                raise OSError(errno.ESTALE, "the file was replaced")
            if not flags & os.O_NONBLOCK:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextlib.contextmanager
    def _reopened(self, node: _Node, flags: int):
        """`_reopen` for the duration of a with block."""
        fd = self._reopen(node, flags)
        try:
            yield fd
        finally:
            os.close(fd)

    def _chmod(self, node: _Node, mode: int) -> None:
        with self._reopened(node, os.O_RDONLY) as fd:
            os.chmod(fd, mode)

    def _truncate(self, node: _Node, size: int) -> None:
        with self._reopened(node, os.O_WRONLY) as fd:
            os.truncate(fd, size)

    def _make(self, parent: int, name: bytes, uid: int, gid: int, make, mode: int | None = None):
        """Create entry `name` of directory handle `parent` with make(dirfd), which may return
        an fd to donate; chown it to uid:gid, and chmod a regular file to `mode` again if that
        dropped its set-id bits. (handle, stat, *fds); on failure the entry is removed again."""
        dirnode = self._node(parent)
        self._check_room()
        made = make(dirnode.fd)
        donated = () if made is None else (made,)
        handle = None
        try:
            node = _Node(_linux.open_beneath(dirnode.fd, name, os.O_PATH), dirnode, name)
            handle = self._new_handle(node)
            if (uid, gid) != (NO_ID, NO_ID):
                _linux.fchown(node.fd, uid, gid)
            st = _fstat(node.fd)
            if mode is not None and stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
                self._chmod(node, mode)
                st = _fstat(node.fd)
            return (handle, st, *donated)
        except BaseException:
            if handle is not None:
                self._drop(handle)
            for fd in donated:
                os.close(fd)
            with contextlib.suppress(OSError):
                try:
                    os.unlink(name, dir_fd=dirnode.fd)
                except IsADirectoryError:
                    os.rmdir(name, dir_fd=dirnode.fd)
            raise

    def _attach(self, mount: int):
        if mount >= len(self._trees):
            raise OSError(errno.ENOENT, f"no mount {mount}")
        self._check_room()
        root = self._trees[mount][0]
        return self._new_handle(root), _fstat(root.fd)

    def _walk(self, parent: int, name: bytes):
        dirnode = self._node(parent)
        self._check_room()
        fd = _linux.open_beneath(dirnode.fd, name, os.O_PATH)
        try:
            st = _fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        return self._new_handle(_Node(fd, dirnode, name)), st

    def _stat(self, handle: int):
        return (_fstat(self._node(handle).fd),)

    def _open(self, handle: int, flags: int):
        node = self._node(handle)
        if flags & _WRITE_FLAGS:
            self._writable(node)
        if flags & ~_OPEN_FLAGS:
            raise OSError(errno.EINVAL, f"open flags {flags:#o} not allowed")
        fd = self._reopen(node, flags & ~os.O_TRUNC)
        if flags & os.O_TRUNC:  # only once the open has checked the other flags
            try:
                self._truncate(node, 0)
            except BaseException:
                os.close(fd)
                raise
        return (fd,)

    def _readlink(self, handle: int):
        node = self._node(handle)
        if not stat.S_ISLNK(os.fstat(node.fd).st_mode):
            raise OSError(errno.EINVAL, "not a symlink")
        return (os.readlink(b"", dir_fd=node.fd),)

    def _getdents(self, handle: int, cookie: int):
        return self._page(handle, cookie, DIRENT_ENTRY, lambda fd, ino, dtype, name: Dirent(ino, dtype, name))

    def _dirstat(self, handle: int, cookie: int):
        """Each entry with its attributes: fstatat without following a symlink, as WALK sees it
        (an entry gone meanwhile is left out)."""
        def entry(fd: int, ino: int, dtype: int, name: bytes) -> DirStat | None:
            try:
                return DirStat(name, _stat_of(os.stat(name, dir_fd=fd, follow_symlinks=False)))
            except FileNotFoundError:
                return None
        return self._page(handle, cookie, DIRSTAT_ENTRY, entry)

    def _page(self, handle: int, cookie: int, size: int, entry):
        """A listing's page: the entries after `cookie` (0: from the start) but '.' and '..', as
        entry(dir fd, ino, d_type, name) makes them (None: left out), as many as fit one reply
        (`size` bytes each besides the name), and the cookie to continue from; none at the end."""
        if cookie >= 1 << 63:
            raise OSError(errno.EINVAL, "bad directory cookie")
        with self._reopened(self._node(handle), os.O_RDONLY | os.O_DIRECTORY) as fd:
            os.lseek(fd, cookie, os.SEEK_SET)
            entries, room = [], PAGE_ROOM
            while batch := _linux.getdents64(fd, _DIRENT_BUF):
                for ino, off, dtype, name in batch:
                    if name not in (b".", b".."):
                        room -= size + len(name)
                        if room < 0:
                            return cookie, entries
                        item = entry(fd, ino, dtype, name)
                        if item is not None:
                            entries.append(item)
                    cookie = off
                if entries:
                    return cookie, entries
            return cookie, []

    def _statfs(self, handle: int):
        return (StatFS(*_linux.fstatfs(self._node(handle).fd)),)

    def _close(self, handles: list[int]):
        for handle in handles:
            self._node(handle)  # EBADF before anything is released
        if len(set(handles)) != len(handles):
            raise OSError(errno.EINVAL, "a handle listed twice")
        for handle in handles:
            self._drop(handle)
        return ()

    def _drop(self, handle: int) -> None:
        """Forget `handle` and release its node."""
        self._release(self._handles.pop(handle))

    def _create(self, parent: int, name: bytes, flags: int, mode: int, uid: int, gid: int):
        if flags & ~_CREATE_FLAGS:
            raise OSError(errno.EINVAL, f"create flags {flags:#o} not allowed")
        _mode(mode)
        return self._make(parent, name, uid, gid, lambda dirfd: _linux.open_beneath(
            dirfd, name, flags | os.O_CREAT | os.O_EXCL, mode), mode)

    def _mkdir(self, parent: int, name: bytes, mode: int, uid: int, gid: int):
        _mode(mode)
        return self._make(parent, name, uid, gid, lambda dirfd: os.mkdir(name, mode, dir_fd=dirfd))

    def _mknod(self, parent: int, name: bytes, mode: int, uid: int, gid: int):
        kind, perms = stat.S_IFMT(mode) or stat.S_IFREG, _mode(mode & ~_S_IFMT)
        if kind in (stat.S_IFCHR, stat.S_IFBLK):
            raise OSError(errno.EPERM, "no device nodes are made")
        if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
            raise OSError(errno.EINVAL, f"bad file type {kind:#o}")
        return self._make(parent, name, uid, gid,
                          lambda dirfd: os.mknod(name, kind | perms, dir_fd=dirfd), perms)

    def _symlink(self, parent: int, name: bytes, target: bytes, uid: int, gid: int):
        return self._make(parent, name, uid, gid,
                          lambda dirfd: os.symlink(target, name, dir_fd=dirfd))

    def _link(self, parent: int, name: bytes, target: int):
        node = self._node(target)
        self._same_mount(self._node(parent), node)
        return self._make(parent, name, NO_ID, NO_ID,
                          lambda dirfd: _linux.link_fd(node.fd, dirfd, name))

    def _unlink(self, parent: int, name: bytes, flags: int):
        if flags & ~AT_REMOVEDIR:
            raise OSError(errno.EINVAL, f"unlink flags {flags:#x}")
        (os.rmdir if flags else os.unlink)(name, dir_fd=self._node(parent).fd)
        return ()

    def _rename(self, parent: int, name: bytes, new_parent: int, new_name: bytes, flags: int):
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise OSError(errno.EINVAL, f"rename flags {flags:#x}")
        old, new = self._node(parent), self._node(new_parent)
        self._same_mount(old, new)
        _linux.renameat2(old.fd, name, new.fd, new_name, flags)
        return ()

    def _setattr(self, handle: int, mask: int, mode: int, uid: int, gid: int, size: int,
                 atime, mtime):
        """Owner first (it may clear set-id bits), then mode, size, and times last (a
        truncation sets mtime)."""
        node = self._node(handle)
        if mask & ~_SETATTR_MASK:
            raise OSError(errno.EINVAL, f"setattr mask {mask:#x}")
        if mask & SETATTR_MODE:
            _mode(mode)
        if mask & SETATTR_SIZE and size >= 1 << 63:
            raise OSError(errno.EINVAL, f"bad size {size}")
        if mask & (SETATTR_UID | SETATTR_GID):
            _linux.fchown(node.fd, uid if mask & SETATTR_UID else NO_ID,
                          gid if mask & SETATTR_GID else NO_ID)
        if mask & SETATTR_MODE:
            self._chmod(node, mode)
        if mask & SETATTR_SIZE:
            self._truncate(node, size)
        if mask & (SETATTR_ATIME | SETATTR_MTIME):
            _linux.futimens(node.fd, atime if mask & SETATTR_ATIME else _OMIT,
                            mtime if mask & SETATTR_MTIME else _OMIT)
        return (_fstat(node.fd),)

    def _fsync(self, handle: int):
        with self._reopened(self._node(handle), os.O_RDONLY) as fd:
            os.fsync(fd)
        return ()

    def _getxattr(self, handle: int, name: bytes):
        name = _xattr_name(name)
        with self._reopened(self._node(handle), os.O_RDONLY) as fd:
            return (os.getxattr(fd, name),)

    def _setxattr(self, handle: int, name: bytes, value: bytes, flags: int):
        name = _xattr_name(name)
        if flags & ~(os.XATTR_CREATE | os.XATTR_REPLACE):
            raise OSError(errno.EINVAL, f"setxattr flags {flags:#x}")
        with self._reopened(self._node(handle), os.O_RDONLY) as fd:
            os.setxattr(fd, name, value, flags)
        return ()

    def _listxattr(self, handle: int):
        with self._reopened(self._node(handle), os.O_RDONLY) as fd:
            names = [os.fsencode(n) for n in os.listxattr(fd)]
        return ([n for n in names if n.startswith(_XATTR_PREFIX)],)

    def _removexattr(self, handle: int, name: bytes):
        name = _xattr_name(name)
        with self._reopened(self._node(handle), os.O_RDONLY) as fd:
            os.removexattr(fd, name)
        return ()


def _peer_gone(sock: socket.socket) -> bool:
    """After an empty read: True if the peer closed, False if it sent an empty message."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    return any(ev & (select.POLLRDHUP | select.POLLHUP) for _, ev in poller.poll(0))


def serve(sock: socket.socket, trees: Sequence[tuple[_Node, bool]]) -> None:
    """Answer requests on SOCK_SEQPACKET `sock` for `trees` (by mount id: root node from
    `_open_tree`, read-only) until the peer closes the socket."""
    if sock.type != socket.SOCK_SEQPACKET:
        raise ValueError("the gofer protocol needs a SOCK_SEQPACKET socket")
    server = _Server(trees)
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
    """The gofer's allowlist. Read-only: openat may not ask for write access (openat2's flags
    are in memory seccomp cannot read: the gofer only calls it with O_PATH or O_RDONLY there).
    Writable: the write calls too, mknodat for regular files, FIFOs and socket nodes only, linkat by fd
    only, renameat2 without RENAME_WHITEOUT."""
    filt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    for name in _SYSCALLS:
        filt.add_rule(pyseccomp.ALLOW, name)
    if readonly:
        mask = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
        filt.add_rule(pyseccomp.ALLOW, "openat", pyseccomp.Arg(2, pyseccomp.MASKED_EQ, mask, 0))
        return filt
    for name in _WRITE_SYSCALLS:
        filt.add_rule(pyseccomp.ALLOW, name)
    for kind in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
        filt.add_rule(pyseccomp.ALLOW, "mknodat",
                      pyseccomp.Arg(2, pyseccomp.MASKED_EQ, _S_IFMT, kind))
    filt.add_rule(pyseccomp.ALLOW, "linkat", pyseccomp.Arg(4, pyseccomp.EQ, _linux.AT_EMPTY_PATH))
    filt.add_rule(pyseccomp.ALLOW, "renameat2",
                  pyseccomp.Arg(4, pyseccomp.MASKED_EQ, _linux.RENAME_WHITEOUT, 0))
    return filt


def _confine(mounts: Sequence[Mount], keep: set[int], parent_pid: int) -> list[tuple[_Node, bool]]:
    """Child side of start(): isolate this process, open every tree and chroot into the first;
    return the trees for serve()."""
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
    os.umask(0)  # modes come from the sentry, which applies the sandbox's umask
    _linux.unshare(_linux.CLONE_NEWNS)
    _linux.mount(None, b"/", None, _linux.MS_REC | _linux.MS_PRIVATE)
    trees = [(_open_tree(m.source, i), m.readonly) for i, m in enumerate(mounts)]
    os.fchdir(trees[0][0].fd)
    os.chroot(".")
    os.chdir("/")
    return trees


def start(root: str, readonly: bool = True,
          mounts: Sequence[Mount] = ()) -> tuple[int, socket.socket]:
    """Fork a gofer serving directory `root` as mount 0 and `mounts` as mounts 1, 2, ...;
    return (its pid, the sentry's end of the socket).

    The gofer chroots into `root`; the mounts' sources are opened before that, so they may lie
    outside it. Returns once the gofer is confined; raises OSError if its setup failed. The
    gofer exits when the socket is closed (reap it with os.waitpid) and is killed if the
    thread that called start() dies. Needs CAP_SYS_ADMIN (unshare, mount, chroot).
    """
    trees = [Mount(root, readonly), *mounts]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    report_r, report_w = os.pipe()
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            confined = _confine(trees, {theirs.fileno(), report_w}, parent_pid)
            _seccomp_filter(all(m.readonly for m in trees)).load()
            os.write(report_w, struct.pack("<i", 0))
            os.close(report_w)
        except BaseException as e:
            err = e.errno if isinstance(e, OSError) and e.errno else errno.EIO
            os.write(report_w, struct.pack("<i", err) + str(e).encode()[:200])
            os._exit(1)
        try:
            serve(theirs, confined)
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
