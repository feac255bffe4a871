"""The gofer: real gofer processes (ringfence.gofer.server.start) over a temporary tree."""
import errno
import fcntl
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
from ringfence.gofer.protocol import HEADER, MAX_MESSAGE, Op

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def tree(tmp_path):
    """A container root: files, dirs, hostile symlinks, a hardlink and a fifo."""
    root = tmp_path / "root"
    (root / "dir" / "nested").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "dir" / "sub.txt").write_bytes(b"sub\n")
    (root / "dir" / "nested" / "deep.txt").write_bytes(b"deep\n")
    (root / "escape").symlink_to("../../etc/passwd")
    (root / "shadow").symlink_to("/etc/shadow")
    (root / "dirlink").symlink_to("dir")
    os.link(root / "hello.txt", root / "hard")
    os.mkfifo(root / "fifo")
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

    def __init__(self, root, readonly=True):
        self.root = root
        self.pid, self.sock = server.start(str(root), readonly=readonly)
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


def _errno(call, *args) -> int:
    with pytest.raises(OSError) as info:
        call(*args)
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
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
])
def test_open_for_writing_is_erofs(gofer, tree, flags):
    assert _errno(gofer.client.open, gofer.walk(b"hello.txt"), flags) == errno.EROFS
    assert (tree / "hello.txt").read_bytes() == b"hello world\n"


@pytest.mark.parametrize("flags", [os.O_PATH, os.O_RDONLY | os.O_TMPFILE, os.O_RDONLY | 0o40])
def test_open_refuses_other_flags(gofer, flags):
    assert _errno(gofer.client.open, gofer.walk(b"dir"), flags) == errno.EINVAL


@pytest.mark.parametrize("op, args", [
    (Op.CREATE, (b"new", os.O_RDWR, 0o644, 0, 0)), (Op.MKDIR, (b"new", 0o755, 0, 0)),
    (Op.MKNOD, (b"new", stat.S_IFREG | 0o644, 0, 0, 0)), (Op.SYMLINK, (b"new", b"/x", 0, 0)),
    (Op.UNLINK, (b"hello.txt", 0)), (Op.LINK, (b"new", 1)),
    (Op.RENAME, (b"hello.txt", 1, b"new", 0)), (Op.SETATTR, (1, 0o777, 0, 0, 0, 0, 0)),
])
def test_write_ops_are_erofs_when_read_only(gofer, tree, op, args):
    before = sorted(os.listdir(tree))
    _, err = gofer.raw_error(gofer.request(op, gofer.root_handle, *args))
    assert err == errno.EROFS
    assert sorted(os.listdir(tree)) == before


def test_writable_gofer_opens_for_writing(tree):
    g = Gofer(tree, readonly=False)
    try:
        fd = g.client.open(g.walk(b"dir", b"sub.txt"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"new\n")
        os.close(fd)
        assert (tree / "dir" / "sub.txt").read_bytes() == b"new\n"
        assert _errno(g.client.open, g.walk(b"dir"), os.O_RDONLY | os.O_CREAT) == errno.EINVAL
        _, err = g.raw_error(g.request(Op.MKDIR, g.root_handle, b"new", 0o755, 0, 0))
        assert err == errno.ENOSYS
        assert not (tree / "new").exists()
    finally:
        assert g.stop() == 0


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


def test_getdents_pages_through_a_big_directory(tmp_path):
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
            g.sock.sendmsg([protocol.encode_request(Op.GETDENTS, g.raw_id, handle, cookie)])
            _, _, (cookie, page) = protocol.decode_reply(Op.GETDENTS, g.sock.recv(MAX_MESSAGE))
            if not page:
                break
            pages += 1
        assert pages > 3
        names = [e.name for e in g.client.getdents(handle)]
        assert len(names) == len(set(names)) == 3000
        assert set(names) == {os.fsencode(n) for n in os.listdir(big)}
    finally:
        assert g.stop() == 0


def test_getdents_of_a_file_is_enotdir(gofer):
    assert _errno(gofer.client.getdents, gofer.walk(b"hello.txt")) == errno.ENOTDIR


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


# --- hostile input -----------------------------------------------------------------------------

def _hdr(length: int, req_id: int, op: int) -> bytes:
    return HEADER.pack(length, req_id, op)


def _msg(req_id: int, op: int, body: bytes) -> bytes:
    return _hdr(HEADER.size + len(body), req_id, op) + body


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
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_message_gets_an_error_and_the_gofer_goes_on(gofer, case):
    data, want_id, want_err = HOSTILE[case]
    assert gofer.raw_error(data) == (want_id, want_err)
    handle = gofer.walk(b"dir", b"sub.txt")
    assert gofer.client.stat(handle).st_size == 4


def test_fds_sent_to_the_gofer_are_refused(gofer, tree):
    base = _fd_count(gofer.pid)
    fd = os.open(tree, os.O_RDONLY)
    try:
        _, err = gofer.raw_error(gofer.request(Op.ATTACH), fds=[fd])
    finally:
        os.close(fd)
    assert err == errno.EINVAL
    assert _fd_count(gofer.pid) == base
    assert gofer.client.stat(gofer.root_handle) == gofer.root_stat


def test_fuzz(gofer):
    """Random datagrams, mostly with valid headers: one well-formed reply each, no crash."""
    rng = random.Random(1234)
    ops = list(protocol.SPEC) + [0, 99, protocol.ERROR]
    for i in range(1500):
        body = rng.randbytes(rng.choice([0, 1, 4, 8, 12, 16, 20, 40, 300]))
        if rng.random() < 0.5:  # a real handle makes the decoder and handlers go deeper
            body = struct.pack("<Q", rng.choice([gofer.root_handle, 2, 3])) + body
        data = _msg(i, rng.choice(ops), body)
        if rng.random() < 0.1:
            data = data[:rng.randrange(len(data) + 1)]
        req_id, op, _, fds = gofer.raw(data)
        for fd in fds:
            os.close(fd)
        assert op in protocol.SPEC or op == protocol.ERROR
        assert req_id in (i, 0)
    root, _ = gofer.client.attach()  # the fuzz may have closed the fixture's root handle
    handle = gofer.client.walk(gofer.client.walk(root, b"dir")[0], b"nested")[0]
    assert gofer.client.stat(gofer.client.walk(handle, b"deep.txt")[0]).st_size == 5


# --- confinement and lifetime --------------------------------------------------------------------

def test_gofer_is_chrooted_in_its_own_mount_namespace(gofer, tree):
    assert os.readlink(f"/proc/{gofer.pid}/root") == os.path.realpath(tree)
    assert os.readlink(f"/proc/{gofer.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert _errno(gofer.client.walk, gofer.root_handle, b"proc") == errno.ENOENT
    assert _errno(gofer.client.walk, gofer.root_handle, b"etc") == errno.ENOENT


def test_gofer_is_seccomp_confined(gofer):
    status = dict(line.split(":\t", 1) for line in
                  open(f"/proc/{gofer.pid}/status").read().splitlines() if ":\t" in line)
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


def test_seccomp_filter_denies_escapes(tmp_path):
    """Load the read-only filter in a child and try what a subverted gofer would."""
    (tmp_path / "f").write_bytes(b"x")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        results = []
        try:
            server._seccomp_filter(readonly=True).load()
            attempts = [
                lambda: os.close(os.open(tmp_path / "f", os.O_RDONLY)),
                lambda: os.open(tmp_path / "f", os.O_WRONLY),
                lambda: os.open(tmp_path / "g", os.O_RDONLY | os.O_CREAT),
                lambda: os.mkdir(tmp_path / "d"),
                lambda: os.unlink(tmp_path / "f"),
                lambda: socket.socket(socket.AF_UNIX),
                lambda: os.chroot("/"),
                lambda: _linux.unshare(_linux.CLONE_NEWNS),
                lambda: os.execv("/bin/true", ["true"]),
            ]
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
    results = list(struct.unpack(f"{len(data) // 4}i", data))
    assert results == [0] + [errno.EPERM] * 8
    assert (tmp_path / "f").read_bytes() == b"x" and not (tmp_path / "d").exists()


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
