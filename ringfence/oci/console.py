"""Terminals: a pty for the container, its master sent to a console socket
(runc's ``--console-socket``), or relayed to our own stdio (a foreground
``run``/``exec`` with a terminal)."""
from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import tty

from .state import StateError, connect_unix

# runc sends the master's file name with it: containerd/console opens /dev/ptmx.
MASTER_NAME = b"/dev/ptmx"
CHUNK = 64 * 1024


def open_pty(size: dict | None = None) -> tuple[int, int]:
    """(master, slave) of a new pty, both close-on-exec; `size`: an OCI
    ``consoleSize`` ({"height", "width"}) to give it."""
    master, slave = os.openpty()
    for fd in (master, slave):
        os.set_inheritable(fd, False)
    if size and size.get("height") and size.get("width"):
        set_size(master, int(size["height"]), int(size["width"]))
    return master, slave


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def copy_size(src: int, dst: int) -> None:
    """Give terminal `dst` the window size of terminal `src` (if it is one)."""
    with contextlib.suppress(OSError):
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))


def send_master(console_socket: str, master: int) -> None:
    """Send the pty master over the unix socket at `console_socket`, as runc
    does: one message, the master's name as data, the fd as SCM_RIGHTS."""
    try:
        sock = connect_unix(console_socket, timeout=10)
    except OSError as err:
        raise StateError(f"cannot connect to the console socket {console_socket}: {err.strerror}") from None
    with sock:
        try:
            sock.sendmsg([MASTER_NAME], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
        except OSError as err:
            raise StateError(f"sending the console to {console_socket}: {err.strerror}") from None


def typed_signals(master: int, data: bytes) -> list[int]:
    """The signals that `data`, typed at the pty of `master`, asks its foreground process
    group to get (ISIG: the VINTR, VQUIT and VSUSP characters).  The pty's own line
    discipline echoes them and flushes the input, but it signals nobody: the container's
    processes are the sandbox's, and the sentry delivers them (its Signal's `foreground`).
    A character quoted by VLNEXT counts too (a known difference)."""
    try:
        attrs = termios.tcgetattr(master)
    except termios.error:
        return []
    if not attrs[3] & termios.ISIG:
        return []
    cc = attrs[6]
    chars = {cc[index]: sig for index, sig in ((termios.VINTR, signal.SIGINT), (termios.VQUIT, signal.SIGQUIT),
                                               (termios.VSUSP, signal.SIGTSTP)) if cc[index] != b"\0"}
    return [chars[c] for c in (data[i:i + 1] for i in range(len(data))) if c in chars]


class Relay:
    """Copies our stdin to a pty master and the master to our stdout, for a
    foreground container with a terminal; our own terminal (if stdin is one)
    is raw meanwhile and its size follows ours (SIGWINCH).  `on_signal(sig)` is
    called for each signal character typed (see typed_signals)."""

    def __init__(self, master: int, stdin: int = 0, stdout: int = 1, on_signal=None):
        self.master = master
        self.on_signal = on_signal
        self.stdin: int | None = stdin
        self.stdout = stdout
        self._saved = None
        self._pending = b""  # read from stdin, not yet written to the master
        if os.isatty(stdin):
            copy_size(stdin, master)
            with contextlib.suppress(termios.error):
                self._saved = termios.tcgetattr(stdin)
                tty.setraw(stdin)
            signal.signal(signal.SIGWINCH, lambda *_: copy_size(stdin, master))
        os.set_blocking(master, False)

    def fds(self) -> list[int]:
        """The fds to poll for reading."""
        return [self.master] + ([self.stdin] if self.stdin is not None else [])

    def ready(self, fd: int) -> bool:
        """Move what `fd` has; False once the master has nothing more (the
        container's side is closed)."""
        if fd == self.master:
            try:
                data = os.read(self.master, CHUNK)
            except BlockingIOError:
                return True
            except OSError as err:
                if err.errno == errno.EIO:
                    return False
                raise
            if not data:
                return False
            _write_all(self.stdout, data)
            return True
        try:
            data = os.read(fd, CHUNK)
        except OSError:
            data = b""
        if not data:
            self.stdin = None  # stdin ended: the container's terminal stays open
            return True
        signals = typed_signals(self.master, data) if self.on_signal is not None else []
        _write_master(self.master, data)
        for sig in signals:
            self.on_signal(sig)
        return True

    def drain(self) -> None:
        """Copy what the master still holds to stdout."""
        while True:
            try:
                data = os.read(self.master, CHUNK)
            except OSError:
                return
            if not data:
                return
            _write_all(self.stdout, data)

    def restore(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.stdin if self.stdin is not None else 0, termios.TCSADRAIN, self._saved)
            self._saved = None
        signal.signal(signal.SIGWINCH, signal.SIG_DFL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])
        except BrokenPipeError:
            return


def _write_master(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
        except OSError:
            return
