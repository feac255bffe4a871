"""Unit tests of the sentry's VFS and file-system syscalls, without the platform.

Handlers run against a fake Task whose memory is a bytearray (addresses
outside it fault).  The lower tree is a temporary directory served by the
real gofer (skipped where it cannot start: it needs CAP_SYS_ADMIN) and by a
small in-test GoferClient over the same directory.

Like the rest of the suite they test the installed package (conftest.py):
reinstall (`pip install .`) after editing the sources.
"""
from __future__ import annotations

import os
import signal
import stat as statmod
import struct
from types import SimpleNamespace

import pytest
from ringfence.gofer.protocol import Dirent, Stat
from ringfence.sentry.abi import errno as E
from ringfence.sentry.abi.fs import (
    AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, DIRENT64, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL,
    F_GETLK, F_SETFL, F_UNLCK, F_WRLCK, FD_CLOEXEC, FLOCK, INT_PAIR, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY,
    O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR, O_TMPFILE, O_TRUNC, O_WRONLY, POLLFD, POLLIN, POLLNVAL,
    POLLOUT, RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_END, SEEK_SET, STAT, STATFS, STATX, ST_RDONLY,
    OVERLAYFS_SUPER_MAGIC,
)
from ringfence.sentry.kernel.creds import Credentials
from ringfence.sentry.kernel.errors import SysError
from ringfence.sentry.kernel.schedattrs import SchedAttrs
from ringfence.sentry.kernel.task import RLIM_INFINITY, TaskState, ThreadGroup
from ringfence.sentry.mm.mm import ImageLayout, MemoryManager
from ringfence.sentry.mm.vma import VmaList
from ringfence.sentry.kernel.waitqueue import Block
from ringfence.sentry.abi.sysno import NUMBERS
from ringfence.sentry.syscalls.table import TABLE
from ringfence.sentry.vfs import build_sandbox_fs, open_path, std_files
from ringfence.sentry.vfs.walk import Walker

MASK64 = (1 << 64) - 1
BASE = 0x10000
MEMSIZE = 1 << 21
BAD = 0x5000  # below BASE: faults


# -- fakes ---------------------------------------------------------------------
class FakeGofer:
    """GoferClient's API over a host directory with plain os calls (used when the real gofer cannot start)."""

    def __init__(self, root: str):
        self.root = root
        self.paths = {}
        self.next = 1

    def _node(self, path):
        h = self.next
        self.next += 1
        self.paths[h] = path
        return h, self._stat(path)

    @staticmethod
    def _stat(path):
        st = os.lstat(path)
        return Stat(st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev, st.st_size,
                    st.st_blksize, st.st_blocks, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)

    def attach(self):
        return self._node(self.root)

    def walk(self, handle, name):
        return self._node(os.path.join(self.paths[handle], os.fsdecode(name)))

    def stat(self, handle):
        return self._stat(self.paths[handle])

    def open(self, handle, flags):
        return os.open(self.paths[handle], flags | os.O_CLOEXEC | os.O_NOFOLLOW)

    def readlink(self, handle):
        return os.fsencode(os.readlink(self.paths[handle]))

    def getdents(self, handle):
        with os.scandir(self.paths[handle]) as it:
            return [Dirent(e.inode(), statmod.S_IFMT(e.stat(follow_symlinks=False).st_mode) >> 12, os.fsencode(e.name))
                    for e in it]

    def close(self, *handles):
        for handle in handles:
            del self.paths[handle]


class FakeMM:
    """Program memory: a bytearray at BASE; everything else faults."""

    def __init__(self):
        self.mem = bytearray(MEMSIZE)
        self.top = BASE
        self.vmas, self.layout, self.brk_start = VmaList(), ImageLayout(), 0  # what /proc shows
        self.space = SimpleNamespace(pid=0)  # CPU clocks of pid 0: the test process's own

    usage = MemoryManager.usage

    def _off(self, addr, n):
        if addr < BASE or addr + n > BASE + MEMSIZE:
            raise SysError(E.EFAULT)
        return addr - BASE

    def read(self, addr, n):
        o = self._off(addr, n)
        return bytes(self.mem[o:o + n])

    def write(self, addr, data):
        o = self._off(addr, len(data))
        self.mem[o:o + len(data)] = data

    def read_cstr(self, addr, maximum=4096):
        o = self._off(addr, 1)
        end = self.mem.find(b"\0", o, o + maximum)
        if end < 0:
            raise SysError(E.ENAMETOOLONG)
        return bytes(self.mem[o:end])

    def read_iovecs(self, addr, count):
        raw = self.read(addr, 16 * count)
        return [struct.unpack_from("<QQ", raw, i) for i in range(0, 16 * count, 16)]

    def alloc(self, data=b"", size=None):
        """Copy `data` (or reserve `size` bytes) and return its address."""
        size = len(data) if size is None else size
        addr = self.top
        self.top += (size + 15) & ~15
        self.write(addr, data.ljust(size, b"\0"))
        return addr

    def cstr(self, s):
        return self.alloc(os.fsencode(s) + b"\0")


class FakeTG(ThreadGroup):
    def __init__(self, kernel, pid):
        super().__init__(kernel, pid, None)
        self.comm, self.cmdline, self.exe = b"prog", b"prog\0", b"/bin/prog"


class FakeKernel:
    release = b"4.4.0"
    version_string = b"Linux version 4.4.0 (test)\n"
    hostname = b"sandbox"
    boot_time = boot_monotonic = 0.0
    default_rlimits = {r: (RLIM_INFINITY, RLIM_INFINITY) for r in range(16)}

    def __init__(self):
        self.groups = []

    def threadgroups(self):
        return list(self.groups)


class FakeTask:
    def __init__(self, kernel, pid, fsctx, fdtable):
        self.kernel, self.tid, self.creds = kernel, pid, Credentials()
        self.tg = FakeTG(kernel, pid)
        self.tg.tasks[pid] = self
        kernel.groups.append(self.tg)
        self.mm, self.fs, self.fdtable = FakeMM(), fsctx, fdtable
        self.host_pid = 0  # CPU clocks of pid 0: the test process's own
        self.signals = []
        self.state, self.sigmask, self.pending, self.sched = TaskState.RUNNING, 0, [], SchedAttrs()

    def send_signal(self, sig):
        self.signals.append(sig)

    def fork(self, pid):
        return FakeTask(self.kernel, pid, self.fs.fork(), self.fdtable.fork())


def sc(t, name, *args):
    """Run syscall `name`'s handler with raw (unsigned) arguments: its result, -errno, or a Block."""
    try:
        return TABLE[NUMBERS[name]].handler(t, *(a & MASK64 for a in args))
    except SysError as err:
        return -err.errno


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def lower(tmp_path_factory):
    root = tmp_path_factory.mktemp("lower")
    (root / "bin").mkdir()
    (root / "bin" / "prog").write_bytes(b"\x7fELF-not-really" * 10)
    (root / "bin" / "prog").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_bytes(b"lowerhost\n")
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a").write_bytes(b"A" * 100)
    (root / "dir" / "b").write_bytes(b"B")
    (root / "dir" / "sub" / "c").write_bytes(b"C")
    (root / "many").mkdir()
    for i in range(100):
        (root / "many" / f"file{i:03d}").write_bytes(b"")
    (root / "tmp").mkdir()
    os.symlink("dir", root / "link")
    os.symlink("/dir/a", root / "abslink")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("nowhere", root / "dangling")
    return root


@pytest.fixture(scope="module", params=["gofer", "fake"])
def gofer(request, lower):
    """The real gofer serving `lower` (skipped where it cannot start), and the in-test fake."""
    if request.param == "fake":
        yield FakeGofer(str(lower))
        return
    try:
        from ringfence.gofer.client import GoferClient
        from ringfence.gofer.server import start

        pid, sock = start(str(lower))
    except (ImportError, OSError) as err:
        pytest.skip(f"the gofer cannot start here: {err}")
    yield GoferClient(sock)
    sock.close()
    os.waitpid(pid, 0)


@pytest.fixture
def t(gofer):
    kernel = FakeKernel()
    fsctx, fdtable = build_sandbox_fs(kernel, gofer)
    task = FakeTask(kernel, 1, fsctx, fdtable)
    yield task
    fdtable.close_all()


def openf(t, path, flags=O_RDONLY, mode=0o644, dirfd=AT_FDCWD):
    return sc(t, "openat", dirfd, t.mm.cstr(path), flags, mode)


def read_all(t, fd, n=4096):
    buf = t.mm.alloc(size=n)
    got = sc(t, "read", fd, buf, n)
    assert got >= 0, got
    return t.mm.read(buf, got)


def write(t, fd, data):
    return sc(t, "write", fd, t.mm.alloc(data), len(data))


def fstatat(t, path, flags=0, dirfd=AT_FDCWD):
    buf = t.mm.alloc(size=STAT.size)
    res = sc(t, "newfstatat", dirfd, t.mm.cstr(path), buf, flags)
    return res if res < 0 else os.stat_result(_stat_fields(t.mm.read(buf, STAT.size)))


def _stat_fields(raw):
    dev, ino, nlink, mode, uid, gid, _, rdev, size, blksize, blocks, *times = STAT.unpack(raw)
    return (mode, ino, dev, nlink, uid, gid, size, times[0], times[2], times[4])


def listdir(t, path):
    fd = openf(t, path, O_RDONLY | O_DIRECTORY)
    assert fd >= 0, fd
    names = []
    buf = t.mm.alloc(size=4096)
    while (n := sc(t, "getdents64", fd, buf, 4096)) > 0:
        names += [name for _, _, _, name in parse_dirents(t.mm.read(buf, n))]
    sc(t, "close", fd)
    return sorted(set(names) - {b".", b".."})


def parse_dirents(raw):
    out, off = [], 0
    while off < len(raw):
        ino, doff, reclen, dtype = DIRENT64.unpack_from(raw, off)
        assert reclen % 8 == 0 and reclen >= DIRENT64.size + 1
        name = raw[off + DIRENT64.size:off + reclen].split(b"\0", 1)[0]
        out.append((ino, doff, dtype, name))
        off += reclen
    return out


# -- path walk -----------------------------------------------------------------
def test_walk_symlinks_dotdot_and_errors(t, lower):
    a = fstatat(t, "/dir/a")
    assert fstatat(t, "/link/a").st_ino == a.st_ino
    assert fstatat(t, "/abslink").st_ino == a.st_ino
    assert fstatat(t, "/dir/sub/../a").st_ino == a.st_ino
    assert fstatat(t, "/../../dir/./a").st_ino == a.st_ino
    assert statmod.S_ISLNK(fstatat(t, "/abslink", AT_SYMLINK_NOFOLLOW).st_mode)
    assert fstatat(t, "/loop1") == -E.ELOOP
    assert fstatat(t, "/dangling") == -E.ENOENT
    assert fstatat(t, "/dir/a/") == -E.ENOTDIR
    assert fstatat(t, "/dir/a/x") == -E.ENOTDIR
    assert statmod.S_ISDIR(fstatat(t, "/link/").st_mode)
    assert fstatat(t, "/dir/" + "x" * 256) == -E.ENAMETOOLONG
    assert fstatat(t, "") == -E.ENOENT
    assert openf(t, "/abslink", O_RDONLY | O_NOFOLLOW) == -E.ELOOP
    assert openf(t, "/dir/a", O_RDONLY | O_DIRECTORY) == -E.ENOTDIR
    assert openf(t, "/dir", O_WRONLY) == -E.EISDIR
    assert openf(t, "/tmp", O_RDWR | O_TMPFILE) >= 0  # a nameless tmpfs file


def test_dirfd_empty_path_and_chroot(t):
    dfd = openf(t, "/dir", O_RDONLY | O_DIRECTORY)
    assert fstatat(t, "a", dirfd=dfd).st_size == 100
    assert statmod.S_ISDIR(fstatat(t, "", AT_EMPTY_PATH, dirfd=dfd).st_mode)
    ffd = openf(t, "/dir/a")
    assert fstatat(t, "x", dirfd=ffd) == -E.ENOTDIR
    assert fstatat(t, "x", dirfd=99) == -E.EBADF
    # chroot: ".." stops at the new root and absolute symlinks start there.
    assert sc(t, "chroot", t.mm.cstr("/dir")) == 0
    assert fstatat(t, "/../../a").st_size == 100
    assert fstatat(t, "/sub/../a").st_size == 100
    assert fstatat(t, "/abslink") == -E.ENOENT


def test_cwd(t):
    assert sc(t, "chdir", t.mm.cstr("/link/sub")) == 0
    buf = t.mm.alloc(size=64)
    n = sc(t, "getcwd", buf, 64)
    assert t.mm.read(buf, n) == b"/dir/sub\0"
    assert sc(t, "getcwd", buf, 5) == -E.ERANGE
    assert fstatat(t, "c").st_size == 1
    assert sc(t, "chdir", t.mm.cstr("/dir/a")) == -E.ENOTDIR


# -- stat ------------------------------------------------------------------------
def test_stat_struct_matches_lower(t, lower):
    host = os.stat(lower / "dir" / "a")
    buf = t.mm.alloc(size=STAT.size)
    assert sc(t, "stat", t.mm.cstr("/dir/a"), buf) == 0
    fields = STAT.unpack(t.mm.read(buf, STAT.size))
    assert STAT.size == 144
    dev, ino, nlink, mode, uid, gid, pad, rdev, size, blksize = fields[:10]
    assert (mode, size, nlink, ino) == (host.st_mode, host.st_size, host.st_nlink, host.st_ino)
    assert fields[13] == host.st_mtime_ns // 10 ** 9 and fields[14] == host.st_mtime_ns % 10 ** 9
    xbuf = t.mm.alloc(size=STATX.size)
    assert sc(t, "statx", AT_FDCWD, t.mm.cstr("/dir/a"), 0, 0x7FF, xbuf) == 0
    x = STATX.unpack(t.mm.read(xbuf, STATX.size))
    assert (x[6], x[7], x[8], x[3]) == (host.st_mode, host.st_ino, host.st_size, host.st_nlink)
    fbuf = t.mm.alloc(size=STATFS.size)
    assert sc(t, "statfs", t.mm.cstr("/"), fbuf) == 0
    assert STATFS.unpack(t.mm.read(fbuf, STATFS.size))[0] == OVERLAYFS_SUPER_MAGIC


# -- overlay ---------------------------------------------------------------------
def test_overlay_copy_up_keeps_host_untouched(t, lower):
    fd = openf(t, "/etc/hostname", O_WRONLY | O_TRUNC)
    assert fd >= 0
    assert write(t, fd, b"sandbox\n") == 8
    sc(t, "close", fd)
    assert read_all(t, openf(t, "/etc/hostname")) == b"sandbox\n"
    assert (lower / "etc" / "hostname").read_bytes() == b"lowerhost\n"
    # O_APPEND copies the whole lower content up first.
    fd = openf(t, "/dir/b", O_WRONLY | O_APPEND)
    assert write(t, fd, b"++") == 2
    assert read_all(t, openf(t, "/dir/b")) == b"B++"
    assert sc(t, "chmod", t.mm.cstr("/dir/a"), 0o600) == 0
    assert statmod.S_IMODE(fstatat(t, "/dir/a").st_mode) == 0o600
    assert read_all(t, openf(t, "/dir/a")) == b"A" * 100
    assert statmod.S_IMODE(os.stat(lower / "dir" / "a").st_mode) == 0o644
    assert (lower / "dir" / "b").read_bytes() == b"B"


def test_overlay_whiteouts_and_readdir_merge(t, lower):
    assert sc(t, "unlink", t.mm.cstr("/dir/a")) == 0
    assert fstatat(t, "/dir/a") == -E.ENOENT
    assert (lower / "dir" / "a").exists()
    fd = openf(t, "/dir/new", O_WRONLY | O_CREAT | O_EXCL, 0o640)
    assert fd >= 0 and write(t, fd, b"n") == 1
    assert openf(t, "/dir/new", O_WRONLY | O_CREAT | O_EXCL) == -E.EEXIST
    assert listdir(t, "/dir") == [b"b", b"new", b"sub"]
    assert sc(t, "rmdir", t.mm.cstr("/dir/sub")) == -E.ENOTEMPTY
    assert sc(t, "unlinkat", AT_FDCWD, t.mm.cstr("/dir/sub/c"), 0) == 0
    assert sc(t, "unlinkat", AT_FDCWD, t.mm.cstr("/dir/sub"), AT_REMOVEDIR) == 0
    assert sc(t, "mkdir", t.mm.cstr("/dir/sub"), 0o755) == 0
    assert listdir(t, "/dir/sub") == []  # opaque: the lower c stays hidden
    assert sc(t, "rename", t.mm.cstr("/dir/b"), t.mm.cstr("/dir/b2")) == 0
    assert listdir(t, "/dir") == [b"b2", b"new", b"sub"]
    assert read_all(t, openf(t, "/dir/b2")) == b"B"
    assert sorted(os.listdir(lower / "dir")) == ["a", "b", "sub"]
    assert sc(t, "rename", t.mm.cstr("/many"), t.mm.cstr("/many2")) == -E.EXDEV
    assert sc(t, "unlink", t.mm.cstr("/dir")) == -E.EISDIR
    assert sc(t, "rmdir", t.mm.cstr("/dir/new")) == -E.ENOTDIR


def test_rename_flags_links_symlinks(t):
    for name, data in ((b"/tmp/x", b"x"), (b"/tmp/y", b"y")):
        fd = openf(t, name, O_WRONLY | O_CREAT)
        write(t, fd, data)
    assert sc(t, "renameat2", AT_FDCWD, t.mm.cstr("/tmp/x"), AT_FDCWD, t.mm.cstr("/tmp/y"),
              RENAME_NOREPLACE) == -E.EEXIST
    assert sc(t, "renameat2", AT_FDCWD, t.mm.cstr("/tmp/x"), AT_FDCWD, t.mm.cstr("/tmp/y"),
              RENAME_EXCHANGE) == 0
    assert read_all(t, openf(t, "/tmp/x")) == b"y"
    assert sc(t, "link", t.mm.cstr("/tmp/x"), t.mm.cstr("/tmp/hard")) == 0
    assert fstatat(t, "/tmp/hard").st_nlink == 2
    assert sc(t, "link", t.mm.cstr("/tmp"), t.mm.cstr("/tmp/d")) == -E.EPERM
    assert sc(t, "symlink", t.mm.cstr("x"), t.mm.cstr("/tmp/sym")) == 0
    buf = t.mm.alloc(size=16)
    assert sc(t, "readlink", t.mm.cstr("/tmp/sym"), buf, 16) == 1 and t.mm.read(buf, 1) == b"x"
    assert sc(t, "readlink", t.mm.cstr("/tmp/x"), buf, 16) == -E.EINVAL
    assert sc(t, "mkdir", t.mm.cstr("/tmp/d"), 0o777) == 0
    assert sc(t, "rename", t.mm.cstr("/tmp/d"), t.mm.cstr("/tmp/d/e")) == -E.EINVAL
    assert sc(t, "rename", t.mm.cstr("/tmp/d"), t.mm.cstr("/tmp/x")) == -E.ENOTDIR
    assert statmod.S_IMODE(fstatat(t, "/tmp/d").st_mode) == 0o755  # umask 022


# -- getdents ----------------------------------------------------------------------
def test_getdents64_layout_and_resumption(t):
    fd = openf(t, "/many", O_RDONLY | O_DIRECTORY)
    buf = t.mm.alloc(size=64)
    assert sc(t, "getdents64", fd, buf, 16) == -E.EINVAL
    seen, offs = [], []
    while (n := sc(t, "getdents64", fd, buf, 64)) > 0:
        recs = parse_dirents(t.mm.read(buf, n))
        assert 1 <= len(recs) <= 2
        seen += [r[3] for r in recs]
        offs += [r[1] for r in recs]
    assert n == 0
    assert sorted(seen) == sorted([b".", b".."] + [b"file%03d" % i for i in range(100)])
    assert offs == sorted(offs) and len(set(offs)) == len(offs)
    # Seeking back to a d_off resumes right after that entry.
    assert sc(t, "lseek", fd, offs[9], SEEK_SET) == offs[9]
    n = sc(t, "getdents64", fd, buf, 64)
    assert parse_dirents(t.mm.read(buf, n))[0][3] == seen[10]
    assert sc(t, "getdents64", openf(t, "/dir/a"), buf, 64) == -E.ENOTDIR


# -- pipes -----------------------------------------------------------------------
def _pipe(t, flags=0):
    arr = t.mm.alloc(size=8)
    assert sc(t, "pipe2", arr, flags) == 0
    return INT_PAIR.unpack(t.mm.read(arr, 8))


def test_pipe_data_block_eof_epipe(t):
    r, w = _pipe(t)
    buf = t.mm.alloc(size=16)
    res = sc(t, "read", r, buf, 16)
    assert isinstance(res, Block) and res.queues
    assert write(t, w, b"hello") == 5
    assert read_all(t, r) == b"hello"
    assert sc(t, "close", w) == 0
    assert sc(t, "read", r, buf, 16) == 0  # end-of-file
    r1, w1 = _pipe(t)
    assert write(t, w1, b"kept") == 4
    assert sc(t, "read", r1, BAD, 4) == -E.EFAULT  # the bytes stay in the pipe
    assert read_all(t, r1) == b"kept"
    r2, w2 = _pipe(t)
    sc(t, "close", r2)
    assert write(t, w2, b"x") == -E.EPIPE
    assert t.signals == [signal.SIGPIPE]
    r3, w3 = _pipe(t, O_NONBLOCK | O_CLOEXEC)
    assert sc(t, "read", r3, buf, 16) == -E.EAGAIN
    assert sc(t, "fcntl", r3, F_GETFD, 0) == FD_CLOEXEC
    assert sc(t, "pipe2", t.mm.alloc(size=8), 0x1) == -E.EINVAL


def test_pipe_large_write_completes_through_retry(t):
    r, w = _pipe(t)
    data = bytes(range(256)) * 300  # 76800 bytes > 64 KiB
    res = write(t, w, data)
    assert isinstance(res, Block) and res.retry is not None
    got = read_all(t, r, 65536)
    assert len(got) == 65536
    assert res.retry() == len(data)
    assert got + read_all(t, r, 65536) == data
    # A small write into a full pipe waits whole (PIPE_BUF atomicity).
    assert write(t, w, b"z" * 65536) == 65536
    res = write(t, w, b"y" * 10)
    assert isinstance(res, Block) and res.retry is None


def test_poll_and_select(t):
    r, w = _pipe(t)
    fds = t.mm.alloc(POLLFD.pack(r, POLLIN, 0) + POLLFD.pack(w, POLLOUT, 0) + POLLFD.pack(77, POLLIN, 0))
    assert sc(t, "poll", fds, 3, 0) == 2
    revents = [POLLFD.unpack_from(t.mm.read(fds, 24), i * 8)[2] for i in range(3)]
    assert revents == [0, POLLOUT, POLLNVAL]
    fds = t.mm.alloc(POLLFD.pack(r, POLLIN, 0))
    res = sc(t, "poll", fds, 1, 1000)
    assert isinstance(res, Block) and res.deadline is not None and res.queues
    write(t, w, b"!")
    assert res.retry() == 1
    assert POLLFD.unpack(t.mm.read(fds, 8))[2] == POLLIN
    rset = t.mm.alloc((1 << r).to_bytes(8, "little"))
    assert sc(t, "select", r + 1, rset, 0, 0, 0) == 1
    assert sc(t, "select", 100, t.mm.alloc((1 << 90).to_bytes(16, "little")), 0, 0, 0) == -E.EBADF


# -- descriptors -----------------------------------------------------------------
def test_dup_cloexec_fork_and_limits(t):
    fd = openf(t, "/dir/a")
    assert sc(t, "dup2", fd, 10) == 10
    assert sc(t, "dup3", fd, 11, O_CLOEXEC) == 11
    assert sc(t, "dup3", fd, fd, 0) == -E.EINVAL
    assert sc(t, "fcntl", 11, F_GETFD, 0) == FD_CLOEXEC
    assert sc(t, "fcntl", fd, F_DUPFD_CLOEXEC, 20) == 20
    assert sc(t, "fcntl", fd, F_GETFL, 0) & 3 == O_RDONLY
    assert sc(t, "fcntl", fd, F_SETFL, O_APPEND | O_NONBLOCK) == 0
    assert sc(t, "fcntl", fd, F_GETFL, 0) & (O_APPEND | O_NONBLOCK) == O_APPEND | O_NONBLOCK
    lk = t.mm.alloc(FLOCK.pack(F_WRLCK, 0, 0, 0, 0))
    assert sc(t, "fcntl", fd, F_GETLK, lk) == 0 and FLOCK.unpack(t.mm.read(lk, 32))[0] == F_UNLCK
    assert sc(t, "dup", 999) == -E.EBADF
    # Shared open file description: the offset moves for every copy, across fork too.
    child = t.fork(2)
    assert len(read_all(child, 10, 10)) == 10
    assert sc(t, "lseek", fd, 0, 1) == 10
    t.fdtable.close_on_exec()
    assert sc(t, "fcntl", 11, F_GETFD, 0) == -E.EBADF
    assert sc(t, "fcntl", 20, F_GETFD, 0) == -E.EBADF
    assert sc(t, "fcntl", 10, F_GETFD, 0) == 0
    child.fdtable.close_all()
    assert sc(t, "dup2", fd, 5000) == -E.EBADF
    t.fdtable.set_limit(16)
    assert sc(t, "dup2", fd, 16) == -E.EBADF
    while (res := sc(t, "dup", fd)) >= 0:
        pass
    assert res == -E.EMFILE


def test_o_path_and_creat(t):
    fd = openf(t, "/abslink", O_PATH | O_NOFOLLOW)
    assert fd >= 0
    assert sc(t, "read", fd, t.mm.alloc(size=4), 4) == -E.EBADF
    buf = t.mm.alloc(size=16)
    assert sc(t, "readlinkat", fd, t.mm.cstr(""), buf, 16) == 6
    fd = sc(t, "creat", t.mm.cstr("/tmp/c"), 0o777)
    assert fd >= 0 and write(t, fd, b"abc") == 3
    assert statmod.S_IMODE(fstatat(t, "/tmp/c").st_mode) == 0o755
    assert sc(t, "ftruncate", fd, 1) == 0 and fstatat(t, "/tmp/c").st_size == 1
    assert sc(t, "truncate", t.mm.cstr("/tmp"), 0) == -E.EISDIR
    assert sc(t, "lseek", fd, 0, SEEK_END) == 1
    # O_CREAT through a dangling symlink creates its target.
    assert sc(t, "symlink", t.mm.cstr("target"), t.mm.cstr("/tmp/dl")) == 0
    assert openf(t, "/tmp/dl", O_WRONLY | O_CREAT) >= 0
    assert fstatat(t, "/tmp/target").st_size == 0
    assert sc(t, "access", t.mm.cstr("/dir/b"), 1) == -E.EACCES
    assert sc(t, "access", t.mm.cstr("/bin/prog"), 1 | 4) == 0


# -- proc and dev ------------------------------------------------------------------
def test_proc_self_exe_resolves_to_program(t, lower):
    t.tg.exe = b"/bin/prog"
    f = open_path(t, AT_FDCWD, b"/proc/self/exe", O_RDONLY)
    try:
        assert f.path == b"/bin/prog"
        assert f.pread(4, 0) == b"\x7fELF"
        assert f.stat().st_size == (lower / "bin" / "prog").stat().st_size
    finally:
        f.unref()
    buf = t.mm.alloc(size=64)
    n = sc(t, "readlink", t.mm.cstr("/proc/self/exe"), buf, 64)
    assert t.mm.read(buf, n) == b"/bin/prog"
    fd = openf(t, "/dir/a")
    n = sc(t, "readlink", t.mm.cstr(f"/proc/1/fd/{fd}"), buf, 64)
    assert t.mm.read(buf, n) == b"/dir/a"
    assert fstatat(t, f"/proc/self/fd/{fd}").st_size == 100
    r, _ = _pipe(t)
    n = sc(t, "readlink", t.mm.cstr(f"/proc/self/fd/{r}"), buf, 64)
    assert t.mm.read(buf, n).startswith(b"pipe:[")
    assert b"Pid:\t1\n" in read_all(t, openf(t, "/proc/self/status"))
    assert read_all(t, openf(t, "/proc/self/stat")).startswith(b"1 (prog) R 0 1 1 ")
    assert len(read_all(t, openf(t, "/proc/self/stat")).split()) == 52
    assert read_all(t, openf(t, "/proc/version")) == FakeKernel.version_string
    mounts = read_all(t, openf(t, "/proc/mounts"))
    assert b"overlay / overlay rw 0 0\n" in mounts and b" /proc proc " in mounts
    assert b"1" in listdir(t, "/proc") and b"self" in listdir(t, "/proc")
    assert openf(t, "/proc/version", O_WRONLY) == -E.EACCES


def test_dev_nodes(t):
    assert openf(t, "/dev/stdin") == -E.ENOENT  # fd 0 is not open
    null = openf(t, "/dev/null", O_RDWR)
    assert write(t, null, b"gone") == 4 and read_all(t, null) == b""
    assert read_all(t, openf(t, "/dev/zero"), 8) == bytes(8)
    assert len(read_all(t, openf(t, "/dev/urandom"), 32)) == 32
    assert write(t, openf(t, "/dev/full", O_WRONLY), b"x") == -E.ENOSPC
    assert openf(t, "/dev/tty", O_RDWR) == -E.ENXIO
    assert statmod.S_ISCHR(fstatat(t, "/dev/null").st_mode)
    t.fdtable.install_at(0, open_path(t, AT_FDCWD, b"/dir/b", O_RDONLY))
    assert read_all(t, openf(t, "/dev/stdin")) == b"B"


def test_readonly_mount_gives_erofs(t):
    from ringfence.sentry.fs.tmpfs import TmpfsFS

    at = Walker(t).resolve(AT_FDCWD, b"/tmp")
    tfs = TmpfsFS()
    ns = t.fs.root.mount.ns
    ns.mount(at, tfs, tfs.new_root(), "tmpfs", ST_RDONLY)
    assert sc(t, "mkdir", t.mm.cstr("/tmp/x"), 0o755) == -E.EROFS
    assert openf(t, "/tmp/f", O_WRONLY | O_CREAT) == -E.EROFS
    assert b"tmpfs /tmp tmpfs ro 0 0" in read_all(t, openf(t, "/proc/mounts"))


# -- host files and sendfile -----------------------------------------------------
def test_host_stdio_pipe(t):
    hr, hw = os.pipe()
    try:
        rf, wf = std_files((hr, hw))
        rfd, wfd = t.fdtable.install(rf), t.fdtable.install(wf)
        buf = t.mm.alloc(size=16)
        res = sc(t, "read", rfd, buf, 16)
        assert isinstance(res, Block) and res.host_fds == ((hr, POLLIN),)
        assert write(t, wfd, b"host!") == 5
        assert read_all(t, rfd, 16) == b"host!"
        assert statmod.S_ISFIFO(os.stat_result(_stat_fields(_fstat_raw(t, rfd))).st_mode)
        assert sc(t, "ioctl", rfd, 0x5401, t.mm.alloc(size=36)) == -E.ENOTTY
        assert sc(t, "ioctl", rfd, 0x540F, t.mm.alloc(size=4)) == -E.ENOTTY
        # sendfile from a file to the host pipe.
        src = openf(t, "/dir/a")
        assert sc(t, "sendfile", wfd, src, 0, 1 << 20) == 100
        assert os.read(hr, 200) == b"A" * 100
    finally:
        os.close(hr)
        os.close(hw)


def test_closed_host_fd_becomes_dev_null(t):
    hr, hw = os.pipe()
    os.close(hw)
    try:
        rf, wf = std_files((hr, hw))
    finally:
        os.close(hr)
    fd = t.fdtable.install(wf)
    assert write(t, fd, b"lost") == 4
    assert read_all(t, fd) == b""
    rf.unref()


def test_gofer_handles_are_bounded(lower):
    from ringfence.sentry.fs.gofer import GoferFS

    client = FakeGofer(str(lower))
    root = GoferFS(client, max_handles=3).attach()
    many = root.lookup(b"many")
    names = [b"file%03d" % i for i in range(20)]
    for name in names:
        many.lookup(name)
    assert len(client.paths) <= 4  # the root and at most three others
    sub = root.lookup(b"dir").lookup(b"sub")
    for name in names:
        many.lookup(name)
    assert sub.lookup(b"c").contents(10) == b"C"  # walked again from the root
    assert len(client.paths) <= 4


def _fstat_raw(t, fd):
    buf = t.mm.alloc(size=STAT.size)
    assert sc(t, "fstat", fd, buf) == 0
    return t.mm.read(buf, STAT.size)


# -- faults ----------------------------------------------------------------------
def test_bad_pointers_give_efault(t):
    fd = openf(t, "/dir/a")
    assert sc(t, "read", fd, BAD, 10) == -E.EFAULT
    assert sc(t, "lseek", fd, 0, 1) == 0  # the offset did not move
    assert sc(t, "read", fd, 0xFFFF_FFFF_FFFF_0000, 10) == -E.EFAULT
    w = openf(t, "/tmp/w", O_WRONLY | O_CREAT)
    assert sc(t, "write", w, BAD, 10) == -E.EFAULT
    assert sc(t, "stat", t.mm.cstr("/dir/a"), BAD) == -E.EFAULT
    assert sc(t, "openat", AT_FDCWD, BAD, 0, 0) == -E.EFAULT
    assert sc(t, "pipe", BAD) == -E.EFAULT
    assert sorted(fd for fd, _ in t.fdtable.items()) == [fd, w]
    assert sc(t, "getdents64", openf(t, "/dir", O_DIRECTORY), BAD, 64) == -E.EFAULT
    assert sc(t, "readv", fd, t.mm.alloc(size=16), 1025) == -E.EINVAL
