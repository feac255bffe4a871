"""Host files: the sentry's inherited stdio fds (and the stdio fds an exec request
donates), as files of the sandbox.

Reads never block the sentry: the fd is polled first and the task parks on
it when it is not ready.  Writes are plain write loops.  fstat shows the fd's
type and permissions only; a plain host fd's ioctls are read-only queries (TCGETS,
TIOCGWINSZ, FIONREAD of the host fd; TIOCGPGRP), a host terminal's are below.

A host pty the runtime made for a process (a container's init with `process.terminal`, an
`exec -t`) is a HostTerminal: named /dev/pts/N in the container's devpts (init's is /dev/pts/0
and /dev/console is a bind of it, as runc makes them), the process's controlling terminal, its
session's leader in the foreground.  The host pty's line discipline does the terminal's work
(echo, line editing); termios, window size and TCFLSH are passed through to it, TCSBRK[P] and
TCXONC are accepted as no-ops (the host's TCOOFF would block the sentry's next write to the pty).
The sentry keeps the sessions: TIOCSCTTY, TIOCNOTTY, TIOC[GS]PGRP, TIOCGSID, /dev/tty, and
signals the foreground group when the runtime reports a signal character typed (control.py) or
a window size is set (unless a host session holds the pty, whose runtime process passes on what
the host raises: `host_signals`; the SIGWINCH the host raises for that size then comes back
through it).  Without a devpts on /dev/pts, an init's terminal is /dev/console and an exec'd
one has no name (`host:[N]`).  `ringfence do`'s terminal (the caller's own) is always
/dev/console.  The name lasts while a file is open on the terminal or a session has it.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal

from ..abi.errno import EAGAIN, EINVAL, EIO, ENOTTY, EPIPE
from ..abi.fs import (AT_FDCWD, ANON_INODE_FS_MAGIC, INT, O_ACCMODE, O_APPEND, O_NONBLOCK, O_RDWR, POLLERR,
                      POLLHUP, POLLIN, POLLOUT, S_IALLUGO, S_IFCHR, S_IFMT, S_IFREG, makedev)
from ..abi.ioctl import (FIONREAD, INT_SIZE, TCFLSH, TCGETS, TCSBRK, TCSBRKP, TCSETS, TCSETSF, TCSETSW, TCXONC,
                         TIOCGPGRP, TIOCGWINSZ, TIOCOUTQ, TIOCSWINSZ)
from ..abi.signal import SIGWINCH
from ..abi.termios import (CONSOLE_MINOR, TCIFLUSH, TCIOFLUSH, TCOFLUSH, TCOOFF, TCION, TERMIOS, TTYAUX_MAJOR,
                           WINSIZE)
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block
from ..vfs.dentry import Location, internal_location, internal_mount
from ..vfs.device import open_device
from ..vfs.file import File
from ..vfs.inode import Attr, AttrInode, FileSystem
from ..vfs.walk import Walker
from .dev import NULL  # importing dev registers the devices
from .devpts import DevptsRoot, replica_location
from .pty import Controlling, SessionIoctls
from .tmpfs import TmpfsDir

_SIGPIPE = int(signal.SIGPIPE)
_READ_MAX = 1 << 20
_READABLE = POLLIN | POLLHUP | POLLERR
# ioctls passed through to the host fd: request -> size of the result it writes.
_QUERIES = {TCGETS: TERMIOS.size, TIOCGWINSZ: WINSIZE.size, FIONREAD: INT_SIZE}
_TERMINAL_QUERIES = {**_QUERIES, TIOCOUTQ: INT_SIZE}
CONSOLE = makedev(TTYAUX_MAJOR, CONSOLE_MINOR)
CONSOLE_PATH = b"/dev/console"


class HostFS(FileSystem):
    """Where host fd inodes live."""

    name = "hostfd"
    magic = ANON_INODE_FS_MAGIC


_FS = HostFS()
_MOUNT = internal_mount(_FS)


class HostInode(AttrInode):
    """A host fd seen as an inode: its type and permission bits, owned by the sandbox's root.

    An `owned` fd (a donated one) is closed with the last file open on it."""

    __slots__ = ("fd", "owned")

    def __init__(self, fd: int, owned: bool = False):
        super().__init__(_FS, os.fstat(fd).st_mode)
        self.fd = fd
        self.owned = owned

    def stat(self) -> Attr:
        """Type, permissions and (regular files) size of the host fd now."""
        st = os.fstat(self.fd)
        self.mode = st.st_mode & (S_IFMT | S_IALLUGO)
        self.size = st.st_size if self.kind == S_IFREG else 0
        return super().stat()

    def resize(self, size: int) -> None:
        """Truncate a regular host file (`> /dev/stdout` with stdout redirected to a file)."""
        if self.kind != S_IFREG:
            raise SysError(EINVAL)
        os.ftruncate(self.fd, size)

    def open(self, t, loc, flags: int):
        """Another file on the same host fd (reopening /proc/self/fd/N); on a copy of an owned
        one, which the new file owns, so that either may be closed first."""
        if self.owned:
            return _host_file(os.dup(self.fd), flags, owned=True)
        return HostFile(loc, flags, self.fd)


class HostFile(File):
    """An open host fd."""

    __slots__ = ("fd", "_poller", "_tty")
    seekable = False

    def __init__(self, loc, flags: int, fd: int):
        super().__init__(loc, flags)
        self.fd = fd
        self._poller = select.poll()
        self._poller.register(fd, POLLIN | POLLOUT)
        self._tty = os.isatty(fd)

    def release(self) -> None:
        """Close an owned host fd."""
        if self.loc.dentry.inode.owned:
            os.close(self.fd)

    def readiness(self) -> int:
        """The host fd's poll events now."""
        ready = self._poller.poll(0)
        return ready[0][1] if ready else 0

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """The host fd itself."""
        return (), ((self.fd, events & (POLLIN | POLLOUT)),)

    def _not_ready(self, events: int):
        if self.flags & O_NONBLOCK:
            raise SysError(EAGAIN)
        return Block(host_fds=((self.fd, events),))

    def read(self, t, n: int):
        """Read what the host fd has, parking the task until it has something."""
        if not n:
            return b""
        if not self.readiness() & _READABLE:
            return self._not_ready(POLLIN)
        try:
            return os.read(self.fd, min(n, _READ_MAX))
        except BlockingIOError:
            return self._not_ready(POLLIN)

    def write(self, t, data: bytes):
        """Write all of `data`; EPIPE and SIGPIPE if the host reader is gone."""
        done = 0
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(self.fd, view[done:])
        except BrokenPipeError:
            t.send_signal(_SIGPIPE)
            if not done:
                raise SysError(EPIPE) from None
        except BlockingIOError:
            if not done:
                return self._not_ready(POLLOUT)
        return done

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """TCGETS, TIOCGWINSZ and FIONREAD from the host fd; TIOCGPGRP answers the caller's group."""
        if self._query(t, cmd, arg, _QUERIES):
            return 0
        if cmd == TIOCGPGRP and self._tty:
            t.mm.write(arg, INT.pack(t.tg.pgid))
            return 0
        raise SysError(ENOTTY)

    def _query(self, t, cmd: int, arg: int, queries: dict) -> bool:
        """Pass read-only request `cmd` to the host fd if it is one of `queries`."""
        size = queries.get(cmd)
        if size is None:
            return False
        t.mm.write(arg, _host_ioctl(self.fd, cmd, bytes(size)))
        return True


def _host_ioctl(fd: int, cmd: int, arg):
    try:
        return fcntl.ioctl(fd, cmd, arg)
    except OSError as err:
        raise SysError(err.errno) from None


def _host_file(fd: int, flags: int, owned: bool) -> HostFile:
    return HostFile(internal_location(_MOUNT, b"host:[%d]" % fd, HostInode(fd, owned)), flags, fd)


class HostTerminal(Controlling):
    """A host pty as a terminal of the sandbox (see the module docstring)."""

    __slots__ = ("fd", "pts", "name", "files", "host_signals")

    def __init__(self, fd: int, pts: Location | None, uid: int, gid: int, console: bool,
                 host_signals: bool = False):
        """On host fd `fd` (the terminal's own from now on): replica N of the devpts at `pts`,
        owned by `uid`/`gid`; without `pts` /dev/console (`console`) or nameless.
        `host_signals`: a host session holds the pty and the runtime passes on the signals the
        host raises for it (SIGWINCH for a size set here among them), so the sentry raises none."""
        super().__init__()
        self.fd = fd
        self.files = 0
        self.host_signals = host_signals
        self.pts = pts
        if pts is not None:
            self.inode = pts.inode.fs.add(self, uid, gid)
            return
        self.inode = TerminalInode(self)
        self.name = CONSOLE_PATH if console else b"host:[%d]" % fd
        if console:
            self.inode.rdev = CONSOLE

    def location(self) -> Location:
        """Where the terminal's files are (the name /proc/PID/fd shows)."""
        if self.pts is not None:
            return replica_location(self.pts, self.inode)
        return internal_location(_MOUNT, self.name, self.inode)

    def open_replica(self, t, loc: Location, flags: int) -> HostTerminalFile:
        """A file on the terminal at `loc` (EIO once it is gone); without O_NOCTTY a session
        leader with no controlling terminal acquires it."""
        if self.fd < 0:
            raise SysError(EIO)
        f = HostTerminalFile(loc, flags, self)
        self.acquire_on_open(t.tg, flags, f.readable)
        return f

    def detach(self) -> None:
        """The session loses the terminal (which goes if no file is open on it)."""
        super().detach()
        self._close_if_unused()

    def file_closed(self) -> None:
        """One file fewer on it."""
        self.files -= 1
        self._close_if_unused()

    def _close_if_unused(self) -> None:
        if self.files or self.sid is not None or self.fd < 0:
            return
        if self.pts is not None:
            fs = self.pts.inode.fs
            fs.hide(self.inode.number)
            fs.release(self.inode.number)
        os.close(self.fd)
        self.fd = -1


class TerminalInode(HostInode):
    """A HostTerminal without a devpts name: /dev/console, or nameless."""

    __slots__ = ("terminal",)

    def __init__(self, terminal: HostTerminal):
        super().__init__(terminal.fd)
        self.terminal = terminal

    def open(self, t, loc, flags: int):
        """A file on the terminal."""
        return self.terminal.open_replica(t, loc, flags)


class HostTerminalFile(SessionIoctls, HostFile):
    """An open HostTerminal: reads, writes and termios on the host pty, sessions the sentry's."""

    __slots__ = ("term",)

    def __init__(self, loc: Location, flags: int, term: HostTerminal):
        super().__init__(loc, flags, term.fd)
        self.term = term
        term.files += 1

    def release(self) -> None:
        """One file fewer on the terminal."""
        self.term.file_closed()

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """Termios, window size and TCFLSH on the host pty (TCSETSW without waiting: output is
        with the host already), a changed size signalling the foreground group (unless the host
        does: `host_signals`); TCSBRK[P] and TCXONC accepted as no-ops; the session ioctls."""
        fd = self.fd
        if self._query(t, cmd, arg, _TERMINAL_QUERIES):
            return 0
        if cmd in (TCSETS, TCSETSW, TCSETSF):
            raw = t.mm.read(arg, TERMIOS.size)
            if cmd == TCSETSF:
                _host_ioctl(fd, TCFLSH, TCIFLUSH)
            _host_ioctl(fd, TCSETS, raw)
        elif cmd == TIOCSWINSZ:
            size = t.mm.read(arg, WINSIZE.size)
            if size != _host_ioctl(fd, TIOCGWINSZ, bytes(WINSIZE.size)):
                _host_ioctl(fd, TIOCSWINSZ, size)
                if not self.term.host_signals:
                    self.term.signal_foreground(SIGWINCH)
        elif cmd == TCFLSH:
            if arg not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
                raise SysError(EINVAL)
            _host_ioctl(fd, TCFLSH, arg)
        elif cmd == TCXONC:  # (a no-op: the host's TCOOFF would block the sentry's next write)
            if not TCOOFF <= arg <= TCION:
                raise SysError(EINVAL)
        elif cmd not in (TCSBRK, TCSBRKP):  # (tcdrain: nothing waits in the sentry)
            return self._session_ioctl(t, cmd, arg)
        return 0


def host_terminal(box, fd: int, uid: int = 0, gid: int = 0, console: bool = False,
                  named: bool = True, host_signals: bool = False) -> HostTerminal:
    """A HostTerminal on a copy of host pty `fd` for a process of container `box` run as
    `uid`/`gid`, named in the devpts on the container's /dev/pts if `named` and it has one;
    `console`: the container's init's, then also /dev/console (a bind of its replica, or the
    terminal itself without a devpts); `host_signals` as HostTerminal's."""
    walker = Walker(None, box.context(b"/"))
    pts = _find(walker, b"/dev/pts") if named else None
    term = HostTerminal(os.dup(fd), pts if pts is not None and isinstance(pts.inode, DevptsRoot) else None,
                        uid, gid, console, host_signals)
    dev = _find(walker, b"/dev")
    if console and dev is not None and isinstance(dev.inode, TmpfsDir):
        if term.pts is None:
            dev.inode.link(b"console", term.inode)
        else:
            dev.inode.create(b"console", S_IFREG | 0o600, 0, 0)
            at = walker.resolve(AT_FDCWD, CONSOLE_PATH)
            replica = term.location()
            m = replica.mount
            at.mount.ns.mount(at, m.fs, term.inode, m.source, m.flags, m.data, root_dentry=replica.dentry)
    return term


def _find(walker: Walker, path: bytes) -> Location | None:
    try:
        return walker.resolve(AT_FDCWD, path)
    except SysError:
        return None


def std_files(host_fds=(0, 1, 2), owned: bool = False, terminal: HostTerminal | None = None) -> list[File]:
    """Files wrapping the sentry's inherited fds (its stdio), one per fd, with the fds' access modes.

    A host fd that is None or not open becomes /dev/null, as runtimes give a container without
    that stream; one on `terminal`'s host pty a file on it.  `owned`: the files own the fds
    (donated ones) and close them when released.
    """
    files = []
    rdev = os.fstat(terminal.fd).st_rdev if terminal is not None else None
    for fd in host_fds:
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL) & (O_ACCMODE | O_APPEND)
        except (OSError, TypeError):
            null = AttrInode(_FS, S_IFCHR | 0o666, rdev=NULL)
            files.append(open_device(None, internal_location(_MOUNT, b"/dev/null", null), O_RDWR, NULL))
            continue
        if rdev is not None and os.isatty(fd) and os.fstat(fd).st_rdev == rdev:
            files.append(HostTerminalFile(terminal.location(), flags, terminal))
            if owned:
                os.close(fd)
            continue
        files.append(_host_file(fd, flags, owned))
    return files
