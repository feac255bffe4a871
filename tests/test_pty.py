"""Pseudo-terminals made by the sentry (issue 5: "ptmx with devpts so a pty works").

util-linux `script` opens /dev/ptmx, gives the replica to a shell as its controlling terminal
and relays between its stdin, the master and its stdout; `tty` names the replica by ttyname().
The line discipline and the ioctls are compared with Linux by tests/c/pty.c
(test_differential.py); here whole programs use a pty, sandboxed over the host's root and
over the Debian rootfs.
"""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
import uuid

import pytest

import harness

PTS_LINE = re.compile(rb"^/dev/pts/\d+\r\n$")
DEVPTS = {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
          "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}


@pytest.fixture(scope="module")
def rootfs():
    """The Debian test rootfs (util-linux `script` is in it)."""
    try:
        return harness.debian_rootfs()
    except harness.HarnessError as e:
        pytest.fail(f"cannot build the Debian rootfs: {e}", pytrace=False)


def test_script_runs_tty_on_a_pty(run_sandboxed):
    proc = run_sandboxed(["script", "-qc", "tty", "/dev/null"], input=b"")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert PTS_LINE.match(proc.stdout), proc.stdout


def test_script_runs_tty_over_the_debian_rootfs(ringfence_bin, rootfs):
    proc = harness.run([ringfence_bin, "do", "--quiet", "--root", rootfs, "--env", "PATH=/usr/bin:/bin", "--",
                        "script", "-qc", "tty", "/dev/null"], input=b"", timeout=240)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert PTS_LINE.match(proc.stdout), proc.stdout


def _run_container(ringfence: str, tmp_path, rootfs, script: str, mounts: list[dict]):
    """`ringfence run` of `script` (sh) over the read-only Debian rootfs with /proc, a tmpfs
    /dev and `mounts`."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": str(rootfs), "readonly": True},
        "process": {"args": ["/bin/sh", "-c", script], "env": ["PATH=/usr/bin:/bin"], "cwd": "/",
                    "user": {"uid": 0, "gid": 0}},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                   *mounts],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")]},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    cid = f"pty-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    try:
        return harness.run([ringfence, "--root", state, "run", "--bundle", bundle, cid], input=b"", timeout=240)
    finally:
        harness.run([ringfence, "--root", state, "delete", "--force", cid])


def test_container_with_a_devpts_mount(ringfence_bin, rootfs, tmp_path):
    """An OCI container whose spec mounts a devpts on /dev/pts (as Docker's does): /dev/ptmx
    makes terminals there, with the spec's options."""
    proc = _run_container(ringfence_bin, tmp_path, rootfs, "script -qc 'tty; stat -c %a:%g $(tty)' /dev/null; "
                          "grep devpts /proc/mounts", [DEVPTS])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    lines = proc.stdout.decode().splitlines()
    assert re.fullmatch(r"/dev/pts/\d+", lines[0]) and lines[1] == "620:5", lines
    assert lines[2] == "devpts /dev/pts devpts rw,nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 0 0", lines


def test_container_without_devpts_has_no_terminals(ringfence_bin, rootfs, tmp_path):
    """Without a devpts on /dev/pts, /dev/ptmx has no instance to make terminals in (ENODEV,
    as Linux's ptmx beside an empty pts directory)."""
    proc = _run_container(ringfence_bin, tmp_path, rootfs, "script -qc tty /dev/null; echo status=$?", [])
    assert proc.stdout.decode().splitlines()[-1] != "status=0", proc.stdout
    assert b"No such device" in proc.stderr, proc.stderr.decode(errors="replace")[-3000:]


def test_terminal_settings_match_linux(differential):
    """What a shell on a fresh pty sees of it: stty's settings, its name, and the window size."""
    differential(["script", "-qec", "stty -a; stty size; tty | sed 's/[0-9]*$/N/'", "/dev/null"], input=b"")


def test_typed_lines_and_end_of_file_match_linux(differential):
    """script types its stdin at the terminal and, at its end, VEOF: cat reads the lines
    (the terminal echoes them) and ends."""
    differential(["script", "-qec", "cat", "/dev/null"], input=b"one\ntwo\n")


def test_long_output_matches_linux(differential):
    """Output well past what the master may have waiting (the writer waits for the reader),
    every newline made CR NL (ONLCR)."""
    differential(["script", "-qec", "seq 1 40000", "/dev/null"], input=b"")


def test_devpts_nodes(run_sandboxed):
    """/dev/pts/N exists while the terminal does, owned by the opener, group tty (5), mode 0620,
    character device 136:N; /dev/pts is a devpts mount."""
    inner = "ls /dev/pts; stat -c '%a %u %g %t' \\$(tty)"  # ($ quoted from the outer shell)
    proc = run_sandboxed(["sh", "-c", f"script -qc \"{inner}\" /dev/null; ls /dev/pts; grep ' /dev/pts ' /proc/mounts"],
                         input=b"")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    lines = proc.stdout.decode().splitlines()
    assert lines[0].split() == ["0", "ptmx"], lines
    assert lines[1] == "620 0 5 88", lines  # (88: major 136 in hex)
    assert lines[2] == "ptmx", lines
    assert lines[3].split()[1:3] == ["/dev/pts", "devpts"] and "mode=620" in lines[3], lines


def test_ctrl_c_interrupts_the_foreground_group(sandbox_argv):
    """^C typed at the terminal gives SIGINT to the shell that script started (its session's
    foreground group): its trap runs, and script -e returns its status. script runs $SHELL, so
    the test names it: one shell whatever the caller's environment (an outer dash without a
    trap would die of the SIGINT itself, status 130)."""
    inner = "trap 'echo got-INT; exit 3' INT; echo ready; while :; do sleep 0.1; done"
    argv = sandbox_argv(["script", "-qec", inner, "/dev/null"])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "SHELL": "/bin/sh"})
    out = b""
    try:
        deadline = time.monotonic() + harness.TIMEOUT
        sent = False
        while time.monotonic() < deadline:
            if not sent and b"ready" in out:
                proc.stdin.write(b"\x03")
                proc.stdin.flush()
                sent = True
            if select.select([proc.stdout], [], [], 1)[0]:
                data = os.read(proc.stdout.fileno(), 4096)
                if not data:
                    break
                out += data
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            harness.kill_group(proc.pid)
            proc.wait()
    assert b"^Cgot-INT" in out, out
    assert status == 3, (status, out)


def test_window_size_comes_from_the_console():
    """Under a host terminal (the sandbox's console) script gives the pty the console's size."""
    binary = harness.find_ringfence()
    assert binary, "the ringfence console script is not installed"
    status, out = harness.run_in_pty([binary, "do", "--quiet", "--", "script", "-qec", "stty size; tty",
                                      "/dev/null"], 33, 101)
    assert status == 0, out
    assert re.search(rb"33 101\r?\n/dev/pts/\d+\r?\n", out), out


def test_do_passes_typed_signals_to_a_job_in_the_sandbox(sandbox_argv):
    """With its caller's terminal as its controlling one, `ringfence do` passes ^C to the
    terminal's foreground group in the sandbox: an interactive bash there runs a job in a
    process group of its own, whose trap gets the SIGINT (bash does not), as natively."""
    # (the job's trap ends its sleep too: nothing is left holding the terminal)
    typed = b"bash -c 'trap \"kill \\$!; echo job-INT; exit 5\" INT; echo tr''apped; sleep 60 & wait'; echo af''ter-$?\n"
    shell = ["env", "PS1=$ ", "bash", "--norc", "--noediting", "-i"]
    runs = []
    for argv in (shell, sandbox_argv(shell)):
        start = time.monotonic()
        status, out = harness.run_in_pty(argv, controlling=True, ready=b"$ ", typed=typed,
                                         then=((b"trapped\r\n", b"\x03"), (b"after-", b"exit\n")))
        assert time.monotonic() - start < 30, (argv, out)
        runs.append((status, re.findall(rb"^(?:\^C)?(trapped|job-INT|after-\d+)\r$", out, re.M)))
    assert runs[0] == (0, [b"trapped", b"job-INT", b"after-5"]), runs
    assert runs[1] == runs[0]


def test_do_passes_resizes_to_the_sandbox(sandbox_argv):
    """A resize of `ringfence do`'s controlling terminal reaches the foreground group in the
    sandbox (SIGWINCH), the new size in force."""
    script = "trap 'echo winch-$(stty size); exit 3' WINCH; echo ready; while :; do sleep 0.1; done"
    status, out = harness.run_in_pty(sandbox_argv(["sh", "-c", script]), controlling=True, ready=b"ready",
                                     resize=(33, 99))
    assert (status, b"winch-33 99" in out) == (3, True), out


@pytest.mark.parametrize("controlling", [True, False], ids=["controlling", "not-controlling"])
def test_a_size_set_in_the_sandbox_signals_once(controlling, cprog, sandbox_argv):
    """A program that sets its terminal's size gets one SIGWINCH (tests/c/winch.c), as on
    Linux: from the host when `ringfence do` holds the terminal in the foreground and passes
    on what it raises, else from the sentry (the sandbox's init always leads a session on
    its console)."""
    status, out = harness.run_in_pty(sandbox_argv([cprog("winch")]), controlling=controlling)
    assert status == 0, out
    assert out.replace(b"\r\n", b"\n") == (b"new size: 1 winch, size is the one set: yes\n"
                                           b"same size again: 0 more\n")
