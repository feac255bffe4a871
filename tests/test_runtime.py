"""The lifecycle library (ringfence.runtime) and the shim's start/delete verbs,
without containerd: config.json validation, rootfs mounts, the gated sandbox."""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ringfence.runtime import mounts, spec
from ringfence.runtime.sandbox import Sandbox, SandboxError, exit_code, sentry_config

from harness import find_busybox

SHIM = [sys.executable, "-P", "-m", "ringfence.shim.main"]  # -P: not the source tree


def _config(**over) -> dict:
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "process": {"args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin"], "cwd": "/"}}
    cfg.update(over)
    return cfg


def test_spec_parses_what_the_sandbox_needs():
    s = spec.parse(json.dumps(_config(
        hostname="box", annotations={spec.SANDBOX_TYPE: "container", spec.SANDBOX_ID: "pod1"},
        linux={"cgroupsPath": "/rf/x", "resources": {"pids": {"limit": 10}}})))
    assert s.process.args == ["sh", "-c", "echo hi"]
    assert s.process.env_value("PATH") == "/bin"
    assert (s.hostname, s.root_path, s.cgroups_path) == ("box", "rootfs", "/rf/x")
    assert s.resources == {"pids": {"limit": 10}}
    assert not s.is_pod_sandbox and s.sandbox_id == "pod1"


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[]", "must hold a JSON object"),
    (json.dumps(_config(root=None)), "root.path is required"),
    (json.dumps(_config(process={"args": []})), "process.args must name a program"),
    (json.dumps(_config(process={"args": "sh"})), "process.args must be list"),
    (json.dumps(_config(process={"args": ["sh"], "cwd": "tmp"})), "process.cwd must be absolute"),
    (json.dumps(_config(process={"args": ["sh"], "user": {"uid": "0"}})), "process.user.uid must be int"),
    (json.dumps(_config(process={"args": ["sh"], "terminal": 1})), "process.terminal must be bool"),
    (json.dumps(_config(annotations={"a": 1})), "annotations must map strings"),
])
def test_malformed_config_json_is_a_clear_error(text, message):
    with pytest.raises(spec.SpecError, match=message):
        spec.parse(text)


def test_missing_bundle_is_a_clear_error(tmp_path):
    with pytest.raises(spec.SpecError, match="cannot read .*config.json"):
        spec.load(str(tmp_path / "nope"))


def test_mount_options_split_into_flags_and_data():
    flags, data = mounts.parse_options(["ro", "nosuid", "lowerdir=/a:/b", "upperdir=/u", "rw"])
    assert flags == 0x2 and data == "lowerdir=/a:/b,upperdir=/u"


def test_bind_mount_and_unmount(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "f").write_text("x")

    class M:
        type, source, options = "bind", str(src), ["rbind", "ro"]

    mounts.mount_all([M], str(dst))
    try:
        assert (dst / "f").read_text() == "x"
        with pytest.raises(OSError):
            (dst / "g").write_text("y")  # read-only
    finally:
        mounts.unmount_all(str(dst))
    assert not (dst / "f").exists()
    assert mounts.unmount(str(dst)) is False


def _rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(find_busybox(), root / "bin" / "busybox")
    for applet in ("sh", "echo", "cat"):
        os.symlink("busybox", root / "bin" / applet)
    return root


def _reap(sandbox: Sandbox) -> int:
    _, status = os.waitpid(sandbox.sentry_pid, 0)
    sandbox.reaped(sandbox.sentry_pid)
    os.waitpid(sandbox.gofer_pid, 0)
    sandbox.reaped(sandbox.gofer_pid)
    return exit_code(status)


def test_gated_sandbox_runs_only_after_start(tmp_path):
    root = _rootfs(tmp_path)
    s = spec.parse(json.dumps(_config(process={"args": ["sh", "-c", "echo started; exit 7"],
                                               "env": ["PATH=/bin"]})))
    out_r, out_w = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    sandbox = Sandbox.create(sentry_config(s, str(root), stdio=(null, out_w, out_w)), str(root), gated=True)
    os.close(out_w)
    os.close(null)
    try:
        assert select.select([out_r], [], [], 0.5)[0] == [], os.read(out_r, 1000)  # created, not running
        sandbox.start()
        assert _reap(sandbox) == 7
        assert os.read(out_r, 100) == b"started\n"
    finally:
        sandbox.destroy()
        os.close(out_r)
    assert not sandbox.alive


def _run_init(tmp_path, args: list[str], **config) -> tuple[int, bytes]:
    """Run `args` as a container's init over a busybox rootfs: (exit status, output)."""
    root = _rootfs(tmp_path)
    for applet in ("head", "id"):
        (root / "bin" / applet).symlink_to("busybox")
    process = {**config.pop("process", {}), "args": args, "env": ["PATH=/bin"]}
    s = spec.parse(json.dumps(_config(process=process, **config)))
    out_r, out_w = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    sandbox = Sandbox.create(sentry_config(s, str(root), stdio=(null, out_w, out_w)), str(root))
    os.close(out_w)
    os.close(null)
    try:
        return _reap(sandbox), os.read(out_r, 4096)
    finally:
        sandbox.destroy()
        os.close(out_r)


def test_init_runs_as_the_spec_s_user(tmp_path):
    status, out = _run_init(tmp_path, ["id"], process={"user": {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}})
    assert (status, out) == (0, b"uid=1000 gid=1001 groups=5,7\n")


def test_memory_limit_is_what_the_program_sees(tmp_path):
    """/proc/meminfo's MemTotal is the spec's memory limit (smaller than the machine's)."""
    status, out = _run_init(tmp_path, ["head", "-n", "1", "/proc/meminfo"],
                            linux={"resources": {"memory": {"limit": 256 << 20}}})
    assert (status, out.split()) == (0, [b"MemTotal:", b"262144", b"kB"])


def test_killing_a_created_sandbox_ends_it(tmp_path):
    root = _rootfs(tmp_path)
    s = spec.parse(json.dumps(_config()))
    null = os.open(os.devnull, os.O_RDWR)
    sandbox = Sandbox.create(sentry_config(s, str(root), stdio=(null, null, null)), str(root), gated=True)
    os.close(null)
    sandbox.signal(signal.SIGTERM)  # init does not exist yet: the sandbox goes
    assert _reap(sandbox) == 128 + signal.SIGKILL


def test_missing_executable_is_refused_before_anything_starts(tmp_path):
    root = _rootfs(tmp_path)
    s = spec.parse(json.dumps(_config(process={"args": ["nosuch"], "env": ["PATH=/bin"]})))
    with pytest.raises(SandboxError, match="nosuch: executable file not found"):
        sentry_config(s, str(root))


def test_shim_delete_verb_prints_a_delete_response(tmp_path):
    from ringfence.proto.containerd.task.v2 import shim_pb2

    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(_config()))
    out = subprocess.run(SHIM + ["-namespace", "ns", "-id", "c1", "-address", "/nowhere",
                                 "-bundle", str(bundle), "delete"],
                         cwd=bundle, capture_output=True, timeout=30, check=True).stdout
    resp = shim_pb2.DeleteResponse.FromString(out)
    assert resp.exit_status == 137 and abs(resp.exited_at.seconds - time.time()) < 60


@pytest.mark.parametrize("argv, message", [
    (["start"], "-id and -namespace are required"),
    (["-namespace", "n", "-id", "x", "bogus"], "invalid choice"),
    (["-namespace", "n", "-id", "x"], "an action is required"),
])
def test_shim_refuses_bad_flags(argv, message):
    r = subprocess.run(SHIM + argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and message in r.stderr


def test_shim_start_prints_only_the_address_and_shares_a_pods_shim(tmp_path):
    """`start` daemonises (the output pipe reaches EOF while the daemon runs),
    writes `address`, and a container of the same pod gets the same address."""
    from ringfence.shim.main import socket_address

    pod, member = tmp_path / "pod", tmp_path / "member"
    for bundle, ann in ((pod, {spec.SANDBOX_TYPE: "sandbox"}),
                        (member, {spec.SANDBOX_TYPE: "container", spec.SANDBOX_ID: "pod-1"})):
        (bundle / "rootfs").mkdir(parents=True)
        (bundle / "config.json").write_text(json.dumps(_config(annotations=ann)))
    flags = ["-namespace", "rf-test", "-address", str(tmp_path / "containerd.sock"),
             "-publish-binary", "/bin/false"]
    first = subprocess.run(SHIM + flags + ["-id", "pod-1", "start"], cwd=pod, capture_output=True,
                           text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    address = first.stdout
    path = address.removeprefix("unix://")
    try:
        assert address == socket_address(str(tmp_path / "containerd.sock"), "rf-test", "pod-1")
        assert (pod / "address").read_text() == address
        second = subprocess.run(SHIM + flags + ["-id", "c2", "start"], cwd=member, capture_output=True,
                                text=True, timeout=30)
        assert second.returncode == 0 and second.stdout == address
        assert (member / "address").read_text() == address
    finally:
        _shutdown(path)
    assert not os.path.exists(path)


def test_shim_answers_bad_requests_with_clear_statuses(tmp_path):
    """Malformed config.json, a missing bundle, a missing program and unknown
    ids are refused with a status naming the problem; the shim keeps serving."""
    import asyncio

    from ringfence.proto.containerd.task.v2 import shim_pb2
    from ringfence.shim.ttrpc import Client, Code, TtrpcError

    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps(_config()))
    r = subprocess.run(SHIM + ["-namespace", "rf-test", "-address", str(tmp_path / "c.sock"), "-id", "bad",
                               "start"], cwd=bundle, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    path = r.stdout.removeprefix("unix://")
    broken = tmp_path / "broken"
    (broken / "rootfs").mkdir(parents=True)
    (broken / "config.json").write_text('{"process": ')
    noprog = tmp_path / "noprog"
    (noprog / "rootfs").mkdir(parents=True)
    (noprog / "config.json").write_text(json.dumps(_config()))  # rootfs has no sh

    async def expect(client, method, request, code, text):
        with pytest.raises(TtrpcError) as err:
            await client.call("containerd.task.v2.Task", method, request, timeout=10)
        assert err.value.code == code and text in err.value.message, err.value

    async def calls():
        async with await Client.connect(path, timeout=10) as client:
            await expect(client, "Create", shim_pb2.CreateTaskRequest(id="c1", bundle=str(broken)),
                         Code.INVALID_ARGUMENT, "not valid JSON")
            await expect(client, "Create", shim_pb2.CreateTaskRequest(id="c1", bundle=str(tmp_path / "none")),
                         Code.INVALID_ARGUMENT, "cannot read")
            await expect(client, "Create", shim_pb2.CreateTaskRequest(id="c1", bundle=str(noprog)),
                         Code.FAILED_PRECONDITION, "executable file not found")
            await expect(client, "State", shim_pb2.StateRequest(id="nope"), Code.NOT_FOUND, "nope")
            await expect(client, "Start", shim_pb2.StartRequest(id="nope"), Code.NOT_FOUND, "nope")
            await expect(client, "Create", b"\xff\xff", Code.INVALID_ARGUMENT, "")
            resp = await client.call("containerd.task.v2.Task", "Connect", shim_pb2.ConnectRequest(id="c1"),
                                     shim_pb2.ConnectResponse, timeout=10)
            assert resp.task_pid == 0 and resp.shim_pid > 0

    try:
        asyncio.run(calls())
    finally:
        _shutdown(path)
    assert not list(Path("/sys/fs/cgroup/freezer/ringfence/rf-test").glob("c1"))


def _shutdown(path: str) -> None:
    """Ask the shim at `path` to shut down (it has no containers) and wait for it."""
    import asyncio

    from ringfence.proto.containerd.task.v2 import shim_pb2
    from ringfence.shim.ttrpc import Client

    async def call():
        async with await Client.connect(path, timeout=10) as client:
            resp = await client.call("containerd.task.v2.Task", "Connect", shim_pb2.ConnectRequest(id="pod-1"),
                                     shim_pb2.ConnectResponse, timeout=10)
            await client.call("containerd.task.v2.Task", "Shutdown", shim_pb2.ShutdownRequest(id="pod-1"),
                              timeout=10)
            return resp.shim_pid

    shim_pid = asyncio.run(call())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{shim_pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{shim_pid}/status") or "Z" in open(f"/proc/{shim_pid}/stat").read().split()[2]
