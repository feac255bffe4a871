"""A process's stdio between containerd's FIFOs and the sandbox.

The sandbox gets pipes (or, for a terminal, a pty's slave side); one copier
thread per stream moves bytes between them and the FIFO paths containerd
named, as runc's shim does with goroutines.  Opening a FIFO blocks until
containerd's side is open, which is why copying runs in threads.  An empty
path means no stream: the sandbox gets /dev/null.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import termios
import threading

import structlog

from ringfence.oci.console import typed_signals

log = structlog.get_logger("ringfence.shim.stdio")

CHUNK = 64 * 1024


class ProcessIO:
    """The copiers of one process and the fds its sandbox side needs.  With a terminal,
    `on_signal(sig)` is called for each signal character typed at it (see typed_signals;
    from the stdin copier's thread) and for a resize: the pty signals nobody in the sandbox
    itself."""

    def __init__(self, stdin: str, stdout: str, stderr: str, terminal: bool, on_signal=None):
        self.terminal = terminal
        self.on_signal = on_signal
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stdin_w: int | None = None  # where stdin's copier writes (pipe or pty master)
        self._master: int | None = None
        self._sandbox: list[int] = []  # fds handed to the sandbox, closed once it has them
        if terminal:
            self._master, slave = os.openpty()
            self._sandbox = [slave]
            self.sandbox_fds = (slave, slave, slave)
            master_out = os.dup(self._master)
            self._copy_out(master_out, stdout)
            if stdin:
                self._stdin_w = os.dup(self._master)
                self._copy_in(stdin)
            return
        fds = []
        if stdin:
            r, self._stdin_w = os.pipe2(os.O_CLOEXEC)
            self._copy_in(stdin)
            fds.append(r)
        else:
            fds.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        for path in (stdout, stderr):
            if path:
                r, w = os.pipe2(os.O_CLOEXEC)
                self._copy_out(r, path)
                fds.append(w)
            else:
                fds.append(os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC))
        self._sandbox = fds
        self.sandbox_fds = tuple(fds)

    def handed_over(self) -> None:
        """The sandbox holds its copies of the fds: close ours, so the copiers
        see end-of-file when the sandbox exits."""
        for fd in self._sandbox:
            os.close(fd)
        self._sandbox = []

    def close_stdin(self) -> None:
        """End the process's stdin (Task.CloseIO)."""
        with self._lock:
            if self._stdin_w is not None:
                if self.terminal:
                    os.write(self._stdin_w, termios.tcgetattr(self._stdin_w)[6][termios.VEOF])
                os.close(self._stdin_w)
                self._stdin_w = None

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's window size (Task.ResizePty); a change is SIGWINCH for its
        foreground group, told through `on_signal` (the pty itself signals nobody in the sandbox)."""
        if self._master is None:
            raise ValueError("the process has no terminal")
        size = struct.pack("HHHH", height, width, 0, 0)
        old = fcntl.ioctl(self._master, termios.TIOCGWINSZ, bytes(len(size)))
        fcntl.ioctl(self._master, termios.TIOCSWINSZ, size)
        if old != size and self.on_signal is not None:
            self.on_signal(signal.SIGWINCH)

    def drain(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds in all) until the output copiers are done."""
        for t in self._threads:
            if t.name.startswith("out"):
                t.join(timeout)

    def close(self) -> None:
        """Release everything (copiers still blocked on a FIFO end with the shim)."""
        self.handed_over()
        self.close_stdin()
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def _copy_out(self, src: int, path: str) -> None:
        t = threading.Thread(target=self._out, args=(src, path), name=f"out:{path}", daemon=True)
        self._threads.append(t)
        t.start()

    def _copy_in(self, path: str) -> None:
        t = threading.Thread(target=self._in, args=(path,), name=f"in:{path}", daemon=True)
        self._threads.append(t)
        t.start()

    @staticmethod
    def _out(src: int, path: str) -> None:
        """Sandbox → FIFO until the sandbox side closes (EIO on a pty master)."""
        dst = None
        try:
            dst = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            while True:
                try:
                    data = os.read(src, CHUNK)
                except OSError as err:
                    if err.errno == errno.EIO:
                        break
                    raise
                if not data:
                    break
                view = memoryview(data)
                while view:
                    view = view[os.write(dst, view):]
        except OSError as err:
            if err.errno != errno.EPIPE:
                log.warning("copying output failed", path=path, error=str(err))
        finally:
            os.close(src)
            if dst is not None:
                os.close(dst)

    def _in(self, path: str) -> None:
        """FIFO → sandbox until containerd closes its end or CloseIO."""
        try:
            src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            log.warning("opening stdin failed", path=path, error=str(err))
            return
        try:
            while data := os.read(src, CHUNK):
                with self._lock:
                    if self._stdin_w is None:
                        return
                    signals = typed_signals(self._master, data) if self.terminal and self.on_signal else []
                    os.write(self._stdin_w, data)
                for sig in signals:
                    self.on_signal(sig)
        except OSError as err:
            if err.errno != errno.EPIPE:
                log.warning("copying input failed", path=path, error=str(err))
        finally:
            os.close(src)
            if not self.terminal:
                self.close_stdin()
