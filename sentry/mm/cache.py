"""Mapping caches: a file's pages in a host memory file while MAP_SHARED mappings of it exist.

As gVisor's page cache (its "memory file"): the sentry owns, per file with
shared mappings, a host memfd holding the file's bytes.  Every MAP_SHARED
mapping of the file, in every stub, maps that memfd (the platform passes it
in; the stub keeps no fd), so all processes and the sentry see the same
pages.  While the cache lives the file system reads and writes through it:
a write() shows in every mapping at once and a store through a mapping
shows in read() at once.  Files kept elsewhere (the gofer's host files) are
written through on write() and get the stores made through mappings written
back (`sync`) on msync, fsync, close, and when the last mapping goes; a
file kept in sentry memory (tmpfs, memfd) has the memfd as its storage while
mapped (`retire` hands the bytes back).

The mappings (Vmas) hold the cache; the file holds it only weakly: the cache
retires when the last mapping of it is gone, in whichever process.  It is
memory of the sentry's own, never a host file: the program gets no fd on it.
"""
from __future__ import annotations

import os
import weakref
from typing import Callable

from ..abi.errno import ENOMEM
from ..abi.mm import PROT_WRITE
from ..kernel.errors import SysError

_CHUNK = 1 << 20


class MappingCache:
    """The pages of one file: a memfd (`fd`) of `size` bytes, the Vmas mapping it (`users`).

    `writeback` is a host fd on the file opened for writing (-1: nothing to
    write back to); `retire` is called with the final bytes when the cache
    goes (files whose storage it was take them back).  `sealed`: the file
    refuses writes (memfd F_SEAL_WRITE), so no writable shared mapping.
    `dirty`: stores through a mapping may not be written back yet.
    """

    __slots__ = ("fd", "size", "users", "writeback", "retire", "sealed", "dirty", "__weakref__")

    def __init__(self, name: str, retire: Callable[[bytes], None] | None = None):
        self.fd = self.writeback = -1
        self.size = 0
        self.users: weakref.WeakSet = weakref.WeakSet()
        self.retire = retire
        self.sealed = self.dirty = False
        try:
            self.fd = os.memfd_create("ringfence-cache:" + name, os.MFD_CLOEXEC)
        except OSError:
            raise SysError(ENOMEM) from None  # out of fds or memory: as a mapping Linux cannot make

    def fill(self, source: int) -> None:
        """Copy the whole of host fd `source` in (a new cache of a host file)."""
        offset = 0
        while chunk := os.pread(source, _CHUNK, offset):
            self.pwrite(chunk, offset)
            offset += len(chunk)

    def set_writeback(self, fd: int) -> None:
        """Write back through (a duplicate of) host fd `fd`, open for writing on the file."""
        if self.writeback < 0:
            self.writeback = os.dup(fd)

    # -- the file's bytes ------------------------------------------------------------
    def pread(self, n: int, offset: int) -> bytes:
        """Up to `n` bytes at `offset` (none past the end)."""
        n = min(n, self.size - offset)
        if n <= 0:
            return b""
        if n <= _CHUNK:
            return os.pread(self.fd, n, offset)
        return b"".join(os.pread(self.fd, min(_CHUNK, n - done), offset + done) for done in range(0, n, _CHUNK))

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write `data` at `offset` (a gap reads as zeros)."""
        done = 0
        view = memoryview(data)
        while done < len(view):
            done += os.pwrite(self.fd, view[done:done + _CHUNK], offset + done)
        self.size = max(self.size, offset + done)
        return done

    def resize(self, size: int) -> None:
        """Truncate or zero-extend (mapped pages past the new end fault with SIGBUS)."""
        os.ftruncate(self.fd, size)
        self.size = size

    # -- mappings ----------------------------------------------------------------------
    def writably_mapped(self) -> bool:
        """Whether some shared mapping of the file may be written through now."""
        return any(v.prot & PROT_WRITE for v in self.users)

    def sync(self) -> None:
        """Write the stores made through mappings back to the file (all of it: no dirty-page tracking)."""
        if not self.dirty or self.writeback < 0:
            return
        for offset in range(0, self.size, _CHUNK):
            data = os.pread(self.fd, _CHUNK, offset)
            done = 0
            while done < len(data):
                done += os.pwrite(self.writeback, data[done:], offset + done)
        self.dirty = self.writably_mapped()

    def __del__(self):
        """The last mapping is gone: write back, hand the bytes back, free the memfd."""
        if self.fd < 0:
            return  # memfd_create failed
        try:
            self.sync()
        except OSError:
            pass  # the host file is gone or full: what the stores held is lost, as on a failed writeback
        if self.retire is not None:
            self.retire(self.pread(self.size, 0))
        os.close(self.fd)
        if self.writeback >= 0:
            os.close(self.writeback)
