"""The gofer-backed file system: host files served by the gofer, read-only in this version.

A node's attributes are taken at walk time and cached, as are its children
(negative ones too), listing and link target: the served tree does not change
under the sandbox.  Gofer handles are a bounded resource (each is an fd in the
gofer): at most MAX_HANDLES nodes hold one, the least recently used give theirs
back, and a node without a handle walks again from its parent when it needs
one.  A regular file's data is read through a host fd the gofer donates,
opened on the first read of each File.
"""
from __future__ import annotations

import os
from collections import OrderedDict

from ..abi.errno import ENOENT, ENXIO, EROFS
from ..abi.fs import O_ACCMODE, O_RDONLY, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG, V9FS_MAGIC
from ..kernel.errors import SysError
from ..vfs.device import open_device
from ..vfs.file import DirFile, File
from ..vfs.inode import Attr, FileSystem, Inode

_CHUNK = 1 << 20
MAX_HANDLES = 512


def _pread(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset`, read in bounded chunks (no n-sized buffer for short files)."""
    if n <= _CHUNK:
        return os.pread(fd, n, offset)
    parts = []
    while n > 0:
        part = os.pread(fd, min(n, _CHUNK), offset)
        if not part:
            break
        parts.append(part)
        n -= len(part)
        offset += len(part)
    return b"".join(parts)


class GoferFS(FileSystem):
    """The tree a gofer serves."""

    name = "9p"
    magic = V9FS_MAGIC

    def __init__(self, client, max_handles: int = MAX_HANDLES):
        super().__init__()
        self.client = client
        self.max_handles = max_handles
        self._lru: OrderedDict[GoferInode, None] = OrderedDict()  # nodes holding a handle, root excepted

    def attach(self) -> GoferInode:
        """The root node (its handle is never given back)."""
        handle, st = self.client.attach()
        return GoferInode(self, None, b"", handle, st)

    def used(self, node: GoferInode) -> None:
        """`node` holds a handle and has just used it: give back the least recently used beyond the cap."""
        lru = self._lru
        lru[node] = None
        lru.move_to_end(node)
        while len(lru) > self.max_handles:
            old, _ = lru.popitem(last=False)
            handle, old._handle = old._handle, -1
            self.client.close(handle)


class GoferInode(Inode):
    """A node of the served tree, with the attributes it had when walked to (on the sandbox's device)."""

    __slots__ = ("attr", "parent", "name", "_handle", "_children", "_entries", "_target")

    def __init__(self, fs: GoferFS, parent: GoferInode | None, name: bytes, handle: int, st):
        super().__init__(fs, st.st_mode & S_IFMT)
        self.attr = Attr._make(st)._replace(st_dev=fs.dev)
        self.parent = parent
        self.name = name
        self._handle = handle
        self._children: dict[bytes, GoferInode | None] = {}
        self._entries: list[tuple[bytes, int, int]] | None = None
        self._target: bytes | None = None

    def stat(self) -> Attr:
        """The attributes as walked."""
        return self.attr

    def handle(self) -> int:
        """A gofer handle on this node, walked to again from the parent if it was given back."""
        if self.parent is None:
            return self._handle
        if self._handle < 0:
            self._handle = self.fs.client.walk(self.parent.handle(), self.name)[0]
        self.fs.used(self)
        return self._handle

    def lookup(self, name: bytes) -> Inode:
        """The child `name`, walked once and then cached."""
        try:
            child = self._children[name]
        except KeyError:
            try:
                handle, st = self.fs.client.walk(self.handle(), name)
                child = GoferInode(self.fs, self, name, handle, st)
                self.fs.used(child)
            except OSError as err:
                if err.errno != ENOENT:
                    raise SysError(err.errno) from None
                child = None
            self._children[name] = child
        if child is None:
            raise SysError(ENOENT)
        return child

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """The directory's entries, listed once."""
        if self._entries is None:
            self._entries = [(d.name, d.ino, d.type) for d in self.fs.client.getdents(self.handle())]
        return self._entries

    def readlink(self, t) -> bytes:
        """The link target, read once."""
        if self._target is None:
            self._target = self.fs.client.readlink(self.handle())
        return self._target

    def open(self, t, loc, flags: int):
        """Regular files read-only, directories, and character devices (through the registry)."""
        kind = self.kind
        if kind == S_IFREG:
            if flags & O_ACCMODE != O_RDONLY:
                raise SysError(EROFS)
            return GoferFile(loc, flags, self)
        if kind == S_IFDIR:
            return DirFile(loc, flags)
        if kind == S_IFCHR:
            return open_device(t, loc, flags, self.attr.st_rdev)
        raise SysError(ENXIO)

    def contents(self, limit: int) -> bytes:
        """The first `limit` bytes of the file (overlay copy-up)."""
        fd = self.fs.client.open(self.handle(), O_RDONLY)
        try:
            return _pread(fd, limit, 0)
        finally:
            os.close(fd)


class GoferFile(File):
    """An open regular file of the served tree; its host fd is opened on the first read."""

    __slots__ = ("node", "_fd")

    def __init__(self, loc, flags: int, node: GoferInode):
        super().__init__(loc, flags)
        self.node = node
        self._fd = -1

    def size(self) -> int:
        """Size as walked."""
        return self.node.attr.st_size

    def pread(self, n: int, offset: int) -> bytes:
        """Read through the donated host fd."""
        fd = self._fd
        if fd < 0:
            fd = self._fd = self.node.fs.client.open(self.node.handle(), O_RDONLY)
        return _pread(fd, n, offset)

    def release(self) -> None:
        """Close the host fd."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
