"""Terminals: a pty for the container, its master sent to a console socket
(runc's ``--console-socket``), or relayed to our own stdio (a foreground
``run``/``exec`` with a terminal); and the host process whose controlling
terminal that pty is, so that the signals its line discipline raises reach
the sandbox (Forwarder)."""
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

from ringfence.runtime.daemon import close_fds_except

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
    discipline echoes them and flushes the input, but signals no one in the sandbox: for a
    pty that no Forwarder holds (the containerd shim's), the relay asks the sentry to
    deliver them (its Signal's `foreground`).  A character quoted by VLNEXT counts too (a
    known difference)."""
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


# What the line discipline of a pty sends its foreground process group: signal characters
# typed (with ISIG), a new window size.  A hang-up signals the session's leader.
_FOREGROUND = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGWINCH)
_CAUGHT = (*_FOREGROUND, signal.SIGHUP)


class Forwarder:
    """A small host process (forked) that leads a session whose controlling terminal is a
    container's host pty, in its foreground: the kernel's line discipline, with the termios
    the sandbox set, decides what a typed ^C, ^\\ or ^Z raises (nothing in raw mode), and
    the forwarder passes it on to the foreground process group of that terminal in the
    sandbox, as it passes on SIGWINCH (the master was resized).  When the master closes
    (SIGHUP), the sandbox process the terminal was given to, its session's leader, gets
    SIGHUP and SIGCONT, and the forwarder exits.  It dies with its parent, which reaps it
    (`reaped`, `stop`)."""

    def __init__(self, slave: int, control_path: str, exec_id: str = ""):
        """Fork it on pty slave `slave` (the caller still closes its own copy), for the
        sandbox's process of exec `exec_id` (else init) reached through the sentry's control
        socket at `control_path`; returns once the pty is its controlling terminal."""
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        parent = os.getpid()
        self.pid: int | None = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.close(ready_r)
                try:
                    _lead_session(slave, parent, ready_w)
                except Exception as err:
                    os.write(ready_w, str(err).encode())
                    raise
                os.write(ready_w, b"r")
                os.close(ready_w)
                code = _forward(control_path, exec_id)
            finally:
                os._exit(code)
        os.close(ready_w)
        with open(ready_r, "rb") as r:
            ready = r.read()
        if ready != b"r":
            self.stop()
            raise OSError(errno.EIO, "the terminal's signal forwarder did not start: "
                          + (ready.decode(errors="replace") or "it died"))

    def reaped(self, pid: int) -> None:
        """The parent reaped `pid`: if it was the forwarder, it is gone."""
        if pid == self.pid:
            self.pid = None

    def stop(self) -> None:
        """End the forwarder (if it runs) and reap it."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.pid = None


def _lead_session(slave: int, parent: int, keep: int) -> None:
    """Make this process (the forwarder, `parent`'s child) the leader of a session whose
    controlling terminal is pty `slave`, in its foreground; it dies with `parent`, holds no fd
    but `keep` (stdio on /dev/null) and leaves the signals it forwards pending (sigwait)."""
    from ringfence.gofer._linux import PR_SET_PDEATHSIG, prctl

    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        raise OSError(errno.ESRCH, "its parent is gone")
    signal.pthread_sigmask(signal.SIG_BLOCK, _CAUGHT)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)  # our group, the session's only one, is its foreground
    close_fds_except({keep})
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _forward(control_path: str, exec_id: str) -> int:
    """The forwarder's loop (see Forwarder): pass the signals the terminal raises on to the
    sentry at `control_path`, until it hangs up; the forwarder's exit status."""
    from ringfence.sentry.control_client import ControlClient, ControlError

    client = ControlClient(lambda: connect_unix(control_path), timeout=5)

    def send(sig: int, foreground: bool) -> None:
        with contextlib.suppress(ControlError):
            client.signal(sig, exec_id=exec_id, foreground=foreground)

    while True:
        sig = signal.sigwait(_CAUGHT)
        if sig != signal.SIGHUP:
            send(sig, foreground=True)
            continue
        send(signal.SIGHUP, foreground=False)
        send(signal.SIGCONT, foreground=False)
        return 0


class Relay:
    """Copies our stdin to a pty master and the master to our stdout, for a
    foreground container with a terminal; our own terminal (if stdin is one)
    is raw meanwhile and its size follows ours (SIGWINCH)."""

    def __init__(self, master: int, stdin: int = 0, stdout: int = 1):
        self.master = master
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
        _write_all(self.master, data)
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
    """Write all of `data` to `fd` (non-blocking or not); stop quietly when the other side is
    gone (EPIPE; EIO on a pty master whose slave closed)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
        except OSError:
            return
