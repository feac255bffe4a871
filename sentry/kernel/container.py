"""The containers of a sandbox: the one the sentry boots with, and a pod's sub-containers.

Each container has a root file system of its own, built over its own gofer the same way for
all (`build_sandbox_fs`: the gofer's tree, writable or read-only as the spec says, or read-only
under a tmpfs upper layer for `ringfence do`; /proc, /dev and the spec's mounts),
and an init process.  Every process belongs to one container (ThreadGroup.container: a
spawned process's is given, a forked one inherits its parent's).

The containers share the kernel's one pid numbering (pids are unique across the sandbox),
but a process sees only its own container's processes, as if each container had a pid
namespace of its own: its /proc lists only them (so that no process reaches another
container's files through /proc/PID/root, cwd or fd), and every syscall that takes a pid
(kill, tgkill, rt_sigqueueinfo, getpgid, setpgid, sched_*, prlimit64, capget...) resolves it
in the caller's container (Kernel.find_group, find_task): another container's pid is ESRCH,
kill(-1) and process groups reach the caller's container only, and kill(-1) spares the
container's init as it spares a pid namespace's.  When a sub-container's init exits, the
kernel kills the container's other processes, as Linux does when a pid namespace's init exits
(Kernel._end_container), and the container ends; the first container's init takes the whole
sandbox with it.

A container can be frozen (Kernel.freeze: the control service's Pause), as by Linux's cgroup
freezer: none of its tasks runs until it is thawed, invisibly to the program.
"""
from __future__ import annotations

import socket

import structlog

from ringfence.gofer.client import GoferClient

from ..abi.errno import ENOENT, ENOTDIR
from ..abi.fs import AT_FDCWD, S_IFMT, S_IFREG
from ..vfs.fdtable import FSContext
from ..vfs.setup import build_sandbox_fs
from ..vfs.walk import Walker
from .creds import Credentials
from .errors import SysError

log = structlog.get_logger("ringfence.sentry")

DEFAULT_PATH = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Seconds the gofer may take to answer while a root is built: a socket nobody serves must not
# hold the sentry (and every container's processes) forever.
GOFER_SETUP_TIMEOUT = 10.0


class ExecutableNotFound(SysError):
    """No executable file of the name in the PATH (ENOENT)."""

    def __init__(self):
        super().__init__(ENOENT)


class Container:
    """One container of the sandbox: its root, its init, its state (see the module docstring)."""

    def __init__(self, kernel, cid: str, gofer_sock: socket.socket, stdio: list, plan=None):
        """Build the root of container `cid` over the gofer at the other end of `gofer_sock`, laid
        out by `plan` (a vfs.mountplan.MountPlan; None: `ringfence do`'s overlay root); `stdio`
        (Files) will be its init's fds 0, 1 and 2.  The socket and the Files become the
        container's (released if building fails: OSError or SysError)."""
        self.kernel = kernel
        self.id = cid
        self.init = None  # its init process, once started
        self.exit_status: int | None = None  # init's wait status once the container has stopped
        self.frozen = False  # paused: no task of it runs (Kernel.freeze, Kernel.thaw)
        self.seccomp = None  # the filter of its processes' syscalls (Kernel.install_seccomp)
        # Blocked tasks of a frozen container whose wait ended (a wake-up, a signal): their
        # syscalls are re-run once it thaws.  A dict, as an ordered set.
        self.thaw_wakes: dict = {}
        self._gofer_sock = gofer_sock
        try:
            gofer_sock.settimeout(GOFER_SETUP_TIMEOUT)
            self._init_fs, self._init_files = build_sandbox_fs(_ProcessView(self), GoferClient(gofer_sock), plan)
            gofer_sock.settimeout(None)
        except BaseException:
            gofer_sock.close()
            for file in stdio:
                file.unref()
            raise
        self.root = self._init_fs.root  # the container's root (init may chroot away from it)
        self.install_stdio(stdio)

    def install_stdio(self, stdio: list) -> None:
        """Make Files `stdio` its init's fds 0, 1, 2... (before it starts)."""
        for fd, file in enumerate(stdio):
            self._init_files.install_at(fd, file)

    @property
    def state(self) -> str:
        """The container's state as runc names it: "created", "running", "paused" or "stopped"."""
        if self.exit_status is not None:
            return "stopped"
        if self.init is None:
            return "created"
        return "paused" if self.frozen else "running"

    def context(self, cwd: bytes) -> FSContext:
        """A fresh file-system context in the container's root, working in `cwd` (SysError if missing)."""
        fs = FSContext(self.root, self.root)
        fs.chdir_path(cwd)
        return fs

    def spawn(self, argv: list[bytes], envp: list[bytes], fs: FSContext, fdtable,
              creds: Credentials | None = None, **attrs):
        """Start `argv` as a new process of the container (see Kernel.spawn, which takes `attrs`:
        rlimits, no_new_privs): argv[0] is looked up in the PATH of `envp` within `fs`.
        SysError (ExecutableNotFound: not in the PATH) or OSError if it cannot be run."""
        path = find_executable(fs, argv[0], env_path(envp))
        return self.kernel.spawn(self, path, argv, envp, fs, fdtable, creds, **attrs)

    def start(self, argv: list[bytes], envp: list[bytes], cwd: bytes, creds: Credentials | None = None, **attrs):
        """Spawn the container's init (as `spawn`), working in `cwd` (in / if the root lacks it);
        returns it.  If it cannot be run, the container stops with status 127 (not found) or
        126, as a shell's, and the SysError or OSError is raised."""
        try:
            self._init_fs.chdir_path(cwd)
        except (SysError, OSError):
            log.warning("working directory not in the container's root, using /", container=self.id,
                        cwd=cwd.decode(errors="replace"))
        try:
            self.init = self.spawn(argv, envp, self._init_fs, self._init_files, creds, **attrs)
        except (SysError, OSError) as err:
            self.end((127 if err.errno in (ENOENT, ENOTDIR) else 126) << 8)
            raise
        return self.init

    def end(self, status: int) -> None:
        """The container stopped with wait status `status`: its gofer connection is closed and
        its files are let go."""
        self.exit_status = status
        self.frozen = False
        self.thaw_wakes.clear()
        self._init_files.close_all()  # (init's table: already closed unless init never ran)
        self._gofer_sock.close()
        self.root = self._init_fs = self._init_files = None


class _ProcessView:
    """The kernel as a container's /proc sees it: the kernel's attributes, but only the
    container's processes."""

    __slots__ = ("_container",)

    def __init__(self, container: Container):
        self._container = container

    def threadgroups(self) -> list:
        """The container's live (not yet reaped) processes."""
        container = self._container
        return [tg for tg in container.kernel.threadgroups() if tg.container is container]

    def __getattr__(self, name: str):
        return getattr(self._container.kernel, name)


def env_path(envp: list[bytes]) -> bytes:
    """The PATH of environment `envp` (a default one if it has none)."""
    return next((e[5:] for e in envp if e.startswith(b"PATH=")), DEFAULT_PATH)


def find_executable(fs: FSContext, name: bytes, path: bytes) -> bytes:
    """`name` if it has a slash, else the first regular, executable file of that name in
    `path`'s directories; ExecutableNotFound if there is none."""
    if b"/" in name:
        return name
    for directory in path.split(b":"):
        candidate = (directory or b".") + b"/" + name
        try:
            mode = Walker(None, fs).resolve(AT_FDCWD, candidate).inode.stat().st_mode
        except SysError:
            continue
        if mode & S_IFMT == S_IFREG and mode & 0o111:
            return candidate
    raise ExecutableNotFound()
