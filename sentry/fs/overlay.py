"""overlay: a writable tmpfs upper layer on a read-only lower layer (the gofer's tree).

As Linux's overlayfs: a name is looked up in the upper directory, then (unless
the upper entry is a non-directory or an opaque directory) in the lower one;
listings merge with the upper winning; a removed lower name is hidden by a
whiteout (a 0:0 character device in the upper layer); a directory created
where a lower one was removed is opaque.  Anything changed is first copied
up: its parents as directories, a regular file with its whole content.
Renaming a directory that has a lower part fails with EXDEV, as overlayfs
without redirect_dir does (mv then copies).
"""
from __future__ import annotations

from ..abi.errno import ENOENT, ENOTEMPTY, EXDEV
from ..abi.fs import DT_SHIFT, O_ACCMODE, O_RDONLY, OVERLAYFS_SUPER_MAGIC, S_IALLUGO, S_IFCHR, S_IFDIR, \
    S_IFLNK, S_IFREG
from ..kernel.errors import SysError
from ..vfs.inode import Attr, FileSystem, Inode
from .tmpfs import TmpfsDir

_DT_CHR = S_IFCHR >> DT_SHIFT


class OverlayFS(FileSystem):
    """One overlay: `upper` (a tmpfs directory) over `lower` (a directory inode)."""

    name = "overlay"
    magic = OVERLAYFS_SUPER_MAGIC

    def __init__(self, upper: TmpfsDir, lower: Inode):
        super().__init__()
        self.root = OverlayInode(self, None, b"/", upper, lower)


def _child(directory: Inode | None, name: bytes) -> Inode | None:
    """`name` in a layer's directory, or None."""
    if directory is None:
        return None
    try:
        return directory.lookup(name)
    except SysError as err:
        if err.errno == ENOENT:
            return None
        raise


def _is_whiteout(inode: Inode) -> bool:
    return inode.kind == S_IFCHR and inode.rdev == 0


class OverlayInode(Inode):
    """A merged node: its upper inode (once copied up) and its lower inode (if the lower has it)."""

    __slots__ = ("parent", "name", "upper", "lower")

    def __init__(self, fs: OverlayFS, parent: OverlayInode | None, name: bytes, upper: Inode | None,
                 lower: Inode | None):
        super().__init__(fs, (upper if upper is not None else lower).kind)
        self.parent = parent
        self.name = name
        self.upper = upper
        self.lower = lower

    def _layer(self) -> Inode:
        return self.upper if self.upper is not None else self.lower

    def stat(self) -> Attr:
        """The top layer's attributes, on the overlay's device; merged directories have nlink 1."""
        a = self._layer().stat()
        nlink = 1 if self.kind == S_IFDIR and self.upper is not None and self.lower is not None else a.st_nlink
        return a._replace(st_dev=self.fs.dev, st_nlink=nlink)

    def setattr(self, mode=None, uid=None, gid=None, size=None, atime_ns=None, mtime_ns=None) -> None:
        """Copy up (a truncated file: only what is kept), then change the upper inode."""
        self.copy_up(size)
        self.upper.setattr(mode, uid, gid, size, atime_ns, mtime_ns)

    def open(self, t, loc, flags: int):
        """Open the top layer; a regular file opened for writing is copied up first."""
        if self.kind == S_IFREG and flags & O_ACCMODE != O_RDONLY:
            self.copy_up()
        return self._layer().open(t, loc, flags)

    def readlink(self, t) -> bytes:
        """The link's target."""
        return self._layer().readlink(t)

    def copy_up(self, limit: int | None = None) -> None:
        """Give this node an upper inode (copying at most `limit` bytes of a regular file)."""
        if self.upper is not None:
            return
        self.parent.copy_up()
        lower, pu, name = self.lower, self.parent.upper, self.name
        a = lower.stat()
        perm, uid, gid = a.st_mode & S_IALLUGO, a.st_uid, a.st_gid
        if self.kind == S_IFDIR:
            upper = pu.mkdir(name, perm, uid, gid)
        elif self.kind == S_IFREG:
            upper = pu.create(name, S_IFREG | perm, uid, gid)
            upper.replace(lower.contents(a.st_size if limit is None else min(limit, a.st_size)))
        elif self.kind == S_IFLNK:
            upper = pu.symlink(name, lower.readlink(None), uid, gid)
        else:
            upper = pu.mknod(name, a.st_mode, a.st_rdev, uid, gid)
        upper.setattr(mode=perm, atime_ns=a.st_atime_ns, mtime_ns=a.st_mtime_ns)
        self.upper = upper
        if self.kind != S_IFDIR:
            self.lower = None

    # Directory operations.
    def lookup(self, name: bytes) -> Inode:
        """Merge the layers' entries for `name`."""
        up = _child(self.upper, name)
        lo = None
        if up is None:
            lo = _child(self.lower, name)
            if lo is None:
                raise SysError(ENOENT)
        elif _is_whiteout(up):
            raise SysError(ENOENT)
        elif up.kind == S_IFDIR and not up.opaque:
            lo = _child(self.lower, name)
            if lo is not None and lo.kind != S_IFDIR:
                lo = None
        return OverlayInode(self.fs, self, name, up, lo)

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """Upper entries, then lower ones neither shadowed nor whited out."""
        entries: dict[bytes, tuple[int, int]] = {}
        hidden = set()
        if self.upper is not None:
            for name, ino, dtype in self.upper.readdir():
                if dtype == _DT_CHR and _is_whiteout(self.upper.lookup(name)):
                    hidden.add(name)
                else:
                    entries[name] = (ino, dtype)
        if self.lower is not None:
            for name, ino, dtype in self.lower.readdir():
                if name not in entries and name not in hidden:
                    entries[name] = (ino, dtype)
        return [(name, ino, dtype) for name, (ino, dtype) in entries.items()]

    def _lower_has(self, name: bytes) -> bool:
        return _child(self.lower, name) is not None

    def _make_room(self, name: bytes) -> bool:
        """Copy this directory up and remove a whiteout at `name`; whether there was one."""
        self.copy_up()
        old = _child(self.upper, name)
        if old is None:
            return False
        self.upper.unlink(name, old)
        return True

    def _whiteout(self, name: bytes) -> None:
        self.upper.mknod(name, S_IFCHR, 0, 0, 0)

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """A new regular file in the upper layer."""
        self._make_room(name)
        return OverlayInode(self.fs, self, name, self.upper.create(name, mode, uid, gid), None)

    def tmpfile(self, mode: int, uid: int, gid: int) -> Inode:
        """A new nameless regular file in the upper layer."""
        self.copy_up()
        return OverlayInode(self.fs, self, b"", self.upper.tmpfile(mode, uid, gid), None)

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """A new upper directory, opaque if it replaces a removed lower one."""
        opaque = self._make_room(name)
        upper = self.upper.mkdir(name, mode, uid, gid)
        upper.opaque = opaque
        return OverlayInode(self.fs, self, name, upper, None)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        """A new symlink in the upper layer."""
        self._make_room(name)
        return OverlayInode(self.fs, self, name, self.upper.symlink(name, target, uid, gid), None)

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        """A new FIFO, socket or device node in the upper layer."""
        self._make_room(name)
        return OverlayInode(self.fs, self, name, self.upper.mknod(name, mode, rdev, uid, gid), None)

    def link(self, name: bytes, inode: OverlayInode) -> None:
        """Copy `inode` up and link its upper inode."""
        inode.copy_up()
        self._make_room(name)
        self.upper.link(name, inode.upper)

    def unlink(self, name: bytes, inode: OverlayInode) -> None:
        """Remove the upper entry and hide the lower one."""
        self.copy_up()
        if inode.upper is not None:
            self.upper.unlink(name, inode.upper)
        if self._lower_has(name):
            self._whiteout(name)

    def rmdir(self, name: bytes, inode: OverlayInode) -> None:
        """Remove a directory that is empty in the merged view."""
        if inode.readdir():
            raise SysError(ENOTEMPTY)
        self.copy_up()
        if inode.upper is not None:
            inode._clear_whiteouts()
            self.upper.rmdir(name, inode.upper)
        if self._lower_has(name):
            self._whiteout(name)

    def _clear_whiteouts(self) -> None:
        for name, _, _ in self.upper.readdir():
            self.upper.unlink(name, self.upper.lookup(name))

    def rename(self, name: bytes, inode: OverlayInode, newdir: OverlayInode, newname: bytes,
               target: OverlayInode | None, exchange: bool) -> None:
        """Rename in the upper layer, whiting out the old name and making moved directories opaque
        where the lower layer has the new name."""
        for node in (inode, target if exchange else None):
            if node is not None and node.kind == S_IFDIR and node.lower is not None:
                raise SysError(EXDEV)
        if target is not None and not exchange and target.kind == S_IFDIR and target.readdir():
            raise SysError(ENOTEMPTY)
        inode.copy_up()
        self.copy_up()
        newdir.copy_up()
        if exchange:
            target.copy_up()
        elif target is not None and target.kind == S_IFDIR and target.upper is not None:
            target._clear_whiteouts()
        upper_target = target.upper if target is not None else None
        if target is None:
            newdir._make_room(newname)
        self.upper.rename(name, inode.upper, newdir.upper, newname, upper_target, exchange)
        if not exchange and self._lower_has(name):
            self._whiteout(name)
        inode.parent, inode.name = newdir, newname
        if exchange:
            target.parent, target.name = self, name
        for node in (inode, target if exchange else None):
            if node is not None and node.kind == S_IFDIR and node.parent._lower_has(node.name):
                node.upper.opaque = True
