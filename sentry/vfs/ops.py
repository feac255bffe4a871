"""Path-level file operations with Linux's checks, shared by the syscalls and the kernel.

Each operation resolves its paths with one Walker, checks what Linux checks
(existence, file types, mounts, read-only mounts, permissions, the sticky
bit) in Linux's order, calls the file system, and keeps the dentry cache in
step with what changed.
"""
from __future__ import annotations

from ..abi.errno import (EACCES, EBUSY, EEXIST, EINVAL, EISDIR, ELOOP, ENODATA, ENOENT, ENOTDIR, ENOTEMPTY,
                         EOPNOTSUPP, EPERM, EROFS, EXDEV)
from ..abi.caps import CAP_MKNOD
from ..abi.fs import (O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOCTTY, O_NOFOLLOW, O_OPEN_ONLY,
                      O_PATH, O_PATH_KEPT, O_RDONLY, O_RDWR, O_TMPFILE_BIT, O_TRUNC, O_WRONLY, PIPEFS_MAGIC, R_OK,
                      RENAME_EXCHANGE, RENAME_NOREPLACE, S_IALLUGO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK,
                      S_IFMT, S_IFREG, S_IFSOCK, S_ISGID, S_ISUID, S_ISVTX, S_IXGRP, ST_NOEXEC, W_OK, X_OK)
from ..kernel.errors import SysError
from . import fsnotify
from .dentry import Dentry, Location
from .fifo import open_fifo, wait_partner
from .file import File
from .inode import Inode
from .perm import may_access
from .walk import Walker

_DOTS = (b".", b"..")


def _try_step(w: Walker, parent: Location, name: bytes) -> Location | None:
    """`name` in `parent`, or None if it does not exist."""
    try:
        return w.step(parent, name)
    except SysError as err:
        if err.errno == ENOENT:
            return None
        raise


def _may_change(t, loc: Location, mask: int) -> None:
    """EROFS on a read-only mount, EACCES without `mask` permission on `loc`."""
    if loc.mount.readonly:
        raise SysError(EROFS)
    if not may_access(t.creds, loc.inode.stat(), mask):
        raise SysError(EACCES)


def _may_modify_dir(t, parent: Location) -> None:
    """May `t` add or remove names in directory `parent`?"""
    _may_change(t, parent, W_OK | X_OK)


def _may_delete(t, parent: Location, victim: Location) -> None:
    """May `t` remove `victim` from `parent` (write permission and the sticky bit)?"""
    _may_modify_dir(t, parent)
    uid = t.creds.fsuid
    if uid:
        d = parent.inode.stat()
        if d.st_mode & S_ISVTX and uid != d.st_uid and uid != victim.inode.stat().st_uid:
            raise SysError(EPERM)


def _new_name(t, w: Walker, parent: Location, name: bytes, slash: bool, is_dir: bool) -> None:
    """Checks before creating `name` in `parent`: it must not exist, and `t` may write there."""
    if name in _DOTS or _try_step(w, parent, name) is not None:
        raise SysError(EEXIST)
    if slash and not is_dir:
        raise SysError(ENOENT)
    _may_modify_dir(t, parent)


def _owner(t, parent: Location) -> tuple[int, int]:
    """Owner of a new file: the creator's fsuid, and its fsgid unless the directory is set-group-ID."""
    d = parent.inode.stat()
    return t.creds.fsuid, d.st_gid if d.st_mode & S_ISGID else t.creds.fsgid


def open_file(t, dirfd: int, path: bytes, flags: int, mode: int = 0, for_exec: bool = False, resolve: int = 0):
    """openat(2): resolve (under openat2's RESOLVE_* flags `resolve`), create if asked, check, truncate,
    and open; execve's open if `for_exec` (EACCES unless a regular file on an exec mount).  The File,
    or for a FIFO that must wait for its other end a Block whose retry returns the File."""
    w = Walker(t, resolve=resolve)
    created = False
    if flags & O_TMPFILE_BIT:
        loc, created = _tmpfile(t, w.resolve(dirfd, path, follow=True), flags, mode), True
        flags &= ~(O_TMPFILE_BIT | O_DIRECTORY)
    elif flags & O_PATH:
        flags &= O_PATH_KEPT
        loc = w.resolve(dirfd, path, follow=not flags & O_NOFOLLOW)
    elif flags & O_CREAT:
        loc, created = _open_creating(t, w, dirfd, path, flags, mode)
    else:
        loc = w.resolve(dirfd, path, follow=not flags & O_NOFOLLOW)
    inode = loc.inode
    kind = inode.kind
    if flags & O_DIRECTORY and kind != S_IFDIR:
        raise SysError(ENOTDIR)
    if flags & O_PATH:
        f = File(loc, flags)
        fsnotify.opened(f)
        return f
    if kind == S_IFLNK:
        raise SysError(ELOOP)
    if for_exec and (kind != S_IFREG or loc.mount.flags & ST_NOEXEC):
        raise SysError(EACCES)
    acc = flags & O_ACCMODE
    write = acc != O_RDONLY
    if kind == S_IFDIR and (write or flags & O_CREAT):
        raise SysError(EISDIR)
    truncate = False
    if created:
        if not loc.dentry.dead:  # (an O_TMPFILE file has no name to report)
            fsnotify.created(loc.dentry.parent, loc.dentry)
    else:
        if (write or flags & O_TRUNC) and kind in (S_IFREG, S_IFDIR) and loc.mount.readonly:
            raise SysError(EROFS)
        mask = (0 if acc == O_WRONLY else R_OK) | (W_OK if write or flags & O_TRUNC else 0)
        if not may_access(t.creds, inode.stat(), mask):
            raise SysError(EACCES)
        if flags & O_TRUNC and kind == S_IFREG:
            inode.setattr(size=0)
            truncate = True
    # A terminal sees O_NOCTTY (without it a session leader acquires the terminal as its
    # controlling one); File drops it from the status flags.
    flags = flags & ~O_OPEN_ONLY | (flags & O_NOCTTY if kind == S_IFCHR else 0) | O_LARGEFILE
    if kind == S_IFIFO and inode.fs.magic != PIPEFS_MAGIC:  # (a pipe's own inode reopens that pipe)
        return wait_partner(open_fifo(loc, flags))
    f = inode.open(t, loc, flags)
    fsnotify.opened(f)
    if truncate:
        fsnotify.modified(f)
    return f


def _tmpfile(t, parent: Location, flags: int, mode: int) -> Location:
    """O_TMPFILE: a new regular file without a name on the file system of directory `parent`,
    at a dead dentry named as Linux names it ("#ino"); linkat may name it unless O_EXCL."""
    if not flags & O_DIRECTORY or flags & O_CREAT or flags & O_ACCMODE not in (O_WRONLY, O_RDWR):
        raise SysError(EINVAL)
    if parent.inode.kind != S_IFDIR:
        raise SysError(ENOTDIR)
    _may_modify_dir(t, parent)
    uid, gid = _owner(t, parent)
    inode = parent.inode.tmpfile(S_IFREG | mode & ~t.fs.umask & S_IALLUGO, uid, gid)
    dentry = Dentry(b"#%d" % inode.stat().st_ino, parent.dentry, inode)
    dentry.dead = True
    dentry.linkable = not flags & O_EXCL
    return Location(parent.mount, dentry)


def _open_creating(t, w: Walker, dirfd: int, path: bytes, flags: int, mode: int) -> tuple[Location, bool]:
    """The location an O_CREAT open opens, creating a regular file there if needed (also through a
    dangling symlink, as Linux does); (location, created)."""
    parent, name, slash = w.resolve_parent(dirfd, path)
    while True:
        if slash:
            raise SysError(EISDIR)
        if name in _DOTS:
            return w.step(parent, name), False
        loc = _try_step(w, parent, name)
        if loc is None:
            _may_modify_dir(t, parent)
            uid, gid = _owner(t, parent)
            inode = parent.inode.create(name, S_IFREG | mode & ~t.fs.umask & S_IALLUGO, uid, gid)
            return Location(parent.mount, parent.dentry.add(name, inode)), True
        if flags & O_EXCL:
            raise SysError(EEXIST)
        if loc.inode.kind != S_IFLNK:
            return loc, False
        if flags & O_NOFOLLOW:
            raise SysError(ELOOP)
        target = w.read_link(loc)
        if isinstance(target, Location):
            return target, False
        parent, name, slash = w.walk_parent(w.base(parent, target), target)


def mkdir(t, dirfd: int, path: bytes, mode: int) -> None:
    """mkdirat(2)."""
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    _new_name(t, w, parent, name, slash, True)
    uid, gid = _owner(t, parent)
    mode = mode & ~t.fs.umask & (S_IALLUGO & ~S_ISUID & ~S_ISGID)
    if parent.inode.stat().st_mode & S_ISGID:
        mode |= S_ISGID
    fsnotify.created(parent.dentry, parent.dentry.add(name, parent.inode.mkdir(name, mode, uid, gid)))


def mknod(t, dirfd: int, path: bytes, mode: int, rdev: int) -> Inode:
    """mknodat(2): a regular file (type 0 too), FIFO, socket or (with CAP_MKNOD) device node;
    the node made."""
    kind = mode & S_IFMT
    if kind == S_IFDIR:
        raise SysError(EPERM)
    if kind not in (0, S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK):
        raise SysError(EINVAL)
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    _new_name(t, w, parent, name, slash, False)
    uid, gid = _owner(t, parent)
    perm = mode & ~t.fs.umask & S_IALLUGO
    if kind in (0, S_IFREG):
        inode = parent.inode.create(name, S_IFREG | perm, uid, gid)
    else:
        if kind in (S_IFCHR, S_IFBLK) and not t.creds.capable(CAP_MKNOD):
            raise SysError(EPERM)
        inode = parent.inode.mknod(name, kind | perm, rdev, uid, gid)
    fsnotify.created(parent.dentry, parent.dentry.add(name, inode))
    return inode


def symlink(t, target: bytes, dirfd: int, path: bytes) -> None:
    """symlinkat(2)."""
    if not target:
        raise SysError(ENOENT)
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    _new_name(t, w, parent, name, slash, False)
    uid, gid = _owner(t, parent)
    fsnotify.created(parent.dentry, parent.dentry.add(name, parent.inode.symlink(name, target, uid, gid)))


def link(t, old: Location, dirfd: int, path: bytes) -> None:
    """linkat(2), `old` already resolved."""
    if old.inode.kind == S_IFDIR:
        raise SysError(EPERM)
    if old.inode.stat().st_nlink == 0 and not old.dentry.linkable:
        raise SysError(ENOENT)  # unlinked, and not an O_TMPFILE file that may be named
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    _new_name(t, w, parent, name, slash, False)
    if old.mount is not parent.mount:
        raise SysError(EXDEV)
    new = parent.inode.link(name, old.inode)
    old.dentry.linkable = False
    fsnotify.linked(old.inode)
    fsnotify.created(parent.dentry, parent.dentry.add(name, old.inode if new is None else new))


def unlink(t, dirfd: int, path: bytes, rmdir: bool) -> None:
    """unlinkat(2), with or without AT_REMOVEDIR."""
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    if name in _DOTS:
        raise SysError((EINVAL if name == b"." else ENOTEMPTY) if rmdir else EISDIR)
    victim = w.step(parent, name)
    kind = victim.inode.kind
    if rmdir and kind != S_IFDIR or not rmdir and slash and kind != S_IFDIR:
        raise SysError(ENOTDIR)
    if not rmdir and kind == S_IFDIR:
        raise SysError(EISDIR)
    if victim.mount is not parent.mount or victim == t.fs.root:
        raise SysError(EBUSY)
    _may_delete(t, parent, victim)
    last = fsnotify.is_last_name(victim.inode)
    if rmdir:
        parent.inode.rmdir(name, victim.inode)
    else:
        parent.inode.unlink(name, victim.inode)
    parent.dentry.drop(name)
    fsnotify.removed(parent.dentry, victim.dentry, last)


def rename(t, olddirfd: int, oldpath: bytes, newdirfd: int, newpath: bytes, flags: int) -> None:
    """renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE."""
    exchange = bool(flags & RENAME_EXCHANGE)
    w = Walker(t)
    op, oname, oslash = w.resolve_parent(olddirfd, oldpath)
    np, nname, nslash = w.resolve_parent(newdirfd, newpath)
    if oname in _DOTS or nname in _DOTS:
        raise SysError(EBUSY)
    if op.mount is not np.mount:
        raise SysError(EXDEV)
    src = w.step(op, oname)
    dst = _try_step(w, np, nname)
    if exchange and dst is None:
        raise SysError(ENOENT)
    if flags & RENAME_NOREPLACE and dst is not None:
        raise SysError(EEXIST)
    if src.mount is not op.mount or dst is not None and dst.mount is not np.mount:
        raise SysError(EBUSY)
    skind = src.inode.kind
    dkind = dst.inode.kind if dst is not None else None
    if (oslash or nslash and not exchange) and skind != S_IFDIR:
        raise SysError(ENOTDIR)
    if exchange and nslash and dkind != S_IFDIR:
        raise SysError(ENOTDIR)
    if dst is not None and not exchange:
        if skind == S_IFDIR and dkind != S_IFDIR:
            raise SysError(ENOTDIR)
        if skind != S_IFDIR and dkind == S_IFDIR:
            raise SysError(EISDIR)
    if dst is not None:
        a, b = src.inode.stat(), dst.inode.stat()
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
            return
    if _is_under(np, src):
        raise SysError(EINVAL)
    if dst is not None and _is_under(op, dst):
        raise SysError(EINVAL if exchange else ENOTEMPTY)
    _may_delete(t, op, src)
    if dst is not None:
        _may_delete(t, np, dst)
    else:
        _may_modify_dir(t, np)
    target_last = dst is not None and not exchange and fsnotify.is_last_name(dst.inode)
    op.inode.rename(oname, src.inode, np.inode, nname, dst.inode if dst is not None else None, exchange)
    if exchange:
        src.dentry.exchange(dst.dentry)
        fsnotify.moved(op.dentry, oname, src.dentry, None, False)
        fsnotify.moved(np.dentry, nname, dst.dentry, None, False)
    else:
        src.dentry.move(np.dentry, nname)
        fsnotify.moved(op.dentry, oname, src.dentry, dst.dentry if dst is not None else None, target_last)


def _is_under(loc: Location, ancestor: Location) -> bool:
    """Whether `loc` is `ancestor` or inside it (same mount)."""
    d = loc.dentry
    while d is not None:
        if d is ancestor.dentry:
            return True
        d = d.parent
    return False


def readlink(t, dirfd: int, path: bytes) -> bytes:
    """readlinkat(2); an empty path reads the link `dirfd` was opened on (O_PATH|O_NOFOLLOW)."""
    loc = Walker(t).resolve(dirfd, path, follow=False, empty_ok=True)
    if loc.inode.kind != S_IFLNK:
        raise SysError(EINVAL if path else ENOENT)
    return loc.inode.readlink(t)


def access(t, loc: Location, mode: int, effective: bool) -> None:
    """faccessat2(2) on a resolved location: real ids unless `effective`."""
    if mode & W_OK and loc.mount.readonly and loc.inode.kind in (S_IFREG, S_IFDIR, S_IFLNK):
        raise SysError(EROFS)
    if not may_access(t.creds, loc.inode.stat(), mode, real=not effective):
        raise SysError(EACCES)


def _may_setattr(t, loc: Location) -> None:
    """Attribute changes need a writable mount and (unless root) ownership."""
    if loc.mount.readonly:
        raise SysError(EROFS)
    uid = t.creds.fsuid
    if uid and uid != loc.inode.stat().st_uid:
        raise SysError(EPERM)


def chmod(t, loc: Location, mode: int) -> None:
    """fchmodat(2) on a resolved location."""
    _may_setattr(t, loc)
    mode &= S_IALLUGO
    c = t.creds
    if c.fsuid:
        gid = loc.inode.stat().st_gid
        if gid != c.fsgid and gid not in c.groups:
            mode &= ~S_ISGID
    loc.inode.setattr(mode=mode)
    fsnotify.attributes_changed(loc.dentry, other=True)


def chown(t, loc: Location, uid: int, gid: int) -> None:
    """fchownat(2) on a resolved location; -1 leaves an id unchanged."""
    if loc.mount.readonly:
        raise SysError(EROFS)
    a = loc.inode.stat()
    c = t.creds
    if c.fsuid:
        owner = c.fsuid == a.st_uid
        if uid != -1 and (uid != a.st_uid or not owner):
            raise SysError(EPERM)
        if gid != -1 and gid != a.st_gid and (not owner or gid != c.fsgid and gid not in c.groups):
            raise SysError(EPERM)
    mode = None
    if (uid != -1 or gid != -1) and loc.inode.kind != S_IFDIR:
        kill = S_ISUID | (S_ISGID if a.st_mode & S_IXGRP else 0)
        if a.st_mode & kill:
            mode = a.st_mode & S_IALLUGO & ~kill
    loc.inode.setattr(mode=mode, uid=None if uid == -1 else uid, gid=None if gid == -1 else gid)
    fsnotify.attributes_changed(loc.dentry, other=True)


def truncate(t, loc: Location, size: int) -> None:
    """truncate(2) on a resolved location."""
    kind = loc.inode.kind
    if kind == S_IFDIR:
        raise SysError(EISDIR)
    if kind != S_IFREG:
        raise SysError(EINVAL)
    _may_change(t, loc, W_OK)
    loc.inode.setattr(size=size)
    fsnotify.attributes_changed(loc.dentry, size=True)


def utimes(t, loc: Location, atime_ns: int | None, mtime_ns: int | None, to_now: bool) -> None:
    """utimensat(2) on a resolved location; None leaves a time unchanged; `to_now` if both are now."""
    if loc.mount.readonly:
        raise SysError(EROFS)
    uid = t.creds.fsuid
    if uid and uid != loc.inode.stat().st_uid:
        if not to_now:
            raise SysError(EPERM)
        if not may_access(t.creds, loc.inode.stat(), W_OK):
            raise SysError(EACCES)
    loc.inode.setattr(atime_ns=atime_ns, mtime_ns=mtime_ns)
    fsnotify.attributes_changed(loc.dentry, atime=atime_ns is not None, mtime=mtime_ns is not None)


# -- extended attributes ---------------------------------------------------------
_XATTR_NAMESPACES = (b"user.", b"trusted.", b"security.", b"system.")


def _xattr_check(t, loc: Location, name: bytes, write: bool) -> None:
    """Linux's checks before an xattr operation on `loc`: a known namespace, a writable mount
    for changes, and for user.* a regular file or directory and read (or write) permission;
    trusted.* needs CAP_SYS_ADMIN (root here)."""
    if not name.startswith(_XATTR_NAMESPACES):
        raise SysError(EOPNOTSUPP)
    if write and loc.mount.readonly:
        raise SysError(EROFS)
    if name.startswith(b"trusted.") and t.creds.euid:
        raise SysError(EPERM if write else ENODATA)
    if name.startswith(b"user."):
        if loc.inode.kind not in (S_IFREG, S_IFDIR):
            raise SysError(EPERM if write else ENODATA)
        if not may_access(t.creds, loc.inode.stat(), W_OK if write else R_OK):
            raise SysError(EACCES)
    elif write and t.creds.fsuid and t.creds.fsuid != loc.inode.stat().st_uid:
        raise SysError(EPERM)


def getxattr(t, loc: Location, name: bytes) -> bytes:
    """getxattr(2) on a resolved location."""
    _xattr_check(t, loc, name, False)
    return loc.inode.getxattr(name)


def setxattr(t, loc: Location, name: bytes, value: bytes, flags: int) -> None:
    """setxattr(2) on a resolved location (flags XATTR_CREATE, XATTR_REPLACE)."""
    _xattr_check(t, loc, name, True)
    loc.inode.setxattr(name, value, flags)
    fsnotify.attributes_changed(loc.dentry, other=True)


def listxattr(t, loc: Location) -> list[bytes]:
    """listxattr(2) on a resolved location: the names `t` may see (trusted.* for root only)."""
    names = loc.inode.listxattr()
    if t.creds.euid:
        names = [n for n in names if not n.startswith(b"trusted.")]
    return names


def removexattr(t, loc: Location, name: bytes) -> None:
    """removexattr(2) on a resolved location."""
    _xattr_check(t, loc, name, True)
    loc.inode.removexattr(name)
    fsnotify.attributes_changed(loc.dentry, other=True)
