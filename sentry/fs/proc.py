"""proc: the sentry's view of its processes, built on every lookup (nothing is cached).

/proc/self, /proc/thread-self, /proc/PID/{cmdline,comm,exe,stat,status,cwd,
root,fd/,mounts,task/TID/}, /proc/version, /proc/uptime, /proc/mounts,
/proc/filesystems, /proc/meminfo.  Files are generated when opened.  The
cwd, root and fd/N links are "magic": following them leads to the file
itself, not to a path.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from ..abi.errno import EACCES, ENOENT
from ..abi.fs import DT_SHIFT, O_ACCMODE, O_RDONLY, PROC_SUPER_MAGIC, S_IFDIR, S_IFLNK, S_IFREG
from ..kernel.errors import SysError
from ..vfs.dentry import Location
from ..vfs.file import DirFile, SnapshotFile
from ..vfs.inode import AttrInode, FileSystem, Inode
from ..vfs.walk import path_of

_STATE_NAMES = {"R": "running", "S": "sleeping", "Z": "zombie", "X": "dead"}
_FILESYSTEMS = b"nodev\ttmpfs\nnodev\tproc\nnodev\toverlay\nnodev\t9p\nnodev\tpipefs\n"
_RLIM_INFINITY = (1 << 64) - 1


class ProcFS(FileSystem):
    """One proc instance, showing the processes of `kernel`."""

    name = "proc"
    magic = PROC_SUPER_MAGIC
    cache_dentries = False

    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel

    def new_root(self) -> ProcRoot:
        """The /proc directory."""
        return ProcRoot(self)


class ProcFile(AttrInode):
    """A read-only file whose content `gen(t)` makes when it is opened."""

    __slots__ = ("_gen",)

    def __init__(self, fs: ProcFS, gen: Callable[[object], bytes], uid: int = 0, gid: int = 0):
        super().__init__(fs, S_IFREG | 0o444, uid, gid)
        self._gen = gen

    def open(self, t, loc, flags: int):
        """A snapshot of the content."""
        if flags & O_ACCMODE != O_RDONLY:
            raise SysError(EACCES)
        return SnapshotFile(loc, flags, self._gen(t))


class ProcLink(AttrInode):
    """A symlink whose target `target(t)` is computed when read: a path, or a Location (magic link)."""

    __slots__ = ("_target",)

    def __init__(self, fs: ProcFS, target: Callable[[object], bytes | Location], uid: int = 0, gid: int = 0,
                 perm: int = 0o777):
        super().__init__(fs, S_IFLNK | perm, uid, gid)
        self._target = target

    def readlink(self, t) -> bytes:
        """The target's path (as seen from the reader's root)."""
        target = self._target(t)
        return target if isinstance(target, bytes) else path_of(target, t.fs.root)

    def get_link(self, t):
        """The target."""
        return self._target(t)


class ProcDir(AttrInode):
    """A directory listing `children()`: name -> function making the child's inode."""

    __slots__ = ()

    def __init__(self, fs: ProcFS, uid: int = 0, gid: int = 0):
        super().__init__(fs, S_IFDIR | 0o555, uid, gid, nlink=2)

    def children(self) -> dict[bytes, Callable[[], Inode]]:
        """The entries now."""
        raise NotImplementedError

    def open(self, t, loc, flags: int):
        """Open for getdents."""
        return DirFile(loc, flags)

    def lookup(self, name: bytes) -> Inode:
        """A fresh inode for `name`."""
        make = self.children().get(name)
        if make is None:
            raise SysError(ENOENT)
        return make()

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """Every entry, with fresh inodes."""
        out = []
        for name, make in self.children().items():
            inode = make()
            out.append((name, inode.ino, inode.kind >> DT_SHIFT))
        return out


def _self_link(t) -> bytes:
    if t is None:
        raise SysError(ENOENT)
    return b"%d" % t.tg.pid


def _thread_self_link(t) -> bytes:
    if t is None:
        raise SysError(ENOENT)
    return b"%d/task/%d" % (t.tg.pid, t.tid)


class ProcRoot(ProcDir):
    """/proc: one directory per process, self links and system-wide files."""

    __slots__ = ()

    def children(self):
        """Processes and the fixed entries."""
        fs = self.fs
        k = fs.kernel
        entries = {
            b"self": lambda: ProcLink(fs, _self_link),
            b"thread-self": lambda: ProcLink(fs, _thread_self_link),
            b"mounts": lambda: ProcLink(fs, lambda t: b"self/mounts"),
            b"version": lambda: ProcFile(fs, lambda t: k.version_string),
            b"uptime": lambda: ProcFile(fs, lambda t: b"%.2f 0.00\n" % (time.time() - k.boot_time)),
            b"filesystems": lambda: ProcFile(fs, lambda t: _FILESYSTEMS),
            b"meminfo": lambda: ProcFile(fs, _meminfo),
        }
        for tg in k.threadgroups():
            entries[b"%d" % tg.pid] = lambda tg=tg: PidDir(fs, tg, None)
        return entries


def _task_of(tg):
    """The task that represents process `tg` (its leader while it lives)."""
    task = tg.tasks.get(tg.pid)
    if task is None:
        task = next(iter(tg.tasks.values()), None)
    if task is None:
        raise SysError(ENOENT)
    return task


class PidDir(ProcDir):
    """/proc/PID (thread None) or /proc/PID/task/TID."""

    __slots__ = ("tg", "thread")

    def __init__(self, fs: ProcFS, tg, thread):
        task = thread or _task_of(tg)
        super().__init__(fs, task.creds.euid, task.creds.egid)
        self.tg = tg
        self.thread = thread

    def children(self):
        """The per-process entries."""
        fs, tg = self.fs, self.tg
        task = self.thread or _task_of(tg)
        uid, gid = self.uid, self.gid
        entries = {
            b"cmdline": lambda: ProcFile(fs, lambda t: tg.cmdline, uid, gid),
            b"comm": lambda: ProcFile(fs, lambda t: tg.comm + b"\n", uid, gid),
            b"stat": lambda: ProcFile(fs, lambda t: _stat(tg, task), uid, gid),
            b"status": lambda: ProcFile(fs, lambda t: _status(tg, task), uid, gid),
            b"mounts": lambda: ProcFile(fs, lambda t: _mounts(task.fs.root), uid, gid),
            b"exe": lambda: ProcLink(fs, lambda t: _exe(tg), uid, gid),
            b"cwd": lambda: ProcLink(fs, lambda t: task.fs.cwd, uid, gid),
            b"root": lambda: ProcLink(fs, lambda t: task.fs.root, uid, gid),
            b"fd": lambda: FdDir(fs, task),
        }
        if self.thread is None:
            entries[b"task"] = lambda: TaskDir(fs, tg, uid, gid)
        return entries


def _exe(tg) -> bytes:
    if not tg.exe:
        raise SysError(ENOENT)
    return tg.exe


class TaskDir(ProcDir):
    """/proc/PID/task: one directory per thread."""

    __slots__ = ("tg",)

    def __init__(self, fs: ProcFS, tg, uid: int, gid: int):
        super().__init__(fs, uid, gid)
        self.tg = tg

    def children(self):
        """The threads."""
        return {b"%d" % tid: (lambda task=task: PidDir(self.fs, self.tg, task))
                for tid, task in self.tg.tasks.items()}


class FdDir(ProcDir):
    """/proc/PID/fd: a magic link per open descriptor."""

    __slots__ = ("task",)

    def __init__(self, fs: ProcFS, task):
        super().__init__(fs, task.creds.euid, task.creds.egid)
        self.mode = S_IFDIR | 0o500
        self.task = task

    def children(self):
        """The descriptors."""
        fs, uid, gid = self.fs, self.uid, self.gid
        return {b"%d" % fd: (lambda f=f: ProcLink(fs, lambda t: f.loc, uid, gid,
                                                  0o400 * f.readable | 0o200 * f.writable | 0o100))
                for fd, f in self.task.fdtable.items()}


def _stat(tg, task) -> bytes:
    """/proc/PID/stat: identity, state and thread count; the rest zero (no accounting yet)."""
    fields = [tg.ppid, tg.pgid, tg.sid, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, len(tg.tasks), 0, 0, 0, 0,
              _RLIM_INFINITY] + [0] * 12 + [tg.exit_signal] + [0] * 14
    tid = task.tid if task is not None else tg.pid
    return b"%d (%s) %s %s\n" % (tid, tg.comm, tg.state.encode(), b" ".join(b"%d" % v for v in fields))


def _status(tg, task) -> bytes:
    """/proc/PID/status: the common fields."""
    c = task.creds
    state = tg.state
    lines = [
        b"Name:\t%s" % tg.comm,
        b"Umask:\t%04o" % task.fs.umask,
        b"State:\t%s (%s)" % (state.encode(), _STATE_NAMES.get(state, "unknown").encode()),
        b"Tgid:\t%d" % tg.pid,
        b"Ngid:\t0",
        b"Pid:\t%d" % task.tid,
        b"PPid:\t%d" % tg.ppid,
        b"TracerPid:\t0",
        b"Uid:\t%d\t%d\t%d\t%d" % (c.uid, c.euid, c.suid, c.fsuid),
        b"Gid:\t%d\t%d\t%d\t%d" % (c.gid, c.egid, c.sgid, c.fsgid),
        b"FDSize:\t%d" % max(64, len(task.fdtable.items())),
        b"Groups:\t%s" % b" ".join(b"%d" % g for g in c.groups),
        b"Threads:\t%d" % len(tg.tasks),
    ]
    return b"\n".join(lines) + b"\n"


def _escape(path: bytes) -> bytes:
    """Octal-escape what would break a /proc/mounts line."""
    for ch in b"\\ \t\n":
        path = path.replace(bytes([ch]), b"\\%03o" % ch)
    return path


def _mounts(root: Location) -> bytes:
    """/proc/PID/mounts: the mounts visible from `root`."""
    lines = []
    for m in root.mount.ns.mounts:
        where = path_of(Location(m, m.root), root)
        if where.startswith(b"/"):
            lines.append(b"%s %s %s %s 0 0\n" % (m.source.encode(), _escape(where), m.fs.name.encode(),
                                                  m.options().encode()))
    return b"".join(lines)


def _meminfo(t) -> bytes:
    """/proc/meminfo: totals from the host's physical memory."""
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    total = os.sysconf("SC_PHYS_PAGES") * page_kb
    free = os.sysconf("SC_AVPHYS_PAGES") * page_kb
    return (b"MemTotal:       %8d kB\nMemFree:        %8d kB\nMemAvailable:   %8d kB\nBuffers:        %8d kB\n"
            b"Cached:         %8d kB\nSwapTotal:      %8d kB\nSwapFree:       %8d kB\n") % (total, free, free, 0, 0, 0, 0)
