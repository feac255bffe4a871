"""Checks that the program talks to the sentry, not to the host kernel, and that
the `ringfence` CLI behaves as issue 2 says (do, syscalls, --strace, signals,
the writable in-memory layer)."""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import harness


def lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stdout.decode(errors="replace").splitlines()


def explain(proc: subprocess.CompletedProcess) -> str:
    return (f"exit {proc.returncode}\nstdout:\n{proc.stdout.decode(errors='replace')[-3000:]}"
            f"\nstderr:\n{proc.stderr.decode(errors='replace')[-3000:]}")


# --------------------------------------------------------------- the kernel


def test_issue_command_pid_release_pipe_exit(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "sh", "-c", "echo $$; uname -r; echo hi | cat; exit 7"])
    out = lines(proc)
    assert proc.returncode == 7, explain(proc)
    assert len(out) == 3, explain(proc)
    assert out[0] == "1", "the first process of the sandbox must be pid 1\n" + explain(proc)
    assert out[1] and out[1] != os.uname().release, \
        f"uname -r must be the sentry's release, not the host's ({os.uname().release})"
    assert out[2] == "hi"


def test_proc_version_reports_the_sentry_release(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "sh", "-c", "uname -r; cat /proc/version"])
    assert proc.returncode == 0, explain(proc)
    release, *version = lines(proc)
    assert release != os.uname().release
    assert version and release in version[0], explain(proc)
    assert os.uname().release not in proc.stdout.decode()


def test_uname_a(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "uname", "-a"])
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout.decode()
    assert out.startswith("Linux "), out
    assert "x86_64" in out
    assert os.uname().release not in out


def test_pids_inside_are_the_sentry_s(busybox, run_sandboxed):
    """A child of init gets a small pid of its own namespace, and its parent is 1."""
    # "; exit 0" keeps ash from exec()ing the last command in place of itself.
    proc = run_sandboxed([busybox, "sh", "-c", "echo $$ $PPID; sh -c 'echo $$ $PPID'; exit 0"])
    assert proc.returncode == 0 and len(lines(proc)) == 2, explain(proc)
    init, child = (line.split() for line in lines(proc))
    assert init == ["1", "0"], explain(proc)
    assert child[1] == "1" and 1 < int(child[0]) < 100, explain(proc)


def test_enosys(cprog, run_sandboxed):
    proc = run_sandboxed([cprog("enosys")])
    assert proc.returncode == 0, explain(proc)
    assert lines(proc) == [
        "kexec_file_load: -1 ENOSYS",
        "kexec_file_load: -1 ENOSYS",
        "swapoff: -1 ENOSYS",
        "mq_open: -1 ENOSYS",
        "mq_open: -1 ENOSYS",
        "syscall 1000: -1 ENOSYS",
        "alive",
    ], explain(proc)


def test_unsupported_syscall_is_logged_once(cprog, run_sandboxed, tmp_path):
    log = tmp_path / "ringfence.log"
    proc = run_sandboxed([cprog("enosys")], global_flags=["--log", str(log)], quiet=False)
    assert proc.returncode == 0, explain(proc)
    assert log.is_file(), "--log FILE must create the log file"
    text = log.read_text(errors="replace").splitlines()
    mentions = [line for line in text if "kexec_file_load" in line]
    assert len(mentions) == 1, f"expected one log line naming kexec_file_load, got {mentions}"
    mq = [line for line in text if "mq_open" in line]
    assert len(mq) == 1 and "POSIX message queues are refused" in mq[0], mq


def test_efault_and_the_sentry_survives(cprog, run_sandboxed):
    proc = run_sandboxed([cprog("efault")])
    assert lines(proc) == [
        "write from bad pointer: -1 EFAULT",
        "read into bad pointer: -1 EFAULT",
        "openat bad path pointer: -1 EFAULT",
        "alive",
    ], explain(proc)
    assert proc.returncode == 0, explain(proc)


# ----------------------------------------------------------- busybox applets


def test_echo(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "echo", "hello", "from", "the sandbox"])
    assert (proc.returncode, proc.stdout) == (0, b"hello from the sandbox\n"), explain(proc)


def test_cat_host_file(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "cat", "/etc/debian_version"])
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout == Path("/etc/debian_version").read_bytes()


def test_ls_l_root(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "ls", "-l", "/"])
    assert proc.returncode == 0, explain(proc)
    entries = {}
    for line in lines(proc):
        if line.startswith("total"):
            continue
        assert re.match(r"^[-dlcbps][-rwxsStT]{9}\s", line), f"not an ls -l line: {line!r}"
        name = line.split()[-1] if not line.startswith("l") else line.split(" -> ")[0].split()[-1]
        entries[name] = line[0]
    for name in ("etc", "usr", "proc", "dev", "tmp"):
        assert name in entries, f"/{name} missing from ls -l /:\n{explain(proc)}"
    assert entries["etc"] == "d"


def test_stdin_is_passed_through(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "cat"], input=b"line one\nline two\n")
    assert (proc.returncode, proc.stdout) == (0, b"line one\nline two\n"), explain(proc)


def test_stderr_is_passed_through(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "sh", "-c", "echo to-stderr >&2; echo to-stdout"])
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout == b"to-stdout\n"
    assert b"to-stderr\n" in proc.stderr


# ------------------------------------------------------------- exit statuses


@pytest.mark.parametrize("status", [0, 1, 7, 255])
def test_exit_status_is_the_command_s(busybox, run_sandboxed, status):
    proc = run_sandboxed([busybox, "sh", "-c", f"exit {status}"])
    assert proc.returncode == status, explain(proc)


def test_default_command(run_sandboxed):
    """`ringfence do` without a command runs the demo (the README's main job)."""
    proc = run_sandboxed([])
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.strip(), explain(proc)


def test_missing_command_is_a_clear_error(run_sandboxed):
    missing = f"/nonexistent-rf-{uuid.uuid4().hex[:8]}/prog"
    proc = run_sandboxed([missing])
    assert proc.returncode != 0, explain(proc)
    err = proc.stderr.decode(errors="replace")
    assert missing in err or "no such file" in err.lower() or "not found" in err.lower(), \
        explain(proc)
    assert "Traceback" not in err, "a missing command must not end in a Python traceback"


# ------------------------------------------------------------------ flags


def test_cwd_flag(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "pwd"], extra_flags=["--cwd", "/etc"])
    assert (proc.returncode, proc.stdout) == (0, b"/etc\n"), explain(proc)


def test_root_flag(busybox, run_sandboxed, tmp_path):
    """--root DIR: the sandbox sees DIR as /, not the host's root."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(Path(busybox).read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    (root / "marker").write_text("inside the root\n")
    proc = run_sandboxed(["/bin/busybox", "sh", "-c", "cat /marker; ls /"],
                         extra_flags=["--root", str(root)])
    assert proc.returncode == 0, explain(proc)
    out = lines(proc)
    assert out[0] == "inside the root"
    assert "bin" in out[1:] and "marker" in out[1:]
    assert "usr" not in out[1:] and "etc" not in out[1:], explain(proc)


def test_log_format_json(busybox, run_sandboxed, tmp_path):
    log = tmp_path / "ringfence.json.log"
    proc = run_sandboxed([busybox, "true"],
                         global_flags=["--debug", "--log", str(log), "--log-format", "json"],
                         quiet=False)
    assert proc.returncode == 0, explain(proc)
    records = [line for line in log.read_text().splitlines() if line.strip()]
    assert records, "--debug --log FILE wrote nothing"
    for line in records:
        assert isinstance(json.loads(line), dict), line


# ------------------------------------------------------------------- strace


def test_strace(busybox, run_sandboxed):
    proc = run_sandboxed(
        [busybox, "sh", "-c", f"cat /nonexistent-rf; exec {busybox} echo strace-marker"],
        global_flags=["--strace"])
    assert proc.stdout == b"strace-marker\n", explain(proc)
    assert proc.returncode == 0, explain(proc)
    trace = proc.stderr.decode(errors="replace").splitlines()

    def find(*needles: str) -> list[str]:
        return [line for line in trace if all(n in line for n in needles)]

    assert find("execve", busybox), "no execve line naming the program:\n" + explain(proc)
    assert find("write", "strace-marker"), "write's buffer is not decoded:\n" + explain(proc)
    assert [line for line in find("write") if re.search(r"=\s*14\b", line)], \
        "no write line with its result (14):\n" + explain(proc)
    assert find("/nonexistent-rf", "ENOENT"), \
        "a failing open must show its path and errno name:\n" + explain(proc)


def test_strace_syscalls_filters(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "echo", "filtered"],
                         global_flags=["--strace", "--strace-syscalls", "write"])
    assert (proc.returncode, proc.stdout) == (0, b"filtered\n"), explain(proc)
    trace = proc.stderr.decode(errors="replace")
    assert "write" in trace and "filtered" in trace, explain(proc)
    assert not re.search(r"\b(execve|brk|arch_prctl|getuid|exit_group)\b", trace), \
        "--strace-syscalls write traced other syscalls:\n" + explain(proc)


def test_no_strace_output_without_the_flag(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "echo", "quiet"])
    assert proc.returncode == 0, explain(proc)
    assert b"execve" not in proc.stderr and b"write(" not in proc.stderr, explain(proc)


def test_quiet_hides_warnings_and_plain_do_shows_them(cprog, run_sandboxed):
    """`do --quiet` prints nothing of ringfence's own (not even an unsupported syscall's
    warning); without it the warning is on stderr."""
    loud = run_sandboxed([cprog("enosys")], quiet=False)
    quiet = run_sandboxed([cprog("enosys")])
    assert loud.returncode == quiet.returncode == 0, explain(loud)
    assert b"unsupported syscall" in loud.stderr, explain(loud)
    assert quiet.stderr == b"", explain(quiet)
    assert quiet.stdout == loud.stdout


# ------------------------------------------------------- the writable layer


def test_new_file_under_etc(busybox, run_sandboxed):
    name = f"/etc/rf-test-{uuid.uuid4().hex[:12]}"
    try:
        proc = run_sandboxed([busybox, "sh", "-c", f"echo x > {name}; cat {name}"])
        assert (proc.returncode, proc.stdout) == (0, b"x\n"), explain(proc)
        assert not Path(name).exists(), f"{name} leaked to the host"
    finally:
        if Path(name).exists():
            os.unlink(name)


@pytest.fixture
def host_file():
    """A host file of our own (outside /tmp, which the sandbox may mount a tmpfs
    over), so that a broken sandbox can only damage this file."""
    hostdir = harness.cache_dir() / "overlay-check" / uuid.uuid4().hex[:12]
    hostdir.mkdir(parents=True)
    path = hostdir / "file"
    path.write_text("original\n")
    yield path
    path.unlink(missing_ok=True)
    hostdir.rmdir()


def test_append_to_host_file(busybox, run_sandboxed, host_file):
    proc = run_sandboxed([busybox, "sh", "-c", f"echo appended >> {host_file}; cat {host_file}"])
    assert proc.returncode == 0, explain(proc)
    assert lines(proc) == ["original", "appended"], explain(proc)
    assert host_file.read_text() == "original\n", "the sandbox changed a host file"


def test_remove_host_file(busybox, run_sandboxed, host_file):
    script = f"rm {host_file} && echo rm-ok; cat {host_file} 2>/dev/null || echo gone; ls {host_file.parent}"
    proc = run_sandboxed([busybox, "sh", "-c", script])
    assert lines(proc) == ["rm-ok", "gone"], explain(proc)
    assert host_file.exists(), "the sandbox removed a host file"
    assert host_file.read_text() == "original\n", "the sandbox changed a host file"


def test_each_sandbox_starts_from_the_host_root(busybox, run_sandboxed):
    name = f"/etc/rf-test-{uuid.uuid4().hex[:12]}"
    try:
        first = run_sandboxed([busybox, "sh", "-c", f"echo x > {name} && cat {name}"])
        assert (first.returncode, first.stdout) == (0, b"x\n"), explain(first)
        second = run_sandboxed([busybox, "sh", "-c", f"test -e {name} && echo kept || echo fresh"])
        assert second.stdout == b"fresh\n", explain(second)
    finally:
        if Path(name).exists():
            os.unlink(name)


# ------------------------------------------------------------ ringfence syscalls


def test_syscalls_text(ringfence_bin, run_native):
    proc = run_native([ringfence_bin, "syscalls"])
    assert proc.returncode == 0, explain(proc)
    out = lines(proc)
    assert [line for line in out if re.search(r"\bgetpid\b", line) and re.search(r"\bfull\b", line)], \
        "getpid is not listed as full"
    assert [line for line in out
            if re.search(r"\bkexec_file_load\b", line) and re.search(r"\bunsupported\b", line)], \
        "kexec_file_load is not listed as unsupported"


def test_syscalls_json(ringfence_bin, run_native):
    proc = run_native([ringfence_bin, "syscalls", "--format", "json"])
    assert proc.returncode == 0, explain(proc)
    data = json.loads(proc.stdout)
    rows = data["syscalls"] if isinstance(data, dict) else data
    assert isinstance(rows, list) and len(rows) > 300, "expected every x86-64 syscall"
    by_name = {}
    for row in rows:
        assert {"nr", "name", "support", "note"} <= set(row), row
        assert isinstance(row["nr"], int) and row["support"] in ("full", "partial", "unsupported"), row
        by_name[row["name"]] = row
    assert len(by_name) == len(rows), "syscall names are not unique"
    assert by_name["getpid"]["nr"] == 39 and by_name["getpid"]["support"] == "full"
    assert by_name["write"]["nr"] == 1
    assert by_name["kexec_file_load"]["nr"] == 320
    assert by_name["kexec_file_load"]["support"] == "unsupported"
    partial = [row for row in rows if row["support"] == "partial"]
    assert partial and all(row["note"] for row in partial), "partial rows must say what is missing"


# ------------------------------------------------------------------ signals


def _alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (not gone, not zombies)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_signal_to_ringfence_ends_the_sandbox(sig, busybox, sandbox_argv):
    argv = sandbox_argv([busybox, "sh", "-c", f"echo ready; exec {busybox} sleep 100"])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    sandbox: list[int] = []
    try:
        ready, _, _ = select.select([proc.stdout], [], [], harness.TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        assert line == b"ready\n", f"the sandboxed shell did not start: {line!r}"
        time.sleep(0.5)  # let the shell exec sleep
        sandbox = harness.descendants(proc.pid)  # gofer, sentry, stubs
        assert sandbox, "ringfence has no child processes while the sandbox runs"
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ringfence still running 10 s after {sig.name}")
        assert time.monotonic() - started < 10
        assert proc.returncode in (128 + sig, -sig), \
            f"exit status {proc.returncode} after {sig.name}: {proc.stderr.read().decode()[-2000:]}"
        deadline = time.monotonic() + 5
        while _alive(sandbox) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(sandbox), "sandbox processes outlived ringfence"
    finally:
        for pid in _alive(sandbox):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        harness.kill_group(proc.pid)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_terminal_is_the_console(busybox, sandbox_argv):
    """With a terminal as stdio, the sandbox sees it as /dev/console, as
    ttyname() and `tty` expect; its window size passes through."""
    rc, out = harness.run_in_pty(sandbox_argv([busybox, "sh", "-c",
                                               "tty; ls /dev/console; readlink /proc/self/fd/1; stty size"]),
                                 24, 80)
    assert rc == 0, out
    assert out.replace(b"\r", b"").splitlines() == [b"/dev/console", b"/dev/console", b"/dev/console",
                                                    b"24 80"]


def test_no_console_without_a_terminal(busybox, run_sandboxed):
    proc = run_sandboxed([busybox, "sh", "-c", "tty; ls /dev/console"])
    assert proc.returncode != 0 and proc.stdout == b"not a tty\n", explain(proc)
