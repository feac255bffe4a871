"""devpts: the file system of the sentry's pseudo-terminals (mounted at /dev/pts).

An instance holds `ptmx` (character device 5:2: opening it makes a new terminal in this
instance) and, while a terminal's master is open, its replica `N` (character device 136:N, and
majors 137... past 255), numbered per instance from 0.  Mount options: mode= (the replicas'
mode, 0600 unless given), gid= (their group, else the opener's), ptmxmode= (ptmx's mode, 0000
unless given).
"""
from __future__ import annotations

from ..abi.errno import ENOENT, ENOSPC
from ..abi.fs import DT_SHIFT, S_IFCHR, S_IFDIR, makedev
from ..abi.termios import DEVPTS_SUPER_MAGIC, PTMX_MINOR, PTS_MAJOR, TTYAUX_MAJOR
from ..kernel.errors import SysError
from ..vfs.dentry import Dentry, Location
from ..vfs.file import DirFile
from ..vfs.inode import AttrInode, FileSystem, Inode
from .tmpfs import TmpfsNode

PTY_MAX = 4096  # terminals per instance (Linux's kernel.pty.max)
PTMX = makedev(TTYAUX_MAJOR, PTMX_MINOR)
_ROOT_INO, _PTMX_INO = 1, 2  # replica N is inode N + 3, as on Linux


class DevptsFS(FileSystem):
    """One devpts instance: its terminals by number."""

    name = "devpts"
    magic = DEVPTS_SUPER_MAGIC
    cache_dentries = False  # replicas come and go with their terminals

    def __init__(self, mode: int = 0o600, gid: int | None = None, ptmxmode: int = 0):
        super().__init__()
        self.mode = mode
        self.gid = gid
        self.root = DevptsRoot(self)
        self.ptmx = TmpfsNode(self, S_IFCHR | ptmxmode, rdev=PTMX, ino=_PTMX_INO)
        self.replicas: dict[int, ReplicaInode] = {}  # the names shown
        self.numbers: set[int] = set()  # numbers in use (a replica may outlive its name)

    def add(self, terminal, uid: int, gid: int) -> ReplicaInode:
        """Number a new terminal and show its replica, owned by `uid` (and `gid` unless the
        instance has a gid=); ENOSPC past PTY_MAX."""
        n = next((i for i in range(PTY_MAX) if i not in self.numbers), None)
        if n is None:
            raise SysError(ENOSPC)
        self.numbers.add(n)
        inode = ReplicaInode(self, n, terminal, uid, self.gid if self.gid is not None else gid)
        self.replicas[n] = inode
        return inode

    def hide(self, n: int) -> None:
        """Remove replica `n`'s name (its master closed)."""
        self.replicas.pop(n, None)

    def release(self, n: int) -> None:
        """Number `n` may be given to a new terminal."""
        self.numbers.discard(n)


class DevptsRoot(AttrInode):
    """The root directory: ptmx and the replicas."""

    __slots__ = ()

    def __init__(self, fs: DevptsFS):
        super().__init__(fs, S_IFDIR | 0o755, nlink=2, ino=_ROOT_INO)

    def open(self, t, loc, flags: int):
        """Open for getdents."""
        return DirFile(loc, flags)

    def lookup(self, name: bytes) -> Inode:
        """ptmx, or the replica of a live terminal."""
        fs = self.fs
        if name == b"ptmx":
            return fs.ptmx
        if name.isdigit() and name == b"%d" % int(name) and int(name) in fs.replicas:
            return fs.replicas[int(name)]
        raise SysError(ENOENT)

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """ptmx, then the replicas by number."""
        fs = self.fs
        chr_type = S_IFCHR >> DT_SHIFT
        return [(b"ptmx", _PTMX_INO, chr_type)] + [(b"%d" % n, fs.replicas[n].ino, chr_type)
                                                     for n in sorted(fs.replicas)]


class ReplicaInode(AttrInode):
    """/dev/pts/N: opening it opens terminal N's replica."""

    __slots__ = ("number", "terminal")

    def __init__(self, fs: DevptsFS, n: int, terminal, uid: int, gid: int):
        super().__init__(fs, S_IFCHR | fs.mode, uid, gid, rdev=makedev(PTS_MAJOR + n // 256, n % 256),
                         ino=n + 3)
        self.number = n
        self.terminal = terminal

    def open(self, t, loc, flags: int):
        """A file on the terminal's replica."""
        return self.terminal.open_replica(t, loc, flags)


def replica_location(pts: Location, inode: ReplicaInode) -> Location:
    """The place of replica `inode` in the devpts mounted at `pts` (its root)."""
    return Location(pts.mount, Dentry(b"%d" % inode.number, pts.dentry, inode))
