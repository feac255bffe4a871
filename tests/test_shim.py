"""End to end: containerd drives our shim, `containerd-shim-ringfence-v1`.

One private containerd (tests/containerd_env.py) serves the whole module,
with a locally built busybox image.  Every test runs twice, first with runc's
shim (io.containerd.runc.v2) — which proves the test and the machine — then
with ours (io.containerd.ringfence.v1), against the same expected output,
exit status and clean machine afterwards.  Every ctr call has a time limit,
so a hung shim fails its test instead of the suite.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

import containerd_env as ce
import harness


@pytest.fixture(scope="module")
def containerd():
    """The module's private containerd, with the busybox image imported."""
    try:
        with ce.private_containerd() as c:
            c.import_image(ce.busybox_image())
            yield c
    except (ce.ContainerdError, harness.HarnessError) as e:
        pytest.fail(str(e), pytrace=False)


# Module scope groups the tests by runtime: every runc run comes first.
@pytest.fixture(scope="module", params=list(ce.RUNTIMES))
def runtime(request) -> str:
    return request.param


class Session:
    """One test's use of the shared containerd with one runtime: ctr calls
    that fail the test on timeout, and the container ids it used."""

    def __init__(self, c: ce.Containerd, runtime: str):
        self.c, self.runtime = c, runtime
        self.ids: list[str] = []

    def new_id(self, name: str) -> str:
        """A container id for this test and runtime, remembered for cleanup."""
        cid = f"rf-{self.runtime}-{name}"
        self.ids.append(cid)
        return cid

    def ctr(self, *args: str, timeout: float = ce.CTR_TIMEOUT, **kw) -> subprocess.CompletedProcess:
        """ctr against the private containerd; a timeout fails the test."""
        try:
            return self.c.ctr(*args, timeout=timeout, **kw)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"timed out after {timeout:.0f}s: ctr {' '.join(args)}\n"
                        f"stdout: {(e.stdout or b'').decode(errors='replace')[-1500:]}\n"
                        f"stderr: {(e.stderr or b'').decode(errors='replace')[-1500:]}\n"
                        f"containerd log:\n{self.c.log_tail()}", pytrace=False)

    def run_args(self, cid: str, *argv: str, flags: tuple[str, ...] = ()) -> list[str]:
        """ctr's arguments to run argv in the busybox image with this runtime."""
        return ["run", "--runtime", ce.RUNTIMES[self.runtime], "--fifo-dir", str(self.c.fifo_dir),
                *flags, ce.IMAGE_NAME, cid, *argv]

    def run(self, cid: str, *argv: str, flags: tuple[str, ...] = (), **kw) -> subprocess.CompletedProcess:
        """`ctr run [flags] IMAGE cid argv...`."""
        return self.ctr(*self.run_args(cid, *argv, flags=flags), **kw)

    def tasks(self) -> dict[str, tuple[int, str]]:
        """`ctr task ls` as {id: (pid, status)}."""
        r = self.ctr("task", "ls")
        assert r.returncode == 0, r.stderr
        rows = [line.split() for line in r.stdout.splitlines()[1:] if line.strip()]
        return {row[0]: (int(row[1]), row[2]) for row in rows}

    def delete_killed(self, cid: str) -> None:
        """Once task `cid`, killed by SIGKILL, has stopped: `task delete` reports exit code 137,
        the container is deleted, and nothing is left."""
        self.wait_status(cid, "STOPPED")
        r = self.ctr("task", "delete", cid)
        assert r.returncode == 0 and "exit code 137" in r.stderr, r.stderr
        r = self.ctr("container", "delete", cid)
        assert r.returncode == 0, r.stderr
        self.assert_clean()

    def wait_status(self, cid: str, status: str, timeout: float = 30) -> tuple[int, str]:
        """Poll `ctr task ls` until cid has `status`; returns its (pid, status)."""
        deadline = time.monotonic() + timeout
        while (got := self.tasks().get(cid)) is None or got[1] != status:
            assert time.monotonic() < deadline, f"task {cid} not {status} after {timeout}s: {got}"
            time.sleep(0.1)
        return got

    def assert_clean(self) -> None:
        """Nothing of the test's containers is left (see Containerd.leftovers)."""
        left = self.c.wait_clean(self.ids)
        assert not left, "left behind:\n" + "\n".join(left)

    def remove_all(self) -> None:
        """Delete the test's tasks and containers, then reap whatever stays."""
        for cid in self.ids:
            for args in (("task", "delete", "--force", cid), ("container", "delete", cid)):
                try:
                    self.c.ctr(*args, timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        self.c.reap(self.ids)


@pytest.fixture
def session(containerd, runtime):
    """A Session; the test's containers are removed afterwards, pass or fail."""
    s = Session(containerd, runtime)
    yield s
    s.remove_all()


def test_run_output_and_exit_status(session):
    """`ctr run --rm IMG id sh -c 'echo hi; ...; exit 3'`: stdout and stderr
    reach ctr separately, ctr exits 3, nothing is left."""
    cid = session.new_id("1")
    r = session.run(cid, "sh", "-c", "echo hi; echo oops >&2; exit 3", flags=("--rm",))
    assert (r.returncode, r.stdout, r.stderr) == (3, "hi\n", "oops\n")
    session.assert_clean()


def test_run_stdin_and_environment(session):
    """stdin reaches the container; the image's PATH, pid 1 and an --env are seen."""
    cid = session.new_id("stdin")
    r = session.run(cid, "sh", "-c", 'head -n 1; echo "$$ $PATH $RF_TEST"',
                    flags=("--rm", "--env", "RF_TEST=yes"), input=b"line one\nline two\n")
    assert (r.returncode, r.stdout, r.stderr) == (
        0, f"line one\n1 {ce.PATH_ENV.removeprefix('PATH=')} yes\n", "")
    session.assert_clean()


def test_detached_lifecycle(session):
    """run -d; task ls/ps; exec; pause/resume; kill (SIGTERM); delete."""
    cid = session.new_id("life")
    # pid 1 ignores SIGTERM unless it handles it (as on Linux), so trap it.
    r = session.run(cid, "sh", "-c", 'trap "exit 7" TERM; sleep 30 & wait',
                    flags=("-d", "--null-io"))
    assert r.returncode == 0, r.stderr
    pid, status = session.tasks()[cid]
    assert status == "RUNNING" and pid > 0

    r = session.ctr("task", "ps", cid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "INFO"] and len(lines) >= 2, r.stdout
    assert all(re.fullmatch(r"\d+", line.split()[0]) for line in lines[1:]), r.stdout

    r = session.ctr("task", "exec", "--fifo-dir", str(session.c.fifo_dir), "--exec-id", "e1",
                    cid, "sh", "-c", "echo from-exec; echo exec-err >&2; exit 4")
    assert (r.returncode, r.stdout, r.stderr) == (4, "from-exec\n", "exec-err\n")

    for verb, status in (("pause", "PAUSED"), ("resume", "RUNNING")):
        r = session.ctr("task", verb, cid)
        assert r.returncode == 0, r.stderr
        assert session.tasks()[cid] == (pid, status)

    r = session.ctr("task", "kill", cid)  # SIGTERM
    assert r.returncode == 0, r.stderr
    session.wait_status(cid, "STOPPED")
    r = session.ctr("task", "delete", cid)
    assert r.returncode == 0 and "exit code 7" in r.stderr, r.stderr
    assert cid not in session.tasks()
    r = session.ctr("container", "delete", cid)
    assert r.returncode == 0, r.stderr
    session.assert_clean()


def test_sigkill_of_task_pid_is_an_exit(session):
    """SIGKILL from the host to the pid `ctr task ls` shows (for ringfence the
    process the shim reports as the task's) ends the task with status 137."""
    cid = session.new_id("kill9")
    r = session.run(cid, "sleep", "30", flags=("-d", "--null-io"))
    assert r.returncode == 0, r.stderr
    pid, _ = session.wait_status(cid, "RUNNING")
    os.kill(pid, signal.SIGKILL)
    session.delete_killed(cid)


def test_init_ignores_signals_it_does_not_handle(session):
    """The container's init, as a pid namespace's, ignores a SIGTERM it has
    no handler for; SIGKILL from the runtime ends it (status 137)."""
    cid = session.new_id("initsig")
    r = session.run(cid, "sleep", "30", flags=("-d", "--null-io"))
    assert r.returncode == 0, r.stderr
    session.wait_status(cid, "RUNNING")
    r = session.ctr("task", "kill", cid)
    assert r.returncode == 0, r.stderr
    time.sleep(1)
    assert session.tasks()[cid][1] == "RUNNING"
    r = session.ctr("task", "kill", "-s", "SIGKILL", cid)
    assert r.returncode == 0, r.stderr
    session.delete_killed(cid)


def _shim_pid(c: ce.Containerd, cid: str) -> int:
    """The pid of the shim serving container `cid` of the private containerd
    (ringfence's gofer and sentry are forks of it, with its command line)."""
    pids = {pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if "containerd-shim-" in (cmd := ce._cmdline(pid)) and c.socket in cmd and f"-id {cid} " in cmd}
    shims = [pid for pid in pids if _ppid(pid) not in pids]
    assert len(shims) == 1, pids
    return shims[0]


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_killed_shim_is_an_exit_and_cleaned_up(session):
    """A shim killed with SIGKILL takes its sandbox with it: containerd sees
    the task stop, runs the shim's `delete`, and nothing is left behind."""
    cid = session.new_id("shimkill")
    r = session.run(cid, "sleep", "30", flags=("-d", "--null-io"))
    assert r.returncode == 0, r.stderr
    task_pid, _ = session.wait_status(cid, "RUNNING")
    os.kill(_shim_pid(session.c, cid), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while session.tasks().get(cid, (0, "gone"))[1] == "RUNNING" or os.path.exists(f"/proc/{task_pid}"):
        assert time.monotonic() < deadline, "the task or its sandbox outlived the shim"
        time.sleep(0.1)
    if cid in session.tasks():  # containerd may have deleted the task itself
        r = session.ctr("task", "delete", cid)
        assert r.returncode == 0, r.stderr
    r = session.ctr("container", "delete", cid)
    assert r.returncode == 0, r.stderr
    if session.runtime == "runc":  # runc's shim leaves its socket behind: not ours to judge
        for path in session.c._shim_sockets([cid]):
            path.unlink()
    session.assert_clean()


def test_run_with_terminal(session):
    """`ctr run -t` under a pseudo-terminal: the container's stdio is a
    terminal named by a /dev path, of ctr's window size, exit status kept."""
    cid = session.new_id("tty")
    # ctr sends the window size only after the task started: wait for it.
    script = ('tty; test -t 0 && test -t 1 && echo is-a-tty; i=0; '
              'while [ -z "$(stty size 2>/dev/null)" ] && [ $i -lt 100 ]; do '
              'i=$((i+1)); sleep 0.05; done; stty size; exit 5')
    rc, out = harness.run_in_pty(session.c.ctr_argv(*session.run_args(cid, "sh", "-c", script, flags=("-t", "--rm"))),
                         33, 101)
    lines = out.decode(errors="replace").replace("\r", "").splitlines()
    assert rc == 5, out
    assert len(lines) == 3 and re.fullmatch(r"/dev/(pts/\d+|console)", lines[0]), out
    assert lines[1:] == ["is-a-tty", "33 101"], out
    session.assert_clean()


def test_interrupt_typed_at_a_terminal(session):
    """^C typed at `ctr run -t` interrupts the container's foreground group (cat, then the
    shell); typed at `ctr task exec -t`, the exec'd process."""
    cid = session.new_id("intr")
    rc, out = harness.run_in_pty(session.c.ctr_argv(*session.run_args(
        cid, "sh", "-c", "echo ready; cat; echo not-here", flags=("-t", "--rm"))), ready=b"ready", typed=b"\x03")
    assert rc == 130 and b"not-here" not in out, out
    cid = session.new_id("xintr")
    r = session.run(cid, "sleep", "60", flags=("-d", "--null-io"))
    assert r.returncode == 0, r.stderr
    rc, out = harness.run_in_pty(session.c.ctr_argv("task", "exec", "-t", "--fifo-dir", str(session.c.fifo_dir), "--exec-id", "x1",
                                                    cid, "sh", "-c",
                                                    "echo ready; exec cat"), ready=b"ready", typed=b"\x03")
    assert rc == 130, out
    session.ctr("task", "kill", "-s", "SIGKILL", cid)
    session.wait_status(cid, "STOPPED")


def test_resizing_a_terminal_tells_its_foreground_group():
    """Task.ResizePty on a process's terminal: a new size is SIGWINCH for the foreground group
    in the sandbox (the host pty signals nobody there); the same size again is no change."""
    from ringfence.shim.stdio import ProcessIO

    sent = []
    io = ProcessIO("", "", "", terminal=True, on_signal=sent.append)
    try:
        io.resize(101, 33)
        io.resize(101, 33)
        io.resize(80, 24)
    finally:
        io.close()
    assert sent == [signal.SIGWINCH, signal.SIGWINCH]


def test_cri_plugin_starts():
    """With cri=True the CRI plugin loads with restrict_oom_score_adj and the
    runtimes runc and ringfence, and takes the CNI bridge config without error."""
    try:
        with ce.private_containerd(cri=True) as c:
            r = c.ctr("plugins", "ls")
            cri = [line.split() for line in r.stdout.splitlines() if line.split()[:2] == [
                "io.containerd.grpc.v1", "cri"]]
            assert cri and cri[0][-1] == "ok", r.stdout
            log = c.log_tail(100_000)
            assert f"ringfence:{{Type:{ce.RINGFENCE_RUNTIME} " in log, log
            assert "RestrictOOMScoreAdj:true" in log, log
            errors = [line for line in log.splitlines() if "level=error" in line]
            assert not [line for line in errors if "cni" in line.lower()], errors
    except ce.ContainerdError as e:
        pytest.fail(str(e), pytrace=False)
