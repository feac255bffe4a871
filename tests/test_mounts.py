"""A container's files as the runtime serves them (ringfence.runtime: Sandbox.create and
sentry_config, as the shim and the OCI CLI use them) over a busybox rootfs:

- the rootfs is served writable by the container's gofer (writes reach the host), or
  read-only (root.readonly: EROFS);
- the OCI mount list: bind mounts (rw, ro, a single file; served by the gofer, shared with
  the host), tmpfs (size=, mode=), proc, sysfs, mqueue and cgroup (not made, with a log line);
  noexec mounts refuse execve and executable mappings;
  mount points missing from the rootfs exist in the sandbox's view only;
- linux.maskedPaths and linux.readonlyPaths; /proc/self/mounts and mountinfo;
- escapes: symlinks and `..` resolve inside the container's tree, never the host's;
- a C program's file operations give the same results natively, in the rootfs and in a bind
  mount (tests/c/fswrite.c, and FIFOs and inotify: tests/c/fifo.c, inotify.c); the host's
  changes to a bind mount are seen; shared file mappings
  are coherent there and their stores reach the host file (tests/c/mmapshared.c);
- a pod's sub-container gets its plan from its spec (its gofer started with it), or the
  in-memory layer over a gofer started without one;
- the gofer-backed file system's caches stay coherent (rename, hard links, ESTALE).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import structlog

import harness
from ringfence import log as logs
from ringfence.runtime import spec
from ringfence.runtime.sandbox import Sandbox, SandboxError, exit_code, sentry_config, start_gofer

APPLETS = ("sh", "echo", "cat", "ls", "mkdir", "touch", "rm", "mv", "ln", "stat", "dd", "head", "chmod", "cp",
           "readlink", "sleep", "cmp", "wc", "df", "rmdir", "pwd", "test", "[", "tr", "sort")
_runs = itertools.count()


class Result(NamedTuple):
    status: int
    out: str
    err: str
    log: str


def _rootfs(tmp_path: Path, busybox: str, name: str = "rootfs") -> Path:
    root = tmp_path / name
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    return root


def _config(script: str, mounts=(), readonly: bool = False, linux: dict | None = None,
            args: list[str] | None = None) -> dict:
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": readonly},
           "process": {"args": args or ["sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"},
           "mounts": list(mounts)}
    if linux:
        cfg["linux"] = linux
    return cfg


def _bind(source, destination: str, *options: str) -> dict:
    return {"destination": destination, "type": "bind", "source": str(source), "options": ["rbind", *options]}


def _reap(pid: int, deadline: float) -> int | None:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    return None


def _run(tmp_path: Path, root: Path, script: str, *, while_running=None, **cfg) -> Result:
    """Run `script` as a container's init over `root`: its exit code, stdout, stderr and the
    sandbox's log.  `while_running(out_path)` runs meanwhile."""
    n = next(_runs)
    out_path, err_path, log_path = (tmp_path / f"run{n}.{what}" for what in ("out", "err", "log"))
    s = spec.parse(json.dumps(_config(script, **cfg)))
    saved = structlog.get_config()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err, open(log_path, "a", buffering=1) as log:
            logs.configure(stream=log)  # the sentry's log: a file it keeps open
            sandbox = Sandbox.create(sentry_config(s, str(root), stdio=(null, out.fileno(), err.fileno())),
                                     str(root))
    finally:
        structlog.configure(**saved)
        os.close(null)
    try:
        if while_running is not None:
            while_running(out_path)
        status = _reap(sandbox.sentry_pid, time.monotonic() + harness.TIMEOUT)
        assert status is not None, f"the sandbox did not exit; stdout so far: {out_path.read_text()!r}"
        sandbox.reaped(sandbox.sentry_pid)
        if _reap(sandbox.gofer_pid, time.monotonic() + 10) is not None:
            sandbox.reaped(sandbox.gofer_pid)
    finally:
        sandbox.destroy()
        for pid in (sandbox.sentry_pid, sandbox.gofer_pid):
            if pid in sandbox._live:
                os.waitpid(pid, 0)
                sandbox.reaped(pid)
    return Result(exit_code(status), out_path.read_text(), err_path.read_text(), log_path.read_text())


@pytest.fixture
def root(tmp_path, busybox) -> Path:
    return _rootfs(tmp_path, busybox)


@pytest.fixture
def host_secret(tmp_path) -> Path:
    """A host file outside the rootfs that no container may read."""
    secret = tmp_path / "host-secret"
    secret.write_text("HOST SECRET\n")
    return secret


# -- the rootfs ----------------------------------------------------------------------


def test_rootfs_writes_reach_the_host(tmp_path, root):
    (root / "victim").write_text("remove me\n")
    r = _run(tmp_path, root, "echo hello > /new && mkdir -p /d/e && echo x > /d/e/f && mv /d/e/f /d/g && "
                             "ln -s g /d/link && ln /d/g /d/hard && chmod 600 /d/g && rm /victim && "
                             "echo more >> /d/hard && cat /d/link && stat -c '%s %h %a' /d/g && ls /")
    assert r.status == 0, r
    assert r.out.splitlines() == ["x", "more", "7 2 600", "bin", "d", "dev", "new", "proc"]
    assert (root / "new").read_text() == "hello\n"
    assert (root / "d" / "g").read_text() == "x\nmore\n"
    assert os.readlink(root / "d" / "link") == "g"
    assert (root / "d" / "g").stat().st_ino == (root / "d" / "hard").stat().st_ino
    assert (root / "d" / "g").stat().st_mode & 0o777 == 0o600
    assert not (root / "victim").exists() and not (root / "d" / "e" / "f").exists()
    # the mount points the sandbox needed (/proc, /dev) exist in its view only
    assert not (root / "proc").exists() and not (root / "dev").exists()


def test_readonly_root_gives_erofs(tmp_path, root):
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("read me\n")
    r = _run(tmp_path, root, "cat /etc/motd; touch /x; mkdir /y; rm /etc/motd; echo t > /scratch/t && cat /scratch/t",
             readonly=True, mounts=[{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}])
    assert r.out == "read me\nt\n", r
    assert r.err.count("Read-only file system") == 3, r.err
    assert sorted(os.listdir(root)) == ["bin", "etc"] and (root / "etc" / "motd").exists()


# -- bind mounts -----------------------------------------------------------------------


def test_rw_bind_mount_writes_land_on_the_host(tmp_path, root, busybox):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "existing").write_text("from the host\n")
    r = _run(tmp_path, root, "cat /data/existing && echo appended >> /data/existing && cp /bin/busybox /data/copy && "
                             "mkdir /data/sub && echo deep > /data/sub/f && mv /data/sub/f /data/sub/g && ls /data",
             mounts=[_bind(shared, "/data", "rw")])
    assert r.status == 0, r
    assert r.out == "from the host\ncopy\nexisting\nsub\n"
    assert (shared / "copy").read_bytes() == Path(busybox).read_bytes()  # byte-identical after exit
    assert (shared / "existing").read_text() == "from the host\nappended\n"
    assert (shared / "sub" / "g").read_text() == "deep\n"
    assert not (root / "data").exists()  # the mount point is the sandbox's only


def test_ro_bind_mount_gives_erofs(tmp_path, root):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("keep\n")
    r = _run(tmp_path, root, "cat /ro/file; echo x > /ro/new; rm /ro/file; mkdir /ro/d; echo x >> /ro/file; "
                             "touch /ro/file", mounts=[_bind(shared, "/ro", "ro")])
    assert r.out == "keep\n", r
    assert r.err.count("Read-only file system") == 5, r.err
    assert sorted(os.listdir(shared)) == ["file"] and (shared / "file").read_text() == "keep\n"


def test_bind_mounted_single_file(tmp_path, root):
    config, readonly = tmp_path / "config", tmp_path / "hosts"
    config.write_text("key=value\n")
    readonly.write_text("127.0.0.1 localhost\n")
    r = _run(tmp_path, root, "cat /etc/app.conf /etc/hosts && echo more=1 >> /etc/app.conf && ls /etc; "
                             "echo x >> /etc/hosts; rm /etc/app.conf; mv /etc/app.conf /etc/other; cat /etc/app.conf/x",
             mounts=[_bind(config, "/etc/app.conf", "rw"), _bind(readonly, "/etc/hosts", "ro")])
    assert r.out == "key=value\n127.0.0.1 localhost\napp.conf\nhosts\n", r
    assert "Read-only file system" in r.err and "Device or resource busy" in r.err and "Not a directory" in r.err
    assert config.read_text() == "key=value\nmore=1\n" and readonly.read_text() == "127.0.0.1 localhost\n"
    assert not (root / "etc").exists()


def test_missing_bind_source_is_a_clear_error(tmp_path, root):
    s = spec.parse(json.dumps(_config("true", mounts=[_bind(tmp_path / "nope", "/data")])))
    with pytest.raises(SandboxError, match="bind mount /data: source .*nope does not exist"):
        Sandbox.create(sentry_config(s, str(root)), str(root))


def test_host_changes_to_a_bind_mount_are_seen(tmp_path, root):
    """Bind mounts are shared with the host: a file replaced (a new inode under the old name),
    one added and one removed on the host show in the sandbox."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("old\n")
    (shared / "gone").write_text("x\n")

    def change(out_path: Path) -> None:
        deadline = time.monotonic() + harness.TIMEOUT
        while "ready" not in out_path.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (shared / "f.new").write_text("new content\n")
        os.replace(shared / "f.new", shared / "f")
        (shared / "gone").unlink()
        (shared / "added").write_text("added\n")

    r = _run(tmp_path, root, "cat /data/f; ls /data; exec 3</data/f; echo ready; "
                             "while [ ! -e /data/added ]; do sleep 0.05; done; cat /data/f; ls /data; cat <&3",
             mounts=[_bind(shared, "/data", "rw")], while_running=change)
    assert r.status == 0, r
    assert r.out == "old\nf\ngone\nready\nnew content\nadded\nf\nold\n"


# -- other mounts ------------------------------------------------------------------------


def test_tmpfs_size_limit_and_mode(tmp_path, root):
    r = _run(tmp_path, root, "stat -c %a /scratch; dd if=/dev/zero of=/scratch/big bs=1024 count=100; "
                             "stat -c %s /scratch/big; echo more >> /scratch/big; rm /scratch/big; "
                             "dd if=/dev/zero of=/scratch/again bs=1024 count=32 2>/dev/null && stat -c %s /scratch/again; "
                             "stat -f -c '%b %f' /scratch",
             mounts=[{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "size=64k", "mode=700"]}])
    assert r.out == "700\n65536\n32768\n16 8\n", r
    assert r.err.count("No space left on device") == 2, r.err
    assert not (root / "scratch").exists()


def test_noexec_mounts_refuse_execution(tmp_path, root):
    """On a noexec mount (tmpfs, bind) a file can be read and mapped, not executed (execve: EACCES)
    nor mapped executable (EPERM); mountinfo shows noexec.  The same file elsewhere runs."""
    shutil.copy(harness.compile_c(harness.TESTS_DIR / "cmounts" / "noexec.c"), root / "noexec")
    shared = tmp_path / "shared"
    shared.mkdir()
    r = _run(tmp_path, root, "cp /bin/busybox /scratch/bb && cp /bin/busybox /data/bb && /noexec /scratch/bb && "
                             "/noexec /data/bb && /noexec /bin/busybox echo runs; /scratch/bb true; echo status=$?; "
                             "cat /proc/self/mountinfo",
             mounts=[{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]},
                     _bind(shared, "/data", "rw", "noexec")])
    refused = ["mmap read: ok", "mmap exec: Operation not permitted", "execve: Permission denied"]
    lines = r.out.splitlines()
    assert lines[:10] == refused * 2 + ["mmap read: ok", "mmap exec: ok", "runs", "status=126"], r
    assert "Permission denied" in r.err
    options = {f[4]: f[5] for f in (line.split() for line in lines[10:])}
    assert options["/scratch"] == options["/data"] == "rw,noexec" and options["/"] == "rw", r.out


def test_masked_and_readonly_paths(tmp_path, root):
    (root / "secretdir").mkdir()
    (root / "secretdir" / "key").write_text("k\n")
    (root / "secretfile").write_text("s\n")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    r = _run(tmp_path, root, "ls -A /secretdir; cat /secretfile; stat -c %F /secretfile; touch /secretdir/x; "
                             "cat /etc/passwd; echo x >> /etc/passwd; touch /etc/new; echo ok > /elsewhere && "
                             "cat /elsewhere; cat /proc/self/mounts",
             linux={"maskedPaths": ["/secretdir", "/secretfile", "/not/there"], "readonlyPaths": ["/etc", "/nope"]})
    lines = r.out.splitlines()
    assert lines[:3] == ["character special file", "root:x:0:0::/:/bin/sh", "ok"], r
    assert r.err.count("Read-only file system") == 3, r.err
    assert "tmpfs /secretdir tmpfs ro 0 0" in lines and "none /etc 9p ro 0 0" in lines
    assert any(line.startswith("tmpfs /secretfile tmpfs rw") for line in lines)
    assert (root / "secretdir" / "key").read_text() == "k\n" and (root / "elsewhere").read_text() == "ok\n"
    assert sorted(os.listdir(root / "etc")) == ["passwd"]


def test_proc_mounts_and_mountinfo_list_the_mounts(tmp_path, root):
    shared = tmp_path / "shared"
    shared.mkdir()
    r = _run(tmp_path, root, "cat /proc/self/mounts; echo ---; cat /proc/self/mountinfo; echo ---; "
                             "cat /proc/mounts; ls /sys/fs /sys/devices/system/cpu/online; echo x > /sys/x",
             mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                     {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                     {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                      "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                     {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
                     {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "ro"]},
                     {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
                     _bind(shared, "/data", "rw", "nodev"), _bind(shared, "/data-ro", "ro")])
    mounts, mountinfo, again = r.out.split("---\n")
    assert again.startswith(mounts), r.out
    assert mounts.splitlines() == [
        "none / 9p rw 0 0",
        "proc /proc proc rw,nosuid,nodev,noexec 0 0",
        "tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755 0 0",
        "shm /dev/shm tmpfs rw,nosuid,nodev,noexec,size=65536k,mode=1777 0 0",
        "sysfs /sys sysfs ro,nosuid 0 0",
        "none /data 9p rw,nodev 0 0",
        "none /data-ro 9p ro 0 0",
    ]
    info = [line.split() for line in mountinfo.splitlines()]
    assert [(f[4], f[5], f[f.index("-") + 1]) for f in info] == [
        ("/", "rw", "9p"), ("/proc", "rw,nosuid,nodev,noexec", "proc"), ("/dev", "rw,nosuid", "tmpfs"),
        ("/dev/shm", "rw,nosuid,nodev,noexec", "tmpfs"), ("/sys", "ro,nosuid", "sysfs"),
        ("/data", "rw,nodev", "9p"), ("/data-ro", "ro", "9p")]
    ids = [int(f[0]) for f in info]
    assert len(set(ids)) == len(ids) and all(int(f[1]) in ids for f in info)
    assert [int(f[1]) for f in info[1:]] == [ids[0], ids[0], ids[2], ids[0], ids[0], ids[0]]
    assert "cgroup\n" in again and "Read-only file system" in r.err
    assert "mqueue not mounted" in r.log and "cgroup file systems are not served" in r.log


def test_malformed_mount_list_is_a_clear_error(root):
    s = spec.parse(json.dumps(_config("true", mounts=[{"destination": 7, "type": "tmpfs"}])))
    with pytest.raises(SandboxError, match=r"mounts\[0\].destination"):
        sentry_config(s, str(root))


# -- escapes ----------------------------------------------------------------------------


def test_symlinks_resolve_inside_the_rootfs(tmp_path, root, host_secret):
    """A symlink in the rootfs (or in a bind mount) pointing at a host-only file, absolute or
    climbing with .., resolves inside the container's tree."""
    (root / "abs").symlink_to(host_secret)
    (root / "rel").symlink_to(os.path.relpath(host_secret, root))
    (root / "tmp").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "up").symlink_to("../host-secret")
    (shared / "far").symlink_to("../../../../../../../../" + str(host_secret).lstrip("/"))
    r = _run(tmp_path, root, "cat /abs /rel /data/up /data/far; readlink /abs; "
                             f"mkdir -p /{host_secret.parent.relative_to('/')}; echo inside > /{host_secret.relative_to('/')}; "
                             "cat /abs", mounts=[_bind(shared, "/data", "rw")])
    assert "HOST SECRET" not in r.out + r.err
    assert r.err.count("No such file or directory") == 4, r.err
    assert r.out == f"{host_secret}\ninside\n"
    assert host_secret.read_text() == "HOST SECRET\n"
    assert (root / host_secret.relative_to("/")).read_text() == "inside\n"  # it was written in the rootfs


def test_dotdot_above_a_bind_mount_stays_inside(tmp_path, root, host_secret):
    shared = tmp_path / "shared"  # beside host-secret on the host
    shared.mkdir()
    r = _run(tmp_path, root, "ls /data/..; echo ---; cd /data/../../../..; pwd; ls; cat /data/../host-secret; "
                             "cat /data/../../host-secret; cd /data; cat ../host-secret ../../host-secret",
             mounts=[_bind(shared, "/data", "rw")])
    before, after = r.out.split("---\n")
    assert before.split() == ["bin", "data", "dev", "proc"]
    assert after == "/\nbin\ndata\ndev\nproc\n"
    assert "HOST SECRET" not in r.out and r.err.count("No such file or directory") == 4, r.err


# -- what programs see -------------------------------------------------------------------


def test_file_operations_match_native_in_rootfs_and_bind_mount(tmp_path, root, cprog, run_native):
    """tests/c/fswrite.c natively, in the rootfs the gofer serves writable, and in a bind mount."""
    prog = cprog("fswrite")
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native = run_native([prog, str(native_dir)])
    assert native.returncode == 0 and native.stdout.decode().endswith("done\n"), native
    shutil.copy(prog, root / "fswrite")
    (root / "tmp").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    for where in ("/tmp", "/data"):
        r = _run(tmp_path, root, "", args=["/fswrite", where], mounts=[_bind(shared, "/data", "rw")])
        assert (r.status, r.out) == (0, native.stdout.decode()), (where, r.err)
    assert os.listdir(root / "tmp") == [] and os.listdir(shared) == []


def test_shared_mappings_match_native_and_reach_the_host(tmp_path, root, cprog, run_native):
    """tests/c/mmapshared.c on gofer-served files (the rootfs, a bind mount): coherent as natively,
    and what the program stored through a mapping it never unmapped is in the host file after
    it exited."""
    prog = cprog("mmapshared")
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native = run_native([prog, str(native_dir)])
    assert native.returncode == 0 and native.stdout.decode().endswith("done\n"), native
    kept = b"stored through a mapping".ljust(32, b"\0")
    assert (native_dir / "kept").read_bytes() == kept
    shutil.copy(prog, root / "mmapshared")
    (root / "tmp").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    for where, host_dir in (("/tmp", root / "tmp"), ("/data", shared)):
        r = _run(tmp_path, root, "", args=["/mmapshared", where], mounts=[_bind(shared, "/data", "rw")])
        assert (r.status, r.out) == (0, native.stdout.decode()), (where, r.err)
        assert os.listdir(host_dir) == ["kept"] and (host_dir / "kept").read_bytes() == kept, where


@pytest.mark.parametrize("name", ["fifo", "inotify", "fsmore", "unix"])
def test_fifos_and_inotify_match_native_on_gofer_files(name, tmp_path, root, cprog, run_native):
    """tests/c/fifo.c, inotify.c, fsmore.c and unix.c on gofer-served directories (the rootfs, a
    revalidating bind mount): FIFO nodes made on the host are opened as the sentry's pipes, the
    sandbox's changes there are reported, fallocate, syncfs and openat2 work on host files, and
    sockets bind to socket nodes made on the host, as natively."""
    prog = cprog(name)
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native = run_native([prog, str(native_dir)])
    assert native.returncode == 0 and native.stdout.decode().endswith("done\n"), native
    shutil.copy(prog, root / name)
    (root / "tmp").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    for where in ("/tmp", "/data"):
        r = _run(tmp_path, root, "", args=[f"/{name}", where], mounts=[_bind(shared, "/data", "rw")])
        assert (r.status, r.out) == (0, native.stdout.decode()), (where, r.err)
    assert os.listdir(root / "tmp") == [] and os.listdir(shared) == []


# -- a pod's sub-containers ----------------------------------------------------------------


def _wait_exit(client, cid: str) -> int:
    return client.wait(container_id=cid, timeout=harness.TIMEOUT)[0]


def test_subcontainer_mounts(tmp_path, busybox):
    """A sub-container's plan comes from the spec CreateSubcontainer hands the sentry: with a gofer
    started from the same spec its root is writable and its bind mounts served; with a gofer
    started without one it gets the in-memory layer (and no bind mounts), as before."""
    from ringfence.sentry.control_client import ControlClient

    pause_root = _rootfs(tmp_path, busybox, "pause")
    shared = tmp_path / "shared"
    shared.mkdir()
    control_path = str(tmp_path / "control.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(control_path)
    listener.listen(4)
    pause = spec.parse(json.dumps(_config('trap "exit 0" TERM; sleep 1000 & wait')))
    null = os.open(os.devnull, os.O_RDWR)
    try:
        sandbox = Sandbox.create(sentry_config(pause, str(pause_root), stdio=(null, null, null),
                                               control_sock=listener), str(pause_root))
    finally:
        listener.close()
    gofers = []
    try:
        client = ControlClient(control_path, timeout=harness.TIMEOUT)
        script = "echo sub > /written; echo shared > /data/from-sub; cat /proc/self/mounts"
        outputs = {}
        for cid, with_plan in (("planned", True), ("plain", False)):
            root = _rootfs(tmp_path, busybox, cid)
            cfg = _config(script, mounts=[_bind(shared, "/data", "rw")])
            s = spec.parse(json.dumps(cfg))
            gofer_pid, sock = start_gofer(str(root), s if with_plan else None)
            gofers.append(gofer_pid)
            r, w = os.pipe()
            with sock:
                try:
                    client.create_subcontainer(cid, cfg, (None, w, None), sock.fileno())
                finally:
                    os.close(w)
            client.start_subcontainer(cid)
            with os.fdopen(r, "rb") as out:
                outputs[cid] = out.read().decode()
            assert _wait_exit(client, cid) == 0, outputs[cid]
            outputs[cid] = (outputs[cid], (root / "written").exists())
        assert outputs["planned"] == ("none / 9p rw 0 0\nproc /proc proc rw,nosuid,nodev,noexec 0 0\n"
                                      "tmpfs /dev tmpfs rw,nosuid,mode=755 0 0\nnone /data 9p rw 0 0\n", True)
        assert outputs["plain"][0].startswith("overlay / overlay rw 0 0\n") and "/data" not in outputs["plain"][0]
        assert outputs["plain"][1] is False
        assert (shared / "from-sub").read_text() == "shared\n"
        client.signal(signal.SIGTERM)
        assert _reap(sandbox.sentry_pid, time.monotonic() + harness.TIMEOUT) is not None
        sandbox.reaped(sandbox.sentry_pid)
    finally:
        os.close(null)
        sandbox.destroy()
        for pid in [*gofers, *(p for p in (sandbox.sentry_pid, sandbox.gofer_pid) if p in sandbox._live)]:
            if _reap(pid, time.monotonic() + 10) is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


# -- the gofer-backed file system itself ---------------------------------------------------


@pytest.fixture
def gofer_tree(tmp_path):
    """A real gofer serving tmp_path/"tree" writable (mount 0) and tmp_path/"shared" (mount 1)."""
    from ringfence.gofer import server as gofer
    from ringfence.gofer.client import GoferClient

    (tmp_path / "tree").mkdir()
    (tmp_path / "shared").mkdir()
    pid, sock = gofer.start(str(tmp_path / "tree"), readonly=False,
                            mounts=[gofer.Mount(str(tmp_path / "shared"), False)])
    yield GoferClient(sock)
    sock.close()
    os.waitpid(pid, 0)


def test_gofer_fs_caches_stay_coherent(tmp_path, gofer_tree):
    """Renames (the gofer answers ESTALE for the old handle: the node walks again), hard links
    (one attribute record), writes through a donated fd, and LRU-evicted handles."""
    from ringfence.sentry.abi.fs import O_RDWR, S_IFREG
    from ringfence.sentry.fs.gofer import GoferFS
    from ringfence.sentry.kernel.errors import SysError

    fs = GoferFS(gofer_tree, max_handles=2)
    root = fs.attach()
    d = root.mkdir(b"d", 0o755, 0, 0)
    f = d.create(b"f", S_IFREG | 0o644, 0, 0)
    file = f.open(None, None, O_RDWR)
    assert file.pwrite(b"hello", 0) == 5
    assert f.stat().st_size == 5 and (tmp_path / "tree" / "d" / "f").read_bytes() == b"hello"
    link = root.link(b"l", f)
    assert link is not f and link.stat().st_nlink == 2 and f.stat().st_nlink == 2
    file.pwrite(b"!", 5)
    assert link.stat().st_size == 6  # the write shows through the other name
    root.rename(b"d", d, root, b"e", None, False)  # the directory moves: its file's node follows
    f.setattr(mode=0o600)
    assert (tmp_path / "tree" / "e" / "f").stat().st_mode & 0o777 == 0o600
    for i in range(5):  # more nodes than handles: the least recently used give theirs back
        os.close(root.create(b"x%d" % i, S_IFREG | 0o644, 0, 0).host_fd(0))
    assert f._handle < 0 and f.stat().st_mode & 0o777 == 0o600
    f.setattr(size=2)  # through the open fd
    assert (tmp_path / "tree" / "e" / "f").read_bytes() == b"he"
    d.rename(b"f", f, root, b"g", None, False)
    assert f.contents(10) == b"he"  # walked again at its new name
    root.unlink(b"g", f)
    assert file.stat().st_nlink == 1 and file.pread(10, 0) == b"he"  # open after unlink
    with pytest.raises(SysError):
        f.handle()
    file.release()
    # a name changed behind the back of an exclusive tree: ESTALE, then walked again
    h = root.create(b"h", S_IFREG | 0o644, 0, 0)
    os.rename(tmp_path / "tree" / "h", tmp_path / "tree" / "h2")
    os.rename(tmp_path / "tree" / "x0", tmp_path / "tree" / "h")
    with pytest.raises(SysError):
        h.setattr(mode=0o600)  # the name leads to another file now
    assert h.dead


class _CountingClient:
    """A GoferClient whose requests are counted by method name."""

    def __init__(self, client):
        self.client, self.calls = client, {}

    def __getattr__(self, name):
        method = getattr(self.client, name)

        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args)
        return call


def test_gofer_fs_lists_a_directory_whose_names_keep_missing(tmp_path, gofer_tree):
    """Lookups of uncached names walk until they have cost about what listing the directory
    with its entries' attributes will (list_after); then one DIRSTAT listing answers every
    name, present or absent, and the sandbox's own changes keep it true."""
    from ringfence.sentry.abi.errno import ENOENT
    from ringfence.sentry.abi.fs import S_IFLNK, S_IFREG
    from ringfence.sentry.fs.gofer import GoferFS, list_after
    from ringfence.sentry.kernel.errors import SysError

    many = tmp_path / "tree" / "many"
    many.mkdir()
    for i in range(300):
        (many / f"f{i}").write_bytes(b"x" * i)
    (many / "ln").symlink_to("f1")
    client = _CountingClient(gofer_tree)
    root = GoferFS(client).attach()
    d = root.lookup(b"many")
    walks = client.calls["walk"]
    before = list_after(d.stat())
    assert 8 <= before < 300, before
    for i in range(before - 1):
        assert d.lookup(b"f%d" % i).stat().st_size == i
    assert client.calls["walk"] == walks + before - 1 and "dirstat" not in client.calls
    assert d.lookup(b"f299").stat().st_size == 299  # the miss that lists
    assert client.calls["dirstat"] == 1
    walks = client.calls["walk"]
    for i in range(300):
        assert d.lookup(b"f%d" % i).stat().st_size == i
    assert d.lookup(b"ln").kind == S_IFLNK and d.lookup(b"ln").stat().st_size == 2
    with pytest.raises(SysError) as absent:
        d.lookup(b"absent")
    assert absent.value.errno == ENOENT
    assert client.calls["walk"] == walks and client.calls["dirstat"] == 1  # all answered by the listing
    listed = d.lookup(b"f298")
    assert listed._handle < 0 and listed.contents(1000) == b"x" * 298  # a handle once one is needed
    # the sandbox's own changes keep the listing true
    new = d.create(b"new", S_IFREG | 0o644, 0, 0)
    assert d.lookup(b"new") is new
    d.unlink(b"f5", d.lookup(b"f5"))
    f6 = d.lookup(b"f6")
    d.rename(b"f6", f6, d, b"f6b", None, False)
    for gone in (b"f5", b"f6"):
        with pytest.raises(SysError):
            d.lookup(gone)
    assert d.lookup(b"f6b") is f6 and f6.contents(100) == b"x" * 6
    assert sorted(os.listdir(many)) == sorted({f"f{i}" for i in range(300)} - {"f5", "f6"} | {"f6b", "new", "ln"})


def test_revalidating_gofer_fs_sees_host_changes(tmp_path, gofer_tree):
    from ringfence.sentry.fs.gofer import GoferFS
    from ringfence.sentry.kernel.errors import SysError

    shared = tmp_path / "shared"
    (shared / "a").write_text("one")
    fs = GoferFS(gofer_tree, mount=1, revalidate=True)
    root = fs.attach()
    a = root.lookup(b"a")
    assert a.stat().st_size == 3 and root.lookup(b"a") is a
    (shared / "a").write_text("three")
    assert root.lookup(b"a").stat().st_size == 5  # attributes fetched again
    (shared / "b").write_text("bee")
    os.replace(shared / "b", shared / "a")
    b = root.lookup(b"a")
    assert b is not a and a.dead and b.contents(10) == b"bee"
    assert [e[0] for e in root.readdir()] == [b"a"]
    (shared / "c").write_text("")
    assert sorted(e[0] for e in root.readdir()) == [b"a", b"c"]  # listings are not cached
    (shared / "a").unlink()
    with pytest.raises(SysError):
        root.lookup(b"a")


def test_gofer_fs_xattrs_fsync_and_erofs(tmp_path, gofer_tree):
    """user.* extended attributes through the gofer with the VFS's checks (vfs.ops: the syscalls
    are to call these), fsync through the donated fd, EROFS from a read-only gofer mount."""
    from types import SimpleNamespace

    from ringfence.gofer import server as gofer
    from ringfence.gofer.client import GoferClient
    from ringfence.sentry.abi import errno as E
    from ringfence.sentry.abi.fs import O_RDWR, S_IFREG, ST_RDONLY
    from ringfence.sentry.fs.gofer import GoferFS
    from ringfence.sentry.kernel.creds import Credentials
    from ringfence.sentry.kernel.errors import SysError
    from ringfence.sentry.vfs import ops
    from ringfence.sentry.vfs.dentry import Location, MountNamespace

    fs = GoferFS(gofer_tree)
    root = fs.attach()
    ns = MountNamespace(fs, root, "none")
    f = root.create(b"f", S_IFREG | 0o644, 0, 0)
    loc = Location(ns.root, ns.root.root.add(b"f", f))
    t = SimpleNamespace(creds=Credentials())
    try:
        ops.setxattr(t, loc, b"user.color", b"blue", 0)
    except SysError as err:
        if err.errno == E.EOPNOTSUPP:
            pytest.skip("the host file system has no user extended attributes")
        raise
    assert ops.getxattr(t, loc, b"user.color") == b"blue" and ops.listxattr(t, loc) == [b"user.color"]
    assert os.getxattr(tmp_path / "tree" / "f", "user.color") == b"blue"
    for name, err in ((b"user.none", E.ENODATA), (b"bogus.x", E.EOPNOTSUPP), (b"security.x", E.EOPNOTSUPP)):
        with pytest.raises(SysError) as e:
            ops.getxattr(t, loc, name)
        assert e.value.errno == err
    nobody = SimpleNamespace(creds=Credentials(uid=1000, euid=1000, suid=1000, fsuid=1000, gid=1000, egid=1000,
                                               sgid=1000, fsgid=1000))
    with pytest.raises(SysError) as e:
        ops.setxattr(nobody, loc, b"user.color", b"red", 0)
    assert e.value.errno == E.EACCES
    ops.removexattr(t, loc, b"user.color")
    assert ops.listxattr(t, loc) == []
    file = f.open(None, loc, O_RDWR)
    file.pwrite(b"data", 0)
    file.fsync(None)
    file.release()
    # a read-only gofer mount: the gofer refuses (EROFS), and so does the VFS on a read-only mount
    pid, sock = gofer.start(str(tmp_path / "tree"), readonly=True)
    try:
        ro = GoferFS(GoferClient(sock)).attach()
        assert not ro.fs.writable()
        with pytest.raises(SysError) as e:
            ro.create(b"g", S_IFREG | 0o644, 0, 0)
        assert e.value.errno == E.EROFS
        ro_ns = MountNamespace(ro.fs, ro, "none", ST_RDONLY)
        ro_loc = Location(ro_ns.root, ro_ns.root.root.add(b"f", ro.lookup(b"f")))
        with pytest.raises(SysError) as e:
            ops.setxattr(t, ro_loc, b"user.x", b"1", 0)
        assert e.value.errno == E.EROFS
    finally:
        sock.close()
        os.waitpid(pid, 0)
    assert not (tmp_path / "tree" / "g").exists()


def test_xattrs_reach_the_host(tmp_path, root, run_native):
    """The xattr syscalls on gofer files (rootfs and a rw bind mount) behave as natively,
    and what they set is on the host file."""
    prog = harness.compile_c(harness.TESTS_DIR / "cmounts" / "xattr.c")
    (tmp_path / "native").write_bytes(b"")
    native = run_native([prog, str(tmp_path / "native")])
    assert native.returncode == 0 and native.stdout.decode().endswith("done\n"), native
    shutil.copy(prog, root / "xattr")
    shared = tmp_path / "shared"
    shared.mkdir()
    for host_file, path in ((root / "file", "/file"), (shared / "file", "/data/file")):
        host_file.write_bytes(b"")
        r = _run(tmp_path, root, "", args=["/xattr", path], mounts=[_bind(shared, "/data", "rw")])
        assert (r.status, r.out) == (0, native.stdout.decode()), (path, r.err)
        assert os.getxattr(host_file, "user.keep") == b"kept" and os.listxattr(host_file) == ["user.keep"]
