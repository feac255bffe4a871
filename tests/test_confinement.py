"""The sandbox's walls, inspected from the host while a sandbox runs.

The sentry must run as the host's nobody in its own user namespace, chrooted
into an empty directory, under seccomp; the stubs that hold the program must
hold no host file and no fd; the program must see only the sandbox's pids.
"""
import os
import re
import subprocess
import time

import pytest

import harness


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@pytest.fixture
def running_sandbox(busybox):
    """A `ringfence do busybox sleep 30`: yields (ringfence pid, sentry pid, stub pids)."""
    ringfence = harness.find_ringfence()
    assert ringfence, "the ringfence console script is not installed"
    proc = subprocess.Popen([ringfence, "do", "--quiet", busybox, "sleep", "30"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        sentry, stubs = None, []
        while time.monotonic() < deadline and not stubs:
            time.sleep(0.1)
            for pid in harness.descendants(proc.pid):
                try:
                    st = _status(pid)
                except FileNotFoundError:
                    continue
                if st.get("Seccomp") == "2" and st.get("Name") != "ringfence-gofer":
                    sentry = pid
            if sentry:
                stubs = [p for p in harness.descendants(sentry)
                         if _status(p).get("TracerPid") == str(sentry)]
        assert sentry and stubs, f"no confined sentry with stubs found; stderr: {proc.stderr.read1(4096)!r}"
        yield proc.pid, sentry, stubs
    finally:
        harness.kill_group(proc.pid)
        proc.wait(timeout=10)


def test_sentry_is_nobody_in_its_own_namespaces(running_sandbox):
    _, sentry, _ = running_sandbox
    st = _status(sentry)
    assert st["Uid"].split() == ["65534"] * 4
    assert st["Gid"].split() == ["65534"] * 4
    assert st["NoNewPrivs"] == "1"
    for ns in ("user", "mnt", "pid_for_children", "ipc", "uts"):
        assert os.readlink(f"/proc/{sentry}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns


def test_sentry_root_is_empty_and_seccomp_confined(running_sandbox):
    _, sentry, _ = running_sandbox
    assert _status(sentry)["Seccomp"] == "2"
    assert os.listdir(f"/proc/{sentry}/root") == []


def test_stubs_hold_no_host_files(running_sandbox):
    _, sentry, stubs = running_sandbox
    for stub in stubs:  # the one fd: the socket the sentry passes its memory files through
        assert os.listdir(f"/proc/{stub}/fd") == ["0"] and os.readlink(f"/proc/{stub}/fd/0").startswith("socket:")
        with open(f"/proc/{stub}/maps") as f:
            paths = {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}
        assert paths <= {"[vsyscall]", "[stack]", "[heap]"}, paths


def test_program_sees_only_sandbox_pids(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "sh", "-c", "ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"])
    assert proc.returncode == 0, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert pids and pids[0] == 1 and max(pids) < 100, pids
    assert os.getpid() not in pids or os.getpid() < 100


def test_program_cannot_name_host_processes(busybox, run_sandboxed):
    host_pid = os.getpid()
    proc = run_sandboxed([busybox, "sh", "-c", f"kill -0 {host_pid} && echo reached || echo no-such-process"])
    assert b"no-such-process" in proc.stdout, proc.stdout + proc.stderr
    assert re.search(rb"^Name:", open(f"/proc/{host_pid}/status", "rb").read(), re.M)


def test_sentry_stubs_and_gofer_share_one_cpu(running_sandbox):
    """A ptrace stop or a gofer's answer handed between CPUs costs a cross-CPU wakeup each way:
    the sentry, its stubs and its gofer are pinned to one CPU, the same."""
    ringfence, sentry, stubs = running_sandbox
    gofers = [pid for pid in harness.descendants(ringfence) if _status(pid).get("Name") == "ringfence-gofer"]
    assert len(gofers) == 1, gofers
    cpus = {pid: _status(pid)["Cpus_allowed_list"] for pid in (sentry, *stubs, *gofers)}
    assert len(set(cpus.values())) == 1 and re.fullmatch(r"\d+", cpus[sentry]), cpus
