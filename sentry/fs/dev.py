"""/dev: the sentry's own devices (null, zero, full, random, urandom; tty and ptmx, see pty.py)
and the devfs tree.

Device nodes open through the device registry wherever they are (devfs,
tmpfs, the gofer's tree), so a host device node never reaches the host.
"""
from __future__ import annotations

import os

from ..abi.errno import ENOSPC
from ..abi.fs import S_IFCHR, makedev
from ..kernel.errors import SysError
from ..vfs.device import register
from ..vfs.file import File
from .devpts import PTMX
from .pty import CTTY  # importing pty registers the terminal devices
from .tmpfs import TmpfsDir, TmpfsFS

_READ_MAX = 1 << 20  # longest single read from an endless device


def _empty(n: int) -> bytes:
    return b""


def _zeros(n: int) -> bytes:
    return bytes(min(n, _READ_MAX))


def _random(n: int) -> bytes:
    return os.urandom(min(n, _READ_MAX))


def _discard(data: bytes) -> int:
    return len(data)


def _full(data: bytes) -> int:
    raise SysError(ENOSPC)


class DeviceFile(File):
    """An open memory device: reads and writes are functions of the device only."""

    __slots__ = ("_source", "_sink")

    def __init__(self, loc, flags: int, source, sink):
        super().__init__(loc, flags)
        self._source = source
        self._sink = sink

    def pread(self, n: int, offset: int) -> bytes:
        """What the device produces."""
        return self._source(n)

    def pwrite(self, data: bytes, offset: int) -> int:
        """What the device does with written bytes."""
        return self._sink(data)


# name: (major, minor, source, sink)
_DEVICES = {
    b"null": (1, 3, _empty, _discard),
    b"zero": (1, 5, _zeros, _discard),
    b"full": (1, 7, _zeros, _full),
    b"random": (1, 8, _random, _discard),
    b"urandom": (1, 9, _random, _discard),
}
NULL = makedev(1, 3)  # rdev of /dev/null
_LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0", b"stdout": b"/proc/self/fd/1",
          b"stderr": b"/proc/self/fd/2"}


def _opener(source, sink):
    return lambda t, loc, flags: DeviceFile(loc, flags, source, sink)


for _major, _minor, _source, _sink in _DEVICES.values():
    register(makedev(_major, _minor), _opener(_source, _sink))


def build_devfs() -> tuple[TmpfsFS, TmpfsDir]:
    """A tmpfs holding the device nodes, the fd/stdio links, empty pts/ (for a devpts) and
    shm/ (a terminal adds the console: fs/host.py)."""
    fs = TmpfsFS()
    root = fs.new_root(0o755)
    for name, (major, minor, _, _) in _DEVICES.items():
        root.mknod(name, S_IFCHR | 0o666, makedev(major, minor), 0, 0)
    root.mknod(b"tty", S_IFCHR | 0o666, CTTY, 0, 0)
    root.mknod(b"ptmx", S_IFCHR | 0o666, PTMX, 0, 0)
    for name, target in _LINKS.items():
        root.symlink(name, target, 0, 0)
    root.mkdir(b"pts", 0o755, 0, 0)
    root.mkdir(b"shm", 0o1777, 0, 0)
    return fs, root
