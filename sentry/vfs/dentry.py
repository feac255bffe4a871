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

    __slots__ = ("name", "parent", "inode", "children", "mounts", "dead", "pinned", "linkable")

    def __init__(self, name: bytes, parent: Dentry | None, inode: Inode):
        self.name = name
        self.parent = parent
        self.inode = inode
        self.children: dict[bytes, Dentry] = {}
        self.mounts = 0  # how many mounts sit on this dentry
        self.dead = False  # unlinked
        # Kept in its parent's children even where the file system caches no names (proc, a
        # revalidating gofer tree): a mount point, an ancestor of one, or a mount point that
        # exists in the sentry's view only (see MountNamespace.mount).
        self.pinned = False
        self.linkable = False  # an O_TMPFILE file (without O_EXCL) that linkat may still name

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
        if newparent.inode.fs.cache_dentries or self.pinned:
            newparent.children[newname] = self

    def exchange(self, other: Dentry) -> None:
        """Swap the places of two (cached) dentries after RENAME_EXCHANGE."""
        self.parent.children.pop(self.name, None)
        other.parent.children.pop(other.name, None)
        self.parent, self.name, other.parent, other.name = other.parent, other.name, self.parent, self.name
        for d in (self, other):
            if d.parent.inode.fs.cache_dentries or d.pinned:
                d.parent.children[d.name] = d

    def pin(self, top: Dentry) -> None:
        """Keep this dentry and its ancestors up to `top` in their parents' children."""
        d = self
        while d is not top and d.parent is not None:
            d.pinned = True
            d.parent.children[d.name] = d
            d = d.parent


_FLAG_NAMES = ((ST_NOSUID, "nosuid"), (ST_NODEV, "nodev"), (ST_NOEXEC, "noexec"))


class Mount:
    """A file system mounted at a location (or a namespace's root mount, or an internal one)."""

    __slots__ = ("id", "ns", "fs", "root", "parent", "mountpoint", "source", "flags", "data")

    def __init__(self, mid: int, ns: MountNamespace | None, fs: FileSystem, root: Inode, parent: Mount | None,
                 mountpoint: Dentry | None, source: str, flags: int, data: str, root_dentry: Dentry | None = None):
        self.id = mid
        self.ns = ns
        self.fs = fs
        # A bind mount of a place in a tree shares that place's dentry (and the cache below it).
        self.root = Dentry(b"/", None, root) if root_dentry is None else root_dentry
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
        opts = self.mount_options()
        if self.data:
            opts += "," + self.data
        return opts

    def mount_options(self) -> str:
        """The per-mount options of /proc/PID/mountinfo (field 6)."""
        return ",".join(["ro" if self.readonly else "rw"] + [name for bit, name in _FLAG_NAMES if self.flags & bit])

    def root_path(self) -> bytes:
        """The path of the mount's root within its file system (mountinfo field 4): "/" unless it binds
        a place inside a tree (linux.readonlyPaths)."""
        parts = []
        d = self.root
        while d.parent is not None:
            parts.append(d.name)
            d = d.parent
        return b"/" + b"/".join(reversed(parts))


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
        self._on: dict[Dentry, list[Mount]] = {}  # the mounts on a dentry, bottom first
        self.root = Mount(next(self._ids), self, fs, root, None, None, source, flags, data)
        self.mounts = [self.root]

    def root_location(self) -> Location:
        """The namespace's root directory."""
        return Location(self.root, self.root.root)

    def mount(self, at: Location, fs: FileSystem, root: Inode, source: str, flags: int = 0,
              data: str = "", root_dentry: Dentry | None = None) -> Mount:
        """Mount `root` of `fs` on `at`, covering what was there (`root_dentry`: bind that dentry,
        whose inode `root` is, rather than a fresh tree).  `at` and its ancestors stay cached."""
        m = Mount(next(self._ids), self, fs, root, at.mount, at.dentry, source, flags, data, root_dentry)
        self._on.setdefault(at.dentry, []).append(m)
        at.dentry.mounts += 1
        at.dentry.pin(at.mount.root)
        self.mounts.append(m)
        return m

    def covering(self, at: Location) -> Location:
        """What a walk that reaches `at` sees: the root of the topmost mount there, else `at`.

        Mounts sit on dentries, so a mount on a place also shows through a bind of a directory
        above it (as the recursive binds of linux.readonlyPaths carry their submounts)."""
        while at.dentry.mounts:
            top = self._on[at.dentry][-1]
            if top is at.mount:  # the top is a bind of this very dentry, reached already
                break
            at = Location(top, top.root)
        return at


def internal_mount(fs: FileSystem) -> Mount:
    """A mount in no namespace, for files that have no name in the tree (pipes, host stdio)."""
    return Mount(0, None, fs, AttrInode(fs, S_IFDIR | 0o755), None, None, fs.name, 0, "")


def internal_location(mount: Mount, name: bytes, inode: Inode) -> Location:
    """A nameless file's place: `name` (e.g. b"pipe:[7]") under internal mount `mount`, uncached."""
    return Location(mount, Dentry(name, mount.root, inode))
