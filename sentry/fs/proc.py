"""proc: the sentry's view of its processes, built on every lookup (nothing is cached).

/proc/self, /proc/thread-self, /proc/PID/{cmdline,comm,environ,exe,stat,
statm,status,maps,limits,wchan,cwd,root,fd/,fdinfo/,mounts,mountinfo,task/TID/},
/proc/{version,uptime,loadavg,stat,meminfo,cpuinfo,mounts,filesystems} and
/proc/sys/kernel/{hostname,osrelease,ostype,pid_max}.  Only the sandbox's
processes appear.  Files are generated when opened (their contents come from
proc_pid.py and proc_sys.py).  The cwd, root and fd/N links are "magic":
following them leads to the file itself, not to a path.
"""
from __future__ import annotations

from typing import Callable

from ..abi.errno import EACCES, ENOENT
from ..abi.fs import DT_SHIFT, O_ACCMODE, O_RDONLY, PROC_SUPER_MAGIC, S_IFDIR, S_IFLNK, S_IFREG, major, minor
from ..abi.proc import PID_MAX
from ..kernel.errors import SysError
from ..vfs.dentry import Location
from ..vfs.file import DirFile, SnapshotFile
from ..vfs.inode import AttrInode, FileSystem, Inode
from ..vfs.walk import path_of
from . import proc_pid, proc_sys


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

    def __init__(self, fs: ProcFS, gen: Callable[[object], bytes], uid: int = 0, gid: int = 0, perm: int = 0o444):
        super().__init__(fs, S_IFREG | perm, uid, gid)
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

    def __init__(self, fs: ProcFS, uid: int = 0, gid: int = 0, perm: int = 0o555):
        super().__init__(fs, S_IFDIR | perm, uid, gid, nlink=2)

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


class StaticDir(ProcDir):
    """A directory with a fixed set of entries (/proc/sys/kernel...)."""

    __slots__ = ("_entries",)

    def __init__(self, fs: ProcFS, entries: dict[bytes, Callable[[], Inode]]):
        super().__init__(fs)
        self._entries = entries

    def children(self):
        """The entries."""
        return self._entries


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
            b"sys": lambda: StaticDir(fs, {b"kernel": lambda: _sys_kernel(fs)}),
        }
        for name, gen in ((b"version", lambda k: k.version_string), (b"filesystems", lambda k: proc_sys.FILESYSTEMS),
                          (b"uptime", proc_sys.uptime), (b"loadavg", proc_sys.loadavg), (b"stat", proc_sys.stat),
                          (b"meminfo", proc_sys.meminfo), (b"cpuinfo", proc_sys.cpuinfo)):
            entries[name] = lambda gen=gen: ProcFile(fs, lambda t: gen(k))
        for tg in k.threadgroups():
            entries[b"%d" % tg.pid] = lambda tg=tg: PidDir(fs, tg, None)
        return entries


def _sys_kernel(fs: ProcFS) -> StaticDir:
    """/proc/sys/kernel: the sandbox's names and limits (read-only)."""
    k = fs.kernel
    values = {b"hostname": lambda: k.hostname, b"osrelease": lambda: k.release, b"ostype": lambda: b"Linux",
              b"pid_max": lambda: b"%d" % PID_MAX}
    return StaticDir(fs, {name: (lambda value=value: ProcFile(fs, lambda t: value() + b"\n"))
                          for name, value in values.items()})


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
        """The per-process (or per-thread) entries."""
        fs, tg, thread = self.fs, self.tg, self.thread
        task = thread or _task_of(tg)
        uid, gid = self.uid, self.gid

        def file(gen, perm=0o444):
            return lambda: ProcFile(fs, lambda t: gen(), uid, gid, perm)

        entries = {
            b"cmdline": file(lambda: proc_pid.cmdline(tg, task)),
            b"comm": file(lambda: tg.comm + b"\n"),
            b"environ": file(lambda: proc_pid.environ(tg, task), 0o400),
            b"stat": file(lambda: proc_pid.stat(tg, task, thread)),
            b"statm": file(lambda: proc_pid.statm(tg, task)),
            b"status": file(lambda: proc_pid.status(tg, task, thread)),
            b"maps": file(lambda: proc_pid.maps(tg, task)),
            b"limits": file(lambda: proc_pid.limits(tg)),
            b"mounts": file(lambda: _mounts(task.fs.root)),
            b"mountinfo": file(lambda: _mountinfo(task.fs.root)),
            b"wchan": file(lambda: b"0"),  # no kernel symbols to name where a task sleeps
            b"exe": lambda: ProcLink(fs, lambda t: _exe(tg), uid, gid),
            b"cwd": lambda: ProcLink(fs, lambda t: task.fs.cwd, uid, gid),
            b"root": lambda: ProcLink(fs, lambda t: task.fs.root, uid, gid),
            b"fd": lambda: FdDir(fs, task),
            b"fdinfo": lambda: FdInfoDir(fs, task),
        }
        if thread is None:
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
        super().__init__(fs, task.creds.euid, task.creds.egid, 0o500)
        self.task = task

    def children(self):
        """The descriptors."""
        fs, uid, gid = self.fs, self.uid, self.gid
        return {b"%d" % fd: (lambda f=f: ProcLink(fs, lambda t: f.loc, uid, gid,
                                                  0o400 * f.readable | 0o200 * f.writable | 0o100))
                for fd, f in _descriptors(self.task)}


class FdInfoDir(ProcDir):
    """/proc/PID/fdinfo: a file per open descriptor (offset, flags, mount, inode)."""

    __slots__ = ("task",)

    def __init__(self, fs: ProcFS, task):
        super().__init__(fs, task.creds.euid, task.creds.egid, 0o500)
        self.task = task

    def children(self):
        """The descriptors."""
        fs, task, uid, gid = self.fs, self.task, self.uid, self.gid
        return {b"%d" % fd: (lambda fd=fd: ProcFile(fs, lambda t: proc_pid.fdinfo(task, fd), uid, gid))
                for fd, _ in _descriptors(task)}


def _descriptors(task) -> list:
    """The open (fd, File) pairs of `task` (none once it exited)."""
    return task.fdtable.items() if task.fdtable is not None else []


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


def _mountinfo(root: Location) -> bytes:
    """/proc/PID/mountinfo: the mounts visible from `root`, with ids, devices and roots."""
    lines = []
    for m in root.mount.ns.mounts:
        where = path_of(Location(m, m.root), root)
        if not where.startswith(b"/"):
            continue
        parent = m.parent.id if m.parent is not None else m.id
        dev = m.fs.dev
        sb = "ro" if m.readonly else "rw"
        if m.data:
            sb += "," + m.data
        lines.append(b"%d %d %d:%d %s %s %s - %s %s %s\n" % (
            m.id, parent, major(dev), minor(dev), _escape(m.root_path()), _escape(where),
            m.mount_options().encode(), m.fs.name.encode(), _escape(m.source.encode()), sb.encode()))
    return b"".join(lines)
