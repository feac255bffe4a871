"""The runc-compatible OCI runtime CLI (ringfence/oci): every command against
bundles made by `ringfence spec` over a busybox rootfs.

Where runc has the same command, the test runs with runc first (the
reference) and then with ringfence, on the same kind of bundle, with its own
--root. Every container a test makes is force-deleted afterwards and the test
fails if anything is left: a state directory, a process (supervisor, sentry,
gofer, exec waiter: by the pids recorded), or a cgroup under /ringfence-test/.
"""
from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import harness

CGROUP_PARENT = "/ringfence-test"
APPLETS = ("sh echo cat ls sleep true false ps id env kill wc head tr printf mkdir rm touch tty stty "
           "uname hostname seq date test pwd").split()
RUNC = shutil.which("runc")


# -- fixtures -------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def cgroup_parent():
    """The containers' cgroups go under CGROUP_PARENT; runtimes remove the containers' own
    groups, the (then empty) parent is removed here."""
    yield
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        with contextlib.suppress(OSError):
            (hierarchy / CGROUP_PARENT.lstrip("/")).rmdir()


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory, busybox, cprog) -> Path:
    """A busybox root file system shared by every bundle (read-only), with tests/c/winch.c."""
    root = tmp_path_factory.mktemp("oci") / "rootfs"
    for d in ("bin", "etc", "tmp", "dev", "proc", "sys", "root"):
        (root / d).mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    shutil.copy(cprog("winch"), root / "bin" / "winch")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


class Runtime:
    """One runtime binary (runc or ringfence) with its own --root."""

    def __init__(self, name: str, binary: str, root: Path, workdir: Path, rootfs: Path,
                 ringfence_bin: str):
        self.name, self.binary, self.root, self.workdir, self.rootfs = name, binary, root, workdir, rootfs
        self.ringfence_bin = ringfence_bin
        self.ids: list[str] = []
        self.pids: set[int] = set()

    def __call__(self, *args, timeout: float = harness.TIMEOUT, input: bytes | None = None,
                 check: bool = False, detached: bool = False, **kw) -> subprocess.CompletedProcess:
        argv = [self.binary, "--root", str(self.root), *map(str, args)]
        if detached:  # the container keeps create's stdio: give it files, not pipes we wait on
            proc = _run_to_files(argv, timeout)
        else:
            proc = harness.run(argv, timeout=timeout, input=input, **kw)
        if check:
            assert proc.returncode == 0, (f"{self.name} {' '.join(map(str, args))}: exit {proc.returncode}\n"
                                          f"stdout: {proc.stdout!r}\nstderr: {proc.stderr!r}")
        return proc

    def new_id(self, stem: str = "c") -> str:
        cid = f"{stem}-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        return cid

    def bundle(self, args: list[str], terminal: bool = False, cid: str = "", process: dict | None = None,
               hooks: dict | None = None, **linux) -> Path:
        """A bundle made by `ringfence spec`, its process changed to `args` (and updated with
        `process`), with `hooks`, its `linux` object updated with the other keywords."""
        path = self.workdir / f"bundle-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        spec = harness.run([self.ringfence_bin, "spec", "--bundle", str(path)])
        assert spec.returncode == 0, spec.stderr
        config = json.loads((path / "config.json").read_text())
        config["root"]["path"] = str(self.rootfs)
        config["process"]["args"] = list(args)
        config["process"]["terminal"] = terminal
        config["process"].update(process or {})
        if hooks is not None:
            config["hooks"] = hooks
        config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{cid or path.name}"
        config["linux"].update(linux)
        (path / "config.json").write_text(json.dumps(config, indent=1))
        return path

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid, check=True).stdout)

    def remember(self, cid: str) -> None:
        """Note the host pids of a ringfence container (checked gone at teardown)."""
        record = self.root / cid / "state.json"
        if record.exists():
            data = json.loads(record.read_text())
            self.pids.update(p for p in (data.get("pid"), data.get("sentry_pid"), data.get("gofer_pid")) if p)

    def leftovers(self) -> list[str]:
        found = []
        if self.name == "ringfence" and self.root.is_dir():
            found += [f"state {p}" for p in self.root.iterdir()]
        for pid in sorted(self.pids):
            if harness_alive(pid):
                found.append(f"process {pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()!r}")
        for cid in self.ids:
            for controller in ("memory", "freezer", "pids", "cpu"):
                d = Path("/sys/fs/cgroup", controller, CGROUP_PARENT.lstrip("/"), cid)
                if d.exists():
                    found.append(f"cgroup {d}")
        return found


def _run_to_files(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run argv with stdin /dev/null and stdout, stderr in temporary files:
    a detached container inherits them and may hold them long after."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())


def harness_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _make_runtime(name, tmp_path, rootfs, ringfence_bin) -> Runtime:
    if name == "runc":
        if RUNC is None:
            pytest.fail("runc is not installed (Debian's runc package, with containerd)")
        binary = RUNC
    else:
        binary = ringfence_bin
    return Runtime(name, binary, tmp_path / f"{name}-root", tmp_path, rootfs, ringfence_bin)


def _teardown(rt: Runtime) -> None:
    for cid in rt.ids:
        rt.remember(cid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            rt("delete", "--force", cid, timeout=30)
    deadline = time.monotonic() + 10
    while (left := rt.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in rt.pids:  # never leave anything running, even when failing
        if harness_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for cid in rt.ids:
        for controller in ("memory", "freezer", "pids", "cpu", "cpuacct", "cpuset"):
            d = Path("/sys/fs/cgroup", controller, CGROUP_PARENT.lstrip("/"), cid)
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
    if rt.name == "ringfence":
        shutil.rmtree(rt.root, ignore_errors=True)
    assert not left, f"{rt.name} left behind:\n" + "\n".join(left)


@pytest.fixture(params=["runc", "ringfence"])
def rt(request, tmp_path, rootfs, ringfence_bin):
    """runc (the reference), then ringfence."""
    runtime = _make_runtime(request.param, tmp_path, rootfs, ringfence_bin)
    yield runtime
    _teardown(runtime)


@pytest.fixture
def rf(tmp_path, rootfs, ringfence_bin):
    """ringfence alone (commands runc lacks, or ringfence's own behaviour)."""
    runtime = _make_runtime("ringfence", tmp_path, rootfs, ringfence_bin)
    yield runtime
    _teardown(runtime)


def _wait_status(rt: Runtime, cid: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        proc = rt("state", cid)
        if proc.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # not created yet (a foreground run starting)
            continue
        state = json.loads(proc.stdout)
        if state["status"] == status or time.monotonic() > deadline:
            assert state["status"] == status, state
            return state
        time.sleep(0.05)


def _create(rt: Runtime, args: list[str], stem: str = "c", **kw) -> tuple[str, Path]:
    cid = rt.new_id(stem)
    bundle = rt.bundle(args, cid=cid, **kw)
    rt("create", "--bundle", bundle, cid, check=True, detached=True)
    rt.remember(cid)
    return cid, bundle


# -- spec, features ----------------------------------------------------------------------

def test_spec_writes_runc_example(tmp_path, ringfence_bin):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    assert harness.run([ringfence_bin, "spec", "--bundle", ours]).returncode == 0
    spec = json.loads((ours / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"] and spec["process"]["terminal"] is True
    assert spec["root"] == {"path": "rootfs", "readonly": True}
    if RUNC:
        assert harness.run([RUNC, "spec", "--bundle", theirs]).returncode == 0
        runc = json.loads((theirs / "config.json").read_text())
        assert set(spec) == set(runc)
        assert set(spec["process"]) == set(runc["process"])
        assert spec["mounts"] == runc["mounts"] and spec["linux"] == runc["linux"]
    before = (ours / "config.json").read_bytes()
    again = harness.run([ringfence_bin, "spec", "--bundle", ours])
    assert again.returncode != 0 and b"exists" in again.stderr
    assert (ours / "config.json").read_bytes() == before
    cmd = tmp_path / "cmd"
    cmd.mkdir()
    assert harness.run([ringfence_bin, "-root", tmp_path / "r", "spec", "-bundle", cmd, "--", "echo", "-n", "hi"],
                       ).returncode == 0
    assert json.loads((cmd / "config.json").read_text())["process"]["args"] == ["echo", "-n", "hi"]


def test_features_has_runcs_shape(ringfence_bin):
    ours = json.loads(harness.run([ringfence_bin, "features"]).stdout)
    for key in ("ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations"):
        assert key in ours
    assert ours["linux"]["cgroup"]["v1"] is True
    assert "pid" in ours["linux"]["namespaces"]
    if RUNC:
        runc = json.loads(harness.run([RUNC, "features"]).stdout)
        assert set(ours) <= set(runc) | {"annotations"}
        assert set(ours["linux"]) <= set(runc["linux"])


# -- run ------------------------------------------------------------------------------------

def test_run_output_stdin_and_exit_status(rt):
    cid = rt.new_id("run")
    bundle = rt.bundle(["sh", "-c", "read line; echo got $line; echo to-err >&2; exit 3"], cid=cid)
    proc = rt("run", "--bundle", bundle, cid, input=b"hello\n")
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, b"got hello\n", b"to-err\n"), proc
    assert rt("state", cid).returncode != 0  # run deletes the container when it exits


def test_overlay_keeps_the_rootfs_unchanged(rf):
    """`--overlay`: the container writes to its root (a writable spec root), reads its writes back,
    and the host's rootfs is left as it was."""
    cid = rf.new_id("ovl")
    bundle = rf.bundle(["sh", "-c", "echo new > /etc/added && cat /etc/added && rm /etc/passwd && "
                        "ls /etc"], cid=cid)
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["readonly"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    before = sorted(p.name for p in (rf.rootfs / "etc").iterdir())
    proc = rf("--overlay", "run", "--bundle", bundle, cid)
    assert (proc.returncode, proc.stdout) == (0, b"new\nadded\ngroup\n"), proc.stderr
    assert sorted(p.name for p in (rf.rootfs / "etc").iterdir()) == before == ["group", "passwd"]


def test_run_detached_then_wait_and_delete(rf):
    cid = rf.new_id("bg")
    bundle = rf.bundle(["sh", "-c", "sleep 2; exit 4"], cid=cid)
    pid_file = rf.workdir / "pid"
    rf("run", "--detach", "--pid-file", pid_file, "--bundle", bundle, cid, check=True, detached=True)
    rf.remember(cid)
    assert int(pid_file.read_text()) == rf.state(cid)["pid"]
    waited = rf("wait", cid)
    assert waited.returncode == 4 and json.loads(waited.stdout) == {"id": cid, "exitStatus": 4}
    state = rf.state(cid)
    assert (state["status"], state["pid"]) == ("stopped", 0)
    rf("delete", cid, check=True)
    assert rf("state", cid).returncode != 0


def test_debug_stacks_shows_the_sentry_and_its_tasks(rf):
    """runsc's `debug --stacks`: the sentry's stack and each task with the syscall it is in."""
    cid = rf.new_id("dbg")
    bundle = rf.bundle(["sleep", "30"], cid=cid)
    rf("run", "--detach", "--bundle", bundle, cid, check=True, detached=True)
    rf.remember(cid)
    out = ""
    for _ in range(50):  # until init has reached its sleep
        out = rf("debug", "--stacks", cid, check=True).stdout.decode()
        if "nanosleep" in out:
            break
        time.sleep(0.1)
    assert out.startswith("sentry (pid ") and "tasks:" in out, out
    assert re.search(r"pid=1 tid=1 comm=\S+ state=S in \w*nanosleep\(", out), out
    assert rf("debug", cid).returncode != 0  # nothing asked for
    rf("kill", cid, "KILL", check=True)
    rf("wait", cid)
    rf("delete", cid, check=True)


# -- the lifecycle ----------------------------------------------------------------------------

def test_lifecycle(rt):
    """create, state, list, start, ps, exec, pause/resume, kill, delete."""
    cid = rt.new_id("life")
    bundle = rt.bundle(["sh", "-c", "trap 'echo bye; exit 9' TERM; while true; do sleep 0.05; done"], cid=cid)
    out = rt.workdir / "out"
    pid_file = rt.workdir / "pid"
    # create's stdio becomes the container's: capture it in a file
    with open(out, "wb") as f, open(rt.workdir / "err", "wb+") as err:
        proc = subprocess.run([rt.binary, "--root", rt.root, "create", "--bundle", bundle, "--pid-file",
                               pid_file, cid], stdin=subprocess.DEVNULL, stdout=f, stderr=err,
                              timeout=harness.TIMEOUT)
        err.seek(0)
        assert proc.returncode == 0, err.read()
    rt.remember(cid)
    state = rt.state(cid)
    assert state["status"] == "created" and state["id"] == cid
    assert state["pid"] == int(pid_file.read_text()) > 0
    assert state["bundle"] == str(bundle) and state["rootfs"] == str(rt.rootfs)
    assert state["created"].endswith("Z") and "ociVersion" in state and "owner" in state

    listed = json.loads(rt("list", "--format", "json", check=True).stdout)
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "created")]
    assert rt("list", "-q", check=True).stdout.split() == [cid.encode()]
    table = rt("list", check=True).stdout.decode().splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == [cid, str(state["pid"]), "created"]

    rt("start", cid, check=True)
    assert rt("start", cid).returncode != 0  # only once
    _wait_status(rt, cid, "running")

    pids = json.loads(rt("ps", "--format", "json", cid, check=True).stdout)
    assert len(pids) >= 1 and all(isinstance(p, int) for p in pids)

    ex = rt("exec", cid, "sh", "-c", "echo in-exec; exit 5")
    assert (ex.returncode, ex.stdout) == (5, b"in-exec\n"), ex.stderr
    ex = rt("exec", "--env", "FOO=bar", "--cwd", "/tmp", cid, "sh", "-c", "echo $FOO $(pwd)")
    assert (ex.returncode, ex.stdout) == (0, b"bar /tmp\n"), ex.stderr

    rt("pause", cid, check=True)
    assert rt.state(cid)["status"] == "paused"
    rt("resume", cid, check=True)
    assert rt.state(cid)["status"] == "running"

    rt("kill", cid, "TERM", check=True)
    _wait_status(rt, cid, "stopped")
    assert rt("kill", cid, "KILL").returncode != 0  # nothing left to signal
    assert out.read_bytes().endswith(b"bye\n")
    rt("delete", cid, check=True)
    assert rt("state", cid).returncode != 0
    assert json.loads(rt("list", "-f", "json", check=True).stdout) in (None, [])


def test_delete_running_needs_force(rt):
    cid, _ = _create(rt, ["sleep", "60"])
    rt("start", cid, check=True)
    _wait_status(rt, cid, "running")
    refused = rt("delete", cid)
    assert refused.returncode != 0 and b"running" in refused.stderr
    assert rt.state(cid)["status"] == "running"
    rt("delete", "--force", cid, check=True)
    assert rt("state", cid).returncode != 0


def test_delete_created_container(rt):
    cid, _ = _create(rt, ["true"])
    rt("delete", cid, check=True)  # a created container may go without --force, as with runc
    assert rt("state", cid).returncode != 0


def test_kill_signal_names_and_all(rf):
    cid, _ = _create(rf, ["sh", "-c", "trap 'exit 10' USR1; while true; do sleep 0.05; done"])
    rf("start", cid, check=True)
    _wait_status(rf, cid, "running")
    assert rf("kill", cid, "NOSUCH").returncode != 0
    rf("kill", cid, "SIGUSR1", check=True)
    assert json.loads(rf("wait", cid).stdout)["exitStatus"] == 10
    cid2, _ = _create(rf, ["sh", "-c", "sleep 60 & sleep 60"])
    rf("start", cid2, check=True)
    _wait_status(rf, cid2, "running")
    rf("kill", "--all", cid2, "9", check=True)
    assert json.loads(rf("wait", cid2).stdout)["exitStatus"] == 137


def test_exec_process_file_detach_and_pid_file(rf):
    cid, _ = _create(rf, ["sleep", "60"])
    rf("start", cid, check=True)
    _wait_status(rf, cid, "running")
    process = {"args": ["sh", "-c", "echo $X; sleep 0.2; exit 6"], "env": ["X=from-file", "PATH=/bin"],
               "cwd": "/", "user": {"uid": 0, "gid": 0}}
    pfile = rf.workdir / "process.json"
    pfile.write_text(json.dumps(process))
    ex = rf("exec", "--process", pfile, cid)
    assert (ex.returncode, ex.stdout) == (6, b"from-file\n"), ex.stderr
    pid_file = rf.workdir / "exec.pid"
    ex = rf("exec", "--detach", "--pid-file", pid_file, "--process", pfile, cid, detached=True)
    assert ex.returncode == 0, ex.stderr
    waiter = int(pid_file.read_text())
    rf.pids.add(waiter)
    deadline = time.monotonic() + 20
    while harness_alive(waiter) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not harness_alive(waiter)
    bad = rf.workdir / "bad.json"
    bad.write_text("{not json")
    assert b"not valid JSON" in rf("exec", "--process", bad, cid).stderr
    assert rf("exec", cid).returncode != 0  # no command
    assert rf("exec", cid, "nosuchprogram").returncode != 0


def test_exec_in_stopped_or_created_container_is_refused(rf):
    cid, _ = _create(rf, ["true"])
    assert b"created" in rf("exec", cid, "true").stderr
    rf("start", cid, check=True)
    _wait_status(rf, cid, "stopped")
    refused = rf("exec", cid, "true")
    assert refused.returncode != 0 and b"stopped" in refused.stderr


# -- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["state"], ["start"], ["kill"], ["delete"], ["exec", "{id}", "true"],
                                     ["ps"], ["pause"], ["resume"], ["events", "--stats"], ["update", "--memory", "1g"],
                                     ["debug", "--stacks"]])
def test_unknown_container_id(rf, command):
    cid = "nosuch"
    args = [a.format(id=cid) for a in command] if "{id}" in command else command + [cid]
    proc = rf(*args)
    assert proc.returncode != 0
    assert b"does not exist" in proc.stderr, proc.stderr
    assert proc.stderr.startswith(b"ringfence ")


def test_unknown_id_with_runc_wording(rt):
    for args in (["state", "nosuch"], ["start", "nosuch"], ["kill", "nosuch"], ["delete", "nosuch"]):
        proc = rt(*args)
        assert proc.returncode != 0 and b"does not exist" in proc.stderr, (args, proc.stderr)
    assert rt("delete", "--force", "nosuch").returncode == 0


def test_bad_input_leaves_other_containers_alone(rf):
    keep, _ = _create(rf, ["sleep", "60"])
    rf("start", keep, check=True)
    _wait_status(rf, keep, "running")
    before = (rf.root / keep / "state.json").read_bytes()

    bad = rf.workdir / "bad"
    (bad / "rootfs").mkdir(parents=True)
    cases = {
        "not valid JSON": b"{ this is not json",
        "root.path": json.dumps({"ociVersion": "1.0.2", "process": {"args": ["sh"]}}).encode(),
        "process.args": json.dumps({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                                    "process": {"args": "sh"}}).encode(),
    }
    for expected, text in cases.items():
        (bad / "config.json").write_bytes(text)
        cid = rf.new_id("bad")
        proc = rf("create", "--bundle", bad, cid, detached=True)
        assert proc.returncode != 0 and expected.encode() in proc.stderr, proc.stderr
        assert not (rf.root / cid).exists()
    missing = rf("create", "--bundle", rf.workdir / "no-such-bundle", rf.new_id("bad"), detached=True)
    assert missing.returncode != 0 and b"no such directory" in missing.stderr
    (bad / "config.json").write_text(json.dumps({"root": {"path": "nowhere"}, "process": {"args": ["sh"]}}))
    norootfs = rf("create", "--bundle", bad, rf.new_id("bad"), detached=True)
    assert norootfs.returncode != 0 and b"rootfs" in norootfs.stderr
    noprog = rf.bundle(["no-such-program"])
    cid = rf.new_id("bad")
    proc = rf("create", "--bundle", noprog, cid, detached=True)
    assert proc.returncode != 0 and b"no-such-program" in proc.stderr
    assert rf("create", "--bundle", noprog, "bad/id", detached=True).returncode != 0
    dup = rf("create", "--bundle", rf.bundle(["true"]), keep, detached=True)
    assert dup.returncode != 0 and b"already exists" in dup.stderr

    assert (rf.root / keep / "state.json").read_bytes() == before
    assert rf.state(keep)["status"] == "running"
    assert sorted(p.name for p in rf.root.iterdir()) == [keep]


def test_crashed_supervisor_shows_stopped(rf):
    cid, _ = _create(rf, ["sleep", "60"])
    rf("start", cid, check=True)
    state = _wait_status(rf, cid, "running")
    os.kill(state["pid"], signal.SIGKILL)
    _wait_status(rf, cid, "stopped")
    for pid in rf.pids:
        deadline = time.monotonic() + 10
        while harness_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not harness_alive(pid), pid  # the sandbox dies with its supervisor
    assert rf("kill", cid, "9").returncode != 0
    rf("delete", cid, check=True)


def test_concurrent_commands_on_one_container(rf):
    bundle = rf.bundle(["sleep", "60"])
    cid = rf.new_id("race")

    def run(*args):
        return rf(*args, timeout=120)

    with ThreadPoolExecutor(6) as pool:
        creates = list(pool.map(lambda _: rf("create", "--bundle", bundle, cid, detached=True), range(6)))
    assert sorted(p.returncode for p in creates).count(0) == 1, [p.stderr for p in creates]
    rf.remember(cid)
    with ThreadPoolExecutor(6) as pool:
        starts = list(pool.map(lambda _: run("start", cid), range(4)))
        states = list(pool.map(lambda _: run("state", cid), range(8)))
    assert [p.returncode for p in starts].count(0) == 1, [p.stderr for p in starts]
    for p in states:
        assert p.returncode == 0 and json.loads(p.stdout)["id"] == cid
    with ThreadPoolExecutor(6) as pool:
        mixed = list(pool.map(lambda args: run(*args), [("pause", cid), ("resume", cid), ("state", cid),
                                                       ("delete", "--force", cid), ("delete", "--force", cid),
                                                       ("kill", cid, "KILL"), ("list", "-f", "json")]))
    for p in mixed:
        assert p.returncode in (0, 1) and b"Traceback" not in p.stderr, p.stderr
    assert rf("state", cid).returncode != 0
    assert not (rf.root / cid).exists()


# -- pause, update, events: the cgroup ------------------------------------------------------

def _cgroup_dir(controller: str, cid: str) -> Path:
    return Path("/sys/fs/cgroup", controller, CGROUP_PARENT.lstrip("/"), cid)


def test_sandbox_is_placed_in_the_cgroup_with_limits(rf):
    cid, _ = _create(rf, ["sleep", "60"], resources={"memory": {"limit": 256 << 20}, "pids": {"limit": 64}})
    state = json.loads((rf.root / cid / "state.json").read_text())
    procs = set(map(int, (_cgroup_dir("memory", cid) / "cgroup.procs").read_text().split()))
    assert {state["sentry_pid"], state["gofer_pid"]} <= procs
    assert state["pid"] not in procs  # the supervisor stays outside: an OOM kill is the sandbox's
    rf("start", cid, check=True)
    _wait_status(rf, cid, "running")
    procs = set(map(int, (_cgroup_dir("memory", cid) / "cgroup.procs").read_text().split()))
    assert len(procs) >= 3  # the stubs the sentry forked joined it
    assert int((_cgroup_dir("memory", cid) / "memory.limit_in_bytes").read_text()) == 256 << 20
    assert (_cgroup_dir("pids", cid) / "pids.max").read_text().strip() == "64"

    rf("update", "--memory", "300m", "--pids-limit", "100", cid, check=True)
    assert int((_cgroup_dir("memory", cid) / "memory.limit_in_bytes").read_text()) == 300 << 20
    assert (_cgroup_dir("pids", cid) / "pids.max").read_text().strip() == "100"
    res = rf.workdir / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 200 << 20}, "cpu": {"shares": 512}}))
    rf("update", "-r", res, cid, check=True)
    assert int((_cgroup_dir("memory", cid) / "memory.limit_in_bytes").read_text()) == 200 << 20
    assert (_cgroup_dir("cpu", cid) / "cpu.shares").read_text().strip() == "512"
    res.write_text(json.dumps({"cpu": {"shares": 1}}))
    bad = rf("update", "-r", res, cid)
    assert bad.returncode != 0 and b"cpu.shares" in bad.stderr

    stats = json.loads(rf("events", "--stats", cid, check=True).stdout)
    assert stats["type"] == "stats" and stats["id"] == cid
    assert stats["data"]["memory"]["usage"]["usage"] > 0
    assert stats["data"]["memory"]["usage"]["limit"] == 200 << 20
    assert stats["data"]["pids"]["current"] >= 3

    rf("pause", cid, check=True)
    assert (_cgroup_dir("freezer", cid) / "freezer.state").read_text().strip() == "FROZEN"
    assert rf("pause", cid).returncode != 0
    rf("resume", cid, check=True)
    assert rf("resume", cid).returncode != 0
    rf("delete", "--force", cid, check=True)
    assert not _cgroup_dir("memory", cid).exists()


def test_events_stream_until_the_container_exits(rf):
    cid, _ = _create(rf, ["sh", "-c", "sleep 1; exit 0"])
    rf("start", cid, check=True)
    proc = rf("events", "--interval", "200ms", cid, timeout=30)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and len(lines) >= 2
    assert all(e["type"] == "stats" and e["id"] == cid for e in lines)
    assert rf("events", cid).returncode != 0  # stopped, no OOM: nothing to report


def test_memory_limit_kill_is_reported(rt):
    cid, _ = _create(rt, ["sh", "-c", "echo start; s=a; while true; do s=$s$s; done"],
                     resources={"memory": {"limit": 64 << 20}})
    rt("start", cid, check=True)
    _wait_status(rt, cid, "stopped", timeout=60)
    assert int((_cgroup_dir("memory", cid) / "memory.oom_control").read_text().split("oom_kill ")[1]) >= 1
    if rt.name == "ringfence":
        waited = json.loads(rt("wait", cid).stdout)
        assert waited["exitStatus"] == 137
        events = rt("events", cid)
        assert json.loads(events.stdout) == {"type": "oom", "id": cid}
    rt("delete", cid, check=True)


def test_run_killed_by_memory_limit_exits_137(rf):
    cid = rf.new_id("oom")
    bundle = rf.bundle(["sh", "-c", "s=a; while true; do s=$s$s; done"], cid=cid,
                       resources={"memory": {"limit": 64 << 20}})
    assert rf("run", "--bundle", bundle, cid).returncode == 137


# -- terminals ---------------------------------------------------------------------------------

def _console_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(harness.TIMEOUT)
    return server


def _receive_master(server: socket.socket) -> tuple[bytes, int]:
    conn, _ = server.accept()
    with conn:
        fds = array.array("i")
        msg, ancdata, _flags, _addr = conn.recvmsg(1024, socket.CMSG_SPACE(4 * fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    assert len(fds) == 1
    return msg, fds[0]


def _read_until(fd: int, marker: bytes, timeout: float = 20) -> bytes:
    out, deadline = b"", time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    return out


def test_console_socket_receives_the_pty_master(rt):
    cid = rt.new_id("tty")
    bundle = rt.bundle(["sh", "-c", "test -t 0 && echo is-a-tty; read x; echo got-$x; exit 2"],
                       terminal=True, cid=cid)
    sock_path = rt.workdir / "console.sock"
    server = _console_socket(sock_path)
    assert rt("create", "--bundle", bundle, cid, detached=True).returncode != 0  # a terminal needs a console socket
    with ThreadPoolExecutor(1) as pool:
        received = pool.submit(_receive_master, server)
        rt("create", "--bundle", bundle, "--console-socket", sock_path, cid, check=True, detached=True)
        name, master = received.result(timeout=harness.TIMEOUT)
    server.close()
    rt.remember(cid)
    try:
        assert name == b"/dev/ptmx"
        assert os.isatty(master)
        rt("start", cid, check=True)
        assert b"is-a-tty" in _read_until(master, b"is-a-tty")
        os.write(master, b"hi\n")
        assert b"got-hi" in _read_until(master, b"got-hi")
    finally:
        os.close(master)
    _wait_status(rt, cid, "stopped")
    rt("delete", cid, check=True)
    plain = rt.bundle(["true"])
    refused = rt("create", "--bundle", plain, "--console-socket", sock_path, rt.new_id("tty"), detached=True)
    assert refused.returncode != 0 and b"console socket" in refused.stderr


# What a process learns of the terminal it was given: its name (ttyname), the link in /proc,
# that /dev/tty (its controlling terminal) is it, that it leads its session in the foreground.
_TTY_PROBE = ("tty; readlink /proc/self/fd/0; echo via-dev-tty > /dev/tty; "
              "ls -l $(tty) | tr -s ' ' | cut -d' ' -f1,5,6; "
              "set -- $(cut -d' ' -f5-8 /proc/self/stat); "  # this shell's pgrp, session, tty_nr, tpgid
              "[ $1 = $2 ] && [ $1 = $4 ] && [ $3 != 0 ] && echo leads-fg; echo done")
_PTS_LINES = re.compile(rb"^(/dev/pts/(\d+))\r\n\1\r\nvia-dev-tty\r\ncrw--w---- 136, \2\r\n"
                        rb"leads-fg\r\ndone\r\n", re.M)


def test_run_with_a_terminal_relays_it(rt):
    """Init's terminal is /dev/pts/0 (with /dev/console on it), its controlling terminal."""
    cid = rt.new_id("fgtty")
    bundle = rt.bundle(["sh", "-c", "ls -l /dev/console | tr -s ' ' | cut -d' ' -f5,6; " + _TTY_PROBE],
                       terminal=True, cid=cid)
    code, out = harness.run_in_pty([rt.binary, "--root", rt.root, "run", "--bundle", bundle, cid])
    assert code == 0, out
    assert out.startswith(b"136, 0\r\n") and _PTS_LINES.search(out).group(1) == b"/dev/pts/0", out


def test_interrupt_typed_at_init_terminal_reaches_its_foreground(rt):
    """^C typed at init's terminal interrupts its foreground group: cat, and the shell."""
    cid = rt.new_id("intr")
    bundle = rt.bundle(["sh", "-c", "echo ready; cat; echo not-here"], terminal=True, cid=cid)
    code, out = harness.run_in_pty([rt.binary, "--root", rt.root, "run", "--bundle", bundle, cid],
                                   ready=b"ready", typed=b"\x03")
    assert code == 128 + signal.SIGINT and b"^C" in out and b"not-here" not in out, out


def test_exec_with_a_terminal_names_it(rt):
    """`exec -t`: the process gets a /dev/pts/N of its own as its controlling terminal, and ^C
    typed at it interrupts its foreground process group."""
    cid, _ = _create(rt, ["sleep", "60"])
    rt("start", cid, check=True)
    _wait_status(rt, cid, "running")
    code, out = harness.run_in_pty([rt.binary, "--root", rt.root, "exec", "-t", cid, "sh", "-c", _TTY_PROBE])
    assert code == 0 and _PTS_LINES.search(out), out
    code, out = harness.run_in_pty([rt.binary, "--root", rt.root, "exec", "-t", cid, "sh", "-c", "echo ready; exec cat"],
                                   ready=b"ready", typed=b"\x03")
    assert code == 128 + signal.SIGINT and b"^C" in out, out


PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def _subreaper():
    """Meanwhile the orphans of our children become ours, as they become conmon's: a detached
    container's pid (runc's init, ringfence's supervisor), a detached exec's (runc's process,
    ringfence's waiter); reap them with _wait_orphan."""
    from ringfence.gofer._linux import prctl

    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0)


def _wait_orphan(pid: int, timeout: float = 20) -> int:
    """The exit status (128+N: killed by signal N) of `pid`, an orphan _subreaper made ours."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"process {pid} still runs after {timeout}s")
        time.sleep(0.05)


def _created_with_console(rt: Runtime, args: list[str], global_flags: tuple = ()) -> tuple[str, int]:
    """A container created with `args` on a terminal whose master we receive (the console
    socket's holder), the runtime given `global_flags`; returns its id and the master."""
    cid = rt.new_id("cons")
    bundle = rt.bundle(args, terminal=True, cid=cid)
    server = _console_socket(rt.workdir / f"{cid}.sock")
    with server, ThreadPoolExecutor(1) as pool:
        received = pool.submit(_receive_master, server)
        rt(*global_flags, "create", "--bundle", bundle, "--console-socket", rt.workdir / f"{cid}.sock", cid,
           check=True, detached=True)
        _, master = received.result(timeout=harness.TIMEOUT)
    rt.remember(cid)
    return cid, master


def _terminal_holders(master: int) -> list[int]:
    """The host processes whose controlling terminal is the pty of `master` (ringfence's: in
    the host's devpts, where a device number names one pty)."""
    n = int(re.search(r"^tty-index:\s*(\d+)", Path(f"/proc/self/fdinfo/{master}").read_text(), re.M).group(1))
    dev = os.makedev(136 + n // 256, n % 256)
    holders = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if entry.name.isdigit() and int(stat[stat.rindex(")") + 2:].split()[4]) == dev:
                holders.append(int(entry.name))
    return holders


def test_interrupt_typed_at_a_console_socket_terminal_reaches_the_container(rt):
    """^C written to the master a --console-socket holder got interrupts init's foreground
    group: the terminal's line discipline decides, so in raw mode (stty raw) ^C is a byte."""
    with _subreaper():
        cid, master = _created_with_console(rt, ["sh", "-c", "echo ready; cat; echo not-here"])
        try:
            pid = rt.state(cid)["pid"]
            rt("start", cid, check=True)
            assert b"ready" in _read_until(master, b"ready")
            os.write(master, b"\x03")
            assert _wait_orphan(pid) == 128 + signal.SIGINT
            assert b"not-here" not in _read_until(master, b"not-here", timeout=0.5)
            if rt.name == "ringfence":
                assert _terminal_holders(master) == []
        finally:
            os.close(master)
        raw, master = _created_with_console(rt, ["sh", "-c", "stty raw -echo; echo ready; head -c 1 | od -An -c"])
        try:
            pid = rt.state(raw)["pid"]
            rt("start", raw, check=True)
            assert b"ready" in _read_until(master, b"ready")
            os.write(master, b"\x03")
            assert b"003" in _read_until(master, b"003")
            assert _wait_orphan(pid) == 0
        finally:
            os.close(master)


def test_console_socket_terminal_resized(rt):
    """Resizing the master a --console-socket holder got signals init's foreground group
    (SIGWINCH), the new size in force."""
    with _subreaper():
        cid, master = _created_with_console(
            rt, ["sh", "-c", "trap 'echo winch-$(stty size); exit 3' WINCH; echo ready; "
                             "while :; do sleep 30 & wait; done"])
        try:
            pid = rt.state(cid)["pid"]
            rt("start", cid, check=True)
            assert b"ready" in _read_until(master, b"ready")
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
            assert b"winch-33 99" in _read_until(master, b"winch-33 99")
            assert _wait_orphan(pid) == 3
        finally:
            os.close(master)


def _exec_with_console(rt: Runtime, cid: str, args: list[str]) -> tuple[int, int]:
    """`exec --detach --tty --console-socket` of `args` (podman exec -t): the --pid-file pid
    (runc's process, ringfence's waiter: its status is the process's) and the master."""
    tag = uuid.uuid4().hex[:8]
    sock_path, pid_file = rt.workdir / f"exec-{tag}.sock", rt.workdir / f"exec-{tag}.pid"
    server = _console_socket(sock_path)
    with server, ThreadPoolExecutor(1) as pool:
        received = pool.submit(_receive_master, server)
        rt("exec", "--detach", "--tty", "--console-socket", sock_path, "--pid-file", pid_file, cid, *args,
           check=True, detached=True)
        _, master = received.result(timeout=harness.TIMEOUT)
    pid = int(pid_file.read_text())
    rt.pids.add(pid)
    return pid, master


def test_exec_with_a_console_socket_terminal_gets_its_signals(rt):
    """`exec --detach --tty --console-socket`: ^C written to the master ends the exec'd cat;
    closing the master (the holder went away) hangs the terminal up, and the exec'd shell,
    its session's leader, gets SIGHUP.  Nothing holds the terminal afterwards."""
    cid, _ = _create(rt, ["sleep", "60"])
    rt("start", cid, check=True)
    _wait_status(rt, cid, "running")
    with _subreaper():
        pid, master = _exec_with_console(rt, cid, ["sh", "-c", "echo ready; exec cat"])
        try:
            assert b"ready" in _read_until(master, b"ready")
            os.write(master, b"\x03")
            assert _wait_orphan(pid) == 128 + signal.SIGINT
            if rt.name == "ringfence":
                assert _terminal_holders(master) == []
        finally:
            os.close(master)
        pid, master = _exec_with_console(rt, cid, ["sh", "-c", "echo ready; while :; do sleep 30 & wait; done"])
        try:
            assert b"ready" in _read_until(master, b"ready")
        finally:
            os.close(master)
        assert _wait_orphan(pid) == 128 + signal.SIGHUP


def test_logs_go_to_the_log_file_not_the_terminal(rf):
    """With a terminal and --log, the supervisor's and the sentry's logs go to the log file,
    never to the container's terminal: not to the master's output, nor typed as its input."""
    log = rf.workdir / "debug.log"
    with _subreaper():
        cid, master = _created_with_console(rf, ["sh", "-c", "echo hello; read line; echo got-$line"],
                                            global_flags=("--debug", "--log", log))
        try:
            rf("start", cid, check=True)
            out = _read_until(master, b"hello\r\n")
            os.write(master, b"typed\n")
            out += _read_until(master, b"got-typed\r\n")
        finally:
            os.close(master)
    assert out == b"hello\r\ntyped\r\ngot-typed\r\n"
    assert "sandbox created" in log.read_text()


def test_a_size_set_in_the_container_signals_once(rt):
    """A program that sets the size of its terminal (tests/c/winch.c) gets one SIGWINCH, as
    init and as an exec'd process with a --console-socket terminal: with runc the host
    raises it; with ringfence the host raises it for the terminal's forwarder, which passes
    it on, and the sentry raises none of its own."""
    expected = b"new size: 1 winch, size is the one set: yes\r\nsame size again: 0 more\r\n"
    with _subreaper():
        cid, master = _created_with_console(rt, ["sh", "-c", "winch; sleep 60"])
        try:
            rt("start", cid, check=True)
            assert expected in _read_until(master, b"more\r\n")
            pid, exec_master = _exec_with_console(rt, cid, ["winch"])
            try:
                assert expected in _read_until(exec_master, b"more\r\n")
                assert _wait_orphan(pid) == 0
            finally:
                os.close(exec_master)
        finally:
            os.close(master)


# -- flags, logs -----------------------------------------------------------------------------

def test_go_style_flags_and_logs(rf):
    cid = rf.new_id("flags")
    bundle = rf.bundle(["sh", "-c", "echo ok"], cid=cid)
    log = rf.workdir / "ringfence.log"
    proc = harness.run([rf.binary, "-root", rf.root, "-log", log, "-log-format", "json", "-debug",
                        "-rootless", "false", "run", "-bundle", bundle, cid])
    assert (proc.returncode, proc.stdout) == (0, b"ok\n"), proc.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all("event" in line for line in lines)


def test_systemd_cgroup_path_is_mapped(rf):
    from ringfence.oci.commands import systemd_cgroup_path

    assert systemd_cgroup_path("machine.slice:libpod:abc") == "/machine.slice/libpod-abc.scope"
    assert systemd_cgroup_path("a-b.slice:x:y") == "/a.slice/a-b.slice/x-y.scope"
    assert systemd_cgroup_path(":pre:n") == "/system.slice/pre-n.scope"


def test_signal_names(rf):
    from ringfence.oci.commands import parse_signal

    assert parse_signal("TERM") == parse_signal("SIGTERM") == parse_signal("term") == parse_signal("15") == 15
    assert parse_signal("KILL") == 9 and parse_signal("SIGRTMIN+1") == signal.SIGRTMIN + 1
    for bad in ("NOSUCH", "0", "999", ""):
        with pytest.raises(Exception):
            parse_signal(bad)


def test_long_state_root_paths(tmp_path, rootfs, ringfence_bin):
    """Socket paths longer than sockaddr_un allows still work (through /proc/self/fd)."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    runtime = Runtime("ringfence", ringfence_bin, deep, tmp_path, rootfs, ringfence_bin)
    try:
        cid, _ = _create(runtime, ["sleep", "60"])
        assert len(str(runtime.root / cid / "control.sock")) > 108
        runtime("start", cid, check=True)
        _wait_status(runtime, cid, "running")
        ex = runtime("exec", cid, "echo", "deep")
        assert (ex.returncode, ex.stdout) == (0, b"deep\n"), ex.stderr
    finally:
        _teardown(runtime)


def test_network_namespace_of_the_spec(rf):
    """A new network namespace for the sandbox (tools such as buildah set up
    networking in /proc/PID/ns/net of the container's pid), or the one the
    spec's path names."""
    own = os.stat("/proc/self/ns/net").st_ino
    first, _ = _create(rf, ["sleep", "60"])
    pid = rf.state(first)["pid"]
    ns = os.stat(f"/proc/{pid}/ns/net").st_ino
    assert ns != own
    cid = rf.new_id("netns")
    bundle = rf.bundle(["sleep", "60"], cid=cid,
                       namespaces=[{"type": "pid"}, {"type": "network", "path": f"/proc/{pid}/ns/net"}])
    rf("create", "--bundle", bundle, cid, check=True, detached=True)
    rf.remember(cid)
    assert os.stat(f"/proc/{rf.state(cid)['pid']}/ns/net").st_ino == ns
    bundle = rf.bundle(["true"], namespaces=[{"type": "network", "path": "/nonexistent/ns"}])
    refused = rf("create", "--bundle", bundle, rf.new_id("netns"), detached=True)
    assert refused.returncode != 0 and b"network namespace" in refused.stderr
    host = rf.bundle(["true"], namespaces=[{"type": "pid"}])
    cid = rf.new_id("hostnet")
    rf("create", "--bundle", host, cid, check=True, detached=True)
    rf.remember(cid)
    assert os.stat(f"/proc/{rf.state(cid)['pid']}/ns/net").st_ino == own


def test_delete_force_of_a_foreground_run(rf):
    """`delete --force` from elsewhere ends a foreground `run`, which still
    returns the container's status (137)."""
    cid = rf.new_id("fg")
    bundle = rf.bundle(["sleep", "60"], cid=cid)
    proc = subprocess.Popen([rf.binary, "--root", str(rf.root), "run", "--bundle", str(bundle), cid],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_status(rf, cid, "running")
        rf.remember(cid)
        rf("delete", "--force", cid, check=True)
        assert proc.wait(timeout=30) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (rf.root / cid).exists()


@pytest.mark.parametrize("which", ["runc", "ringfence"])
def test_containerd_runc_shim_drives_it(which, ringfence_bin):
    """containerd's own runc shim (io.containerd.runc.v2) with ringfence as
    its runc binary (`ctr --runc-binary`): run, exec, kill, delete; runc first."""
    import containerd_env as ce

    binary = RUNC if which == "runc" else ringfence_bin
    with ce.private_containerd() as c:
        c.import_image(ce.busybox_image())
        flags = ("--runtime", "io.containerd.runc.v2", "--runc-binary", binary, "--fifo-dir", str(c.fifo_dir))
        r = c.ctr("run", "--rm", *flags, ce.IMAGE_NAME, f"rs-{which}", "sh", "-c", "echo via-runc-shim; exit 5")
        assert (r.returncode, r.stdout) == (5, "via-runc-shim\n"), r.stderr
        c.ctr("run", "-d", *flags, ce.IMAGE_NAME, f"bg-{which}", "sleep", "60", check=True)
        ex = c.ctr("task", "exec", "--exec-id", "e1", f"bg-{which}", "sh", "-c", "echo in-exec; exit 3")
        state = Path("/run/containerd/runc", c.namespace, f"bg-{which}")  # the runc shim's --root
        assert (ex.returncode, ex.stdout) == (3, "in-exec\n"), \
            ex.stderr + "".join(f"\n--- {f}:\n{f.read_text(errors='replace')[-4000:]}"
                                for f in sorted(state.glob("*")) if f.is_file() and not f.is_socket())
        c.ctr("task", "kill", "-s", "SIGKILL", f"bg-{which}", check=True)
        deadline = time.monotonic() + 20
        while "STOPPED" not in c.ctr("task", "ls").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        c.ctr("task", "delete", f"bg-{which}", check=True)
        c.ctr("container", "delete", f"bg-{which}", check=True)
        left = c.wait_clean()
        assert not left, "left behind:\n" + "\n".join(left)


# -- the spec's process settings, seccomp, hooks, namespaces ----------------------------------

def _status_fields(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_process_rlimits_capabilities_and_no_new_privileges(rt):
    """process.rlimits, .capabilities and .noNewPrivileges are what the program has."""
    caps = ["CAP_CHOWN", "CAP_KILL"]
    cid = rt.new_id("proc")
    bundle = rt.bundle(["sh", "-c", "ulimit -n; ulimit -Hn; grep 'open files' /proc/self/limits; "
                                    "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"], cid=cid,
                       process={"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 200, "hard": 300}],
                                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                                "noNewPrivileges": True})
    proc = rt("run", "--bundle", bundle, cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[:2] == ["200", "300"] and lines[2].split()[3:5] == ["200", "300"], lines
    fields = _status_fields(proc.stdout.decode())
    assert {k: int(v, 16) for k, v in fields.items() if k.startswith("Cap")} == {
        "CapInh": 0, "CapPrm": 0x21, "CapEff": 0x21, "CapBnd": 0x21, "CapAmb": 0}, fields
    assert fields["NoNewPrivs"] == "1"


@pytest.mark.parametrize("process, message", [
    ({"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, b"unknown resource limit 'RLIMIT_BOGUS'"),
    ({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]}, b"soft limit of RLIMIT_NOFILE is above"),
    ({"capabilities": {"bounding": ["CAP_BOGUS"]}}, b"unknown capability 'CAP_BOGUS'"),
])
def test_bad_process_settings_are_spec_errors(rf, process, message):
    cid = rf.new_id("badproc")
    bundle = rf.bundle(["true"], cid=cid, process=process)
    proc = rf("create", "--bundle", bundle, cid, detached=True)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not (rf.root / cid).exists()


DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
              "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": 1},
                           {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                            "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]}


def test_seccomp_profile_filters_init_and_exec(rt):
    """A profile failing mkdir with EPERM (and kill with SIGUSR1 with EACCES) applies to init
    and to the processes exec starts."""
    script = "mkdir /tmp/a; echo mkdir=$?; kill -USR1 $$; echo usr1=$?; kill -0 $$; echo zero=$?"
    cid = rt.new_id("seccomp")
    bundle = rt.bundle(["sh", "-c", script], cid=cid, seccomp=DENY_MKDIR)
    proc = rt("run", "--bundle", bundle, cid)
    assert proc.stdout == b"mkdir=1\nusr1=1\nzero=0\n", proc
    assert b"Operation not permitted" in proc.stderr and b"Permission denied" in proc.stderr, proc.stderr
    cid, _ = _create(rt, ["sleep", "30"], seccomp=DENY_MKDIR)
    rt("start", cid, check=True)
    _wait_status(rt, cid, "running")
    ex = rt("exec", cid, "sh", "-c", "mkdir /tmp/b; echo mkdir=$?")
    assert ex.stdout == b"mkdir=1\n" and b"Operation not permitted" in ex.stderr, ex


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_seccomp_kills_on_getppid(rt, action):
    """busybox sh calls getppid as it starts ($PPID): killed by SIGSYS before any output."""
    cid = rt.new_id("kill")
    bundle = rt.bundle(["sh", "-c", "echo alive"], cid=cid, seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]})
    proc = rt("run", "--bundle", bundle, cid)
    assert (proc.returncode, proc.stdout) == (128 + signal.SIGSYS, b""), proc


@pytest.mark.parametrize("profile, message", [
    ({"defaultAction": "SCMP_ACT_BOGUS"}, b"unknown action 'SCMP_ACT_BOGUS'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}, b"unknown architecture"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                       "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]},
     b"index 6"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
     b"not supported"),
])
def test_bad_seccomp_profiles_are_spec_errors(rf, profile, message):
    cid = rf.new_id("badsec")
    bundle = rf.bundle(["true"], cid=cid, seccomp=profile)
    proc = rf("create", "--bundle", bundle, cid, detached=True)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_seccomp_rules_decide_as_libseccomp_does():
    """The compiled filter: argument comparisons (each op), several conditions on one argument
    are alternatives, the most restrictive matching rule wins, rules with the default action
    are dropped, unknown names are ignored."""
    from ringfence.sentry.abi.sysno import NUMBERS
    from ringfence.sentry.kernel.seccomp import compile_profile

    def rule(names, action, *args, errno=None):
        entry = {"names": names, "action": action, "args": [
            {"index": i, "value": v, "valueTwo": v2, "op": op} for i, op, v, v2 in args]}
        return {**entry, "errnoRet": errno} if errno is not None else entry

    filt = compile_profile({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        rule(["getpid", "not_a_syscall"], "SCMP_ACT_ALLOW"),
        rule(["read"], "SCMP_ACT_ALLOW", (0, "SCMP_CMP_LT", 3, 0)),
        rule(["read"], "SCMP_ACT_ERRNO", (0, "SCMP_CMP_EQ", 1, 0), errno=9),
        rule(["write"], "SCMP_ACT_ALLOW", (1, "SCMP_CMP_MASKED_EQ", 0xF0, 0x10)),
        rule(["close"], "SCMP_ACT_ALLOW", (0, "SCMP_CMP_EQ", 5, 0), (0, "SCMP_CMP_GE", 100, 0)),
        rule(["dup"], "SCMP_ACT_ALLOW", (0, "SCMP_CMP_GT", 1, 0), (1, "SCMP_CMP_LE", 2, 0)),
        rule(["dup2"], "SCMP_ACT_ALLOW", (0, "SCMP_CMP_NE", 7, 0)),
        rule(["dup3"], "SCMP_ACT_ALLOW", (0, "SCMP_CMP_EQ", 4, 0)),
        rule(["dup3"], "SCMP_ACT_ERRNO", (1, "SCMP_CMP_EQ", 5, 0), errno=38),  # the default action: dropped
    ]})

    def outcome(name, *args):
        action = filt.decide(NUMBERS[name], (*args, *[0] * (6 - len(args))))
        return "allow" if action is None else (action.kind, action.data)

    assert outcome("getpid") == "allow" and outcome("getuid") == ("SCMP_ACT_ERRNO", 38)
    assert outcome("read", 0) == "allow" and outcome("read", 1) == ("SCMP_ACT_ERRNO", 9)
    assert outcome("read", 3) == ("SCMP_ACT_ERRNO", 38)
    assert outcome("write", 1, 0x1214) == "allow" and outcome("write", 1, 0x1224) == ("SCMP_ACT_ERRNO", 38)
    assert [outcome("close", fd) for fd in (5, 6, 100)] == ["allow", ("SCMP_ACT_ERRNO", 38), "allow"]
    assert outcome("dup", 2, 2) == "allow" and outcome("dup", 1, 2) != "allow" and outcome("dup", 2, 3) != "allow"
    assert outcome("dup2", 6) == "allow" and outcome("dup2", 7) != "allow"
    assert outcome("dup2", 1 << 64 | 7) != "allow"  # arguments are 64-bit registers
    assert NUMBERS["getpid"] not in filt.filtered() and NUMBERS["read"] in filt.filtered()
    assert outcome("dup3", 4, 5) == "allow" and outcome("dup3", 3, 5) == ("SCMP_ACT_ERRNO", 38)
    allow_all = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(["mkdir"], "SCMP_ACT_ERRNO")]})
    assert allow_all.filtered() == {NUMBERS["mkdir"]}
    assert (allow_all.decide(NUMBERS["mkdir"], (0,) * 6).kind, allow_all.decide(NUMBERS["mkdir"], (0,) * 6).data) \
        == ("SCMP_ACT_ERRNO", 1)  # EPERM unless errnoRet says


def _hook_script(workdir: Path) -> Path:
    script = workdir / "hook.sh"
    script.write_text("#!/bin/sh\n[ -n \"$FAIL\" ] && { echo hook says no >&2; exit 3; }\ncat > \"$1\"\n")
    script.chmod(0o755)
    return script


def test_hooks_get_the_state_and_poststop_runs_at_delete(rt):
    """prestart and createRuntime at create, poststart at start (state JSON on stdin, with the
    kind's status), poststop at delete."""
    script = _hook_script(rt.workdir)
    out = rt.workdir / "hooks"
    out.mkdir()
    hooks = {kind: [{"path": str(script), "args": ["hook", str(out / kind)], "timeout": 10}]
             for kind in ("prestart", "createRuntime", "poststart", "poststop")}
    cid, bundle = _create(rt, ["sleep", "30"], hooks=hooks)
    pid = rt.state(cid)["pid"]
    for kind in ("prestart", "createRuntime"):
        state = json.loads((out / kind).read_text())
        assert (state["id"], state["status"], state["pid"], state["bundle"]) == (cid, "creating", pid, str(bundle))
    if rt.name == "ringfence":  # (runc 1.1 runs poststart hooks at create, against the spec)
        assert not (out / "poststart").exists()
    rt("start", cid, check=True)
    state = json.loads((out / "poststart").read_text())
    assert (state["id"], state["status"]) == (cid, "running" if rt.name == "ringfence" else "created")
    rt("kill", cid, "KILL", check=True)
    _wait_status(rt, cid, "stopped")
    assert not (out / "poststop").exists()
    rt("delete", cid, check=True)
    state = json.loads((out / "poststop").read_text())
    assert (state["id"], state["status"]) == (cid, "stopped")


def test_failing_prestart_hook_fails_create_cleanly(rt):
    script = _hook_script(rt.workdir)
    cid = rt.new_id("hookfail")
    bundle = rt.bundle(["true"], cid=cid, hooks={"prestart": [{"path": str(script), "args": ["hook", "/dev/null"],
                                                               "env": ["FAIL=1"]}]})
    proc = rt("create", "--bundle", bundle, cid, detached=True)
    assert proc.returncode != 0, proc
    if rt.name == "ringfence":
        assert b"prestart hook #0" in proc.stderr and b"hook says no" in proc.stderr, proc.stderr
    assert rt("state", cid).returncode != 0  # nothing left (teardown checks processes and cgroups)


def test_namespaces_of_the_spec(rf):
    """pid/ipc/uts/mount are the sentry's own; a path to join must exist; a user namespace's
    mappings are accepted; unknown types are spec errors; hostname is the sandbox's nodename."""
    ns = [{"type": "pid"}, {"type": "ipc", "path": "/proc/self/ns/ipc"}, {"type": "uts"}, {"type": "mount"},
          {"type": "user"}]
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cid = rf.new_id("ns")
    bundle = rf.bundle(["sh", "-c", "id -u; hostname; uname -n"], cid=cid, namespaces=ns, uidMappings=mapping,
                       gidMappings=mapping)
    config = json.loads((bundle / "config.json").read_text())
    config["hostname"] = "boxname"
    (bundle / "config.json").write_text(json.dumps(config))
    proc = rf("run", "--bundle", bundle, cid)
    assert (proc.returncode, proc.stdout) == (0, b"0\nboxname\nboxname\n"), proc
    for namespaces, message in (([{"type": "ipc", "path": "/nonexistent/ipc"}], b"ipc namespace /nonexistent/ipc"),
                                ([{"type": "bogus"}], b"unknown namespace type 'bogus'"),
                                ([{"type": "pid"}, {"type": "pid"}], b"listed twice")):
        cid = rf.new_id("badns")
        bundle = rf.bundle(["true"], cid=cid, namespaces=namespaces)
        refused = rf("create", "--bundle", bundle, cid, detached=True)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
        assert not (rf.root / cid).exists()


def test_ps_lists_the_sandbox_pids(rf):
    cid, _ = _create(rf, ["sh", "-c", "sleep 30 & wait"])
    rf("start", cid, check=True)
    _wait_status(rf, cid, "running")
    deadline = time.monotonic() + 20
    while len(pids := json.loads(rf("ps", "--format", "json", cid, check=True).stdout)) < 2:
        assert time.monotonic() < deadline, pids
        time.sleep(0.05)
    assert pids[0] == 1 and len(pids) == 2 and pids[1] < 100, pids  # the sandbox's own numbering
    table = rf("ps", cid, check=True).stdout.decode().splitlines()
    assert table[0].split() == ["UID", "PID", "PPID", "STAT", "STIME", "CMD"]
    assert [row.split()[1:3] for row in table[1:]] == [["1", "0"], [str(pids[1]), "1"]], table
    assert table[2].split()[5:] == ["sleep", "30"], table


def test_systemd_cgroup_puts_the_sandbox_in_the_scope(rf):
    """--systemd-cgroup: slice:prefix:name is the cgroupfs path systemd would make
    (a-b.slice nests in a.slice), created directly (no systemd here)."""
    cid = rf.new_id("sd")
    bundle = rf.bundle(["sleep", "30"], cid=cid)
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["cgroupsPath"] = f"rftest-sd.slice:rft:{cid}"
    (bundle / "config.json").write_text(json.dumps(config))
    slices = [hierarchy / "rftest.slice" for hierarchy in Path("/sys/fs/cgroup").iterdir()]  # (all it made)
    try:
        rf("--systemd-cgroup", "create", "--bundle", bundle, cid, check=True, detached=True)
        rf.remember(cid)
        scope = Path("/sys/fs/cgroup/pids/rftest.slice/rftest-sd.slice", f"rft-{cid}.scope")
        sentry = json.loads((rf.root / cid / "state.json").read_text())["sentry_pid"]
        assert str(sentry) in (scope / "cgroup.procs").read_text().split()
        rf("delete", "--force", cid, check=True)
        assert not scope.exists()
    finally:
        for top in slices:
            for d in (top / "rftest-sd.slice", top):
                with contextlib.suppress(OSError):
                    d.rmdir()


def test_exec_process_settings(rt):
    """An exec'd process gets its own process.rlimits, capabilities and noNewPrivileges."""
    cid, _ = _create(rt, ["sleep", "30"])
    rt("start", cid, check=True)
    _wait_status(rt, cid, "running")
    process = rt.workdir / "process.json"
    process.write_text(json.dumps({
        "args": ["sh", "-c", "grep 'core file' /proc/self/limits; grep -E '^(CapEff|CapBnd|NoNewPrivs)' "
                 "/proc/self/status"], "cwd": "/",
        "env": ["PATH=/bin"], "rlimits": [{"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192}],
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "noNewPrivileges": True}))
    ex = rt("exec", "--process", process, cid)
    assert ex.returncode == 0, ex.stderr
    lines = ex.stdout.decode().splitlines()
    fields = _status_fields(ex.stdout.decode())
    # (not RLIMIT_NOFILE: runc 1.1's exec gets the soft limit raised to the hard one by Go's runtime)
    assert (lines[0].split()[4:6], int(fields["CapEff"], 16), int(fields["CapBnd"], 16), fields["NoNewPrivs"]) == \
        (["4096", "8192"], 1 << 5, 1 << 5, "1"), lines


def test_hook_runner(tmp_path):
    """hooks.run: only the hook's env, its timeout, and which kinds' failures are fatal."""
    from ringfence.runtime import hooks
    from ringfence.runtime.spec import Hook

    out = tmp_path / "env"
    env_hook = Hook("/bin/sh", ["sh", "-c", f"env > {out}; cat >> {out}"], ["ONLY=this"])
    hooks.run({"createRuntime": [env_hook]}, hooks.CREATE, hooks.state("1.0.2", "x", 7, "/b", {}))
    lines = out.read_text().splitlines()
    assert "ONLY=this" in lines and not any(line.startswith("HOME=") for line in lines), lines
    assert json.loads(lines[-1]) == {"ociVersion": "1.0.2", "id": "x", "pid": 7, "bundle": "/b",
                                     "annotations": {}, "status": "creating"}
    slow = Hook("/bin/sleep", ["sleep", "30"], timeout=1)
    started = time.monotonic()
    with pytest.raises(hooks.HookError, match="startContainer hook #0 .*timed out"):
        hooks.run({"startContainer": [slow]}, hooks.START, {})
    assert time.monotonic() - started < 10
    failing = Hook("/bin/false")
    hooks.run({"poststart": [failing], "poststop": [failing]}, hooks.POSTSTART + hooks.POSTSTOP, {})  # logged
    with pytest.raises(hooks.HookError, match="prestart hook #1 .*exit status 1"):
        hooks.run({"prestart": [Hook("/bin/true"), failing]}, hooks.CREATE, {})
    with pytest.raises(hooks.HookError, match="No such file"):
        hooks.run({"createContainer": [Hook("/nonexistent/hook")]}, hooks.CREATE, {})
