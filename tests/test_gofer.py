"""The gofer: real gofer processes (ringfence.gofer.server.start) over a temporary tree."""
import errno
import fcntl
import inspect
import os
import random
import signal
import socket
import stat
import struct
import time

import pytest

from ringfence.gofer import _linux, protocol, server
from ringfence.gofer.client import GoferClient
from ringfence.gofer.protocol import (AT_REMOVEDIR, HEADER, MAX_MESSAGE, RENAME_EXCHANGE,
                                      RENAME_NOREPLACE, UTIME_NOW, UTIME_OMIT, Op)

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def tree(tmp_path):
    """A container root: files, dirs, hostile symlinks, a hardlink and a fifo; beside it the
    host directory `outside` (with `secret`), which the root's symlinks point into."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "dir" / "nested").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "dir" / "sub.txt").write_bytes(b"sub\n")
    (root / "dir" / "nested" / "deep.txt").write_bytes(b"deep\n")
    (root / "escape").symlink_to("../../etc/passwd")
    (root / "shadow").symlink_to("/etc/shadow")
    (root / "dirlink").symlink_to("dir")
    (root / "hostdir").symlink_to(outside)
    (root / "hostrel").symlink_to("../outside")
    (root / "dangling").symlink_to("../outside/created")
    os.link(root / "hello.txt", root / "hard")
    os.mkfifo(root / "fifo")
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret\n")
    return root


def _wait_exit(pid: int, timeout: float = 10.0) -> int:
    """The wait status of child `pid`, failing the test if it is still running at `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"gofer {pid} still running after {timeout}s")


class Gofer:
    """A started gofer with a client; `stop()` closes the socket and reaps the process."""

    def __init__(self, root, readonly=True, mounts=()):
        self.root, self.readonly = root, readonly
        self.pid, self.sock = server.start(str(root), readonly=readonly, mounts=mounts)
        self.sock.settimeout(10)
        self.client = GoferClient(self.sock)
        self.root_handle, self.root_stat = self.client.attach()
        self.raw_id = 1000

    def walk(self, *names: bytes):
        handle = self.root_handle
        for name in names:
            handle, st = self.client.walk(handle, name)
        return handle

    def raw(self, data: bytes, fds=()):
        """Send one datagram as is; the reply's (id, opcode, body) and the fds it carried."""
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
        self.sock.sendmsg([data], anc if fds else [])
        reply, anc, _, _ = self.sock.recvmsg(MAX_MESSAGE + 1, socket.CMSG_SPACE(16))
        got = [fd for _, _, payload in anc for (fd,) in struct.iter_unpack("i", payload)]
        length, req_id, op = HEADER.unpack_from(reply)
        assert length == len(reply)
        return req_id, op, reply[HEADER.size:], got

    def raw_error(self, data: bytes, fds=()):
        """Send one datagram that must fail: (reply id, errno)."""
        req_id, op, body, got = self.raw(data, fds)
        assert (op, got) == (protocol.ERROR, []), (op, body)
        return req_id, struct.unpack("<I", body)[0]

    def request(self, op: Op, *args) -> bytes:
        self.raw_id += 1
        return protocol.encode_request(op, self.raw_id, *args)

    def stop(self) -> int:
        self.sock.close()
        return _wait_exit(self.pid)


@pytest.fixture
def gofer(tree):
    g = Gofer(tree)
    yield g
    if g.sock.fileno() != -1:
        assert g.stop() == 0


@pytest.fixture
def rw(tree):
    """A writable gofer over `tree`."""
    g = Gofer(tree, readonly=False)
    yield g
    if g.sock.fileno() != -1:
        assert g.stop() == 0


@pytest.fixture(params=["ro", "rw"])
def either(request, tree):
    """A read-only, then a writable gofer over `tree`."""
    g = Gofer(tree, readonly=request.param == "ro")
    yield g
    assert g.stop() == 0


def _snapshot(path) -> dict:
    """Everything a write could change under `path` (itself included), by relative path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [".", *dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, path)] = (
                st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_nlink,
                st.st_ino, data, sorted(os.listxattr(p, follow_symlinks=False)))
    return out


def _errno(call, *args, **kwargs) -> int:
    with pytest.raises(OSError) as info:
        call(*args, **kwargs)
    return info.value.errno


# --- walking, stat, open, read ---------------------------------------------------------------

def test_attach_stats_the_root(gofer, tree):
    st = os.stat(tree)
    assert stat.S_ISDIR(gofer.root_stat.st_mode)
    assert (gofer.root_stat.st_ino, gofer.root_stat.st_dev) == (st.st_ino, st.st_dev)
    assert gofer.root_stat.st_mtime_ns == st.st_mtime_ns


def test_walk_stat_open_read(gofer, tree):
    handle, st = gofer.client.walk(gofer.root_handle, b"hello.txt")
    host = os.lstat(tree / "hello.txt")
    assert st == gofer.client.stat(handle)
    assert (st.st_ino, st.st_size, st.st_mode, st.st_nlink) == (
        host.st_ino, 12, host.st_mode, 2)
    fd = gofer.client.open(handle, os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"hello world\n"
        assert fcntl_flags(fd) & os.O_NONBLOCK == 0
        assert os.get_inheritable(fd) is False
        assert os.fstat(fd).st_ino == host.st_ino
    finally:
        os.close(fd)


def fcntl_flags(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETFL)


def test_open_honours_o_nonblock(gofer):
    fd = gofer.client.open(gofer.walk(b"hello.txt"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert fcntl_flags(fd) & os.O_NONBLOCK
    finally:
        os.close(fd)


def test_walk_nested_path(gofer):
    handle = gofer.walk(b"dir", b"nested", b"deep.txt")
    fd = gofer.client.open(handle, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        assert f.read() == b"deep\n"


@pytest.mark.parametrize("openat2_missing", [False, True])
def test_open_beneath_with_and_without_openat2(tree, monkeypatch, openat2_missing):
    monkeypatch.setattr(_linux, "_openat2_missing", openat2_missing)
    root = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        for name, kind in ((b"escape", stat.S_IFLNK), (b"dir", stat.S_IFDIR)):
            fd = _linux.open_beneath(root, name, os.O_PATH)
            assert stat.S_IFMT(os.fstat(fd).st_mode) == kind
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            os.close(fd)
        fd = _linux.open_beneath(root, b"escape", os.O_PATH)
        try:
            assert _errno(_linux.open_beneath, fd, b"x", os.O_PATH) == errno.ENOTDIR
        finally:
            os.close(fd)
    finally:
        os.close(root)


def test_hardlink_is_the_same_inode(gofer):
    a = gofer.client.stat(gofer.walk(b"hello.txt"))
    b = gofer.client.stat(gofer.walk(b"hard"))
    assert (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
    assert b.st_nlink == 2


def test_open_root_and_directory(gofer, tree):
    fd = gofer.client.open(gofer.root_handle, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert sorted(os.listdir(fd)) == sorted(os.listdir(tree))
    finally:
        os.close(fd)
    assert _errno(gofer.client.open, gofer.walk(b"hello.txt"), os.O_DIRECTORY) == errno.ENOTDIR


def test_walk_missing_and_through_a_file(gofer):
    assert _errno(gofer.client.walk, gofer.root_handle, b"nope") == errno.ENOENT
    assert _errno(gofer.client.walk, gofer.walk(b"hello.txt"), b"x") == errno.ENOTDIR


@pytest.mark.parametrize("name, err", [
    (b"..", errno.EINVAL), (b".", errno.EINVAL), (b"a/b", errno.EINVAL), (b"/", errno.EINVAL),
    (b"dir/sub.txt", errno.EINVAL), (b"", errno.EINVAL), (b"hello.txt\0", errno.EINVAL),
    (b"a\0b", errno.EINVAL), (b"x" * 256, errno.ENAMETOOLONG),
])
def test_walk_refuses_bad_names(gofer, name, err):
    assert _errno(gofer.client.walk, gofer.root_handle, name) == err
    assert _errno(gofer.client.walk, gofer.walk(b"dir"), name) == err


# --- symlinks: returned as nodes, never followed ---------------------------------------------

@pytest.mark.parametrize("name, target", [
    (b"escape", b"../../etc/passwd"), (b"shadow", b"/etc/shadow"), (b"dirlink", b"dir"),
])
def test_symlinks_are_nodes_never_followed(gofer, tree, name, target):
    handle, st = gofer.client.walk(gofer.root_handle, name)
    assert stat.S_ISLNK(st.st_mode)
    assert st.st_ino == os.lstat(tree / name.decode()).st_ino
    assert gofer.client.readlink(handle) == target
    assert _errno(gofer.client.walk, handle, b"sub.txt") == errno.ENOTDIR
    assert _errno(gofer.client.walk, handle, b"passwd") == errno.ENOTDIR
    assert _errno(gofer.client.open, handle, os.O_RDONLY) == errno.ELOOP
    assert _errno(gofer.client.getdents, handle) == errno.ENOTDIR


def test_readlink_of_a_non_symlink(gofer):
    assert _errno(gofer.client.readlink, gofer.walk(b"hello.txt")) == errno.EINVAL
    assert _errno(gofer.client.readlink, gofer.root_handle) == errno.EINVAL


def test_fifo_is_never_opened(gofer):
    handle, st = gofer.client.walk(gofer.root_handle, b"fifo")
    assert stat.S_ISFIFO(st.st_mode)
    assert _errno(gofer.client.open, handle, os.O_RDONLY) == errno.ENXIO
    assert gofer.client.stat(handle) == st  # and the gofer did not block


def test_open_refuses_a_replaced_file(gofer, tree):
    handle = gofer.walk(b"hello.txt")
    (tree / "other").write_bytes(b"other\n")
    os.rename(tree / "other", tree / "hello.txt")
    assert _errno(gofer.client.open, handle, os.O_RDONLY) == errno.ESTALE


# --- read-only --------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [
    os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_RDONLY | os.O_CREAT,
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC, os.O_WRONLY | os.O_APPEND,
])
def test_open_for_writing_is_erofs(gofer, tree, flags):
    assert _errno(gofer.client.open, gofer.walk(b"hello.txt"), flags) == errno.EROFS
    assert (tree / "hello.txt").read_bytes() == b"hello world\n"


@pytest.mark.parametrize("flags", [os.O_PATH, os.O_RDONLY | os.O_TMPFILE, os.O_RDONLY | 0o40])
def test_open_refuses_other_flags(gofer, flags):
    assert _errno(gofer.client.open, gofer.walk(b"dir"), flags) == errno.EINVAL


# Every request that changes the tree, as a call valid on a writable gofer over `tree`.
WRITES = {
    Op.CREATE: lambda g: g.client.create(g.root_handle, b"new", os.O_RDWR, 0o644),
    Op.MKDIR: lambda g: g.client.mkdir(g.root_handle, b"new", 0o755),
    Op.MKNOD: lambda g: g.client.mknod(g.root_handle, b"new", stat.S_IFIFO | 0o644),
    Op.SYMLINK: lambda g: g.client.symlink(g.root_handle, b"new", b"/x"),
    Op.LINK: lambda g: g.client.link(g.root_handle, b"new", g.walk(b"hello.txt")),
    Op.UNLINK: lambda g: g.client.unlink(g.root_handle, b"hello.txt"),
    Op.RENAME: lambda g: g.client.rename(g.root_handle, b"hello.txt", g.root_handle, b"new"),
    Op.SETATTR: lambda g: g.client.setattr(g.walk(b"hello.txt"), mode=0o600, uid=1, size=1,
                                           mtime=(1, 0)),
    Op.SETXATTR: lambda g: g.client.setxattr(g.walk(b"hello.txt"), b"user.x", b"v"),
    Op.REMOVEXATTR: lambda g: g.client.removexattr(g.walk(b"hello.txt"), b"user.ro"),
}


def test_writes_cover_every_writing_opcode():
    assert set(WRITES) == {op for op, spec in protocol.SPEC.items() if spec.writes}


@pytest.mark.parametrize("op", WRITES, ids=[op.name for op in WRITES])
def test_write_ops_are_erofs_when_read_only(gofer, tree, op):
    os.setxattr(tree / "hello.txt", b"user.ro", b"1")
    before = _snapshot(tree)
    assert _errno(WRITES[op], gofer) == errno.EROFS
    assert _snapshot(tree) == before


@pytest.mark.parametrize("op", WRITES, ids=[op.name for op in WRITES])
def test_write_ops_work_when_writable(rw, tree, op):
    os.setxattr(tree / "hello.txt", b"user.ro", b"1")
    before = _snapshot(tree)
    WRITES[op](rw)
    assert _snapshot(tree) != before


def test_reads_work_when_read_only(gofer, tree):
    os.setxattr(tree / "hello.txt", b"user.ro", b"1")
    handle = gofer.walk(b"hello.txt")
    assert gofer.client.getxattr(handle, b"user.ro") == b"1"
    assert gofer.client.listxattr(handle) == [b"user.ro"]
    gofer.client.fsync(handle)
    gofer.client.fsync(gofer.root_handle)


# --- writing -----------------------------------------------------------------------------------

def _host_stat_matches(st, path):
    host = os.lstat(path)
    assert (st.st_mode, st.st_ino, st.st_uid, st.st_gid, st.st_size, st.st_nlink) == (
        host.st_mode, host.st_ino, host.st_uid, host.st_gid, host.st_size, host.st_nlink)


def test_open_for_writing(rw, tree):
    handle = rw.walk(b"dir", b"sub.txt")
    fd = rw.client.open(handle, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"new\n")
    os.close(fd)
    assert (tree / "dir" / "sub.txt").read_bytes() == b"new\n"
    fd = rw.client.open(handle, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"more\n")
    os.close(fd)
    fd = rw.client.open(handle, os.O_RDWR)
    assert os.read(fd, 100) == b"new\nmore\n"
    os.close(fd)
    assert (tree / "dir" / "sub.txt").read_bytes() == b"new\nmore\n"
    os.close(rw.client.open(handle, os.O_RDONLY | os.O_TRUNC))
    assert (tree / "dir" / "sub.txt").read_bytes() == b""
    assert _errno(rw.client.open, rw.walk(b"dir"), os.O_RDONLY | os.O_CREAT) == errno.EINVAL
    assert _errno(rw.client.open, rw.walk(b"dir"), os.O_WRONLY) == errno.EISDIR
    assert _errno(rw.client.open, rw.walk(b"dir"), os.O_RDONLY | os.O_TRUNC) == errno.EISDIR


def test_open_trunc_checks_the_other_flags_first(rw, tree):
    handle = rw.walk(b"hello.txt")
    assert _errno(rw.client.open, handle, os.O_WRONLY | os.O_TRUNC | os.O_DIRECTORY) == \
        errno.ENOTDIR
    assert (tree / "hello.txt").read_bytes() == b"hello world\n"


def test_create(rw, tree):
    handle, st, fd = rw.client.create(rw.root_handle, b"new", os.O_RDWR, 0o666, 1234, 2345)
    try:
        assert os.write(fd, b"created\n") == 8
        assert os.get_inheritable(fd) is False
    finally:
        os.close(fd)
    assert (tree / "new").read_bytes() == b"created\n"
    host = os.lstat(tree / "new")
    assert stat.S_IMODE(host.st_mode) == 0o666  # exactly: the gofer's umask is 0
    assert (host.st_uid, host.st_gid) == (1234, 2345)
    _host_stat_matches(st._replace(st_size=8), tree / "new")
    assert rw.client.stat(handle).st_size == 8
    fd = rw.client.open(handle, os.O_RDONLY)
    assert os.read(fd, 100) == b"created\n"
    os.close(fd)


def test_create_keeps_set_id_bits_through_the_chown(rw, tree):
    _, st, fd = rw.client.create(rw.root_handle, b"suid", os.O_WRONLY, 0o6755, 1000, 1000)
    os.close(fd)
    assert stat.S_IMODE(os.lstat(tree / "suid").st_mode) == stat.S_IMODE(st.st_mode) == 0o6755


@pytest.mark.parametrize("name, flags, mode, err", [
    (b"hello.txt", os.O_RDWR, 0o644, errno.EEXIST),
    (b"dangling", os.O_RDWR, 0o644, errno.EEXIST),   # O_EXCL: never through a symlink
    (b"hostdir", os.O_RDWR, 0o644, errno.EEXIST),
    (b"new", os.O_RDWR | os.O_DIRECTORY, 0o644, errno.EINVAL),
    (b"new", os.O_RDWR | os.O_TMPFILE, 0o644, errno.EINVAL),
    (b"new", os.O_RDWR, stat.S_IFREG | 0o644, errno.EINVAL),
])
def test_create_refusals(rw, tree, name, flags, mode, err):
    before = _snapshot(tree.parent)
    assert _errno(rw.client.create, rw.root_handle, name, flags, mode) == err
    assert _snapshot(tree.parent) == before


def test_create_in_a_file_is_enotdir(rw):
    assert _errno(rw.client.create, rw.walk(b"hello.txt"), b"x", os.O_RDWR, 0o644) == \
        errno.ENOTDIR


def test_mkdir(rw, tree):
    handle, st = rw.client.mkdir(rw.walk(b"dir"), b"made", 0o751, 77, 88)
    path = tree / "dir" / "made"
    _host_stat_matches(st, path)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o751
    assert (st.st_uid, st.st_gid) == (77, 88)
    assert rw.client.getdents(handle) == []
    rw.client.mkdir(handle, b"inner", 0o700)
    assert (path / "inner").is_dir()
    assert _errno(rw.client.mkdir, rw.root_handle, b"dir", 0o755) == errno.EEXIST
    assert _errno(rw.client.mkdir, rw.root_handle, b"x", 0o40755) == errno.EINVAL


@pytest.mark.parametrize("mode", [stat.S_IFREG | 0o640, 0o640, stat.S_IFIFO | 0o640, stat.S_IFSOCK | 0o640])
def test_mknod(rw, tree, mode):
    handle, st = rw.client.mknod(rw.root_handle, b"node", mode, 5, 6)
    _host_stat_matches(st, tree / "node")
    assert stat.S_IFMT(st.st_mode) == (stat.S_IFMT(mode) or stat.S_IFREG)
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (5, 6)


@pytest.mark.parametrize("mode, err", [
    (stat.S_IFCHR | 0o666, errno.EPERM), (stat.S_IFBLK | 0o666, errno.EPERM),
    (stat.S_IFDIR | 0o755, errno.EINVAL),
    (stat.S_IFLNK | 0o777, errno.EINVAL), (0o70000 | 0o644, errno.EINVAL),
    (stat.S_IFREG | 0o1000000, errno.EINVAL),
])
def test_mknod_refuses_devices_and_bad_types(rw, tree, mode, err):
    assert _errno(rw.client.mknod, rw.root_handle, b"dev", mode) == err
    assert not os.path.lexists(tree / "dev")


def test_symlink(rw, tree, tmp_path):
    handle, st = rw.client.symlink(rw.root_handle, b"link", b"../outside/secret", 42, 43)
    assert os.readlink(tree / "link") == "../outside/secret"
    _host_stat_matches(st, tree / "link")
    assert stat.S_ISLNK(st.st_mode) and (st.st_uid, st.st_gid) == (42, 43)
    assert rw.client.readlink(handle) == b"../outside/secret"
    assert _errno(rw.client.open, handle, os.O_RDWR) == errno.ELOOP
    assert _errno(rw.client.symlink, rw.root_handle, b"link", b"x") == errno.EEXIST
    assert (tmp_path / "outside" / "secret").read_bytes() == b"secret\n"


@pytest.mark.parametrize("target, err", [
    (b"", errno.ENOENT), (b"a\0b", errno.EINVAL), (b"x" * 4096, errno.ENAMETOOLONG),
])
def test_symlink_refuses_bad_targets(rw, tree, target, err):
    assert _errno(rw.client.symlink, rw.root_handle, b"link", target) == err
    assert not os.path.lexists(tree / "link")


def test_link(rw, tree):
    target = rw.walk(b"hello.txt")
    handle, st = rw.client.link(rw.walk(b"dir"), b"again", target)
    assert os.lstat(tree / "dir" / "again").st_ino == os.lstat(tree / "hello.txt").st_ino
    _host_stat_matches(st, tree / "dir" / "again")
    assert st.st_nlink == 3
    assert _errno(rw.client.link, rw.root_handle, b"dir2", rw.walk(b"dir")) == errno.EPERM
    assert _errno(rw.client.link, rw.root_handle, b"hard", target) == errno.EEXIST


def test_unlink(rw, tree):
    file_handle = rw.walk(b"hello.txt")
    rw.client.unlink(rw.root_handle, b"hello.txt")
    assert not (tree / "hello.txt").exists()
    assert rw.client.stat(file_handle).st_nlink == 1  # the handle still names the inode
    assert _errno(rw.client.open, file_handle, os.O_RDONLY) == errno.ESTALE
    d = rw.walk(b"dir")
    assert _errno(rw.client.unlink, rw.root_handle, b"dir") == errno.EISDIR
    assert _errno(rw.client.unlink, rw.root_handle, b"dir", AT_REMOVEDIR) == errno.ENOTEMPTY
    assert _errno(rw.client.unlink, d, b"sub.txt", AT_REMOVEDIR) == errno.ENOTDIR
    assert _errno(rw.client.unlink, rw.root_handle, b"nope") == errno.ENOENT
    assert _errno(rw.client.unlink, rw.root_handle, b"hard", 0x100) == errno.EINVAL
    rw.client.unlink(d, b"sub.txt")
    rw.client.unlink(rw.walk(b"dir", b"nested"), b"deep.txt")
    rw.client.unlink(d, b"nested", AT_REMOVEDIR)
    rw.client.unlink(rw.root_handle, b"dir", AT_REMOVEDIR)
    assert not (tree / "dir").exists()
    rw.client.unlink(rw.root_handle, b"hostdir")  # the link, not what it points at
    assert (tree.parent / "outside" / "secret").exists()


def test_rename(rw, tree):
    moved = rw.walk(b"hello.txt")
    rw.client.rename(rw.root_handle, b"hello.txt", rw.walk(b"dir"), b"moved.txt")
    assert (tree / "dir" / "moved.txt").read_bytes() == b"hello world\n"
    assert not (tree / "hello.txt").exists()
    assert _errno(rw.client.open, moved, os.O_RDONLY) == errno.ESTALE  # walk again:
    fd = rw.client.open(rw.walk(b"dir", b"moved.txt"), os.O_RDONLY)
    assert os.read(fd, 100) == b"hello world\n"
    os.close(fd)
    deep = rw.walk(b"dir", b"nested", b"deep.txt")
    rw.client.rename(rw.root_handle, b"dir", rw.root_handle, b"renamed")
    fd = rw.client.open(deep, os.O_RDONLY)  # below a renamed directory: still reachable
    assert os.read(fd, 100) == b"deep\n"
    os.close(fd)


def test_rename_flags(rw, tree):
    root = rw.root_handle
    assert _errno(rw.client.rename, root, b"hard", root, b"hello.txt", RENAME_NOREPLACE) == \
        errno.EEXIST
    rw.client.rename(root, b"hard", root, b"fresh", RENAME_NOREPLACE)
    (tree / "other").write_bytes(b"other\n")
    rw.client.rename(root, b"other", rw.walk(b"dir"), b"sub.txt", RENAME_EXCHANGE)
    assert (tree / "other").read_bytes() == b"sub\n"
    assert (tree / "dir" / "sub.txt").read_bytes() == b"other\n"
    before = _snapshot(tree)
    for flags in (RENAME_NOREPLACE | RENAME_EXCHANGE, 4, 8):  # 4: RENAME_WHITEOUT
        assert _errno(rw.client.rename, root, b"other", root, b"x", flags) == errno.EINVAL
    assert _errno(rw.client.rename, root, b"dir", rw.walk(b"dir"), b"x") == errno.EINVAL
    assert _snapshot(tree) == before


def test_setattr(rw, tree):
    handle = rw.walk(b"hello.txt")
    path = tree / "hello.txt"
    st = rw.client.setattr(handle, mode=0o4710, uid=300, gid=400)
    host = os.lstat(path)
    assert stat.S_IMODE(host.st_mode) == 0o4710 and (host.st_uid, host.st_gid) == (300, 400)
    _host_stat_matches(st, path)
    st = rw.client.setattr(handle, size=5, atime=(1_000_000, 5), mtime=(2_000_000, 7))
    host = os.lstat(path)  # before reading the file, which would set its atime
    assert (host.st_atime_ns, host.st_mtime_ns) == (1_000_000_000_000_005, 2_000_000_000_000_007)
    assert (st.st_size, st.st_mtime_ns) == (5, host.st_mtime_ns)
    st = rw.client.setattr(handle, atime=(0, UTIME_OMIT), mtime=(0, UTIME_NOW))
    host = os.lstat(path)
    assert host.st_atime_ns == 1_000_000_000_000_005
    assert abs(host.st_mtime_ns - time.time_ns()) < 10**10
    assert path.read_bytes() == b"hello"
    rw.client.setattr(handle, size=100)
    assert path.read_bytes() == b"hello" + b"\0" * 95
    assert rw.client.setattr(handle) == rw.client.stat(handle)  # an empty mask changes nothing
    dir_handle = rw.walk(b"dir")
    rw.client.setattr(dir_handle, mode=0o1777)
    assert stat.S_IMODE(os.lstat(tree / "dir").st_mode) == 0o1777
    assert _errno(rw.client.setattr, dir_handle, size=0) == errno.EISDIR
    assert _errno(rw.client.setattr, handle, mode=0o100644) == errno.EINVAL
    assert _errno(rw.client.setattr, handle, size=1 << 63) == errno.EINVAL
    assert _errno(rw.client.setattr, handle, mtime=(0, 1 << 31)) == errno.EINVAL


def test_setattr_of_a_symlink_changes_the_link_only(rw, tree, tmp_path):
    secret = tmp_path / "outside" / "secret"
    before = os.stat(secret)
    handle = rw.walk(b"hostdir")
    st = rw.client.setattr(handle, uid=99, gid=98, mtime=(12345, 0))
    link = os.lstat(tree / "hostdir")
    assert (link.st_uid, link.st_gid, link.st_mtime) == (99, 98, 12345)
    _host_stat_matches(st, tree / "hostdir")
    assert _errno(rw.client.setattr, handle, mode=0o777) == errno.ELOOP
    assert _errno(rw.client.setattr, rw.walk(b"escape"), size=0) == errno.ELOOP
    assert os.stat(secret) == before and secret.read_bytes() == b"secret\n"


def test_fsync(rw, tree):
    rw.client.fsync(rw.walk(b"hello.txt"))
    rw.client.fsync(rw.walk(b"dir"))
    assert _errno(rw.client.fsync, rw.walk(b"fifo")) == errno.ENXIO
    assert _errno(rw.client.fsync, rw.walk(b"escape")) == errno.ELOOP


def test_xattrs(rw, tree):
    handle, d = rw.walk(b"hello.txt"), rw.walk(b"dir")
    path = tree / "hello.txt"
    assert rw.client.listxattr(handle) == []
    rw.client.setxattr(handle, b"user.one", b"1")
    rw.client.setxattr(d, b"user.dir", b"\0binary\xff")
    assert os.getxattr(path, b"user.one") == b"1"
    assert os.getxattr(tree / "dir", b"user.dir") == b"\0binary\xff"
    assert rw.client.getxattr(d, b"user.dir") == b"\0binary\xff"
    assert _errno(rw.client.setxattr, handle, b"user.one", b"2", os.XATTR_CREATE) == errno.EEXIST
    rw.client.setxattr(handle, b"user.one", b"2", os.XATTR_REPLACE)
    assert _errno(rw.client.setxattr, handle, b"user.two", b"", os.XATTR_REPLACE) == \
        errno.ENODATA
    rw.client.setxattr(handle, b"user.two", b"")
    assert sorted(rw.client.listxattr(handle)) == [b"user.one", b"user.two"]
    assert rw.client.getxattr(handle, b"user.two") == b""
    rw.client.removexattr(handle, b"user.one")
    assert os.listxattr(path) == ["user.two"]
    assert _errno(rw.client.getxattr, handle, b"user.one") == errno.ENODATA
    assert _errno(rw.client.removexattr, handle, b"user.one") == errno.ENODATA


@pytest.mark.parametrize("call, args, err", [
    ("getxattr", (b"trusted.x",), errno.EOPNOTSUPP),
    ("setxattr", (b"security.x", b"v"), errno.EOPNOTSUPP),
    ("removexattr", (b"system.x",), errno.EOPNOTSUPP),
    ("setxattr", (b"user.x", b"v", 4), errno.EINVAL),
    ("getxattr", (b"user." + b"x" * 251,), errno.ERANGE),
    ("getxattr", (b"",), errno.ERANGE),
    ("setxattr", (b"user.big", b"x" * MAX_MESSAGE), errno.E2BIG),  # refused by the client
])
def test_xattr_refusals(rw, tree, call, args, err):
    assert _errno(getattr(rw.client, call), rw.walk(b"hello.txt"), *args) == err
    assert os.listxattr(tree / "hello.txt") == []


def test_xattrs_only_on_files_and_directories(rw):
    assert _errno(rw.client.setxattr, rw.walk(b"escape"), b"user.x", b"v") == errno.ELOOP
    assert _errno(rw.client.listxattr, rw.walk(b"fifo")) == errno.ENXIO


@pytest.mark.parametrize("readonly", [True, False])
def test_gofer_without_openat2(tree, monkeypatch, readonly):
    """The openat(O_NOFOLLOW) fallback, under the real filters: same answers."""
    monkeypatch.setattr(_linux, "_openat2_missing", True)  # inherited by the forked gofer
    g = Gofer(tree, readonly=readonly)
    try:
        assert stat.S_ISLNK(g.client.stat(g.walk(b"hostdir")).st_mode)
        assert _errno(g.client.open, g.walk(b"escape"), os.O_RDONLY) == errno.ELOOP
        fd = g.client.open(g.walk(b"dir", b"sub.txt"), os.O_RDONLY)
        assert os.read(fd, 10) == b"sub\n"
        os.close(fd)
        want = errno.EROFS if readonly else errno.EEXIST
        assert _errno(g.client.create, g.root_handle, b"dangling", os.O_RDWR, 0o644) == want
        if not readonly:
            _, _, fd = g.client.create(g.root_handle, b"new", os.O_WRONLY, 0o600)
            os.write(fd, b"ok")
            os.close(fd)
            fd = g.client.open(g.walk(b"new"), os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"!")
            os.close(fd)
            assert (tree / "new").read_bytes() == b"ok!"
        assert not (tree.parent / "outside" / "created").exists()
    finally:
        assert g.stop() == 0


# --- escapes -------------------------------------------------------------------------------------

# Requests that take a directory handle, with the remaining arguments.
_IN_DIR = [
    ("create", (b"x", os.O_RDWR, 0o644)), ("mkdir", (b"x", 0o755)),
    ("mknod", (b"x", stat.S_IFREG | 0o644)), ("symlink", (b"x", b"y")),
    ("unlink", (b"secret",)), ("walk", (b"secret",)), ("getdents", ()), ("dirstat", ()),
]


@pytest.mark.parametrize("link", [b"hostdir", b"hostrel"])
@pytest.mark.parametrize("call, args", _IN_DIR, ids=[c for c, _ in _IN_DIR])
def test_nothing_goes_through_a_symlinked_directory(rw, tree, link, call, args):
    before = _snapshot(tree.parent / "outside")
    assert _errno(getattr(rw.client, call), rw.walk(link), *args) == errno.ENOTDIR
    assert _snapshot(tree.parent / "outside") == before


@pytest.mark.parametrize("link", [b"hostdir", b"hostrel"])
def test_rename_and_link_into_a_symlinked_directory_fail(rw, tree, link):
    before = _snapshot(tree.parent)
    via = rw.walk(link)
    root = rw.root_handle
    assert _errno(rw.client.rename, root, b"hello.txt", via, b"stolen") == errno.ENOTDIR
    assert _errno(rw.client.rename, via, b"secret", root, b"stolen") == errno.ENOTDIR
    assert _errno(rw.client.link, via, b"stolen", rw.walk(b"hello.txt")) == errno.ENOTDIR
    assert _snapshot(tree.parent) == before


def test_link_to_a_host_file_through_a_symlinked_dir_links_the_symlink(rw, tree, tmp_path):
    secret = tmp_path / "outside" / "secret"
    assert _errno(rw.client.walk, rw.walk(b"hostdir"), b"secret") == errno.ENOTDIR
    handle, st = rw.client.link(rw.root_handle, b"stolen", rw.walk(b"hostdir"))
    assert stat.S_ISLNK(st.st_mode)
    assert os.lstat(tree / "stolen").st_ino == os.lstat(tree / "hostdir").st_ino
    assert os.stat(secret).st_nlink == 1
    assert _errno(rw.client.open, handle, os.O_RDONLY) == errno.ELOOP
    assert _errno(rw.client.getdents, handle) == errno.ENOTDIR


def test_symlinks_made_inside_are_never_followed(rw, tree, tmp_path):
    for name, target in ((b"abs", os.fsencode(tmp_path / "outside")), (b"rel", b"../outside"),
                         (b"up", b"../../../../../../..")):
        handle, _ = rw.client.symlink(rw.root_handle, name, target)
        assert _errno(rw.client.mkdir, handle, b"x", 0o755) == errno.ENOTDIR
        assert _errno(rw.client.create, rw.root_handle, name, os.O_RDWR, 0o644) == errno.EEXIST
        assert _errno(rw.client.open, handle, os.O_WRONLY | os.O_TRUNC) == errno.ELOOP
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret"]
    assert (tmp_path / "outside" / "secret").read_bytes() == b"secret\n"


_NAMED = [
    ("walk", lambda g, n: (g.root_handle, n)),
    ("create", lambda g, n: (g.root_handle, n, os.O_RDWR, 0o644)),
    ("mkdir", lambda g, n: (g.root_handle, n, 0o755)),
    ("mknod", lambda g, n: (g.root_handle, n, 0o644)),
    ("symlink", lambda g, n: (g.root_handle, n, b"t")),
    ("link", lambda g, n: (g.root_handle, n, g.walk(b"hello.txt"))),
    ("unlink", lambda g, n: (g.root_handle, n)),
    ("rename-from", lambda g, n: (g.root_handle, n, g.root_handle, b"x")),
    ("rename-to", lambda g, n: (g.root_handle, b"hello.txt", g.walk(b"dir"), n)),
]


@pytest.mark.parametrize("name, err", [
    (b"..", errno.EINVAL), (b".", errno.EINVAL), (b"../x", errno.EINVAL), (b"/", errno.EINVAL),
    (b"dir/sub.txt", errno.EINVAL), (b"", errno.EINVAL), (b"a\0b", errno.EINVAL),
    (b"x" * 256, errno.ENAMETOOLONG),
])
@pytest.mark.parametrize("call, args", _NAMED, ids=[c for c, _ in _NAMED])
def test_every_name_is_one_component(rw, tree, call, args, name, err):
    before = _snapshot(tree.parent)
    method = getattr(rw.client, call.split("-")[0])
    assert _errno(method, *args(rw, name)) == err
    assert _snapshot(tree.parent) == before


# --- more trees: per-mount read-only -------------------------------------------------------------

@pytest.fixture
def mounted(tmp_path, tree):
    """A writable root with mounts 1: a read-only dir, 2: a writable dir, 3: a writable file."""
    for name in ("ro", "rw"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_bytes(name.encode())
    (tmp_path / "single").write_bytes(b"single\n")
    (tmp_path / "alias").symlink_to("single")
    g = Gofer(tree, readonly=False, mounts=[
        server.Mount(str(tmp_path / "ro")), server.Mount(str(tmp_path / "rw"), readonly=False),
        server.Mount(str(tmp_path / "alias"), readonly=False)])
    yield g
    assert g.stop() == 0


def test_each_mount_has_its_own_read_only_flag(mounted, tmp_path):
    c = mounted.client
    ro, st = c.attach(1)
    assert st.st_ino == os.stat(tmp_path / "ro").st_ino
    rw, _ = c.attach(2)
    assert _errno(c.mkdir, ro, b"d", 0o755) == errno.EROFS
    assert _errno(c.open, c.walk(ro, b"f")[0], os.O_WRONLY) == errno.EROFS
    fd = c.open(c.walk(ro, b"f")[0], os.O_RDONLY)
    assert os.read(fd, 10) == b"ro"
    os.close(fd)
    c.mkdir(rw, b"d", 0o755)
    c.mkdir(mounted.root_handle, b"d", 0o755)
    assert (tmp_path / "rw" / "d").is_dir() and (tmp_path / "root" / "d").is_dir()
    assert sorted(os.listdir(tmp_path / "ro")) == ["f"]
    assert _errno(c.attach, 4) == errno.ENOENT


def test_no_rename_or_link_across_mounts(mounted, tmp_path):
    c = mounted.client
    rw, _ = c.attach(2)
    root = mounted.root_handle
    assert _errno(c.rename, root, b"hello.txt", rw, b"x") == errno.EXDEV
    assert _errno(c.rename, rw, b"f", root, b"x") == errno.EXDEV
    assert _errno(c.link, rw, b"x", mounted.walk(b"hello.txt")) == errno.EXDEV
    assert _errno(c.link, root, b"x", c.walk(rw, b"f")[0]) == errno.EXDEV
    assert sorted(os.listdir(tmp_path / "rw")) == ["f"]


def test_a_file_mount(mounted, tmp_path):
    c = mounted.client
    handle, st = c.attach(3)
    assert stat.S_ISREG(st.st_mode) and st.st_ino == os.stat(tmp_path / "single").st_ino
    fd = c.open(handle, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"written\n")
    os.close(fd)
    assert (tmp_path / "single").read_bytes() == b"written\n"
    assert _errno(c.walk, handle, b"x") == errno.ENOTDIR
    assert _errno(c.create, handle, b"x", os.O_RDWR, 0o644) == errno.ENOTDIR
    c.close(handle)
    assert c.stat(c.attach(3)[0]).st_size == 8  # the mount outlives its handles


def test_read_only_root_with_a_writable_mount(tree, tmp_path):
    (tmp_path / "data").mkdir()
    g = Gofer(tree, mounts=[server.Mount(str(tmp_path / "data"), readonly=False)])
    try:
        assert _errno(g.client.mkdir, g.root_handle, b"d", 0o755) == errno.EROFS
        g.client.mkdir(g.client.attach(1)[0], b"d", 0o755)
        assert (tmp_path / "data" / "d").is_dir() and not (tree / "d").exists()
    finally:
        assert g.stop() == 0


def test_start_fails_on_a_missing_mount(tree, tmp_path):
    with pytest.raises(FileNotFoundError):
        server.start(str(tree), mounts=[server.Mount(str(tmp_path / "missing"))])
    assert _wait_none()


# --- directories, statfs, handles --------------------------------------------------------------

_DT = {stat.S_IFREG: 8, stat.S_IFDIR: 4, stat.S_IFLNK: 10, stat.S_IFIFO: 1}


def test_getdents_lists_the_root(gofer, tree):
    entries = gofer.client.getdents(gofer.root_handle)
    names = [e.name for e in entries]
    assert sorted(names) == sorted(os.fsencode(n) for n in os.listdir(tree))
    assert b"." not in names and b".." not in names
    for ino, dtype, name in entries:
        host = os.lstat(tree / os.fsdecode(name))
        assert ino == host.st_ino
        assert dtype == _DT[stat.S_IFMT(host.st_mode)]


def test_dirstat_lists_the_root_with_each_entrys_own_attributes(gofer, tree):
    """DIRSTAT: GETDENTS with each entry's attributes, as WALK sees it (lstat: a symlink's own)."""
    entries = gofer.client.dirstat(gofer.root_handle)
    assert sorted(e.name for e in entries) == sorted(os.fsencode(n) for n in os.listdir(tree))
    for name, st in entries:
        host = os.lstat(tree / os.fsdecode(name))
        assert (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_size, st.st_mtime_ns) == (
            host.st_mode, host.st_ino, host.st_dev, host.st_nlink, host.st_size, host.st_mtime_ns), name
        assert st == gofer.client.walk(gofer.root_handle, name)[1]


@pytest.mark.parametrize("op", [Op.GETDENTS, Op.DIRSTAT])
def test_listings_page_through_a_big_directory(tmp_path, op):
    """A page is what one message holds; the cookie continues it, and every name comes once."""
    big = tmp_path / "big"
    big.mkdir()
    for i in range(3000):
        (big / f"{i:05d}-{'x' * 60}").touch()
    g = Gofer(tmp_path)
    try:
        handle = g.walk(b"big")
        pages = 0
        cookie = 0
        while True:
            g.raw_id += 1
            g.sock.sendmsg([protocol.encode_request(op, g.raw_id, handle, cookie)])
            _, _, (cookie, page) = protocol.decode_reply(op, g.sock.recv(MAX_MESSAGE))
            if not page:
                break
            pages += 1
        assert pages > 3
        listing = g.client.getdents if op == Op.GETDENTS else g.client.dirstat
        names = [e.name for e in listing(handle)]
        assert len(names) == len(set(names)) == 3000
        assert set(names) == {os.fsencode(n) for n in os.listdir(big)}
    finally:
        assert g.stop() == 0


@pytest.mark.parametrize("listing", ["getdents", "dirstat"])
def test_listing_a_file_is_enotdir(gofer, listing):
    assert _errno(getattr(gofer.client, listing), gofer.walk(b"hello.txt")) == errno.ENOTDIR


def test_statfs(gofer, tree):
    ours, host = gofer.client.statfs(gofer.walk(b"dir")), os.statvfs(tree)
    assert (ours.f_bsize, ours.f_frsize, ours.f_blocks, ours.f_files, ours.f_namelen) == (
        host.f_bsize, host.f_frsize, host.f_blocks, host.f_files, host.f_namemax)
    assert ours.f_type != 0


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_handles_are_freed_and_children_outlive_parents(gofer):
    base = _fd_count(gofer.pid)
    d = gofer.walk(b"dir")
    nested = gofer.client.walk(d, b"nested")[0]
    deep = gofer.client.walk(nested, b"deep.txt")[0]
    assert _fd_count(gofer.pid) == base + 3
    gofer.client.close(d)
    gofer.client.close(nested)
    assert _fd_count(gofer.pid) == base + 3  # deep still needs its parent to be reopened
    fd = gofer.client.open(deep, os.O_RDONLY)
    assert os.read(fd, 10) == b"deep\n"
    os.close(fd)
    assert _errno(gofer.client.stat, d) == errno.EBADF
    assert _errno(gofer.client.close, d) == errno.EBADF
    gofer.client.close(deep)
    assert _fd_count(gofer.pid) == base
    assert _errno(gofer.client.walk, deep, b"x") == errno.EBADF


def test_many_handles_and_no_leak(gofer):
    base = _fd_count(gofer.pid)
    d = gofer.walk(b"dir")
    handles = [d] + [gofer.client.walk(d, b"sub.txt")[0] for _ in range(200)]
    assert len(set(handles)) == 201
    assert _fd_count(gofer.pid) == base + 201
    for h in handles:
        gofer.client.close(h)
    assert _fd_count(gofer.pid) == base


def test_close_releases_many_handles_in_one_message_or_none(gofer):
    base = _fd_count(gofer.pid)
    d = gofer.walk(b"dir")
    handles = [gofer.client.walk(d, b"sub.txt")[0] for _ in range(100)]
    assert _errno(gofer.client.close, *handles, 2**64 - 1) == errno.EBADF
    assert _errno(gofer.client.close, handles[0], handles[0]) == errno.EINVAL
    assert _fd_count(gofer.pid) == base + 101  # nothing was released
    gofer.client.close(*handles, d)
    assert _fd_count(gofer.pid) == base
    gofer.client.close()  # an empty list is a no-op


# --- hostile input -----------------------------------------------------------------------------

def _hdr(length: int, req_id: int, op: int) -> bytes:
    return HEADER.pack(length, req_id, op)


def _msg(req_id: int, op: int, body: bytes) -> bytes:
    return _hdr(HEADER.size + len(body), req_id, op) + body


def _body(*parts) -> bytes:
    """A message body from (struct format, values...) and raw bytes parts."""
    return b"".join(p if isinstance(p, bytes) else struct.pack("<" + p[0], *p[1:]) for p in parts)


def _name(n: bytes) -> bytes:
    return struct.pack("<I", len(n)) + n


# Malformed at the wire or handle level: the same answer from a read-only and a writable gofer.
HOSTILE = {
    "empty": (b"", 0, errno.EINVAL),
    "garbage": (b"\xff\x13\x37", 0, errno.EINVAL),
    "truncated header": (_hdr(10, 7, Op.ATTACH)[:8], 0, errno.EINVAL),
    "huge length": (_hdr(0xFFFFFFFF, 7, Op.ATTACH), 7, errno.EINVAL),
    "short length": (_msg(7, Op.STAT, struct.pack("<Q", 1))[:-1], 7, errno.EINVAL),
    "oversized": (_msg(7, Op.WALK, b"\0" * (MAX_MESSAGE + 100)), 7, errno.EMSGSIZE),
    "unknown opcode": (_msg(7, 0x7777, b""), 7, errno.EINVAL),
    "opcode 0": (_msg(7, 0, b""), 7, errno.EINVAL),
    "error opcode": (_msg(7, protocol.ERROR, b"\0" * 4), 7, errno.EINVAL),
    "trailing bytes": (_msg(7, Op.STAT, struct.pack("<Q", 1) + b"x"), 7, errno.EINVAL),
    "truncated field": (_msg(7, Op.STAT, struct.pack("<I", 1)), 7, errno.EINVAL),
    "name overruns": (_msg(7, Op.WALK, struct.pack("<QI", 1, 1000) + b"abc"), 7, errno.EINVAL),
    "huge name length": (_msg(7, Op.WALK, struct.pack("<QI", 1, 0xFFFFFFFF)), 7, errno.EINVAL),
    "unknown handle": (_msg(7, Op.STAT, struct.pack("<Q", 424242)), 7, errno.EBADF),
    "handle 0": (_msg(7, Op.WALK, struct.pack("<QI", 0, 3) + b"dir"), 7, errno.EBADF),
    "bad cookie": (_msg(7, Op.GETDENTS, struct.pack("<QQ", 1, 1 << 63)), 7, errno.EINVAL),
    "bad dirstat cookie": (_msg(7, Op.DIRSTAT, struct.pack("<QQ", 1, 1 << 63)), 7, errno.EINVAL),
    "attach no mount": (_msg(7, Op.ATTACH, b""), 7, errno.EINVAL),
    "attach unknown mount": (_msg(7, Op.ATTACH, struct.pack("<I", 1)), 7, errno.ENOENT),
    "create truncated": (_msg(7, Op.CREATE, _body(("Q", 1), _name(b"n"), ("III", 2, 0o644, 0))),
                         7, errno.EINVAL),
    "create trailing": (_msg(7, Op.CREATE, _body(("Q", 1), _name(b"n"), ("IIIIB", 2, 0, 0, 0, 0))),
                        7, errno.EINVAL),
    "mkdir slash": (_msg(7, Op.MKDIR, _body(("Q", 1), _name(b"a/b"), ("III", 0o755, 0, 0))),
                    7, errno.EINVAL),
    "mknod dotdot": (_msg(7, Op.MKNOD, _body(("Q", 1), _name(b".."), ("III", 0o644, 0, 0))),
                     7, errno.EINVAL),
    "symlink NUL target": (_msg(7, Op.SYMLINK, _body(("Q", 1), _name(b"l"), _name(b"/\0x"),
                                                     ("II", 0, 0))), 7, errno.EINVAL),
    "symlink target overruns": (_msg(7, Op.SYMLINK, _body(("Q", 1), _name(b"l"),
                                                          ("I", 99), b"ab")), 7, errno.EINVAL),
    "link unknown dir": (_msg(7, Op.LINK, _body(("Q", 999), _name(b"l"), ("Q", 1))),
                         7, errno.EBADF),
    "unlink dot": (_msg(7, Op.UNLINK, _body(("Q", 1), _name(b"."), ("I", 0))), 7, errno.EINVAL),
    "unlink NUL": (_msg(7, Op.UNLINK, _body(("Q", 1), _name(b"fifo\0"), ("I", 0))),
                   7, errno.EINVAL),
    "rename new name dotdot": (_msg(7, Op.RENAME, _body(("Q", 1), _name(b"hello.txt"), ("Q", 1),
                                                        _name(b".."), ("I", 0))), 7, errno.EINVAL),
    "rename long name": (_msg(7, Op.RENAME, _body(("Q", 1), _name(b"hello.txt"), ("Q", 1),
                                                  _name(b"x" * 300), ("I", 0))),
                         7, errno.ENAMETOOLONG),
    "setattr short": (_msg(7, Op.SETATTR, _body(("QIIIIQ", 1, 2, 0, 0, 0, 0))), 7, errno.EINVAL),
    "setattr unknown handle": (_msg(7, Op.SETATTR, _body(("QIIIIQqqqq", 5555, 2, 0, 0, 0, 0, 0,
                                                          0, 0, 0))), 7, errno.EBADF),
    "getxattr NUL name": (_msg(7, Op.GETXATTR, _body(("Q", 1), _name(b"user.\0"))),
                          7, errno.EINVAL),
    "setxattr value overruns": (_msg(7, Op.SETXATTR, _body(("Q", 1), _name(b"user.x"),
                                                           ("I", 5000), b"v")), 7, errno.EINVAL),
    "listxattr trailing": (_msg(7, Op.LISTXATTR, _body(("QB", 1, 0))), 7, errno.EINVAL),
    "fsync truncated": (_msg(7, Op.FSYNC, b"\1\0\0"), 7, errno.EINVAL),
    "removexattr long name": (_msg(7, Op.REMOVEXATTR,
                                   _body(("Q", 1), _name(b"user." + b"x" * 251))), 7, errno.ERANGE),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_message_gets_an_error_and_the_gofer_goes_on(either, tree, case):
    data, want_id, want_err = HOSTILE[case]
    before = _snapshot(tree.parent)
    assert either.root_handle == 1  # the handle the cases use
    assert either.raw_error(data) == (want_id, want_err)
    assert _snapshot(tree.parent) == before
    handle = either.walk(b"dir", b"sub.txt")
    assert either.client.stat(handle).st_size == 4


# Well-formed requests a writable gofer refuses: (op, fields after the root handle, errno).
REFUSED = {
    "setattr unknown mask bit": (Op.SETATTR, (0x4, 0, 0, 0, 0, (0, 0), (0, 0)), errno.EINVAL),
    "setattr mode with type": (Op.SETATTR, (0x2, 0o40755, 0, 0, 0, (0, 0), (0, 0)), errno.EINVAL),
    "setattr huge mode": (Op.SETATTR, (0x2, 0xFFFFFFFF, 0, 0, 0, (0, 0), (0, 0)), errno.EINVAL),
    "setattr huge size": (Op.SETATTR, (0x200, 0, 0, 0, 1 << 63, (0, 0), (0, 0)), errno.EINVAL),
    "setattr bad nsec": (Op.SETATTR, (0x40, 0, 0, 0, 0, (0, 0), (0, -5)), errno.EINVAL),
    "create huge flags": (Op.CREATE, (b"n", 0xFFFFFFFF, 0o644, 0, 0), errno.EINVAL),
    "create huge mode": (Op.CREATE, (b"n", os.O_RDWR, 0xFFFFFFFF, 0, 0), errno.EINVAL),
    "mkdir huge mode": (Op.MKDIR, (b"n", 0xFFFFFFFF, 0, 0), errno.EINVAL),
    "mknod huge mode": (Op.MKNOD, (b"n", 0xFFFFFFFF, 0, 0), errno.EINVAL),
    "unlink bad flags": (Op.UNLINK, (b"hello.txt", 0xFFFFFFFF), errno.EINVAL),
    "rename whiteout": (Op.RENAME, (b"hello.txt", 1, b"n", 4), errno.EINVAL),
    "link unknown target": (Op.LINK, (b"n", 31337), errno.EBADF),
    "link a directory": (Op.LINK, (b"n", 1), errno.EPERM),
    "setxattr bad flags": (Op.SETXATTR, (b"user.x", b"", 0xFFFFFFFF), errno.EINVAL),
    "open huge flags": (Op.OPEN, (0xFFFFFFFF,), errno.EINVAL),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_requests_change_nothing(rw, tree, case):
    op, args, want = REFUSED[case]
    before = _snapshot(tree.parent)
    assert rw.raw_error(rw.request(op, rw.root_handle, *args))[1] == want
    assert _snapshot(tree.parent) == before


def test_fds_sent_to_the_gofer_are_refused(gofer, tree):
    base = _fd_count(gofer.pid)
    fd = os.open(tree, os.O_RDONLY)
    try:
        _, err = gofer.raw_error(gofer.request(Op.ATTACH, 0), fds=[fd])
    finally:
        os.close(fd)
    assert err == errno.EINVAL
    assert _fd_count(gofer.pid) == base
    assert gofer.client.stat(gofer.root_handle) == gofer.root_stat


def test_fuzz(either, tree):
    """Random datagrams, mostly with valid headers: one well-formed reply each, no crash, and
    nothing outside the root touched."""
    outside = _snapshot(tree.parent / "outside")
    rng = random.Random(1234)
    ops = list(protocol.SPEC) + [0, 99, protocol.ERROR]
    names = [b"hello.txt", b"dir", b"fifo", b"hostdir", b"escape", b"..", b"new", b"a/b"]
    for i in range(3000):
        body = rng.randbytes(rng.choice([0, 1, 4, 8, 12, 16, 20, 40, 300]))
        if rng.random() < 0.3:  # a real name gets write requests further
            body = _name(rng.choice(names)) + body
        if rng.random() < 0.5:  # a real handle makes the decoder and handlers go deeper
            body = struct.pack("<Q", rng.choice([either.root_handle, 2, 3])) + body
        data = _msg(i, rng.choice(ops), body)
        if rng.random() < 0.1:
            data = data[:rng.randrange(len(data) + 1)]
        req_id, op, _, fds = either.raw(data)
        for fd in fds:
            os.close(fd)
        assert op in protocol.SPEC or op == protocol.ERROR
        assert req_id in (i, 0)
    assert _snapshot(tree.parent / "outside") == outside
    assert sorted(os.listdir(tree.parent)) == ["outside", "root"]
    root, _ = either.client.attach()  # the fuzz may have closed the fixture's root handle
    assert either.client.stat(root).st_ino == os.stat(tree).st_ino


def _hostile_value(rng, field, codec, handles, outside: bytes):
    """A value for request field `field`: mostly plausible, often hostile."""
    if codec is protocol._HANDLE:
        return rng.choice(handles) if rng.random() < 0.9 else rng.choice([0, 2**64 - 1])
    if field == "handles":  # CLOSE: a few, now and then the same one twice or a bogus one
        return [_hostile_value(rng, "handle", protocol._HANDLE, handles, outside)
                for _ in range(rng.choice([0, 1, 1, 1, 1, 1, 2, 3]))]
    if codec is protocol._NAME:
        return rng.choice([b"hello.txt", b"dir", b"fifo", b"hostdir", b"hostrel", b"dangling",
                           b"escape", b"sub.txt", b"n1", b"n2", b"n3", b"n4", b"..", b".",
                           b"a/b", b"", b"x\0"])
    if codec is protocol._TARGET:
        return rng.choice([outside, b"../outside", b"/", b"../../..", b"", b"a\0b"])
    if codec is protocol._XATTR:
        return rng.choice([b"user.a", b"user.b", b"trusted.a", b"security.x", b"", b"user."])
    if codec is protocol._BYTES:
        return rng.randbytes(rng.choice([0, 1, 100]))
    if codec is protocol._TIMESPEC:
        return (rng.choice([0, 1, -1, 2**62]), rng.choice([0, UTIME_NOW, UTIME_OMIT, -1, 10**9]))
    if field == "size":
        return rng.choice([0, 7, 4096, 1 << 63, 2**64 - 1])
    return rng.choice([0, 0, 1, 2, 4, 0x200, 0o644, 0o4755, 0o7777, stat.S_IFIFO | 0o600,
                       stat.S_IFCHR | 0o666, stat.S_IFSOCK | 0o666, os.O_RDWR | os.O_TRUNC,
                       os.O_WRONLY | os.O_APPEND, 0x7FFFFFFF, 0xFFFFFFFF,
                       rng.getrandbits(32)])


def test_fuzz_well_formed_requests(either, tree):
    """Well-formed requests of every opcode with hostile values on the handles the gofer gave:
    every one is answered; a read-only gofer changes nothing, a writable one nothing outside
    its root, and no device node appears."""
    outside_path = tree.parent / "outside"
    os.setxattr(tree / "hello.txt", b"user.a", b"1")
    before, outside = _snapshot(tree), _snapshot(outside_path)
    rng = random.Random(4321)
    handles, answered = [either.root_handle], set()
    writes = {op for op, spec in protocol.SPEC.items() if spec.writes}
    wanted = set(protocol.SPEC) - writes if either.readonly else set(protocol.SPEC)
    for i in range(20000):  # at least 3000 requests, more until every opcode was answered once
        if i >= 3000 and answered >= wanted:
            break
        op = rng.choice(list(protocol.SPEC))
        args = [_hostile_value(rng, field, codec, handles, os.fsencode(outside_path))
                for field, codec in protocol.SPEC[op].request.items()]
        req_id, reply_op, body, fds = either.raw(protocol.encode_request(op, i, *args))
        for fd in fds:
            os.close(fd)
        assert req_id == i and reply_op in (op, protocol.ERROR)
        if reply_op == op:
            answered.add(op)
            if "handle" in protocol.SPEC[op].reply:
                handles.append(struct.unpack_from("<Q", body)[0])
            elif op == Op.CLOSE:
                for handle in args[0]:
                    handles.remove(handle)
        if not handles or not rng.randrange(100):
            handles.append(either.client.attach()[0])
    if either.readonly:
        assert not answered & writes and _snapshot(tree) == before
    else:
        assert writes <= answered
    assert answered >= set(protocol.SPEC) - writes
    assert _snapshot(outside_path) == outside
    assert sorted(os.listdir(tree.parent)) == ["outside", "root"]
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            assert not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode))


def test_handlers_take_the_spec_fields():
    """One handler per opcode, its arguments named and ordered as the SPEC request fields."""
    for op, spec in protocol.SPEC.items():
        handler = getattr(server._Server, "_" + op.name.lower())
        assert list(inspect.signature(handler).parameters)[1:] == list(spec.request), op


# --- confinement and lifetime --------------------------------------------------------------------

def test_gofer_is_chrooted_in_its_own_mount_namespace(either, tree):
    assert os.readlink(f"/proc/{either.pid}/root") == os.path.realpath(tree)
    assert os.readlink(f"/proc/{either.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert _errno(either.client.walk, either.root_handle, b"proc") == errno.ENOENT
    assert _errno(either.client.walk, either.root_handle, b"etc") == errno.ENOENT


def test_gofer_is_seccomp_confined(either):
    status = dict(line.split(":\t", 1) for line in
                  open(f"/proc/{either.pid}/status").read().splitlines() if ":\t" in line)
    assert status["Seccomp"].strip() == "2"
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Name"].strip() == "ringfence-gofer"


def test_gofer_keeps_no_inherited_fds(tree):
    leak = os.open("/etc/hostname", os.O_RDONLY)  # open in the parent when it forks
    try:
        g = Gofer(tree)
    finally:
        os.close(leak)
    try:
        targets = [os.readlink(f"/proc/{g.pid}/fd/{n}") for n in os.listdir(f"/proc/{g.pid}/fd")]
        root = os.path.realpath(tree)
        assert all(t == "/dev/null" or t.startswith("socket:[") or t == root for t in targets), \
            targets
        assert sum(t.startswith("socket:[") for t in targets) == 1
    finally:
        assert g.stop() == 0


def _attempts_under_filter(readonly: bool, attempts) -> list[int]:
    """Load the gofer's filter in a child and make `attempts` there: their errnos (0: done)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        results = []
        try:
            server._seccomp_filter(readonly).load()
            for attempt in attempts:
                try:
                    attempt()
                    results.append(0)
                except OSError as e:
                    results.append(e.errno)
            os.write(w, struct.pack(f"{len(results)}i", *results))
        finally:
            os._exit(0)
    os.close(w)
    with open(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return list(struct.unpack(f"{len(data) // 4}i", data))


def _escapes(tmp_path):
    """What a subverted gofer of either kind would try: every one must be EPERM."""
    return [
        lambda: socket.socket(socket.AF_UNIX),
        lambda: os.chroot("/"),
        lambda: _linux.unshare(_linux.CLONE_NEWNS),
        lambda: _linux.mount(b"none", os.fsencode(tmp_path), b"tmpfs", 0),
        lambda: os.execv("/bin/true", ["true"]),
        lambda: os.kill(os.getppid(), 0),
        lambda: os.setuid(0),
    ]


def test_seccomp_filter_denies_escapes(tmp_path):
    """The read-only filter: reads only."""
    (tmp_path / "f").write_bytes(b"x")
    results = _attempts_under_filter(True, [
        lambda: os.close(os.open(tmp_path / "f", os.O_RDONLY)),
        lambda: os.open(tmp_path / "f", os.O_WRONLY),
        lambda: os.open(tmp_path / "g", os.O_RDONLY | os.O_CREAT),
        lambda: os.mkdir(tmp_path / "d"),
        lambda: os.unlink(tmp_path / "f"),
        lambda: os.mknod(tmp_path / "p", stat.S_IFIFO | 0o600),
        lambda: os.rename(tmp_path / "f", tmp_path / "g"),
        lambda: os.truncate(tmp_path / "f", 0),
        lambda: os.setxattr(tmp_path / "f", b"user.x", b"1"),
        *_escapes(tmp_path),
    ])
    assert results == [0] + [errno.EPERM] * (len(results) - 1)
    assert sorted(os.listdir(tmp_path)) == ["f"] and (tmp_path / "f").read_bytes() == b"x"


def test_writable_seccomp_filter_allows_writes_but_no_devices(tmp_path):
    """The writable filter: the *at write calls as the gofer makes them, but no device node,
    no whiteout, no link by name."""
    (tmp_path / "f").write_bytes(b"x")
    d = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        results = _attempts_under_filter(False, [
            lambda: os.mkdir("d", dir_fd=d),
            lambda: os.mknod("p", stat.S_IFIFO | 0o600, dir_fd=d),
            lambda: os.mknod("r", stat.S_IFREG | 0o600, dir_fd=d),
            lambda: os.mknod("sock", stat.S_IFSOCK | 0o666, dir_fd=d),
            lambda: os.close(_linux.open_beneath(d, b"f", os.O_WRONLY)),
            lambda: os.mknod("null", stat.S_IFCHR | 0o666, os.makedev(1, 3), dir_fd=d),
            lambda: os.mknod("sda", stat.S_IFBLK | 0o666, os.makedev(8, 0), dir_fd=d),
            lambda: os.link("f", "hard", src_dir_fd=d, dst_dir_fd=d),
            lambda: _linux.renameat2(d, b"f", d, b"w", _linux.RENAME_WHITEOUT),
            *_escapes(tmp_path),
        ])
    finally:
        os.close(d)
    assert results == [0] * 5 + [errno.EPERM] * (len(results) - 5)
    assert sorted(os.listdir(tmp_path)) == ["d", "f", "p", "r", "sock"]


def test_gofer_exits_when_the_socket_closes(tree):
    g = Gofer(tree)
    assert g.stop() == 0
    assert not os.path.exists(f"/proc/{g.pid}")
    ours = os.getpid()
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == ours:
                children.append(entry)
    assert children == []


def test_gofer_dies_with_its_parent(tree):
    """The process that started the gofer dies while the socket stays open: SIGKILL."""
    r, w = os.pipe()
    helper = os.fork()
    if helper == 0:  # a subreaper, so that the orphaned gofer becomes its child
        try:
            signal.alarm(10)
            _linux.prctl(PR_SET_CHILD_SUBREAPER, 1)
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            starter = os.fork()
            if starter == 0:
                pid, sock = server.start(str(tree))
                socket.send_fds(b, [struct.pack("i", pid)], [sock.fileno()])
                os._exit(0)
            msg, fds, _, _ = socket.recv_fds(a, 16, 1)
            os.waitpid(starter, 0)
            gofer = struct.unpack("i", msg)[0]
            _, status = os.waitpid(gofer, 0)
            os.write(w, struct.pack("ii", gofer, status) + bytes([len(fds)]))
        finally:
            os._exit(0)
    os.close(w)
    with open(r, "rb") as f:
        data = f.read()
    assert os.waitstatus_to_exitcode(_wait_exit(helper, 15)) == 0
    gofer, status = struct.unpack_from("ii", data)
    assert data[8] == 1  # the helper still held the gofer's socket
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_start_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        server.start(str(tmp_path / "missing"))
    (tmp_path / "file").touch()
    with pytest.raises(NotADirectoryError):
        server.start(str(tmp_path / "file"))
    assert _wait_none()


def _wait_none() -> bool:
    """True if this process has no child left (start() reaped the failed gofers)."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
