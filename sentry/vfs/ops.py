"""Path-level file operations with Linux's checks, shared by the syscalls and the kernel.

Each operation resolves its paths with one Walker, checks what Linux checks
(existence, file types, mounts, read-only mounts, permissions, the sticky
bit) in Linux's order, calls the file system, and keeps the dentry cache in
step with what changed.
"""
from __future__ import annotations

from ..abi.errno import (EACCES, EBUSY, EEXIST, EINVAL, EISDIR, ELOOP, ENODATA, ENOENT, ENOTDIR, ENOTEMPTY,
                         EOPNOTSUPP, EPERM, EROFS, EXDEV)
from ..abi.fs import (O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE, O_NOFOLLOW, O_OPEN_ONLY, O_PATH,
                      O_PATH_KEPT, O_RDONLY, O_TMPFILE_BIT, O_TRUNC, O_WRONLY, R_OK, RENAME_EXCHANGE,
                      RENAME_NOREPLACE, S_IALLUGO, S_IFDIR, S_IFLNK, S_IFREG, S_ISGID, S_ISUID, S_ISVTX, S_IXGRP,
                      W_OK, X_OK)
from ..kernel.errors import SysError
from .dentry import Location
from .file import File
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


def open_file(t, dirfd: int, path: bytes, flags: int, mode: int = 0) -> File:
    """openat(2): resolve, create if asked, check, truncate, and open."""
    if flags & O_TMPFILE_BIT:
        raise SysError(EOPNOTSUPP)
    w = Walker(t)
    created = False
    if flags & O_PATH:
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
        return File(loc, flags)
    if kind == S_IFLNK:
        raise SysError(ELOOP)
    acc = flags & O_ACCMODE
    write = acc != O_RDONLY
    if kind == S_IFDIR and (write or flags & O_CREAT):
        raise SysError(EISDIR)
    if not created:
        if (write or flags & O_TRUNC) and kind in (S_IFREG, S_IFDIR) and loc.mount.readonly:
            raise SysError(EROFS)
        mask = (0 if acc == O_WRONLY else R_OK) | (W_OK if write or flags & O_TRUNC else 0)
        if not may_access(t.creds, inode.stat(), mask):
            raise SysError(EACCES)
        if flags & O_TRUNC and kind == S_IFREG:
            inode.setattr(size=0)
    return inode.open(t, loc, flags & ~O_OPEN_ONLY | O_LARGEFILE)


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
    parent.dentry.add(name, parent.inode.mkdir(name, mode, uid, gid))


def symlink(t, target: bytes, dirfd: int, path: bytes) -> None:
    """symlinkat(2)."""
    if not target:
        raise SysError(ENOENT)
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    _new_name(t, w, parent, name, slash, False)
    uid, gid = _owner(t, parent)
    parent.dentry.add(name, parent.inode.symlink(name, target, uid, gid))


def link(t, old: Location, dirfd: int, path: bytes) -> None:
    """linkat(2), `old` already resolved."""
    if old.inode.kind == S_IFDIR:
        raise SysError(EPERM)
    w = Walker(t)
    parent, name, slash = w.resolve_parent(dirfd, path)
    _new_name(t, w, parent, name, slash, False)
    if old.mount is not parent.mount:
        raise SysError(EXDEV)
    new = parent.inode.link(name, old.inode)
    parent.dentry.add(name, old.inode if new is None else new)


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
    if rmdir:
        parent.inode.rmdir(name, victim.inode)
    else:
        parent.inode.unlink(name, victim.inode)
    parent.dentry.drop(name)


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
    op.inode.rename(oname, src.inode, np.inode, nname, dst.inode if dst is not None else None, exchange)
    if exchange:
        src.dentry.exchange(dst.dentry)
    else:
        src.dentry.move(np.dentry, nname)


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


def truncate(t, loc: Location, size: int) -> None:
    """truncate(2) on a resolved location."""
    kind = loc.inode.kind
    if kind == S_IFDIR:
        raise SysError(EISDIR)
    if kind != S_IFREG:
        raise SysError(EINVAL)
    _may_change(t, loc, W_OK)
    loc.inode.setattr(size=size)


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
