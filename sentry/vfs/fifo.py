"""Named pipes (FIFOs): every open of a FIFO node shares one pipe, as Linux's fifo_open.

vfs.ops opens FIFO nodes of every file system here (an anonymous pipe reopened through
/proc/PID/fd opens its own pipe and never waits).  The pipe lives while some open of the node
does; its data goes with the last close.  A blocking open for reading waits until a writer
has opened, one for writing until a reader has (a Block that a signal interrupts: the waiting
end is then closed again); with O_NONBLOCK a reader does not wait and a writer fails with
ENXIO when there is no reader; O_RDWR never waits.  A reader opened with O_NONBLOCK while
there was no writer gets no POLLHUP until a writer has come.
"""
from __future__ import annotations

from ..abi.errno import EINVAL, ENXIO
from ..abi.fs import O_ACCMODE, O_NONBLOCK, O_WRONLY, POLLHUP
from ..fs.pipe import Pipe, PipeFile
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, WaitQueue
from . import fsnotify
from .dentry import Location

_fifos: dict[tuple[int, int], Fifo] = {}  # the open FIFOs, by the (st_dev, st_ino) of their node


class Fifo(Pipe):
    """The pipe of an open FIFO node, with the count of opens of each side ever made."""

    __slots__ = ("key", "r_counter", "w_counter", "partners")

    def __init__(self, key: tuple[int, int]):
        super().__init__()
        self.key = key
        self.r_counter = 0
        self.w_counter = 0
        self.partners = WaitQueue()  # opens waiting for the other side


class FifoFile(PipeFile):
    """An open of a FIFO node."""

    __slots__ = ("seen",)

    def __init__(self, loc: Location, flags: int, fifo: Fifo):
        super().__init__(loc, flags, fifo)
        fifo.r_counter += self.readable
        fifo.w_counter += self.writable
        fifo.partners.notify()
        # A non-blocking reader opened without a writer: the writers it has seen (no POLLHUP yet).
        self.seen = fifo.w_counter if self.readable and not fifo.writers else -1

    def release(self) -> None:
        """Close this end; the last close of the node drops the pipe and its data."""
        super().release()
        fifo = self.pipe
        if not fifo.readers and not fifo.writers:
            _fifos.pop(fifo.key, None)

    def readiness(self) -> int:
        """As a pipe's, without POLLHUP before a writer came."""
        ev = super().readiness()
        if self.seen == self.pipe.w_counter:
            ev &= ~POLLHUP
        return ev


def open_fifo(loc: Location, flags: int) -> FifoFile:
    """Open the FIFO node at `loc` (then see wait_partner)."""
    acc = flags & O_ACCMODE
    if acc == O_ACCMODE:
        raise SysError(EINVAL)  # neither side
    st = loc.inode.stat()
    key = (st.st_dev, st.st_ino)
    fifo = _fifos.get(key)
    if acc == O_WRONLY and flags & O_NONBLOCK and (fifo is None or not fifo.readers):
        raise SysError(ENXIO)
    if fifo is None:
        fifo = _fifos[key] = Fifo(key)
    return FifoFile(loc, flags, fifo)


def wait_partner(f: FifoFile):
    """`f`, reported opened, if its open is complete, else a Block until the other side opens: its
    retry returns `f` (reported then), its cancel (a signal) releases the end without reporting a
    close, as Linux's fifo_open waits before the open is reported."""
    fifo = f.pipe
    done = f.readable == f.writable or f.flags & O_NONBLOCK or (fifo.writers if f.readable else fifo.readers)
    start = None if done else fifo.w_counter if f.readable else fifo.r_counter

    def partner():
        if start == (fifo.w_counter if f.readable else fifo.r_counter):
            return Block(queues=(fifo.partners,), retry=partner, cancel=f.release)
        fsnotify.opened(f)
        return f

    return partner()
