"""A container's initial file system: its root, /proc, /dev and the mounts its spec asks for.

The root (see mountplan.py) is the gofer's tree itself, writable or read-only (EROFS) as the
spec says, or, for `ringfence do` (no plan), that tree read-only under an in-memory tmpfs upper
layer (overlay).  A gofer that serves the root read-only although the plan wants it writable
(a caller that started it without the plan) also gets the overlay, with a log line.

/proc and /dev are always the sentry's own; then come the spec's mounts in its order: bind
mounts (served by the container's gofer as extra mounts, revalidating: the host shares them),
tmpfs (size=, mode=, uid=, gid=), proc, sysfs (the sentry's small read-only sysfs), devpts
(mode=, gid=, ptmxmode=: the terminals /dev/ptmx makes are in the one on /dev/pts);
mqueue and cgroup mounts are not made (a log line says so), nor are unknown types.  A spec
entry for /proc (proc) or /dev (tmpfs) sets the options of the sentry's own.  Then
`linux.maskedPaths` (a directory: an empty read-only tmpfs over it; a file: a /dev/null node)
and `linux.readonlyPaths` (a read-only bind of the place onto itself).

Mount points missing from the tree are made in the sentry's view only, as gVisor does:
nothing is created on the host.  In a tmpfs or overlay directory they are ordinary in-memory
entries; elsewhere a pinned dentry over an empty directory (or file) that refuses changes.
"""
from __future__ import annotations

import os
import posixpath

import structlog

from ..abi.errno import EINVAL, EISDIR, ENOENT, ENOTDIR, EROFS
from ..abi.fs import (AT_FDCWD, S_IALLUGO, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, ST_NODEV, ST_NOEXEC, ST_NOSUID,
                      ST_RDONLY)
from ..fs.dev import NULL, build_devfs
from ..fs.devpts import DevptsFS
from ..fs.gofer import GoferFS
from ..fs.overlay import OverlayFS, OverlayInode
from ..fs.proc import ProcFS
from ..fs.sys import build_sysfs
from ..fs.tmpfs import TmpfsDir, TmpfsFile, TmpfsFS, TmpfsNode
from ..kernel.errors import SysError
from .dentry import Dentry, Location, Mount, MountNamespace
from .fdtable import FDTable, FSContext
from .inode import FileSystem, Inode
from .mountplan import BIND, MountPlan, PlannedMount
from .walk import Walker

log = structlog.get_logger("ringfence.sentry")

_SET = {"ro": ST_RDONLY, "nosuid": ST_NOSUID, "nodev": ST_NODEV, "noexec": ST_NOEXEC}
_CLEAR = {"rw": ST_RDONLY, "suid": ST_NOSUID, "dev": ST_NODEV, "exec": ST_NOEXEC}
_PROC_FLAGS = ST_NOSUID | ST_NODEV | ST_NOEXEC
_SIZE_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def build_sandbox_fs(kernel, gofer_client, plan: MountPlan | None = None) -> tuple[FSContext, FDTable]:
    """The init task's file-system context and (empty) fd table for a container whose files the
    gofer at `gofer_client` serves, laid out by `plan` (None: `ringfence do`'s overlay root); proc
    shows `kernel`'s processes (a container's view, see kernel/container.py).  SysError or
    OSError if the gofer fails."""
    return _Builder(kernel, gofer_client, plan or MountPlan.default()).build()


def mount_flags(options) -> int:
    """The ST_* bits of mount options (ro/rw, nosuid/suid, nodev/dev, noexec/exec; the last wins)."""
    flags = 0
    for opt in options:
        if opt in _SET:
            flags |= _SET[opt]
        elif opt in _CLEAR:
            flags &= ~_CLEAR[opt]
    return flags


def parse_size(value: str | None) -> int | None:
    """A tmpfs size= (bytes, k/m/g/t suffixes, or a % of the machine's memory); None: no limit."""
    if value is None:
        return None
    try:
        if value.endswith("%"):
            return int(value[:-1]) * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 100
        unit = _SIZE_UNITS.get(value[-1:].lower(), 1)
        size = int(value[:-1] if unit != 1 else value, 0 if value.startswith("0x") else 10) * unit
    except (ValueError, OSError):
        raise SysError(EINVAL) from None
    if size <= 0:
        return None  # size=0: no limit, as Linux's tmpfs
    return size


def _octal(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        mode = int(value, 8)
    except ValueError:
        raise SysError(EINVAL) from None
    if mode & ~S_IALLUGO:
        raise SysError(EINVAL)
    return mode


def _number(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        raise SysError(EINVAL) from None


def _refuse(*_args, **_kw):
    raise SysError(EROFS)


class _PointDir(TmpfsDir):
    """A directory that exists in the sentry's view only, to hold mount points: the sandbox can
    neither create nor remove anything in it (EROFS)."""

    __slots__ = ()
    create = mkdir = symlink = mknod = link = unlink = rmdir = rename = _refuse

    def make(self, name: bytes, is_dir: bool) -> Inode:
        """A new mount point in it."""
        if is_dir:
            node = self._add(name, _PointDir(self.fs, 0o755, 0, 0))
            self.nlink += 1
            return node
        return self._add(name, TmpfsFile(self.fs, 0o644, 0, 0))


def _normal(path: bytes) -> bytes:
    return posixpath.normpath(b"/" + path.lstrip(b"/"))


def _same(dest: bytes, path: bytes) -> bool:
    return _normal(dest) == path


class _Builder:
    """Builds one container's mount namespace (see the module docstring)."""

    def __init__(self, kernel, client, plan: MountPlan):
        self.kernel = kernel
        self.client = client
        self.plan = plan
        self.points = TmpfsFS()  # mount points that exist in the sentry's view only

    def build(self) -> tuple[FSContext, FDTable]:
        self.ns = ns = self._root()
        root = ns.root_location()
        self.ctx = FSContext(root, root)
        self.walker = Walker(None, self.ctx)
        proc = ProcFS(self.kernel)
        self.proc = self._mount(b"/proc", proc, proc.new_root(), "proc", _PROC_FLAGS)
        self.dev = self._mount(b"/dev", *build_devfs(), "tmpfs", ST_NOSUID, "mode=755")
        for m in self.plan.mounts:
            try:
                self._apply(m)
            except SysError as err:
                log.warning("container mount not made", destination=m.destination, type=m.type,
                            error=os.strerror(err.errno))
        for path in self.plan.masked_paths:
            self._mask(os.fsencode(path))
        for path in self.plan.readonly_paths:
            self._readonly(os.fsencode(path))
        return self.ctx, FDTable()

    # -- the root ----------------------------------------------------------------------
    def _root(self) -> MountNamespace:
        plan = self.plan
        lower = GoferFS(self.client).attach()
        flags = ST_RDONLY if plan.root_readonly else 0
        overlay = plan.overlay
        if not overlay and not plan.root_readonly and not lower.fs.writable():
            log.warning("the gofer serves the container's root read-only: its writes stay in the sandbox's memory")
            overlay = True
        if not overlay:
            return MountNamespace(lower.fs, lower, "none", flags)
        a = lower.stat()
        upper = TmpfsFS().new_root(a.st_mode & S_IALLUGO, a.st_uid, a.st_gid)
        fs = OverlayFS(upper, lower)
        return MountNamespace(fs, fs.root, "overlay", flags)

    # -- mount points --------------------------------------------------------------------
    def _mount(self, dest: bytes, fs: FileSystem, root: Inode, source: str, flags: int, data: str = "",
               is_dir: bool = True) -> Mount:
        """Mount `root` of `fs` at path `dest` of the container (made if missing)."""
        at = self._point(dest, is_dir)
        return self.ns.mount(at, fs, root, source, flags, data)

    def _point(self, path: bytes, is_dir: bool) -> Location:
        """The place at `path` (symlinks followed inside the container's tree), a directory if
        `is_dir` else a non-directory; what is missing is made in the sentry's view."""
        names = [c for c in path.split(b"/") if c]
        if _normal(path) == b"/":
            raise SysError(EINVAL)  # nothing is mounted over the root
        w = self.walker
        loc = self.ns.root_location()
        for i, name in enumerate(names):
            want_dir = is_dir or i < len(names) - 1
            try:
                nxt = w.step(loc, name)
            except SysError as err:
                if err.errno != ENOENT:
                    raise
                nxt = None
            if nxt is not None and nxt.inode.kind == S_IFLNK:
                nxt = w.follow(loc, nxt)
            if nxt is None:
                nxt = self._make_point(loc, name, want_dir)
            elif want_dir and nxt.inode.kind != S_IFDIR:
                raise SysError(ENOTDIR)
            elif not want_dir and nxt.inode.kind == S_IFDIR:
                raise SysError(EISDIR)
            loc = nxt
        return loc

    def _make_point(self, parent: Location, name: bytes, is_dir: bool) -> Location:
        inode = parent.inode
        if isinstance(inode, _PointDir):
            new = inode.make(name, is_dir)
        elif isinstance(inode, (TmpfsDir, OverlayInode)) and not parent.mount.readonly:
            new = inode.mkdir(name, 0o755, 0, 0) if is_dir else inode.create(name, S_IFREG | 0o644, 0, 0)
            return Location(parent.mount, parent.dentry.add(name, new))
        else:  # the gofer's tree (or proc...): a name in the sentry's view only
            new = _PointDir(self.points, 0o755, 0, 0) if is_dir else TmpfsFile(self.points, 0o644, 0, 0)
        d = Dentry(name, parent.dentry, new)
        d.pin(parent.mount.root)
        return Location(parent.mount, d)

    def _existing(self, path: bytes) -> Location | None:
        """The place at `path` if there is one."""
        try:
            return self.walker.resolve(AT_FDCWD, b"/" + path.lstrip(b"/"))
        except SysError as err:
            if err.errno not in (ENOENT, ENOTDIR):
                log.warning("path not resolved", path=path.decode(errors="replace"), error=os.strerror(err.errno))
            return None

    # -- the spec's mounts ---------------------------------------------------------------
    def _apply(self, m: PlannedMount) -> None:
        dest = os.fsencode(m.destination)
        kind = m.type
        flags = mount_flags(m.flag_options())
        data = m.data()
        if kind == BIND:
            self._bind(m, dest, flags)
        elif kind == "proc":
            if _same(dest, b"/proc"):
                self.proc.flags = _PROC_FLAGS | flags
                return
            fs = ProcFS(self.kernel)
            self._mount(dest, fs, fs.new_root(), m.source or "proc", _PROC_FLAGS | flags)
        elif kind == "tmpfs":
            if _same(dest, b"/dev"):  # the sentry's devices stay
                self.dev.flags = flags
                self.dev.data = _data(data, "size", "mode")
                return
            fs = TmpfsFS(parse_size(data.get("size")))
            root = fs.new_root(_octal(data.get("mode"), 0o1777), _number(data.get("uid")), _number(data.get("gid")))
            self._mount(dest, fs, root, m.source or "tmpfs", flags, _data(data, "size", "mode", "uid", "gid"))
        elif kind == "sysfs":
            self._mount(dest, *build_sysfs(), m.source or "sysfs", flags | ST_RDONLY)
        elif kind == "devpts":
            fs = _devpts(data)
            self._mount(dest, fs, fs.root, m.source or "devpts", flags, _data(data, "gid", "mode", "ptmxmode"))
        elif kind == "mqueue":
            log.warning("POSIX message queues are not supported: mqueue not mounted", destination=m.destination)
        elif kind in ("cgroup", "cgroup2"):
            log.info("cgroup file systems are not served in the sandbox: not mounted", destination=m.destination)
        else:
            log.warning("unsupported mount type: not mounted", destination=m.destination, type=kind)

    def _bind(self, m: PlannedMount, dest: bytes, flags: int) -> None:
        fs = GoferFS(self.client, mount=m.gofer_id, revalidate=True)
        try:
            root = fs.attach()
        except SysError as err:
            log.warning("bind mount not served by the container's gofer: not mounted", destination=m.destination,
                        error=os.strerror(err.errno))
            return
        self._mount(dest, fs, root, "none", flags, "", is_dir=root.kind == S_IFDIR)

    def _mask(self, path: bytes) -> None:
        """linux.maskedPaths: hide a directory under an empty read-only tmpfs, a file under a
        /dev/null node (as runc does)."""
        loc = self._existing(path)
        if loc is None:
            return
        fs = TmpfsFS()
        if loc.inode.kind == S_IFDIR:
            self.ns.mount(loc, fs, fs.new_root(0o755), "tmpfs", ST_RDONLY)
        else:
            self.ns.mount(loc, fs, TmpfsNode(fs, S_IFCHR | 0o666, rdev=NULL), "tmpfs", ST_NOSUID)

    def _readonly(self, path: bytes) -> None:
        """linux.readonlyPaths: a read-only bind of the place onto itself."""
        loc = self._existing(path)
        if loc is None:
            return
        m = loc.mount
        self.ns.mount(loc, m.fs, loc.inode, m.source, m.flags | ST_RDONLY, m.data, root_dentry=loc.dentry)


def _devpts(data: dict[str, str]) -> DevptsFS:
    """A devpts with mount options mode= (of the replicas, 0600 unless given), gid= (else the
    opener's) and ptmxmode= (0000 unless given)."""
    gid = data.get("gid")
    return DevptsFS(_octal(data.get("mode"), 0o600), None if gid is None else _number(gid),
                    _octal(data.get("ptmxmode"), 0))


def _data(data: dict[str, str], *keys: str) -> str:
    """The /proc/mounts data column of the given options."""
    return ",".join(f"{k}={data[k]}" for k in keys if k in data)
