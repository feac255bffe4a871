"""Path walk: resolving a task's path names in the sandbox's own tree.

One walker serves every syscall: components are looked up through dentries,
mounts are crossed, `..` never climbs above the task's root (chroot), and
symlinks are followed in the sandbox's namespace (absolute targets start at
the task's root), at most MAXSYMLINKS per walk (ELOOP).  openat2's RESOLVE_*
flags restrict a walk: RESOLVE_BENEATH and RESOLVE_IN_ROOT make the start
directory its root (escaping it is EXDEV, or clamped for IN_ROOT), the others
refuse symlinks, magic links (/proc/PID/fd/N...) or mount crossings.
"""
from __future__ import annotations

from ..abi.errno import EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EXDEV
from ..abi.fs import (AT_FDCWD, MAXSYMLINKS, NAME_MAX, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
                      RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV, S_IFDIR, S_IFLNK, X_OK)
from ..kernel.errors import SysError
from .dentry import Location
from .perm import may_access


class Walker:
    """Resolves path names for task `t`; one Walker per syscall (it counts the links followed).

    Without a task (at boot) it walks as root in file-system context `fs`.  `resolve`: openat2's
    RESOLVE_* flags (RESOLVE_CACHED aside, which the caller handles).
    """

    __slots__ = ("t", "fs", "creds", "root", "links", "rflags", "mount")

    def __init__(self, t, fs=None, resolve: int = 0):
        self.t = t
        self.fs = t.fs if fs is None else fs
        self.creds = t.creds if t is not None else None
        self.root = self.fs.root
        self.links = 0
        self.rflags = resolve
        self.mount = None  # the mount the walk started on (RESOLVE_NO_XDEV keeps it there)

    def start(self, dirfd: int, path: bytes) -> Location:
        """Where `path` starts: the root for absolute paths, else the cwd or directory `dirfd`
        (which is also the root of a RESOLVE_BENEATH or RESOLVE_IN_ROOT walk)."""
        scoped = self.rflags & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)
        if path[:1] == b"/" and not scoped:
            loc = self.root
        elif dirfd == AT_FDCWD:
            loc = self.fs.cwd
        else:
            loc = self.t.fdtable.get(dirfd).loc
            if path and loc.inode.kind != S_IFDIR:
                raise SysError(ENOTDIR)
        if scoped:
            self.root = loc
            if path[:1] == b"/" and self.rflags & RESOLVE_BENEATH:
                raise SysError(EXDEV)
        self.mount = loc.mount
        return loc

    def _onto(self, loc: Location) -> Location:
        """`loc`, which the walk moves to across a mount, a `..` or a link; EXDEV if that leaves
        the walk's mount under RESOLVE_NO_XDEV."""
        if self.rflags & RESOLVE_NO_XDEV and loc.mount is not self.mount:
            raise SysError(EXDEV)
        return loc

    def resolve(self, dirfd: int, path: bytes, follow: bool = True, empty_ok: bool = False) -> Location:
        """The location `path` names (AT_EMPTY_PATH semantics when `empty_ok`)."""
        if not path:
            if not empty_ok:
                raise SysError(ENOENT)
            return self.start(dirfd, path)
        return self.walk(self.start(dirfd, path), path, follow)

    def resolve_parent(self, dirfd: int, path: bytes) -> tuple[Location, bytes, bool]:
        """(directory, last component, trailing slash) for creating or removing `path`.

        The last component may be b"." or b".." (also b"." for "/"): callers reject those.
        """
        if not path:
            raise SysError(ENOENT)
        return self.walk_parent(self.start(dirfd, path), path)

    def walk(self, loc: Location, path: bytes, follow: bool) -> Location:
        """Resolve `path` from `loc`; a final symlink is followed if `follow` or a slash trails."""
        parent, name, slash = self.walk_parent(loc, path)
        return self.last(parent, name, follow or slash, slash)

    def walk_parent(self, loc: Location, path: bytes) -> tuple[Location, bytes, bool]:
        """Walk every component of `path` but the last; see resolve_parent."""
        names = [c for c in path.split(b"/") if c]
        if not names:
            return loc, b".", True
        for name in names[:-1]:
            loc = self.last(loc, name, True, True)
        return loc, names[-1], path[-1:] == b"/"

    def last(self, parent: Location, name: bytes, follow: bool, must_dir: bool) -> Location:
        """Step from directory `parent` to `name`, following a symlink there if `follow`."""
        loc = self.step(parent, name)
        if follow and loc.dentry.inode.kind == S_IFLNK:
            loc = self.follow(parent, loc)
        if must_dir and loc.dentry.inode.kind != S_IFDIR:
            raise SysError(ENOTDIR)
        return loc

    def step(self, parent: Location, name: bytes) -> Location:
        """One component, without following a symlink: `.`, `..` (bounded by the root), or a child."""
        inode = parent.dentry.inode
        if inode.kind != S_IFDIR:
            raise SysError(ENOTDIR)
        creds = self.creds
        if creds is not None and creds.fsuid and not may_access(creds, inode.stat(), X_OK):
            raise SysError(EACCES)
        if name == b".":
            return parent
        if name == b"..":
            return self._onto(self.up(parent))
        if len(name) > NAME_MAX:
            raise SysError(ENAMETOOLONG)
        child = parent.dentry.child(name)
        if child.mounts:
            return self._onto(parent.mount.ns.covering(Location(parent.mount, child)))
        return Location(parent.mount, child)

    def up(self, loc: Location) -> Location:
        """The parent directory of `loc`, crossing mounts, never above the task's root (EXDEV
        there for a RESOLVE_BENEATH walk)."""
        mount, dentry = loc
        while True:
            if mount is self.root.mount and dentry is self.root.dentry:
                if self.rflags & RESOLVE_BENEATH:
                    raise SysError(EXDEV)
                return self.root
            if dentry is not mount.root:
                return Location(mount, dentry.parent)
            if mount.parent is None:
                return Location(mount, dentry)
            mount, dentry = mount.parent, mount.mountpoint

    def follow(self, parent: Location, link: Location) -> Location:
        """Where symlink `link` (found in `parent`) leads."""
        target = self.read_link(link)
        if isinstance(target, Location):
            return target
        return self.walk(self.base(parent, target), target, True)

    def read_link(self, link: Location):
        """The target of symlink `link`, counted against MAXSYMLINKS: a path or a Location (a magic
        link's, which RESOLVE_NO_MAGICLINKS refuses with ELOOP, scoped walks with EXDEV)."""
        self.links += 1
        if self.links > MAXSYMLINKS or self.rflags & RESOLVE_NO_SYMLINKS:
            raise SysError(ELOOP)
        target = link.dentry.inode.get_link(self.t)
        if not target:
            raise SysError(ENOENT)
        if isinstance(target, Location) and self.rflags:
            if self.rflags & RESOLVE_NO_MAGICLINKS:
                raise SysError(ELOOP)
            if self.rflags & (RESOLVE_BENEATH | RESOLVE_IN_ROOT):
                raise SysError(EXDEV)
            return self._onto(target)
        return target

    def base(self, parent: Location, target: bytes) -> Location:
        """Where a link's path `target` starts: the root if absolute (EXDEV for a RESOLVE_BENEATH
        walk), else the link's directory."""
        if target[:1] != b"/":
            return parent
        if self.rflags & RESOLVE_BENEATH:
            raise SysError(EXDEV)
        return self._onto(self.root)


def path_of(loc: Location, root: Location) -> bytes:
    """The path of `loc` as seen from `root`, as Linux's d_path prints it.

    Files without a name in the tree give their internal name (e.g. b"pipe:[7]");
    places outside `root` are prefixed "(unreachable)"; unlinked ones end " (deleted)".
    """
    mount, dentry = loc
    if mount.ns is None:
        return dentry.name
    parts = []
    reachable = True
    while not (mount is root.mount and dentry is root.dentry):
        if dentry is mount.root:
            if mount.parent is None:
                reachable = False
                break
            mount, dentry = mount.parent, mount.mountpoint
            continue
        parts.append(dentry.name)
        dentry = dentry.parent
    path = b"/" + b"/".join(reversed(parts))
    if not reachable:
        path = b"(unreachable)" + path
    if loc.dentry.dead:
        path += b" (deleted)"
    return path

