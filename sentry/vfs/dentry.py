"""Dentries (names in the tree), mounts, mount namespaces and locations.

A `Location` (mount, dentry) names one place in the sandbox's tree, like
Linux's `struct path`.  Dentries cache the tree's names; all changes to the
tree go through `vfs.ops`, which keeps the cache coherent (file systems whose
names change by themselves, like proc, are not cached).
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

from ..abi.fs import S_IFDIR, ST_NODEV, ST_NOEXEC, ST_NOSUID, ST_RDONLY
from .inode import AttrInode, FileSystem, Inode


class Dentry:
    """A name bound to an inode, with its parent and the cached children looked up so far."""

    __slots__ = ("name", "parent", "inode", "children", "mounts", "dead")

    def __init__(self, name: bytes, parent: Dentry | None, inode: Inode):
        self.name = name
        self.parent = parent
        self.inode = inode
        self.children: dict[bytes, Dentry] = {}
        self.mounts = 0  # how many mounts sit on this dentry
        self.dead = False  # unlinked

    def child(self, name: bytes) -> Dentry:
        """The child `name` (not `.`/`..`), looked up through the inode on a cache miss."""
        d = self.children.get(name)
        if d is None:
            d = Dentry(name, self, self.inode.lookup(name))
            if self.inode.fs.cache_dentries:
                self.children[name] = d
        return d

    def add(self, name: bytes, inode: Inode) -> Dentry:
        """Record a child just created by the file system."""
        d = Dentry(name, self, inode)
        if self.inode.fs.cache_dentries:
            self.children[name] = d
        return d

    def drop(self, name: bytes) -> None:
        """Forget a child the file system just removed."""
        d = self.children.pop(name, None)
        if d is not None:
            d.dead = True

    def move(self, newparent: Dentry, newname: bytes) -> None:
        """Rebind this (cached) dentry after a rename."""
        self.parent.children.pop(self.name, None)
        newparent.drop(newname)
        self.parent, self.name = newparent, newname
        if newparent.inode.fs.cache_dentries:
            newparent.children[newname] = self

    def exchange(self, other: Dentry) -> None:
        """Swap the places of two (cached) dentries after RENAME_EXCHANGE."""
        self.parent.children[self.name], other.parent.children[other.name] = other, self
        self.parent, self.name, other.parent, other.name = other.parent, other.name, self.parent, self.name


_FLAG_NAMES = ((ST_NOSUID, "nosuid"), (ST_NODEV, "nodev"), (ST_NOEXEC, "noexec"))


class Mount:
    """A file system mounted at a location (or a namespace's root mount, or an internal one)."""

    __slots__ = ("id", "ns", "fs", "root", "parent", "mountpoint", "source", "flags", "data")

    def __init__(self, mid: int, ns: MountNamespace | None, fs: FileSystem, root: Inode, parent: Mount | None,
                 mountpoint: Dentry | None, source: str, flags: int, data: str):
        self.id = mid
        self.ns = ns
        self.fs = fs
        self.root = Dentry(b"/", None, root)
        self.parent = parent
        self.mountpoint = mountpoint
        self.source = source
        self.flags = flags  # ST_* bits
        self.data = data  # file-system options shown in /proc/mounts

    @property
    def readonly(self) -> bool:
        """Whether writes through this mount fail with EROFS."""
        return bool(self.flags & ST_RDONLY)

    def options(self) -> str:
        """The options column of /proc/mounts."""
        opts = ["ro" if self.readonly else "rw"]
        opts += [name for bit, name in _FLAG_NAMES if self.flags & bit]
        if self.data:
            opts.append(self.data)
        return ",".join(opts)


class Location(NamedTuple):
    """A place in the tree: a dentry as seen through a mount."""

    mount: Mount
    dentry: Dentry

    @property
    def inode(self) -> Inode:
        """The inode at this place."""
        return self.dentry.inode


class MountNamespace:
    """A tree of mounts: the root mount and what is mounted where."""

    def __init__(self, fs: FileSystem, root: Inode, source: str, flags: int = 0, data: str = ""):
        self._ids = itertools.count(1)
        self._covering: dict[Location, Mount] = {}
        self.root = Mount(next(self._ids), self, fs, root, None, None, source, flags, data)
        self.mounts = [self.root]

    def root_location(self) -> Location:
        """The namespace's root directory."""
        return Location(self.root, self.root.root)

    def mount(self, at: Location, fs: FileSystem, root: Inode, source: str, flags: int = 0,
              data: str = "") -> Mount:
        """Mount `root` of `fs` on `at`, covering what was there."""
        m = Mount(next(self._ids), self, fs, root, at.mount, at.dentry, source, flags, data)
        self._covering[at] = m
        at.dentry.mounts += 1
        self.mounts.append(m)
        return m

    def covering(self, at: Location) -> Location:
        """What a walk that reaches `at` sees: the root of the topmost mount there, else `at`."""
        while at.dentry.mounts:
            m = self._covering[at]
            at = Location(m, m.root)
        return at


def internal_mount(fs: FileSystem) -> Mount:
    """A mount in no namespace, for files that have no name in the tree (pipes, host stdio)."""
    return Mount(0, None, fs, AttrInode(fs, S_IFDIR | 0o755), None, None, fs.name, 0, "")


def internal_location(mount: Mount, name: bytes, inode: Inode) -> Location:
    """A nameless file's place: `name` (e.g. b"pipe:[7]") under internal mount `mount`, uncached."""
    return Location(mount, Dentry(name, mount.root, inode))
