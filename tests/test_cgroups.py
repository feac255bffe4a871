"""ringfence.runtime.cgroups on the host's real cgroups: processes the tests
start themselves are put in throw-away groups under /ringfence-test/, frozen,
limited (memory → OOM kill and eventfd, pids → fork fails), measured; every
group is removed again. The v2 code runs on the unified hierarchy (the root
when the host is cgroup2-only, else /sys/fs/cgroup/unified on hybrid hosts)."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ringfence.proto import typeurl
from ringfence.runtime.cgroups import Cgroup

MiB = 1 << 20
# Most tests read v1 control files; a cgroup2-only host runs the v2 test only.
v1_only = pytest.mark.skipif(Path("/sys/fs/cgroup/cgroup.controllers").exists(),
                             reason="/sys/fs/cgroup is cgroup2: no v1 controllers")

# HOG, FORKER and WORKER wait for a line on stdin before working, so that what
# they use is charged to the cgroup they were moved into.
TICKER = "import os, time\nwhile True:\n    os.write(1, b'.')\n    time.sleep(0.005)\n"
HOG = ("import sys\nsys.stdin.readline()\nkeep = []\n"
       "for _ in range(64):\n    keep.append(b'x' * (4 << 20))\nprint('survived', flush=True)\n")
FORKER = ("import os, sys\nsys.stdin.readline()\n"
          "try:\n    pid = os.fork()\nexcept BlockingIOError:\n    sys.exit(42)\n"
          "if pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\n")
WORKER = ("import sys, time\nsys.stdin.readline()\nend = time.monotonic() + 0.3\n"
          "while time.monotonic() < end:\n    pass\nkeep = b'x' * (16 << 20)\n"
          "print('ok', flush=True)\ntime.sleep(30)\n")


@pytest.fixture
def spawn():
    """spawn(code) -> Popen of a python child (stdin/stdout pipes, stdout
    non-blocking); spawn.kill_all() ends them by pid, as teardown does."""
    children: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        children.append(p)
        os.set_blocking(p.stdout.fileno(), False)
        return p

    def kill_all() -> None:
        for p in children:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)

    start.kill_all = kill_all
    yield start
    kill_all()
    for p in children:
        p.stdin.close()
        p.stdout.close()


@pytest.fixture
def cgroups(spawn):
    """cgroups(**kw) -> Cgroup.create("/ringfence-test/<random>", **kw). At
    teardown each is thawed (a frozen v1 process cannot die), the children are
    killed, and the groups removed."""
    made: list[Cgroup] = []

    def create(**kw) -> Cgroup:
        cg = Cgroup.create(f"/ringfence-test/{uuid.uuid4().hex[:12]}", **kw)
        made.append(cg)
        return cg

    yield create
    for cg in made:
        try:
            cg.thaw()
        except FileNotFoundError:
            pass  # the test removed it
    spawn.kill_all()
    for cg in made:
        cg.remove()


def go(p: subprocess.Popen) -> None:
    p.stdin.write(b"go\n")
    p.stdin.flush()


def drain(p: subprocess.Popen) -> int:
    """Bytes the child wrote since the last drain."""
    n = 0
    while True:
        try:
            chunk = os.read(p.stdout.fileno(), 65536)
        except BlockingIOError:
            return n
        if not chunk:
            return n
        n += len(chunk)


def read_line(p: subprocess.Popen, timeout: float = 10) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            pytest.fail(f"child wrote no line within {timeout}s (got {data!r})")
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"child exited ({p.wait()}) before writing a line (got {data!r})")
        data += chunk
    return data


def dirs_exist(cg: Cgroup) -> list[Path]:
    return [d for d in cg.dirs.values() if d.exists()]


@v1_only
def test_create_add_pids_open_remove(cgroups, spawn):
    cg = cgroups()
    assert cg.version == 1  # this host: v1 controllers (the v2 test is below)
    assert {"freezer", "memory", "cpu", "cpuacct", "pids"} <= set(cg.dirs)
    assert cg.dirs["memory"] == Path("/sys/fs/cgroup/memory", cg.path.lstrip("/"))
    cpuset = cg.dirs.get("cpuset")
    if cpuset is not None:  # copied from the parent, or no process could join
        assert (cpuset / "cpuset.cpus").read_text().strip()
        assert (cpuset / "cpuset.mems").read_text().strip()
    p = spawn(TICKER)
    cg.add(p.pid)
    assert cg.pids() == [p.pid]
    for d in cg.dirs.values():
        assert str(p.pid) in (d / "cgroup.procs").read_text().split()
    assert cg.state() == "running"
    again = Cgroup.open(cg.path)
    assert again.dirs == cg.dirs and again.pids() == [p.pid]

    with pytest.raises(OSError):  # still populated
        cg.remove(timeout=0.1)
    p.kill()
    p.wait()
    cg.remove()
    assert dirs_exist(cg) == []
    cg.remove()  # idempotent
    again.remove()
    with pytest.raises(FileNotFoundError):
        Cgroup.open(cg.path)


@v1_only
def test_freeze_stops_progress_thaw_resumes(cgroups, spawn):
    cg = cgroups()
    p = spawn(TICKER)
    cg.add(p.pid)
    deadline = time.monotonic() + 5
    while drain(p) == 0:
        assert time.monotonic() < deadline, "ticker never ticked"
        time.sleep(0.01)
    cg.freeze(timeout=5)
    assert cg.state() == "paused"
    assert (cg.dirs["freezer"] / "freezer.state").read_text().strip() == "FROZEN"
    assert Path(f"/proc/{p.pid}/status").read_text().count("State:\tR") == 0
    drain(p)
    time.sleep(0.3)
    assert drain(p) == 0, "a frozen process made progress"
    cg.freeze()  # freezing again is harmless
    cg.thaw()
    assert cg.state() == "running"
    time.sleep(0.3)
    assert drain(p) > 0, "the thawed process made no progress"


@v1_only
def test_memory_limit_oom_kill_counted_and_signalled(cgroups, spawn):
    cg = cgroups()
    memory = cg.dirs["memory"]
    limits = {"limit": 64 * MiB}
    if (memory / "memory.memsw.limit_in_bytes").exists():
        limits["swap"] = 64 * MiB  # no swapping either: the OOM comes at once
    cg.apply({"memory": limits})
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 * MiB
    efd = cg.oom_eventfd()
    assert efd is not None
    try:
        assert not select.select([efd], [], [], 0)[0]
        assert cg.oom_kills() == 0
        p = spawn(HOG)
        cg.add(p.pid)
        go(p)
        assert p.wait(timeout=10) == -signal.SIGKILL, "allocating 256 MiB under a 64 MiB limit survived"
        assert cg.oom_kills() >= 1
        assert select.select([efd], [], [], 5)[0], "the OOM eventfd did not fire"
        assert int.from_bytes(os.read(efd, 8), sys.byteorder) >= 1
        m = cg.stats()
        assert m.memory_oom_control.oom_kill >= 1
        assert m.memory.usage.limit == 64 * MiB and m.memory.usage.max == 64 * MiB
    finally:
        os.close(efd)


@v1_only
def test_pids_limit_makes_fork_fail(cgroups, spawn):
    cg = cgroups()
    cg.apply({"pids": {"limit": 1}})
    assert (cg.dirs["pids"] / "pids.max").read_text().strip() == "1"
    p = spawn(FORKER)
    cg.add(p.pid)
    m = cg.stats()
    assert (m.pids.current, m.pids.limit) == (1, 1)
    go(p)
    assert p.wait(timeout=10) == 42, "fork succeeded under pids.limit 1"

    cg.apply({"pids": {"limit": -1}})
    assert (cg.dirs["pids"] / "pids.max").read_text().strip() == "max"
    assert cg.stats().pids.limit == 0  # containerd's v1 "no limit"
    p = spawn(FORKER)
    cg.add(p.pid)
    go(p)
    assert p.wait(timeout=10) == 0


@v1_only
def test_stats_after_work(cgroups, spawn):
    cg = cgroups()
    p = spawn(WORKER)
    cg.add(p.pid)
    go(p)
    assert read_line(p) == b"ok\n"
    m = cg.stats()
    assert typeurl.type_url(m) == "io.containerd.cgroups.v1.Metrics"
    assert m.pids.current == 1
    usage = m.cpu.usage
    assert usage.total >= 0.2e9, usage  # the 0.3 s busy loop, in ns
    assert usage.user > 0  # tick-sampled by the kernel: may exceed total a little
    assert len(usage.per_cpu) == os.cpu_count() and sum(usage.per_cpu) == pytest.approx(usage.total, rel=0.05)
    assert m.memory.usage.usage >= 16 * MiB
    assert m.memory.usage.max >= m.memory.usage.usage
    assert m.memory.rss >= 16 * MiB or m.memory.total_rss >= 16 * MiB
    assert m.memory_oom_control.oom_kill == 0
    back = type(m)()
    back.ParseFromString(typeurl.pack(m).value)
    assert back == m


def test_metrics_field_numbers_match_containerd():
    """Spot checks against containerd/cgroups stats/v1 and cgroup2/stats metrics.proto."""
    from ringfence.proto.containerd.cgroups.v1 import metrics_pb2 as v1
    from ringfence.proto.containerd.cgroups.v2 import metrics_pb2 as v2

    def numbers(cls):
        return {f.name: f.number for f in cls.DESCRIPTOR.fields}

    assert numbers(v1.Metrics) == {"pids": 2, "cpu": 3, "memory": 4, "memory_oom_control": 9}
    assert numbers(v1.CPUUsage) == {"total": 1, "kernel": 2, "user": 3, "per_cpu": 4}
    assert numbers(v1.MemoryEntry) == {"limit": 1, "usage": 2, "max": 3, "failcnt": 4}
    mem = numbers(v1.MemoryStat)
    assert (mem["cache"], mem["pg_pg_in"], mem["total_unevictable"], mem["usage"], mem["kernel_tcp"]) \
        == (1, 7, 32, 33, 36)
    assert numbers(v2.Metrics) == {"pids": 1, "cpu": 2, "memory": 4, "memory_events": 8}
    assert numbers(v2.MemoryStat)["swap_max_usage"] == 37
    assert numbers(v2.MemoryEvents)["oom_kill"] == 5


@v1_only
def test_apply_writes_and_updates(cgroups):
    cg = cgroups()
    cpu, memory, pids = cg.dirs["cpu"], cg.dirs["memory"], cg.dirs["pids"]

    def read(d: Path, name: str) -> str:
        return (d / name).read_text().strip()

    cg.apply({"cpu": {"shares": 512, "period": 50000, "quota": 25000},
              "memory": {"limit": 64 * MiB, "reservation": 32 * MiB},
              "pids": {"limit": 5}, "devices": [{"allow": False, "access": "rwm"}]})
    assert (read(cpu, "cpu.shares"), read(cpu, "cpu.cfs_period_us"), read(cpu, "cpu.cfs_quota_us")) \
        == ("512", "50000", "25000")
    assert (read(memory, "memory.limit_in_bytes"), read(memory, "memory.soft_limit_in_bytes")) \
        == (str(64 * MiB), str(32 * MiB))
    assert read(pids, "pids.max") == "5"
    m = cg.stats()
    assert m.memory.usage.limit == 64 * MiB and m.pids.limit == 5

    cg.apply({"cpu": {"quota": 0, "shares": None}, "memory": {}})  # 0 / null / absent: unchanged
    assert (read(cpu, "cpu.shares"), read(cpu, "cpu.cfs_quota_us")) == ("512", "25000")
    if (memory / "memory.memsw.limit_in_bytes").exists():
        # raising and lowering memory with memory+swap needs the right write order
        cg.apply({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}})
        cg.apply({"memory": {"limit": 128 * MiB, "swap": 256 * MiB}})
        assert (read(memory, "memory.limit_in_bytes"), read(memory, "memory.memsw.limit_in_bytes")) \
            == (str(128 * MiB), str(256 * MiB))
        cg.apply({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
        assert read(memory, "memory.memsw.limit_in_bytes") == str(32 * MiB)
    cg.apply({"cpu": {"quota": -1}, "memory": {"limit": -1}, "pids": {"limit": -1}})
    assert read(cpu, "cpu.cfs_quota_us") == "-1"
    assert int(read(memory, "memory.limit_in_bytes")) > 1 << 60
    assert read(pids, "pids.max") == "max"
    if "cpuset" in cg.dirs:
        cg.apply({"cpu": {"cpus": "0", "mems": "0"}})
        assert read(cg.dirs["cpuset"], "cpuset.cpus") == "0"


@v1_only
@pytest.mark.parametrize("resources, message", [
    ([], "JSON object"),
    ({"memory": 5}, "memory must be a JSON object"),
    ({"memory": {"limit": "64M"}}, "memory.limit='64M': must be an integer"),
    ({"memory": {"limit": 1.5}}, "memory.limit=1.5: must be an integer"),
    ({"memory": {"limit": True}}, "must be an integer"),
    ({"memory": {"limit": -2}}, "memory.limit=-2: must be -1"),
    ({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}}, "memory.swap=33554432: memory\\+swap"),
    ({"cpu": {"shares": 1}}, "cpu.shares=1: must be between 2 and 262144"),
    ({"cpu": {"period": 10}}, "cpu.period=10"),
    ({"cpu": {"quota": 10}}, "cpu.quota=10"),
    ({"cpu": {"cpus": "0-"}}, "cpu.cpus='0-'"),
    ({"cpu": {"cpus": "3-1"}}, "cpu.cpus='3-1'"),
    ({"cpu": {"mems": 0}}, "cpu.mems=0: must be a string"),
    ({"pids": {"limit": "10"}}, "pids.limit='10'"),
    ({"cpu": {"cpus": "4095"}}, "cpu.cpus='4095': the kernel refused"),  # no such CPU
])
def test_apply_rejects_bad_values(cgroups, resources, message):
    cg = cgroups()
    with pytest.raises(ValueError, match=message):
        cg.apply(resources)


@v1_only
def test_apply_checks_everything_before_writing(cgroups):
    cg = cgroups()
    limit = cg.dirs["memory"] / "memory.limit_in_bytes"
    before = limit.read_text()
    with pytest.raises(ValueError, match="cpu.period"):
        cg.apply({"memory": {"limit": 64 * MiB}, "cpu": {"period": 5}})
    assert limit.read_text() == before


@pytest.mark.parametrize("path", ["", "/", "//", "/a/../b", "system.slice:ringfence:abc"])
def test_bad_cgroups_paths(path):
    with pytest.raises(ValueError):
        Cgroup.create(path)


@v1_only
def test_relative_path_is_under_own_cgroup():
    name = f"ringfence-test-{uuid.uuid4().hex[:12]}"
    cg = Cgroup.create(name)
    try:
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            for c in controllers.split(","):
                own[c] = path
        assert cg.dirs["memory"] == Path("/sys/fs/cgroup/memory", own["memory"].lstrip("/"), name)
        assert all(d.is_dir() for d in cg.dirs.values())
    finally:
        cg.remove()
    assert dirs_exist(cg) == []


def _cgroup2_mount() -> str:
    for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if Path(mount, "cgroup.controllers").exists():
            return mount
    pytest.skip("no cgroup2 hierarchy mounted")


def test_v2_unified_hierarchy(cgroups, spawn):
    cg = cgroups(v2_mount=_cgroup2_mount())
    assert cg.version == 2 and list(cg.dirs) == [""]
    d = cg.dirs[""]
    p = spawn(TICKER)
    cg.add(p.pid)
    assert cg.pids() == [p.pid]
    assert cg.state() == "running"
    cg.freeze(timeout=5)
    assert cg.state() == "paused"
    drain(p)
    time.sleep(0.3)
    assert drain(p) == 0, "a frozen process made progress"
    cg.thaw()
    assert cg.state() == "running"
    time.sleep(0.2)
    assert drain(p) > 0

    m = cg.stats()
    assert typeurl.type_url(m) == "io.containerd.cgroups.v2.Metrics"
    assert m.cpu.usage_usec > 0  # cpu.stat is a core file: always there
    assert cg.oom_eventfd() is None
    if (d / "memory.max").exists():
        cg.apply({"memory": {"limit": 64 * MiB}, "pids": {"limit": 10}})
        assert (d / "memory.max").read_text().strip() == str(64 * MiB)
        assert cg.stats().memory.usage_limit == 64 * MiB
        assert cg.oom_kills() == 0
    else:  # hybrid host: memory is bound to its v1 hierarchy
        with pytest.raises(ValueError, match="memory.limit: .*memory.max does not exist"):
            cg.apply({"memory": {"limit": 64 * MiB}})
        assert cg.oom_kills() == 0
    p.kill()
    p.wait()
    cg.remove()
    assert not d.exists()
