"""File descriptor tables and the per-task file-system context (root, cwd, umask)."""
from __future__ import annotations

from ..abi.errno import EBADF, EMFILE, ENOTDIR
from ..abi.fs import AT_FDCWD, NR_OPEN_DEFAULT, S_IFDIR
from ..kernel.errors import SysError
from .dentry import Location
from .file import File
from .lock import release_posix
from .walk import Walker


class FDTable:
    """A process's descriptors: fd -> File, the close-on-exec set, and the RLIMIT_NOFILE cap.

    Installing a File hands the table one reference to it (the caller's: a new
    File, or one taken with `File.ref()`), even when installing fails.
    """

    __slots__ = ("_files", "_cloexec", "limit")

    def __init__(self, limit: int = NR_OPEN_DEFAULT):
        self._files: dict[int, File] = {}
        self._cloexec: set[int] = set()
        self.limit = limit  # descriptors must be < limit (the kernel sets it from RLIMIT_NOFILE)

    def set_limit(self, limit: int) -> None:
        """Set the RLIMIT_NOFILE cap (descriptors already open stay open)."""
        self.limit = limit

    def get(self, fd: int) -> File:
        """The File at `fd`; SysError(EBADF) if it is not open."""
        try:
            return self._files[fd]
        except KeyError:
            raise SysError(EBADF) from None

    def install(self, f: File, cloexec: bool = False, minfd: int = 0) -> int:
        """Put `f` at the lowest free fd >= `minfd`; SysError(EMFILE) past the limit."""
        fd = minfd
        files = self._files
        while fd in files:
            fd += 1
        if fd >= self.limit:
            f.unref()
            raise SysError(EMFILE)
        files[fd] = f
        if cloexec:
            self._cloexec.add(fd)
        return fd

    def install_at(self, fd: int, f: File, cloexec: bool = False) -> None:
        """Put `f` at `fd`, closing what was there (dup2); SysError(EBADF) past the limit."""
        if not 0 <= fd < self.limit:
            f.unref()
            raise SysError(EBADF)
        old = self._files.get(fd)
        self._files[fd] = f
        self.set_cloexec(fd, cloexec)
        if old is not None:
            self._closed(old)

    def close(self, fd: int) -> None:
        """Close `fd`; SysError(EBADF) if it is not open."""
        f = self._files.pop(fd, None)
        if f is None:
            raise SysError(EBADF)
        self._cloexec.discard(fd)
        self._closed(f)

    def close_range(self, first: int, last: int, cloexec: bool) -> None:
        """close_range(2): close every open fd from `first` to `last` as close(2) does, or only mark
        them close-on-exec if `cloexec`."""
        for fd in sorted(fd for fd in self._files if first <= fd <= last):
            if cloexec:
                self._cloexec.add(fd)
            else:
                self.close(fd)

    def _closed(self, f: File) -> None:
        """An fd of `f` was closed: this table's POSIX locks on the file go, and its reference."""
        release_posix(self, f)
        f.unref()

    def cloexec(self, fd: int) -> bool:
        """Whether `fd` is close-on-exec."""
        return fd in self._cloexec

    def set_cloexec(self, fd: int, on: bool) -> None:
        """Set or clear close-on-exec on `fd`."""
        if on:
            self._cloexec.add(fd)
        else:
            self._cloexec.discard(fd)

    def items(self) -> list[tuple[int, File]]:
        """The open descriptors, in fd order."""
        return sorted(self._files.items())

    def fork(self) -> FDTable:
        """A copy sharing the same open files (fork without CLONE_FILES)."""
        new = FDTable(self.limit)
        new._files = {fd: f.ref() for fd, f in self._files.items()}
        new._cloexec = set(self._cloexec)
        return new

    def close_on_exec(self) -> None:
        """Close every close-on-exec descriptor (execve)."""
        for fd in sorted(self._cloexec):
            self.close(fd)

    def close_all(self) -> None:
        """Close every descriptor (exit)."""
        files, self._files = self._files, {}
        self._cloexec.clear()
        for f in files.values():
            self._closed(f)


class FSContext:
    """A task's root directory, working directory and umask."""

    __slots__ = ("root", "cwd", "umask")

    def __init__(self, root: Location, cwd: Location, umask: int = 0o022):
        self.root = root
        self.cwd = cwd
        self.umask = umask

    def fork(self) -> FSContext:
        """A copy (fork without CLONE_FS)."""
        return FSContext(self.root, self.cwd, self.umask)

    def chdir_path(self, path: bytes) -> None:
        """Change directory to absolute or cwd-relative `path`, walking as root (boot)."""
        loc = Walker(None, self).resolve(AT_FDCWD, path)
        if loc.inode.kind != S_IFDIR:
            raise SysError(ENOTDIR)
        self.cwd = loc
