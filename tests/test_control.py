"""The sentry's control service (sentry/control.py) through its client
(sentry/control_client.py), on sandboxes started the way `ringfence do` starts
them (gofer over the host's root, then the sentry) with a control socket.

Each sandbox's init is a shell that exits 0 on SIGTERM (sent through the
service), so every test ends its sandbox normally and reaps the sentry and the
gofers, the only processes it started.  Sub-container tests run the sandbox as
a pod: its init is the pause container, two sub-containers have roots of their
own (a busybox and a marker file each), served by gofers of their own.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import threading
import time

import pytest
import structlog

import harness
from ringfence import log as logs
from ringfence.gofer import server as gofer
from ringfence.proto.sentry.v1.control_pb2 import CreateSubcontainerRequest, PauseRequest, WaitRequest, WaitResponse
from ringfence.sentry import boot
from ringfence.sentry.control_client import ControlClient, ControlError, SentryGone
from ringfence.shim.ttrpc import Code
from ringfence.shim.ttrpc import frame as fr
from ringfence.shim.ttrpc.messages import Request, parse_response

INIT = b'trap "exit 0" TERM; sleep 1000 & wait'
ENV = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/"]


class Sandbox:
    """A gofer and a sentry serving the control service on a socket in `tmp`."""

    def __init__(self, tmp, init: bytes = INIT):
        self.path = str(tmp / "control.sock")
        self.log = tmp / "sentry.log"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(16)
        config = boot.SentryConfig(argv=[b"/bin/sh", b"-c", init], envp=[os.fsencode(e) for e in ENV],
                                   control_sock=listener, container=True)
        saved = structlog.get_config()
        self.gofer_pid, gofer_sock = gofer.start("/", readonly=True)
        try:
            with open(self.log, "a", buffering=1) as log:
                logs.configure(debug=True, stream=log)  # the sentry's log: a file it keeps open
                self.sentry_pid = boot.start(config, gofer_sock)
        finally:
            structlog.configure(**saved)
            gofer_sock.close()
            listener.close()
        self.client = ControlClient(self.path, timeout=harness.TIMEOUT)
        self.unreaped = {self.sentry_pid, self.gofer_pid}
        self.status: int | None = None  # the sentry's exit status, once reaped

    def wait_ready(self) -> None:
        """Until init's trap is set (it has started its sleep)."""
        deadline = time.monotonic() + harness.TIMEOUT
        while not any(p.ppid == 1 for p in self.client.processes()):
            assert time.monotonic() < deadline, "init did not start its sleep"
            time.sleep(0.02)

    def pending_wait(self, **request) -> socket.socket:
        """A connection whose Wait (stream 1) the sentry has taken: a second request on it
        (stream 3) was answered first."""
        sock = _raw_call(self.path, _request("Wait", WaitRequest(**request).SerializeToString())
                         + _request("Processes", sid=3))
        assert _read_response(sock)[0] == 3
        return sock

    def process(self, *args: str, **extra) -> dict:
        return {"args": list(args), "env": ENV, "cwd": "/", **extra}

    def run(self, exec_id: str, *args: str, container_id: str = "", **extra) -> tuple[bytes, int]:
        """Exec `args` (in container `container_id`) with stdout on a pipe: (its output, its status)."""
        r, w = os.pipe()
        try:
            self.client.exec(self.process(*args, **extra), (None, w, None), exec_id, container_id=container_id)
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as out:
            output = out.read()  # EOF: the sentry closed the donated fd when the process exited
        return output, self.client.wait(exec_id=exec_id, timeout=harness.TIMEOUT, container_id=container_id)[0]

    def start_gofer(self, root: str) -> tuple[int, socket.socket]:
        """A gofer over `root` for a sub-container: (its pid, the socket to pass); it exits when
        every copy of the socket is closed (ours and the sentry's)."""
        gofer_pid, sock = gofer.start(root, readonly=True)
        self.unreaped.add(gofer_pid)
        return gofer_pid, sock

    def create(self, container_id: str, root: str, args: list[str], stdout: int | None = None) -> int:
        """Create sub-container `container_id` running `args` over `root` (its own gofer's);
        returns the gofer's pid."""
        gofer_pid, sock = self.start_gofer(root)
        with sock:
            self.client.create_subcontainer(container_id, {"process": self.process(*args)}, (None, stdout, None),
                                            sock.fileno())
        return gofer_pid

    def finish(self, signal_init: bool = True) -> int:
        """End init (SIGTERM), then reap the sentry and the gofers; the sentry's exit status."""
        if self.status is None:
            if signal_init:
                self.client.signal(signal.SIGTERM)
            self.status = self.reap(self.sentry_pid)
            for pid in list(self.unreaped):
                self.reap(pid)
        return self.status

    def reap(self, pid: int) -> int:
        deadline = time.monotonic() + harness.TIMEOUT
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.unreaped.discard(pid)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        raise AssertionError(f"process {pid} did not exit")

    def kill(self) -> None:
        """Kill and reap what is left of the sandbox (after a failure)."""
        for pid in list(self.unreaped):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.unreaped.clear()


@pytest.fixture
def sandbox(tmp_path):
    box = Sandbox(tmp_path)
    try:
        box.wait_ready()
        yield box
        assert box.finish() == 0, box.log.read_text()
    finally:
        box.kill()


def _raw_call(path: str, frames: bytes, fds=()) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(harness.TIMEOUT)
    sock.connect(path)
    if fds:
        socket.send_fds(sock, [frames], list(fds))
    else:
        sock.sendall(frames)
    return sock


def _request(method: str, payload: bytes = b"", sid: int = 1, service: str = "ringfence.sentry.v1.Control"):
    data = Request(service=service, method=method, payload=payload).SerializeToString()
    return fr.encode_frame(sid, fr.TYPE_REQUEST, data)


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n and (chunk := sock.recv(n - len(data))):
        data += chunk
    return data


def _read_response(sock: socket.socket):
    """(stream id, Response), or None at EOF."""
    header = _recv(sock, fr.HEADER_SIZE)
    if not header:
        return None
    header = fr.decode_header(header)
    return header.stream_id, parse_response(_recv(sock, header.length))


def _closed_by_peer(fd: int) -> bool:
    """Whether the read end `fd` of a pipe sees EOF (every write end closed)."""
    ready, _, _ = select.select([fd], [], [], harness.TIMEOUT)
    return bool(ready) and os.read(fd, 1) == b""


def test_exec_output_and_status(sandbox):
    assert sandbox.run("e1", "/bin/sh", "-c", "echo from-exec; exit 4") == (b"from-exec\n", 4)
    # args[0] is looked up in the process's $PATH, and stays what it was
    assert sandbox.run("e2", "sh", "-c", "echo $0") == (b"sh\n", 0)


def test_exec_is_a_process_of_the_sandbox(sandbox):
    output, status = sandbox.run("ids", "sh", "-c", 'echo $$ $PPID; id -u; id -g; pwd; cat /proc/1/comm',
                                 user={"uid": 1000, "gid": 1001}, cwd="/tmp")
    pid, ppid, uid, gid, cwd, init = output.decode().split()
    assert status == 0
    assert int(pid) > 1 and ppid == "0"
    assert (uid, gid, cwd) == ("1000", "1001", "/tmp")
    assert init in ("sh", "dash")  # (the sentry names a process after its resolved executable)


def test_signal_and_deferred_wait(sandbox):
    r, w = os.pipe()
    try:
        pid = sandbox.client.exec(sandbox.process("sleep", "30"), (None, w, None), "sleeper")
    finally:
        os.close(w)
    result = {}
    waiter = threading.Thread(target=lambda: result.update(status=sandbox.client.wait(exec_id="sleeper")))
    waiter.start()
    procs = {p.pid: p for p in sandbox.client.processes()}  # served while the Wait is pending
    assert procs[1].cmd in ("sh", "dash") and procs[1].exec_id == "" and procs[1].ppid == 0
    assert procs[pid].exec_id == "sleeper" and procs[pid].argv == ["sleep", "30"]
    assert procs[pid].ppid == 0 and procs[pid].state in ("S", "R") and procs[pid].started_at.seconds > 0
    time.sleep(0.2)
    assert waiter.is_alive()
    sandbox.client.signal(signal.SIGTERM, exec_id="sleeper")
    waiter.join(harness.TIMEOUT)
    status, exited_at = result["status"]
    assert status == 128 + signal.SIGTERM
    assert abs(exited_at.seconds - time.time()) < 60
    assert _closed_by_peer(r)
    os.close(r)
    assert sandbox.client.wait(exec_id="sleeper")[0] == 143  # kept for later Waits
    assert pid not in {p.pid for p in sandbox.client.processes()}  # reaped by the kernel
    with pytest.raises(ControlError) as err:
        sandbox.client.signal(signal.SIGTERM, exec_id="sleeper")
    assert err.value.code == Code.NOT_FOUND


def test_signal_all_and_by_pid(sandbox):
    pids = [sandbox.client.exec(sandbox.process("sleep", "30"), (None, None, None), f"s{i}") for i in range(2)]
    sandbox.client.signal(signal.SIGKILL, pid=pids[0])
    assert sandbox.client.wait(exec_id="s0")[0] == 128 + signal.SIGKILL
    with sandbox.pending_wait(pid=pids[1]) as sock:
        sandbox.client.signal(signal.SIGTERM, all=True)  # init's trap ends the sandbox, s1 dies
        sid, resp = _read_response(sock)
    assert sid == 1 and resp.status.code == Code.OK
    assert WaitResponse.FromString(resp.payload).exit_status in (128 + signal.SIGTERM, 128 + signal.SIGKILL)
    assert sandbox.finish(signal_init=False) == 0


def test_exec_errors(sandbox):
    with pytest.raises(ControlError) as err:
        sandbox.client.exec(sandbox.process("no-such-program"), (None, None, None), "missing")
    assert err.value.code == Code.NOT_FOUND and "executable file not found" in err.value.message
    with pytest.raises(ControlError) as err:
        sandbox.client.exec(sandbox.process("/no/such/file"), (None, None, None), "missing")
    assert err.value.code == Code.NOT_FOUND and "No such file" in err.value.message
    with pytest.raises(ControlError) as err:
        sandbox.client.exec(sandbox.process("true", cwd="/nonexistent"), (None, None, None), "cwd")
    assert err.value.code == Code.NOT_FOUND
    with pytest.raises(ControlError) as err:
        sandbox.client.exec({"args": "not a list"}, (None, None, None), "bad")
    assert err.value.code == Code.INVALID_ARGUMENT
    sandbox.client.exec(sandbox.process("sleep", "30"), (None, None, None), "dup")
    with pytest.raises(ControlError) as err:
        sandbox.client.exec(sandbox.process("true"), (None, None, None), "dup")
    assert err.value.code == Code.ALREADY_EXISTS
    with pytest.raises(ControlError) as err:
        sandbox.client.wait(exec_id="never-started")
    assert err.value.code == Code.NOT_FOUND
    # A refused request's fds are closed: the pipe sees EOF once our write end is closed too.
    r, w = os.pipe()
    with pytest.raises(ControlError):
        sandbox.client.exec(sandbox.process("/no/such/file"), (None, w, None), "missing")
    os.close(w)
    assert _closed_by_peer(r)
    os.close(r)


def test_hostile_input(sandbox):
    path = sandbox.path
    # garbage bytes, an oversized frame, a response frame, an even stream id: closed
    for junk in (b"garbage!" * 8, fr.encode_header(1 << 30, 1, fr.TYPE_REQUEST),
                 fr.encode_frame(1, fr.TYPE_RESPONSE, b"x"), _request("Processes", sid=2)):
        with _raw_call(path, junk) as sock:
            assert _read_response(sock) is None
    # undecodable messages, unknown names, unbuilt RPCs: an error status, the connection goes on
    cases = [(fr.encode_frame(1, fr.TYPE_REQUEST, b"\xff\xff\xff"), Code.INVALID_ARGUMENT),
             (_request("Exec", b"\x0a\xff", sid=3), Code.INVALID_ARGUMENT),
             (_request("Nope", sid=5), Code.UNIMPLEMENTED),
             (_request("Exec", sid=7, service="other.Service"), Code.UNIMPLEMENTED),
             (_request("Pause", PauseRequest(container_id="nope").SerializeToString(), sid=9), Code.NOT_FOUND),
             (_request("Processes", sid=9), Code.INVALID_ARGUMENT),  # a re-used stream id
             (_request("Processes", sid=11), Code.OK)]
    with _raw_call(path, b"".join(frame for frame, _ in cases)) as sock:
        for (_, code), sid in zip(cases, (1, 3, 5, 7, 9, 9, 11)):
            got_sid, resp = _read_response(sock)
            assert (got_sid, resp.status.code) == (sid, code), resp.status.message
    # too many fds: the connection is closed and every fd with it
    r, w = os.pipe()
    with _raw_call(path, _request("Processes"), [w] * 20) as sock:
        os.close(w)
        assert _read_response(sock) is None
    assert _closed_by_peer(r)
    os.close(r)
    # a frame sent a byte at a time, a connection left half-way: served, then dropped
    with _raw_call(path, b"") as sock:
        for byte in _request("Processes"):
            sock.send(bytes([byte]))
        assert _read_response(sock)[1].status.code == Code.OK
    half = _raw_call(path, _request("Processes")[:7])
    half.close()
    assert sandbox.run("after", "sh", "-c", "echo still here") == (b"still here\n", 0)


def test_served_while_the_loop_is_busy(tmp_path):
    """Requests are served while programs keep the sentry's loop busy: init spinning in user
    space (the loop waits in the platform for a stop that does not come, until SIGIO), an exec
    making syscalls all the time."""
    box = Sandbox(tmp_path, init=b"while :; do :; done")
    try:
        time.sleep(0.3)
        for exec_id in ("", "sys"):
            if exec_id:
                box.client.exec(box.process("sh", "-c", "while :; do echo x >/dev/null; done"),
                                (None, None, None), exec_id)
                time.sleep(0.3)
            start = time.monotonic()
            assert exec_id in {p.exec_id for p in box.client.processes()}
            assert time.monotonic() - start < 2
        box.client.signal(signal.SIGKILL, exec_id="sys")
        assert box.client.wait(exec_id="sys")[0] == 137
        box.client.signal(signal.SIGKILL)
        assert box.finish(signal_init=False) == 137
    finally:
        box.kill()


def test_pending_wait_answered_when_init_exits(sandbox):
    sandbox.client.exec(sandbox.process("sleep", "30"), (None, None, None), "orphan")
    with sandbox.pending_wait(exec_id="orphan") as sock:
        assert sandbox.finish() == 0
        sid, resp = _read_response(sock)
    assert sid == 1 and resp.status.code == Code.OK
    assert WaitResponse.FromString(resp.payload).exit_status == 128 + signal.SIGKILL  # dies with init, as in runc
    with pytest.raises(SentryGone):
        sandbox.client.processes()


# -- sub-containers: a pod in one sandbox ------------------------------------------

SHOW_ROOT = "cat /marker-*; ls /"


def _root(tmp_path, name: str, busybox: str) -> str:
    """A root of its own: /bin with a busybox and its applets, and /marker-NAME holding NAME."""
    root = tmp_path / f"root-{name}"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "cat", "ls", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / f"marker-{name}").write_text(name + "\n")
    return str(root)


def _code(call) -> Code:
    with pytest.raises(ControlError) as err:
        call()
    return err.value.code


def test_subcontainers(sandbox, tmp_path, busybox):
    """Two sub-containers with different roots beside the pause container (the sandbox's init)."""
    client, outputs, gofers = sandbox.client, {}, {}
    for cid in ("one", "two"):
        r, w = os.pipe()
        try:  # init shows its root on the pipe, then sleeps with stdout elsewhere: the pipe sees EOF
            gofers[cid] = sandbox.create(cid, _root(tmp_path, cid, busybox),
                                         ["sh", "-c", f"{SHOW_ROOT}; exec sleep 1000 >/dev/null"], stdout=w)
        finally:
            os.close(w)
        outputs[cid] = r
        assert client.processes(container_id=cid) == []  # created, not started
    pids = {cid: client.start_subcontainer(cid) for cid in ("one", "two")}
    for cid, r in outputs.items():
        with os.fdopen(r, "rb") as out:  # each sees its own root only: no other marker, no host files
            assert out.read().decode().split() == [cid, "bin", "dev", f"marker-{cid}", "proc"]
    # exec in a sub-container runs in its root; its /proc shows that container's processes only
    output, status = sandbox.run("look", "sh", "-c", f"{SHOW_ROOT}; ls /proc", container_id="two")
    lines = output.decode().split()
    assert status == 0 and lines[:5] == ["two", "bin", "dev", "marker-two", "proc"]
    listed = {cid: {p.pid for p in client.processes(container_id=cid)} for cid in ("", "one", "two")}
    in_proc = {int(name) for name in lines[5:] if name.isdigit()}
    assert pids["two"] in in_proc and not in_proc & (listed[""] | listed["one"])
    assert listed["one"] == {pids["one"]} and listed["two"] == {pids["two"]}
    assert 1 in listed[""] and not listed[""] & (listed["one"] | listed["two"])
    assert all(p.ppid == 0 and p.argv == ["sleep", "1000"] for cid in ("one", "two")
               for p in client.processes(container_id=cid))
    # no way into another container's root through /proc (the pause container's either)
    output, status = sandbox.run("escape", "sh", "-c", f"cat /proc/{pids['two']}/root/marker-two; "
                                 "ls /proc/1/root/", container_id="one")
    assert output == b"" and status != 0
    # exec ids are per container; a pid names a process of the container it is asked in
    client.exec(sandbox.process("sleep", "1000"), (None, None, None), "bg", container_id="two")
    client.exec(sandbox.process("sleep", "1000"), (None, None, None), "bg", container_id="one")
    assert _code(lambda: client.signal(signal.SIGTERM, pid=pids["two"], container_id="one")) == Code.NOT_FOUND
    # Signal(all) reaches every process of that container only; its init, like a pid
    # namespace's, ignores what it has no handler for, except SIGKILL from the runtime
    client.signal(signal.SIGTERM, all=True, container_id="one")
    assert client.wait(exec_id="bg", container_id="one")[0] == 128 + signal.SIGTERM
    assert {p.pid for p in client.processes(container_id="one")} == {pids["one"]}
    with sandbox.pending_wait(container_id="one") as sock:
        client.signal(signal.SIGKILL, all=True, container_id="one")
        sid, resp = _read_response(sock)
    assert sid == 1 and WaitResponse.FromString(resp.payload).exit_status == 128 + signal.SIGKILL
    assert client.wait(container_id="one")[0] == 128 + signal.SIGKILL
    sandbox.reap(gofers["one"])  # the ended container's gofer connection is closed
    assert client.processes(container_id="one") == []
    assert {p.pid for p in client.processes(container_id="two")} >= {pids["two"]}
    assert _code(lambda: client.exec(sandbox.process("true"), (None, None, None), "late", container_id="one")) \
        == Code.FAILED_PRECONDITION
    # a sub-container's init exits: its other processes are killed, as in a pid namespace of its own
    client.signal(signal.SIGKILL, container_id="two")
    assert client.wait(container_id="two", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL
    assert client.wait(exec_id="bg", container_id="two")[0] == 128 + signal.SIGKILL
    sandbox.reap(gofers["two"])
    assert client.processes(container_id="two") == []
    # the pause container went on all along
    assert sandbox.run("after", "sh", "-c", "echo still here") == (b"still here\n", 0)


def test_subcontainer_hostile_input(sandbox, tmp_path, busybox):
    client = sandbox.client
    root = _root(tmp_path, "one", busybox)
    # unknown container ids
    for call in (lambda: client.processes(container_id="nope"), lambda: client.start_subcontainer("nope"),
                 lambda: client.signal(signal.SIGTERM, container_id="nope"),
                 lambda: client.wait(container_id="nope"),
                 lambda: client.exec(sandbox.process("true"), (None, None, None), "x", container_id="nope")):
        assert _code(call) == Code.NOT_FOUND
    sandbox.create("one", root, ["sleep", "1000"])
    assert _code(lambda: client.exec(sandbox.process("true"), (None, None, None), "x", container_id="one")) \
        == Code.FAILED_PRECONDITION  # not started
    assert _code(lambda: client.wait(container_id="one")) == Code.FAILED_PRECONDITION
    # a refused create closes the fds it came with: each gofer exits, a pipe sees EOF
    for cid, spec, code in (("one", {"process": sandbox.process("true")}, Code.ALREADY_EXISTS),
                            ("", {"process": sandbox.process("true")}, Code.INVALID_ARGUMENT),
                            ("bad", {"process": {"args": "true"}}, Code.INVALID_ARGUMENT),
                            ("bad", {"no": "process"}, Code.INVALID_ARGUMENT)):
        gofer_pid, sock = sandbox.start_gofer(root)
        with sock:
            assert _code(lambda: client.create_subcontainer(cid, spec, (None, None, None), sock.fileno())) == code
        sandbox.reap(gofer_pid)
    r, w = os.pipe()
    request = CreateSubcontainerRequest(container_id="nogofer", spec_json=b'{"process": {"args": ["true"]}}',
                                        fd_roles=["stdout"])
    with _raw_call(sandbox.path, _request("CreateSubcontainer", request.SerializeToString()), [w]) as sock:
        os.close(w)
        assert _read_response(sock)[1].status.code == Code.INVALID_ARGUMENT
    assert _closed_by_peer(r)
    os.close(r)
    r, w = os.pipe()  # a gofer fd that is no socket
    assert _code(lambda: client.create_subcontainer("pipe", {"process": sandbox.process("true")},
                                                    (None, None, None), w)) == Code.INVALID_ARGUMENT
    os.close(w)
    assert _closed_by_peer(r)
    os.close(r)
    # starting twice (or the first container), a program that is not there
    pid = client.start_subcontainer("one")
    assert _code(lambda: client.start_subcontainer("one")) == Code.FAILED_PRECONDITION
    assert _code(lambda: client.start_subcontainer("")) == Code.FAILED_PRECONDITION
    missing_gofer = sandbox.create("missing", root, ["no-such-program"])
    with pytest.raises(ControlError) as err:
        client.start_subcontainer("missing")
    assert err.value.code == Code.NOT_FOUND and "executable file not found" in err.value.message
    assert client.wait(container_id="missing")[0] == 127  # it stopped, and let its gofer go
    sandbox.reap(missing_gofer)
    # the sandbox survived all of it: the pause container and sub-container "one" run on
    assert {p.pid for p in client.processes(container_id="one")} == {pid}
    assert sandbox.run("after", "sh", "-c", "echo still here") == (b"still here\n", 0)
    client.signal(signal.SIGKILL, container_id="one")
    assert client.wait(container_id="one")[0] == 128 + signal.SIGKILL


# -- pausing one container of the sandbox; kill(2) stays within a container ------------------

# A counter on stdout: one container's loop spins in user space between writes (a pause must
# kick it off the CPU), the other's sleeps (a pause finds it blocked in the sentry).
SPIN = "i=0; while :; do i=$((i+1)); echo $i; j=0; while [ $j -lt 300 ]; do j=$((j+1)); done; done"
NAP = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done"


class _Counter:
    """The last number a container's init wrote on a pipe, read by a thread of ours."""

    def __init__(self, r: int):
        self.r, self.last, self.text = r, 0, b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with os.fdopen(self.r, "rb", buffering=0) as f:
            while chunk := f.read(65536):
                self.text = (self.text + chunk)[-64:]
                lines = self.text.split(b"\n")
                if len(lines) > 1 and lines[-2].isdigit():
                    self.last = int(lines[-2])

    def advancing(self, within: float = harness.TIMEOUT) -> bool:
        start, deadline = self.last, time.monotonic() + within
        while self.last == start and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.last != start

    def still(self, seconds: float) -> bool:
        time.sleep(0.2)  # (what was written before the freeze reaches us)
        before = self.last
        time.sleep(seconds)
        return self.last == before


def _counters(sandbox, tmp_path, busybox, scripts: dict[str, str]) -> tuple[dict, dict]:
    """Sub-containers running `scripts` (cid -> shell script), started: (their init pids,
    Counters of their stdout)."""
    counters, pids = {}, {}
    for cid, script in scripts.items():
        r, w = os.pipe()
        try:
            sandbox.create(cid, _root(tmp_path, cid, busybox), ["sh", "-c", script], stdout=w)
        finally:
            os.close(w)
        counters[cid] = _Counter(r)
        pids[cid] = sandbox.client.start_subcontainer(cid)
    return pids, counters


def _exec_output(sandbox, container_id: str, exec_id: str, script: str) -> tuple[int, int]:
    """Exec `script` (stdout and stderr on a pipe) in the container: (its pid, the pipe's read end)."""
    r, w = os.pipe()
    try:
        pid = sandbox.client.exec(sandbox.process("sh", "-c", script), (None, w, w), exec_id,
                                  container_id=container_id)
    finally:
        os.close(w)
    return pid, r


def test_pause_and_resume_a_subcontainer(sandbox, tmp_path, busybox):
    client = sandbox.client
    pids, counters = _counters(sandbox, tmp_path, busybox, {"one": SPIN, "two": NAP})
    assert all(c.advancing() for c in counters.values())
    for cid in ("one", "two"):
        # frozen: no counter moves, while the other container's and the pause container go on
        other = counters["two" if cid == "one" else "one"]
        client.pause(container_id=cid)
        assert counters[cid].still(0.5) and other.advancing()
        states = {p.pid: p.state for p in client.processes(container_id=cid)}
        assert states[pids[cid]] == "D" and set(states.values()) <= {"D", "Z"}  # (Z: a child not reaped yet)
        assert {p.state for p in client.processes(container_id="")} <= {"S", "R"}
        client.pause(container_id=cid)  # again: fine
        assert _code(lambda: client.exec(sandbox.process("true"), (None, None, None), "x", container_id=cid)) \
            == Code.FAILED_PRECONDITION
        assert sandbox.run("alive", "sh", "-c", "echo pod") == (b"pod\n", 0)
        client.resume(container_id=cid)
        assert counters[cid].advancing()
        client.resume(container_id=cid)  # again: fine
        assert counters[cid].advancing() and other.advancing()
        assert {p.state for p in client.processes(container_id=cid)} <= {"S", "R", "Z"}
    # a syscall in progress during the pause completes normally: its timer ran on meanwhile
    _, r = _exec_output(sandbox, "one", "nap", "sleep 1; echo slept $?")
    time.sleep(0.3)
    client.pause(container_id="one")
    time.sleep(1.2)  # past the sleep's end: it ends only once thawed
    assert not select.select([r], [], [], 0)[0]
    client.resume(container_id="one")
    resumed = time.monotonic()
    assert client.wait(exec_id="nap", container_id="one", timeout=harness.TIMEOUT)[0] == 0
    assert time.monotonic() - resumed < 0.6  # at once: its timer ran on while frozen (0.7 s were left)
    with os.fdopen(r, "rb") as out:
        assert out.read() == b"slept 0\n"
    # a short pause inside a sleep: it still takes its second, and no EINTR
    start = time.monotonic()
    _, r = _exec_output(sandbox, "two", "nap", "sleep 1; echo slept $?")
    time.sleep(0.3)
    client.pause(container_id="two")
    time.sleep(0.2)
    client.resume(container_id="two")
    assert client.wait(exec_id="nap", container_id="two", timeout=harness.TIMEOUT)[0] == 0
    assert 0.9 < time.monotonic() - start < 5
    with os.fdopen(r, "rb") as out:
        assert out.read() == b"slept 0\n"
    # unknown containers, and the first one paused and resumed with the default id
    assert _code(lambda: client.pause(container_id="nope")) == Code.NOT_FOUND
    assert _code(lambda: client.resume(container_id="nope")) == Code.NOT_FOUND
    client.pause()
    assert {p.state for p in client.processes()} <= {"D", "Z"} and counters["one"].advancing()
    client.resume()
    assert sandbox.run("after-pause", "sh", "-c", "echo pod") == (b"pod\n", 0)
    # a paused container can be killed: SIGKILL to its init ends it, every process with it
    client.exec(sandbox.process("sleep", "1000"), (None, None, None), "bg", container_id="one")
    client.pause(container_id="one")
    client.signal(signal.SIGKILL, container_id="one")
    assert client.wait(container_id="one", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL
    assert client.wait(exec_id="bg", container_id="one", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL
    assert client.processes(container_id="one") == []
    counters["one"].thread.join(harness.TIMEOUT)  # its stdout is closed
    assert not counters["one"].thread.is_alive()
    assert _code(lambda: client.pause(container_id="one")) == Code.FAILED_PRECONDITION
    assert _code(lambda: client.resume(container_id="one")) == Code.FAILED_PRECONDITION
    # SIGKILL to one process of a paused container: it dies, the others stay frozen
    client.exec(sandbox.process("sleep", "1000"), (None, None, None), "bg", container_id="two")
    client.pause(container_id="two")
    client.signal(signal.SIGKILL, exec_id="bg", container_id="two")
    assert client.wait(exec_id="bg", container_id="two", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL
    assert counters["two"].still(0.3)
    client.resume(container_id="two")
    assert counters["two"].advancing()
    client.signal(signal.SIGKILL, container_id="two")
    assert client.wait(container_id="two", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL


def test_pause_with_a_created_container_and_a_pending_signal(sandbox, tmp_path, busybox):
    client = sandbox.client
    sandbox.create("new", _root(tmp_path, "new", busybox), ["sleep", "1000"])
    assert _code(lambda: client.pause(container_id="new")) == Code.FAILED_PRECONDITION
    client.start_subcontainer("new")
    _, r = _exec_output(sandbox, "new", "trap", 'trap "echo got TERM; exit 3" TERM; echo ready; '
                                               'while :; do sleep 0.05; done')
    assert os.read(r, 64) == b"ready\n"
    client.pause(container_id="new")
    client.signal(signal.SIGTERM, exec_id="trap", container_id="new")  # pending until the thaw
    time.sleep(0.3)
    assert not select.select([r], [], [], 0)[0]
    assert {p.state for p in client.processes(container_id="new")} <= {"D", "Z"}
    client.resume(container_id="new")
    assert client.wait(exec_id="trap", container_id="new", timeout=harness.TIMEOUT)[0] == 3
    with os.fdopen(r, "rb") as out:
        assert out.read() == b"got TERM\n"
    client.signal(signal.SIGKILL, container_id="new")
    assert client.wait(container_id="new", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL


def test_kill_stays_within_a_container(sandbox, tmp_path, busybox):
    client = sandbox.client
    pids = {}
    for cid in ("one", "two"):
        sandbox.create(cid, _root(tmp_path, cid, busybox), ["sleep", "1000"])
        pids[cid] = client.start_subcontainer(cid)
    bg = {cid: client.exec(sandbox.process("sleep", "1000"), (None, None, None), "bg", container_id=cid)
          for cid in ("one", "two")}
    # another container's pid (its init's, an exec's, the pause container's init, pid 1) is not there
    for target in (pids["two"], bg["two"], 1):
        for sig in ("TERM", "0"):
            output, status = sandbox.run(f"kill-{target}-{sig}", "sh", "-c", f"kill -{sig} {target} 2>&1; "
                                         "echo rc=$?", container_id="one")
            assert b"No such process" in output and output.endswith(b"rc=1\n"), output
    # process groups: the other container's are not there either
    output, _ = sandbox.run("kill-pgrp", "sh", "-c", f"kill -TERM -{bg['two']} 2>&1; echo rc=$?",
                            container_id="one")
    assert b"No such process" in output and output.endswith(b"rc=1\n"), output
    # its own are
    output, _ = sandbox.run("kill-own", "sh", "-c", f"kill -0 {bg['one']} && kill -0 {pids['one']} && echo ok",
                            container_id="one")
    assert output == b"ok\n"
    # kill -1 signals every process of the caller's container but itself and the container's init
    output, status = sandbox.run("kill-all", "sh", "-c", "kill -9 -1; echo rc=$?", container_id="one")
    assert (output, status) == (b"rc=0\n", 0)
    assert client.wait(exec_id="bg", container_id="one", timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL
    assert {p.pid for p in client.processes(container_id="one")} == {pids["one"]}
    assert {p.pid for p in client.processes(container_id="two")} == {pids["two"], bg["two"]}
    assert 1 in {p.pid for p in client.processes()}
    # and from the pause container, the same
    output, _ = sandbox.run("from-pod", "sh", "-c", f"kill -0 {pids['two']} 2>&1; echo rc=$?")
    assert b"No such process" in output and output.endswith(b"rc=1\n"), output
    for cid in ("one", "two"):
        client.signal(signal.SIGKILL, container_id=cid)
        assert client.wait(container_id=cid, timeout=harness.TIMEOUT)[0] == 128 + signal.SIGKILL
