"""Differential tests: the same program natively and under `ringfence do` must
print the same stdout and exit with the same status.

One C program per syscall family (tests/c/), plus busybox applets.  The last
tests check the harness itself, natively, so that a broken harness cannot make
every comparison pass.
"""
from __future__ import annotations

import subprocess

import pytest

import harness

# tests/c programs compared with a native run, one per syscall family.
DIFFERENTIAL = ["fileio", "dirs", "process", "mm", "info", "signals", "threads", "timers", "futex", "stress", "vfork", "identity", "events", "anonfds", "robust", "fpstate", "execveat", "fswrite", "mmapshared", "inotify", "fifo", "pty", "locks", "splice", "fsmore", "epollmore", "unix"]
# tests/c programs whose expected output is sandbox-specific (test_sandbox.py).
SANDBOX_ONLY = ["enosys", "efault"]
# tests/c programs that need a terminal (test_pty.py, test_oci_cli.py).
ON_A_TERMINAL = ["winch"]

BUSYBOX_CASES = {
    "echo": ["echo", "hello", "world"],
    "cat": ["cat", "/etc/debian_version"],
    "false": ["false"],
    "printf": ["printf", "%s-%d\\n", "x", "42"],
    "wc": ["wc", "-c", "/etc/debian_version"],
    "ls-file": ["ls", "-d", "/etc", "/etc/debian_version", "/nonexistent-rf"],
    "sh-pipe-exit": ["sh", "-c", "echo hi | cat; exit 3"],
    "sh-loop-pipeline": ["sh", "-c", "for i in 3 1 2; do echo $i; done | sort | tr '\\n' ' '"],
    "sh-child-killed": ["sh", "-c", "sh -c 'kill -9 $$'; echo status=$?"],
    "sh-subshell-status": ["sh", "-c", "(exit 4); echo status=$?; false || echo or-branch"],
    "sh-redirect-tmp": ["sh", "-c",
                        "d=$(mktemp -d) && echo data > $d/f && cat $d/f && rm -r $d && echo cleaned"],
    # comm is the name a program was executed by (a symlink's), not its file's
    "comm-via-symlink": ["sh", "-c", "d=$(mktemp -d) && ln -s \"$(readlink /proc/$$/exe)\" $d/cat && "
                         "$d/cat /proc/self/comm && $d/cat /proc/self/status | grep Name && "
                         "$d/cat /proc/self/stat | cut -d' ' -f2; rm -r $d"],
}


@pytest.mark.parametrize("name", DIFFERENTIAL)
def test_c_program_matches_native(name, cprog, differential):
    differential([cprog(name)])


@pytest.mark.parametrize("case", sorted(BUSYBOX_CASES))
def test_busybox_matches_native(case, busybox, differential):
    differential([busybox, *BUSYBOX_CASES[case]])


# ------------------------------------------------------------ the harness itself


def test_every_c_program_is_used():
    assert sorted(DIFFERENTIAL + SANDBOX_ONLY + ON_A_TERMINAL) == harness.c_programs()


@pytest.mark.parametrize("name", DIFFERENTIAL + SANDBOX_ONLY + ON_A_TERMINAL)
def test_c_program_compiles_without_warnings(name, tmp_path, run_native):
    proc = run_native(["gcc", "-static", "-O1", "-Wall", "-o", tmp_path / name,
                       harness.C_DIR / f"{name}.c"])
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode()


@pytest.mark.parametrize("name", DIFFERENTIAL + SANDBOX_ONLY)
def test_native_output_is_repeatable(name, cprog, run_native):
    """A program whose native output varies would make its differential test
    flaky; one that dies early would compare nothing."""
    path = cprog(name)
    first, second = run_native([path]), run_native([path])
    harness.assert_same_behaviour(first, second)
    out = first.stdout.decode()
    assert "FATAL" not in out
    assert out.splitlines()[-1] in ("done", "alive", "exiting with 5"), out[-500:]
    assert len(out.splitlines()) >= 4


def _completed(stdout: bytes, rc: int = 0) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["prog"], rc, stdout, b"sandbox log line")


def test_comparison_detects_different_stdout():
    with pytest.raises(AssertionError) as e:
        harness.assert_same_behaviour(_completed(b"a\nsame\n"), _completed(b"b\nsame\n"))
    message = str(e.value)
    assert "-a" in message and "+b" in message
    assert "sandbox log line" in message


def test_comparison_detects_different_exit_status():
    with pytest.raises(AssertionError, match="exit status differs: native 0, sandboxed 7"):
        harness.assert_same_behaviour(_completed(b"x\n", 0), _completed(b"x\n", 7))


def test_filters_hide_only_what_they_name():
    native = _completed(b"pid=4242 at 0x7ffd1234 took 12 ms\n")
    sandboxed = _completed(b"pid=1 at 0x4000 took 3 ms\n")
    with pytest.raises(AssertionError):
        harness.assert_same_behaviour(native, sandboxed, ["pids", "addresses"])
    harness.assert_same_behaviour(native, sandboxed, ["pids", "addresses", "times"])
    assert harness.apply_filters(b"ppid: 17 tid=9", ["pids"]) == b"ppid: <PID> tid=<PID>"
    with pytest.raises(KeyError):
        harness.apply_filters(b"", ["no-such-filter"])


def test_busybox_is_static(busybox):
    assert harness.is_static_elf(busybox)
    assert not harness.is_static_elf("/usr/bin/env")  # Debian's coreutils are dynamic
