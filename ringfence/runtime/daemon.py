"""What the runtime's forked processes (shim, supervisor, exec waiter, sentry) do as
host processes: leave their caller's session, stdio and fds, reap children."""
from __future__ import annotations

import os
from typing import Iterator

from ringfence import log as logs


def detach() -> None:
    """Start a session of our own with stdin, stdout and stderr on /dev/null
    (a caller reading our output to EOF must not wait for us)."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def close_fds_except(keep) -> None:
    """Close every open fd not in `keep` (what a forked child must not hold of its parent's)
    but the log's: its stream would write to (and, once replaced, close) whatever a later
    open gets that number, a pty's master say."""
    keep = {*keep, logs.current_fd()}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # (the listing's own fd, already gone)


def exited_children() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status
