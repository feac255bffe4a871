"""fsnotify: where the VFS reports file events to watchers (inotify), as Linux's fsnotify.

The VFS calls the functions below where things happen: vfs.ops for names, attributes and
opens, File.unref for closes, the read/write syscalls for accesses and modifications.  Each
hands the event to the marks (watches) on the inode concerned and, for the events a directory
hears about its children (IN_ON_CHILD), to the marks on its parent directory with the child's
name, parent first.  While no mark exists every call returns at once.

Marks sit on the sentry's inodes (on their identity(), which a file's hard links share), so
every change made through the sandbox's VFS is seen, whichever file system holds the file;
changes the host makes behind its back (in a shared bind mount) are not.  An inode whose last
name goes is gone at once (IN_DELETE_SELF, then IN_IGNORED for its marks), or at the last
close of its open files.
"""
from __future__ import annotations

import itertools

from ..abi.fs import O_PATH, S_IFDIR
from ..abi.inotify import (IN_ACCESS, IN_ATTRIB, IN_CLOSE_NOWRITE, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE,
                           IN_DELETE_SELF, IN_EXCL_UNLINK, IN_ISDIR, IN_MODIFY, IN_MOVE_SELF, IN_MOVED_FROM,
                           IN_MOVED_TO, IN_ON_CHILD, IN_OPEN)
from ..kernel.errors import SysError
from .dentry import Dentry
from .inode import Inode


class Mark:
    """A watch on the file `key` (an Inode.identity()) for the events in `mask`, delivered to
    `group`, which implements deliver(mark, mask, cookie, name) and dropped(mark) (the mark is
    gone: IN_IGNORED)."""

    __slots__ = ("key", "group", "wd", "mask")

    def __init__(self, key: object, group, wd: int, mask: int):
        self.key, self.group, self.wd, self.mask = key, group, wd, mask


_marks: dict[object, list[Mark]] = {}  # by Inode.identity()
_opens: dict[object, int] = {}  # files opened through the VFS and still open, by Inode.identity()
_doomed: set[object] = set()  # watched files whose last name went while they were open
_cookies = itertools.count()


def add_mark(mark: Mark) -> None:
    """Start delivering the events of `mark.key`'s file to `mark`."""
    _marks.setdefault(mark.key, []).append(mark)


def remove_mark(mark: Mark) -> None:
    """Stop delivering events to `mark` (its group queues IN_IGNORED itself)."""
    marks = _marks.get(mark.key)
    if marks and mark in marks:
        marks.remove(mark)
        if not marks:
            del _marks[mark.key]


def _send(inode: Inode, mask: int, cookie: int = 0, name: bytes = b"", parent_of: Dentry | None = None) -> None:
    """Deliver to the marks on `inode` that want `mask` (those with IN_EXCL_UNLINK skip events
    about `parent_of`, a child, once it is unlinked)."""
    for mark in list(_marks.get(inode.identity(), ())):
        if mark.mask & mask and not (parent_of is not None and parent_of.dead and mark.mask & IN_EXCL_UNLINK):
            mark.group.deliver(mark, mask, cookie, name)


def _isdir(inode: Inode) -> int:
    return IN_ISDIR if inode.kind == S_IFDIR else 0


def _marked(inode: Inode) -> bool:
    return inode.identity() in _marks


def event(dentry: Dentry, mask: int) -> None:
    """Something happened to the file at `dentry` (`mask`: one IN_* event): its parent's marks
    hear of it with its name if it is an IN_ON_CHILD event, then its own marks."""
    if not _marks:
        return
    inode = dentry.inode
    mask |= _isdir(inode)
    parent = dentry.parent
    if mask & IN_ON_CHILD and parent is not None and _marked(parent.inode):
        _send(parent.inode, mask, 0, dentry.name, dentry)
    if _marked(inode):
        _send(inode, mask)


def opened(file) -> None:
    """`file` was opened (O_PATH ones too, which report nothing)."""
    dentry = file.loc.dentry
    key = dentry.inode.identity()
    _opens[key] = _opens.get(key, 0) + 1
    if _marks and not file.flags & O_PATH:
        event(dentry, IN_OPEN)


def closed(file) -> None:
    """The last reference to `file` is going (before the file system releases it)."""
    dentry = file.loc.dentry
    key = dentry.inode.identity()
    count = _opens.get(key)
    if count is None:
        return  # not opened through the VFS (pipes, anonymous files)
    if count > 1:
        _opens[key] = count - 1
    else:
        del _opens[key]
    if _marks and not file.flags & O_PATH:
        event(dentry, IN_CLOSE_WRITE if file.writable else IN_CLOSE_NOWRITE)
    if count == 1 and key in _doomed:
        _doomed.discard(key)
        _gone(dentry.inode)


def accessed(file) -> None:
    """Data was read from `file` (or its directory listed)."""
    if _marks:
        event(file.loc.dentry, IN_ACCESS)


def modified(file) -> None:
    """Data was written to `file` (or it was truncated)."""
    if _marks:
        event(file.loc.dentry, IN_MODIFY)


def read_done(file, result):
    """A read's result, reported (IN_ACCESS) when it returned data; returned as it is."""
    if _marks and result.__class__ is int and result > 0:  # (no watch anywhere: at once)
        accessed(file)
    return result


def write_done(file, result):
    """A write's result, reported (IN_MODIFY) when it wrote something; returned as it is."""
    if _marks and result.__class__ is int and result > 0:
        modified(file)
    return result


def created(parent: Dentry, child: Dentry) -> None:
    """`child` was just made in directory `parent` (a file, directory, node, symlink or link)."""
    if _marks and _marked(parent.inode):
        _send(parent.inode, IN_CREATE | _isdir(child.inode), 0, child.name)


def linked(inode: Inode) -> None:
    """`inode` gained or lost a name (its link count changed): IN_ATTRIB to its own marks."""
    if _marks and _marked(inode):
        _send(inode, IN_ATTRIB)


def is_last_name(inode: Inode) -> bool:
    """Asked before a name of `inode` is removed: whether the inode goes with it (a directory,
    or a file with one link).  False at once when nothing watches it."""
    if not _marks or not _marked(inode):
        return False
    if inode.kind == S_IFDIR:
        return True
    try:
        return inode.stat().st_nlink <= 1
    except SysError:
        return True


def removed(parent: Dentry, victim: Dentry, last: bool) -> None:
    """Name `victim` was removed from `parent` (unlink, rmdir); `last`: is_last_name's answer."""
    if not _marks:
        return
    inode = victim.inode
    if inode.kind != S_IFDIR:
        linked(inode)
    if last:
        _drop_last_name(inode)
    if _marked(parent.inode):
        _send(parent.inode, IN_DELETE | _isdir(inode), 0, victim.name)


def moved(old_parent: Dentry, old_name: bytes, moved_dentry: Dentry, target: Dentry | None,
          target_last: bool) -> None:
    """`moved_dentry` (now in its new place) was renamed from `old_parent`/`old_name`, replacing
    `target` (None: nothing, or RENAME_EXCHANGE's other half, reported by its own call);
    `target_last`: is_last_name's answer for the target."""
    if not _marks:
        return
    inode = moved_dentry.inode
    isdir = _isdir(inode)
    cookie = next(_cookies) % 0xFFFFFFFF + 1  # never 0 (no cookie)
    if _marked(old_parent.inode):
        _send(old_parent.inode, IN_MOVED_FROM | isdir, cookie, old_name)
    new_parent = moved_dentry.parent
    if _marked(new_parent.inode):
        _send(new_parent.inode, IN_MOVED_TO | isdir, cookie, moved_dentry.name)
    if target is not None:
        linked(target.inode)
    if _marked(inode):
        _send(inode, IN_MOVE_SELF)
    if target is not None and target_last:
        _drop_last_name(target.inode)


def _drop_last_name(inode: Inode) -> None:
    """The last name of watched `inode` went: it is gone now, or at the last close of its open
    files."""
    key = inode.identity()
    if key in _opens:
        _doomed.add(key)
    else:
        _gone(inode)


def _gone(inode: Inode) -> None:
    """`inode` no longer exists: IN_DELETE_SELF, then its marks end (IN_IGNORED)."""
    _send(inode, IN_DELETE_SELF)
    for mark in _marks.pop(inode.identity(), ()):
        mark.group.dropped(mark)


def attributes_changed(dentry: Dentry, size: bool = False, atime: bool = False, mtime: bool = False,
                       other: bool = False) -> None:
    """Attributes of the file at `dentry` changed, reported in one event as Linux's
    notify_change does: a size or an mtime alone is IN_MODIFY, an atime alone IN_ACCESS, both
    times or `other` changes (owner, mode, xattrs) IN_ATTRIB."""
    if not _marks:
        return
    mask = IN_MODIFY if size or mtime and not atime else 0
    if atime and not mtime:
        mask |= IN_ACCESS
    if other or atime and mtime:
        mask |= IN_ATTRIB
    if mask:
        event(dentry, mask)
