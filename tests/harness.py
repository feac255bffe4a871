"""Plain helpers shared by the test suite (through conftest.py) and bench/run.py.

Nothing here is a pytest fixture: this module only finds or builds the test
programs (a static busybox, C programs compiled with ``gcc -static``), finds the
``ringfence`` console script and runs processes with a time limit.
"""
from __future__ import annotations

import difflib
import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sysconfig
import tempfile
import termios
import time
import tty
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
C_DIR = TESTS_DIR / "c"

# Every process the tests start gets this limit, so a hang fails instead of
# freezing the suite.
TIMEOUT = float(os.environ.get("RINGFENCE_TEST_TIMEOUT", "60"))


class HarnessError(Exception):
    """A test program could not be found or built (the message says why)."""


def cache_dir() -> Path:
    """Where fetched and compiled test programs are kept between runs."""
    path = Path(os.environ.get("RINGFENCE_TEST_CACHE", "/var/cache/ringfence-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- ELF


def is_static_elf(path: os.PathLike | str) -> bool:
    """True if `path` is an x86-64 ELF executable without a PT_INTERP segment."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
                return False
            e_type, e_machine = struct.unpack_from("<HH", ident, 16)
            if e_type not in (2, 3) or e_machine != 62:  # ET_EXEC/ET_DYN, EM_X86_64
                return False
            e_phoff = struct.unpack_from("<Q", ident, 32)[0]
            e_phentsize, e_phnum = struct.unpack_from("<HH", ident, 54)
            f.seek(e_phoff)
            table = f.read(e_phentsize * e_phnum)
    except OSError:
        return False
    for i in range(e_phnum):
        (p_type,) = struct.unpack_from("<I", table, i * e_phentsize)
        if p_type == 3:  # PT_INTERP: dynamically linked
            return False
    return True


# ----------------------------------------------------------------------- busybox


def find_busybox() -> Path:
    """A static busybox: /bin/busybox if it is static, else busybox-static's
    binary extracted (apt-get download + dpkg -x) into the cache."""
    host = Path("/bin/busybox")
    if is_static_elf(host):
        return host
    cached = cache_dir() / "busybox-static" / "bin" / "busybox"
    if is_static_elf(cached):
        return cached
    work = Path(tempfile.mkdtemp(prefix="busybox-static.", dir=cache_dir()))
    try:
        # apt runs downloads as user _apt: let it write into the work dir.
        os.chmod(work, 0o777)
        _checked(["apt-get", "download", "busybox-static"], cwd=work,
                 what="apt-get download busybox-static (run `apt-get update` first?)")
        debs = sorted(work.glob("busybox-static_*.deb"))
        if not debs:
            raise HarnessError(f"apt-get download left no busybox-static .deb in {work}")
        tree = work / "tree"
        _checked(["dpkg", "-x", str(debs[0]), str(tree)], what="dpkg -x busybox-static")
        binary = tree / "bin" / "busybox"
        if not is_static_elf(binary):
            raise HarnessError(f"{binary} from busybox-static is not a static x86-64 ELF")
        final = cache_dir() / "busybox-static"
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tree, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cached


# ------------------------------------------------------------- Debian rootfs

# What the Debian workload tests run (issue 5): debootstrap's minbase plus these.
DEBIAN_PACKAGES = ("python3", "sqlite3", "gcc", "libc6-dev", "make", "tar", "gzip", "perl",
                   "bsdutils", "findutils")
DEBIAN_SUITE = "bookworm"


def debian_rootfs() -> Path:
    """A Debian bookworm rootfs (debootstrap minbase + DEBIAN_PACKAGES), built
    once into the cache (its name says what it holds) under a lock, so that
    concurrent test runs build it once."""
    import fcntl
    import hashlib

    digest = hashlib.sha256(" ".join((DEBIAN_SUITE, *DEBIAN_PACKAGES)).encode()).hexdigest()[:12]
    final = cache_dir() / f"debian-{DEBIAN_SUITE}-{digest}"
    with open(cache_dir() / ".debian.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "usr" / "bin" / "python3").exists():
            return final
        stage = Path(tempfile.mkdtemp(prefix=".debian-stage.", dir=cache_dir()))
        try:
            _checked(["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
                      DEBIAN_SUITE, str(stage), "http://deb.debian.org/debian"],
                     what="debootstrap of the Debian test rootfs (is debootstrap installed?)", timeout=1200)
            shutil.rmtree(final, ignore_errors=True)
            os.rename(stage, final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return final


# ----------------------------------------------------------------- C programs


def compile_c(source: os.PathLike | str, name: str | None = None,
              extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile `source` with ``gcc -static -O1 -Wall`` into the cache, unless the
    binary there is newer than the source and every header beside it."""
    source = Path(source)
    if not source.is_file():
        raise HarnessError(f"no C source {source}")
    out = cache_dir() / (name or source.stem)
    inputs = [source, *source.parent.glob("*.h")]
    newest = max(p.stat().st_mtime for p in inputs)
    if out.exists() and out.stat().st_mtime >= newest:
        return out
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    _checked(["gcc", "-static", "-O1", "-Wall", *extra_flags, "-o", str(tmp), str(source)],
             what=f"compiling {source}")
    os.replace(tmp, out)
    return out


def build_c_program(name: str) -> Path:
    """tests/c/<name>.c compiled (see compile_c)."""
    return compile_c(C_DIR / f"{name}.c", name)


def c_programs() -> list[str]:
    return sorted(p.stem for p in C_DIR.glob("*.c"))


def _checked(argv: list[str], what: str, timeout: float = 300, **kw) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=timeout, **kw)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HarnessError(f"{what}: {e}") from e
    if proc.returncode != 0:
        raise HarnessError(f"{what} failed (exit {proc.returncode}):\n"
                           + proc.stdout.decode(errors="replace")
                           + proc.stderr.decode(errors="replace"))


# --------------------------------------------------------------------- ringfence


def find_ringfence() -> str | None:
    """The installed ``ringfence`` console script: $RINGFENCE_BIN, else the one
    beside this interpreter (what ``python3 -m pip install .`` produced), else PATH."""
    override = os.environ.get("RINGFENCE_BIN")
    if override:
        return override if os.access(override, os.X_OK) else None
    return (shutil.which("ringfence", path=sysconfig.get_path("scripts"))
            or shutil.which("ringfence"))


# ------------------------------------------------------------------- processes


def run(argv: list[str], timeout: float = TIMEOUT, input: bytes | None = None,
        **kw) -> subprocess.CompletedProcess:
    """Run `argv` to completion with stdout/stderr captured as bytes.

    stdin is /dev/null unless `input` is given.  The process gets its own
    session; on timeout the whole process group is killed and
    subprocess.TimeoutExpired is raised (with what was captured so far).
    """
    kw.setdefault("stdin", subprocess.PIPE if input is not None else subprocess.DEVNULL)
    with subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True, **kw) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def descendants(pid: int) -> list[int]:
    """Live descendants of `pid` (by parent links in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_group(pgid: int) -> None:
    """SIGKILL process group `pgid` and every descendant of its leader (the
    sandbox's processes may have left the group with setsid())."""
    for pid in descendants(pgid):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ----------------------------------------------------------- output filters

# Values that legitimately differ between a native and a sandboxed run.
FILTERS: dict[str, list[tuple[re.Pattern, str]]] = {
    "pids": [(re.compile(rb"\b(pid|ppid|tid|pgid|sid)([=: ]+)-?\d+"), rb"\1\2<PID>")],
    "addresses": [(re.compile(rb"0x[0-9a-fA-F]+"), b"<ADDR>")],
    "times": [
        (re.compile(rb"\b\d+(?:\.\d+)?\s*(?:ns|us|\xc2\xb5s|ms|s)\b"), b"<TIME>"),
        (re.compile(rb"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b"), b"<TIME>"),
    ],
}


def apply_filters(data: bytes, names: tuple[str, ...] | list[str]) -> bytes:
    for name in names:
        if name not in FILTERS:
            raise KeyError(f"unknown output filter {name!r}; known: {sorted(FILTERS)}")
        for pattern, repl in FILTERS[name]:
            data = pattern.sub(repl, data)
    return data


def _show(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="backslashreplace").splitlines(keepends=True)


def assert_same_behaviour(native: subprocess.CompletedProcess,
                          sandboxed: subprocess.CompletedProcess,
                          filters: tuple[str, ...] | list[str] = ()) -> None:
    """Assert equal filtered stdout and equal exit status; the message carries a
    unified diff of stdout and the sandboxed run's stderr."""
    want = apply_filters(native.stdout, filters)
    got = apply_filters(sandboxed.stdout, filters)
    problems = []
    if want != got:
        diff = "".join(difflib.unified_diff(_show(want), _show(got), "native stdout",
                                            "sandboxed stdout"))
        problems.append(f"stdout differs (filters: {', '.join(filters) or 'none'}):\n{diff}")
    if native.returncode != sandboxed.returncode:
        problems.append(f"exit status differs: native {native.returncode}, "
                        f"sandboxed {sandboxed.returncode}")
    if problems:
        err = sandboxed.stderr.decode(errors="replace")[-4000:]
        problems.append(f"sandboxed stderr (last 4000 chars):\n{err}")
        problems.insert(0, f"command: {' '.join(map(str, native.args))}")
        raise AssertionError("\n".join(problems))


def run_in_pty(argv: list, rows: int = 24, cols: int = 80, timeout: float = TIMEOUT,
               ready: bytes = b"", typed: bytes = b"", controlling: bool = False,
               resize: tuple[int, int] | None = None, then: tuple[tuple[bytes, bytes], ...] = ()
               ) -> tuple[int, bytes]:
    """Run argv with a pseudo-terminal (raw, rows x cols) as its stdio (and, if
    `controlling`, cooked and its controlling terminal, argv leading the session in the
    foreground, as in a login); once it has written `ready` (if given), type `typed`
    at it and resize the terminal to `resize` (rows, cols) if given; then for each
    (ready, typed) of `then` in turn, the same.  Returns its exit status and everything
    it wrote."""
    steps = [(ready, typed), *then] if ready else []
    argv = [str(a) for a in argv]
    master, slave = os.openpty()
    if not controlling:
        tty.setraw(slave)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                preexec_fn=(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)) if controlling else None)
    finally:
        os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave end is closed
                break
            if not data:
                break
            out += data
            if steps and steps[0][0] in out:
                os.write(master, steps.pop(0)[1])
                if resize is not None:
                    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *resize, 0, 0))
                    resize = None
        try:
            return proc.wait(max(0.1, deadline - time.monotonic())), out
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
            raise TimeoutError(f"timed out after {timeout:.0f}s: {' '.join(argv)}\noutput: {out!r}")
    finally:
        os.close(master)
