"""Host files: the sentry's inherited stdio fds (and the stdio fds an exec request
donates), as files of the sandbox.

Reads never block the sentry: the fd is polled first and the task parks on
it when it is not ready.  Writes are plain write loops.  fstat shows the fd's
type and permissions only; ioctls are limited to read-only terminal queries.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal

from ..abi.errno import EAGAIN, EINVAL, ENOTTY, EPIPE
from ..abi.fs import (ANON_INODE_FS_MAGIC, INT, O_ACCMODE, O_APPEND, O_NONBLOCK, O_RDWR, POLLERR, POLLHUP, POLLIN,
                      POLLOUT, S_IALLUGO, S_IFCHR, S_IFMT, S_IFREG, makedev)
from ..abi.ioctl import FIONREAD, INT_SIZE, TCGETS, TERMIOS_SIZE, TIOCGPGRP, TIOCGWINSZ, WINSIZE_SIZE
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block
from ..vfs.dentry import internal_location, internal_mount
from ..vfs.device import open_device
from ..vfs.file import File
from ..vfs.inode import Attr, AttrInode, FileSystem
from .dev import NULL  # importing dev registers the devices

_SIGPIPE = int(signal.SIGPIPE)
_READ_MAX = 1 << 20
_READABLE = POLLIN | POLLHUP | POLLERR
# ioctls passed through to the host fd: request -> size of the result it writes.
_QUERIES = {TCGETS: TERMIOS_SIZE, TIOCGWINSZ: WINSIZE_SIZE, FIONREAD: INT_SIZE}


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
        size = _QUERIES.get(cmd)
        if size is not None:
            try:
                result = fcntl.ioctl(self.fd, cmd, bytes(size))
            except OSError as err:
                raise SysError(err.errno) from None
            t.mm.write(arg, result)
            return 0
        if cmd == TIOCGPGRP and self._tty:
            t.mm.write(arg, INT.pack(t.tg.pgid))
            return 0
        raise SysError(ENOTTY)


def _host_file(fd: int, flags: int, owned: bool) -> HostFile:
    return HostFile(internal_location(_MOUNT, b"host:[%d]" % fd, HostInode(fd, owned)), flags, fd)


# The sandbox's terminal (see set_console), or None.
_console: HostInode | None = None
CONSOLE_PATH = b"/dev/console"


def set_console(fd: int | None) -> None:
    """Make host terminal `fd` the console (None: no console) of the
    container built next: /dev/console in its devfs, and the file of each of
    its stdio fds on that terminal, so that ttyname() finds its name as on Linux."""
    global _console
    _console = None if fd is None else HostInode(fd)
    if _console is not None:
        _console.rdev = makedev(5, 1)  # as Linux numbers /dev/console


def console() -> HostInode | None:
    """The console's inode (None: the sandbox has no terminal)."""
    return _console


def _on_console(fd: int) -> bool:
    return (_console is not None and os.isatty(fd)
            and os.fstat(fd).st_rdev == os.fstat(_console.fd).st_rdev)


def std_files(host_fds=(0, 1, 2), owned: bool = False) -> list[File]:
    """Files wrapping the sentry's inherited fds (its stdio), one per fd, with the fds' access modes.

    A host fd that is None or not open becomes /dev/null, as runtimes give a container without
    that stream; one on the console is /dev/console.  `owned`: the files own the fds (donated
    ones) and close them when released.
    """
    files = []
    for fd in host_fds:
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL) & (O_ACCMODE | O_APPEND)
        except (OSError, TypeError):
            null = AttrInode(_FS, S_IFCHR | 0o666, rdev=NULL)
            files.append(open_device(None, internal_location(_MOUNT, b"/dev/null", null), O_RDWR, NULL))
            continue
        if not owned and _on_console(fd):
            files.append(HostFile(internal_location(_MOUNT, CONSOLE_PATH, _console), flags, fd))
            continue
        files.append(_host_file(fd, flags, owned))
    return files
