"""A container's initial file system: overlay root, /proc and /dev."""
from __future__ import annotations

from ..abi.errno import ENOENT
from ..abi.fs import AT_FDCWD, S_IALLUGO, ST_NOEXEC, ST_NOSUID, ST_NODEV
from ..fs.dev import build_devfs
from ..fs.gofer import GoferFS
from ..fs.overlay import OverlayFS
from ..fs.proc import ProcFS
from ..fs.tmpfs import TmpfsFS
from ..kernel.errors import SysError
from .dentry import Location, MountNamespace
from .fdtable import FDTable, FSContext
from .inode import FileSystem, Inode
from .walk import Walker


def _mount(ns: MountNamespace, ctx: FSContext, name: bytes, fs: FileSystem, root: Inode, source: str,
           flags: int, data: str = "") -> None:
    """Mount `root` on /`name`, creating the directory (in the overlay) if the lower tree lacks it."""
    top = ns.root_location()
    try:
        at = Walker(None, ctx).resolve(AT_FDCWD, b"/" + name)
    except SysError as err:
        if err.errno != ENOENT:
            raise
        at = Location(top.mount, top.dentry.add(name, top.inode.mkdir(name, 0o755, 0, 0)))
    ns.mount(at, fs, root, source, flags, data)


def build_sandbox_fs(kernel, gofer_client) -> tuple[FSContext, FDTable]:
    """The init task's file-system context and (empty) fd table: the gofer's tree read-only under a
    tmpfs upper layer as /, with proc on /proc (showing `kernel`'s processes: a container's view,
    see kernel/container.py) and the sentry's devices on /dev."""
    lower = GoferFS(gofer_client).attach()
    a = lower.stat()
    upper = TmpfsFS().new_root(a.st_mode & S_IALLUGO, a.st_uid, a.st_gid)
    overlay = OverlayFS(upper, lower)
    ns = MountNamespace(overlay, overlay.root, "overlay")
    root = ns.root_location()
    ctx = FSContext(root, root)
    proc = ProcFS(kernel)
    _mount(ns, ctx, b"proc", proc, proc.new_root(), "proc", ST_NOSUID | ST_NODEV | ST_NOEXEC)
    _mount(ns, ctx, b"dev", *build_devfs(), "tmpfs", ST_NOSUID, "mode=755")
    return ctx, FDTable()
