"""podman and buildah (Debian's packages) driving `ringfence` as their OCI
runtime, as they drive runc: every test runs with runc first (the reference)
and then with ringfence.

podman's and buildah's storage, state and tmp directories, and the runtime's
own --root, live in a temporary directory (vfs storage driver, cgroupfs
cgroup manager, no events, no networks), so nothing is left on the host: the
busybox image is made with `podman import` of a rootfs tar built from the
static busybox, and after the tests every container, image and directory is
removed and no process or cgroup of theirs may remain.

podman passes --runtime-flag values to some runtime calls only (not to
delete), so the runtimes keep their state in their default --root
(/run/runc, /run/ringfence); the tests check that their containers' entries
there are gone afterwards.

The machine's root lacks CAP_SYS_RESOURCE, so runs pass explicit
--ulimit nofile/nproc values within the current hard limits (runc needs the
same).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from podman_env import Tools

IMAGE = "localhost/ringfence-test/busybox:latest"
ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096")
APPLETS = "sh echo cat ls sleep true false ps id env kill wc head tr tty stty uname hostname test pwd".split()


def _rootfs_tar(busybox: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "dev", "proc", "sys", "root", "run", "var"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        data = Path(busybox).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)
        for name, text in (("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", b"root:x:0:\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text), 0o644
            tar.addfile(info, io.BytesIO(text))
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_env(tmp_path_factory, busybox):
    """Private storage holding the imported busybox image (shared by the module's tests)."""
    for tool in ("podman", "buildah", "conmon"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (Debian: apt-get install podman buildah)", pytrace=False)
    base = tmp_path_factory.mktemp("podman")
    tar = base / "rootfs.tar"
    tar.write_bytes(_rootfs_tar(busybox))
    tools = Tools(base, shutil.which("runc") or "runc", Path("/run/runc"))
    imported = tools.podman("import", "--change", "CMD=[\"sh\"]", tar, IMAGE)
    assert imported.returncode == 0, imported.stderr
    yield base
    tools.remove_all()


@pytest.fixture(params=["runc", "ringfence"])
def tools(request, image_env, ringfence_bin):
    runtime = shutil.which("runc") if request.param == "runc" else ringfence_bin
    if runtime is None:
        pytest.fail("runc is not installed", pytrace=False)
    t = Tools(image_env, runtime, Path("/run/runc" if request.param == "runc" else "/run/ringfence"))
    t.name = request.param
    before = _entries(t.runtime_root) | _cgroups()
    yield t
    t.podman("rm", "--all", "--force", "--time", "0")
    t.buildah("rm", "--all")
    deadline = time.monotonic() + 10
    while True:
        left = _leftovers(t, before)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, "left behind:\n" + "\n".join(left)


def _entries(root: Path) -> set[str]:
    """Container state entries (64 hex digits: podman's ids) under a runtime root."""
    try:
        return {p for p in os.listdir(root) if len(p) == 64 and all(c in "0123456789abcdef" for c in p)}
    except FileNotFoundError:
        return set()


def _cgroups() -> set[str]:
    """podman's container cgroups (cgroupfs manager: /libpod_parent/libpod-ID)."""
    found = set()
    for controller in ("memory", "pids", "freezer", "cpu"):
        with contextlib.suppress(FileNotFoundError):
            found |= {f"{controller}/libpod_parent/{name}" for name in os.listdir(
                f"/sys/fs/cgroup/{controller}/libpod_parent") if name.startswith("libpod-")}
    return found


def _processes(base: Path) -> dict[int, bytes]:
    """Processes whose command line names the private storage: conmon, and
    ringfence's supervisors, sentries, gofers and exec waiters (forks of
    `ringfence create --bundle STORAGE/...` or `exec --process STORAGE/...`)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if str(base).encode() in cmdline and b"podman" not in cmdline.split(b"\0")[0]:
                    found[int(entry)] = cmdline.replace(b"\0", b" ")[:200]
    return found


def _leftovers(t: Tools, before: set[str]) -> list[str]:
    left = []
    listed = t.podman("ps", "--all", "--quiet")
    left += [f"podman container {c}" for c in listed.stdout.decode().split()]
    left += [f"runtime state {t.runtime_root / e}" for e in sorted(_entries(t.runtime_root) - before)]
    left += [f"cgroup /sys/fs/cgroup/{g}" for g in sorted(_cgroups() - before)]
    left += [f"process {pid}: {cmd!r}" for pid, cmd in sorted(_processes(t.base).items())]
    return left


def test_run_rm_output_and_exit_status(tools):
    proc = tools.podman("run", "--rm", *ULIMITS, "--network", "none", IMAGE,
                        "sh", "-c", "echo hello from $(uname -s); echo to-stderr >&2; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == b"hello from Linux\n"
    assert b"to-stderr" in proc.stderr


def test_run_stdin_env_and_workdir(tools):
    proc = tools.podman("run", "--rm", "-i", *ULIMITS, "--network", "none", "--env", "GREETING=hi",
                        "--workdir", "/tmp", IMAGE, "sh", "-c", "read x; echo $GREETING $x $(pwd)",
                        input=b"there\n")
    assert (proc.returncode, proc.stdout) == (0, b"hi there /tmp\n"), proc.stderr


def test_run_with_a_terminal(tools):
    proc = tools.podman("run", "--rm", "-t", *ULIMITS, "--network", "none", IMAGE,
                        "sh", "-c", "test -t 1 && echo on-a-tty; exit 5")
    assert proc.returncode == 5, proc.stderr
    assert b"on-a-tty" in proc.stdout


def test_exec_in_a_running_container(tools):
    name = f"exec-{tools.name}"
    started = tools.podman("run", "-d", "--name", name, *ULIMITS, "--network", "none", IMAGE, "sleep", "60")
    assert started.returncode == 0, started.stderr
    try:
        ex = tools.podman("exec", name, "sh", "-c", "echo in-exec; exit 4")
        assert (ex.returncode, ex.stdout) == (4, b"in-exec\n"), ex.stderr
        ex = tools.podman("exec", "-i", name, "cat", input=b"piped\n")
        assert (ex.returncode, ex.stdout) == (0, b"piped\n"), ex.stderr
        ex = tools.podman("exec", "-t", name, "sh", "-c", "test -t 0 && echo tty-exec")
        assert ex.returncode == 0 and b"tty-exec" in ex.stdout, ex.stderr
        status = tools.podman("inspect", "--format", "{{.State.Status}}", name)
        assert status.stdout.strip() == b"running"
        paused = tools.podman("pause", name)
        assert paused.returncode == 0, paused.stderr
        assert tools.podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == b"paused"
        assert tools.podman("unpause", name).returncode == 0
        killed = tools.podman("kill", name)
        assert killed.returncode == 0, killed.stderr
        waited = tools.podman("wait", name)
        assert waited.stdout.strip() == b"137", waited
    finally:
        tools.podman("rm", "--force", "--time", "0", name)


def test_buildah_run(tools):
    made = tools.buildah("from", "--pull-never", "--name", f"bb-{tools.name}", IMAGE)
    assert made.returncode == 0, made.stderr
    ctr = made.stdout.decode().strip()
    try:
        ran = tools.buildah("run", "--runtime", tools.runtime, "--network", "none", ctr,
                            "sh", "-c", "echo built by buildah")
        assert (ran.returncode, ran.stdout) == (0, b"built by buildah\n"), ran.stderr
        failed = tools.buildah("run", "--runtime", tools.runtime, "--network", "none", ctr,
                               "sh", "-c", "exit 7")
        assert failed.returncode != 0 and b"exit status 7" in failed.stderr, failed.stderr
    finally:
        tools.buildah("rm", ctr)
