"""Real file workloads, sandboxed over a Debian bookworm rootfs (issue 5).

The rootfs is debootstrap's minbase plus python3, sqlite3, gcc, make, tar,
gzip and perl, built once into the test cache (harness.debian_rootfs).
`ringfence do --root ROOTFS` keeps the rootfs read-only under an in-memory
layer, so the cached tree is never changed; the OCI test runs `ringfence run`
on a bundle whose read-only root is the same tree, with a tmpfs /tmp and a
host directory bind-mounted read-write.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

import harness

# A python3 script that makes a sqlite3 database at argv[1] and prints its digest.
SQLITE_SCRIPT = """
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("create table t(n integer primary key, word text)")
db.executemany("insert into t values (?, ?)", [(i, format(i * i, 'x') * 7) for i in range(2000)])
db.commit()
db.execute("create index t_word on t(word)")
db.commit()
print(db.execute("select count(*), sum(n), max(word) from t").fetchone())
db.close()
print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())
"""


@pytest.fixture(scope="module")
def rootfs() -> Path:
    try:
        return harness.debian_rootfs()
    except harness.HarnessError as e:
        pytest.fail(f"cannot build the Debian rootfs: {e}", pytrace=False)


@pytest.fixture(scope="module")
def ringfence() -> str:
    binary = harness.find_ringfence()
    if binary is None:
        pytest.fail("the ringfence console script is not installed", pytrace=False)
    return binary


def sandboxed(ringfence: str, rootfs: Path, script: str, timeout: float = 240) -> str:
    """Run `script` with bash inside the sandbox over `rootfs`; return its stdout (it must exit 0)."""
    proc = harness.run([ringfence, "do", "--quiet", "--root", rootfs, "--cwd", "/tmp", "--env", "PATH=/usr/bin:/bin",
                        "--", "/bin/bash", "-ec", script], timeout=timeout)
    assert proc.returncode == 0, (f"exit {proc.returncode}\nstdout: {proc.stdout.decode(errors='replace')[-3000:]}\n"
                                  f"stderr: {proc.stderr.decode(errors='replace')[-3000:]}")
    return proc.stdout.decode()


def native_in(rootfs: Path, script: str) -> str:
    """Run `script` natively, chrooted into `rootfs` in a private mount namespace
    with the mounts the sandbox has (proc, and empty /dev, /sys and /tmp)."""
    mounts = "; ".join(f"mount -t {fs} none {rootfs}/{d}" for fs, d in
                       (("tmpfs", "dev"), ("proc", "proc"), ("tmpfs", "sys"), ("tmpfs", "tmp")))
    proc = harness.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                        f"{mounts}; exec chroot {rootfs} /bin/bash -ec '{script}'"], timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode()


def test_sqlite3_in_tmp_and_in_a_host_bind_mount(ringfence, rootfs, tmp_path):
    """python3 makes a database in the container's /tmp and in a bind-mounted host
    directory; the latter is on the host after exit, byte-identical."""
    data = tmp_path / "data"
    data.mkdir()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "make_db.py").write_text(SQLITE_SCRIPT)
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": str(rootfs), "readonly": True},
        "process": {"args": ["/bin/sh", "-ec", "python3 /script/make_db.py /tmp/t.db; "
                             "python3 /script/make_db.py /data/t.db; sqlite3 /data/t.db 'select count(*) from t'"],
                    "env": ["PATH=/usr/bin:/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=64m"]},
            {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]},
            {"destination": "/script", "type": "bind", "source": str(bundle), "options": ["rbind", "ro"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")]},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    cid = f"debian-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    proc = harness.run([ringfence, "--root", state, "run", "--bundle", bundle, cid], timeout=240)
    harness.run([ringfence, "--root", state, "delete", "--force", cid])
    out = proc.stdout.decode().splitlines()
    assert proc.returncode == 0, (out, proc.stderr.decode(errors="replace")[-3000:])
    native = subprocess.run(["python3", bundle / "make_db.py", tmp_path / "native.db"], capture_output=True,
                            check=True, text=True)
    row = native.stdout.splitlines()[0]
    assert out[0] == row and out[2] == row and out[4] == "2000", out
    on_host = (data / "t.db").read_bytes()
    assert hashlib.sha256(on_host).hexdigest() == out[3]
    with sqlite3.connect(data / "t.db") as db:
        assert db.execute("select count(*) from t").fetchone() == (2000,)


def test_tar_round_trip_of_usr_share(ringfence, rootfs):
    out = sandboxed(ringfence, rootfs, "tar czf /tmp/share.tgz -C /usr share; mkdir /tmp/x; "
                    "tar xzf /tmp/share.tgz -C /tmp/x; diff -r /usr/share /tmp/x/share && echo identical; "
                    "tar tzf /tmp/share.tgz | wc -l")
    native = subprocess.run(["tar", "cf", "-", "-C", rootfs / "usr", "share"], capture_output=True, check=True)
    count = subprocess.run(["tar", "tf", "-"], input=native.stdout, capture_output=True, check=True)
    assert out.split() == ["identical", str(len(count.stdout.splitlines()))]


def test_gcc_builds_and_runs_hello(ringfence, rootfs):
    out = sandboxed(ringfence, rootfs, "printf '#include <stdio.h>\\nint main(void) { puts(\"hello, world\"); "
                    "return 0; }\\n' > hello.c; gcc -O1 -Wall hello.c -o hello; ./hello")
    assert out == "hello, world\n"


def test_make_builds_a_small_project(ringfence, rootfs):
    out = sandboxed(ringfence, rootfs, """
mkdir proj; cd proj
printf 'int add(int a, int b) { return a + b; }\\n' > add.c
printf '#include <stdio.h>\\nint add(int, int);\\nint main(void) { printf("%%d\\\\n", add(40, 2)); return 0; }\\n' > main.c
printf 'prog: main.o add.o\\n\\t$(CC) -o $@ $^\\n%%.o: %%.c\\n\\t$(CC) -c $<\\nclean:\\n\\trm -f prog *.o\\n' > Makefile
make -s; ./prog; make -s; echo rebuilt-nothing; touch add.c; make; ./prog
""")
    assert out.splitlines() == ["42", "rebuilt-nothing", "cc -c add.c", "cc -o prog main.o add.o", "42"]


def test_find_counts_the_same_files_as_native(ringfence, rootfs):
    script = "find / -xdev | wc -l"
    assert sandboxed(ringfence, rootfs, script) == native_in(rootfs, script)


def test_python3_imports_and_perl(ringfence, rootfs):
    out = sandboxed(ringfence, rootfs, "python3 -c 'import json, sqlite3, asyncio; print(json.dumps([1, 2]))'; "
                    "perl -e 'print join(\",\", map { $_ * 2 } 1..3), \"\\n\"'")
    assert out == "[1, 2]\n2,4,6\n"
