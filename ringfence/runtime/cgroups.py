"""A container's cgroup (OCI ``linux.cgroupsPath``): create it, put processes
in it, apply ``linux.resources``, freeze and thaw it, read its statistics and
OOM kills, remove it.

Both cgroup versions are handled. v1: one directory per controller,
``<mount of controller>/<path>``, in those of freezer, memory, cpu, cpuacct,
pids and cpuset that are mounted. v2: one directory in the unified hierarchy,
used when /sys/fs/cgroup itself is cgroup2 (or when ``v2_mount`` names a
cgroup2 mount point).

Every method does blocking file I/O and ``freeze``/``remove`` poll for up to
their timeout: asyncio code should call them through ``asyncio.to_thread``.
"""
from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

from google.protobuf.message import Message

from ringfence.proto.containerd.cgroups.v1 import metrics_pb2 as v1_metrics
from ringfence.proto.containerd.cgroups.v2 import metrics_pb2 as v2_metrics

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("freezer", "memory", "cpu", "cpuacct", "pids", "cpuset")
# v2 controllers enabled (where available) in the subtree_control of every
# ancestor, so that the container's group has their files.
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids")
_UINT64_MAX = 2**64 - 1
_CPU_LIST = re.compile(r"(\d+)(?:-(\d+))?")
# memory.stat keys (v1) whose Metrics field is spelled differently.
_V1_STAT_NAMES = {"pgpgin": "pg_pg_in", "pgpgout": "pg_pg_out", "pgfault": "pg_fault",
                  "pgmajfault": "pg_maj_fault", "hierarchical_memsw_limit": "hierarchical_swap_limit"}


class Cgroup:
    """One container's cgroup; get it from ``create`` or ``open``.

    ``version`` is 1 or 2; ``dirs`` maps each v1 controller to its directory
    (v2: the one directory, under the key ``""``).
    """

    def __init__(self, path: str, version: int, dirs: dict[str, Path], owned: list[Path]):
        self.path = path
        self.version = version
        self.dirs = dirs
        self._owned = owned  # what remove() deletes, parents before children

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r}, v{self.version})"

    @classmethod
    def create(cls, path: str, *, v2_mount: str | None = None) -> Cgroup:
        """Make the cgroup (and missing parents) in every controller we use.

        ``path`` is an OCI cgroupsPath: absolute paths are relative to the
        hierarchy roots, relative ones to this process's own cgroup (as in
        runc); the systemd ``slice:prefix:name`` form is a ValueError. v1: new
        cpuset groups get cpuset.cpus/mems from their parent. v2: the
        controllers of ``V2_CONTROLLERS`` are enabled down the path where the
        kernel allows it. An existing group is reused (and left in place by
        ``remove``).
        """
        version, bases, parts = _locate(path, v2_mount)
        dirs: dict[str, Path] = {}
        made: list[Path] = []
        try:
            for controller, base in bases.items():
                leaf = base.joinpath(*parts)
                if leaf not in dirs.values():  # cpu and cpuacct may share a mount
                    made += _mkdirs(base, parts)
                    chain = [base.joinpath(*parts[:i]) for i in range(len(parts) + 1)]
                    if version == 2:
                        for d in chain[:-1]:
                            _enable_controllers(d)
                    elif controller == "cpuset":
                        for parent, d in zip(chain, chain[1:]):
                            for name in ("cpuset.cpus", "cpuset.mems"):
                                if not _read(d / name):
                                    _write(d / name, _read(parent / name))
                dirs[controller] = leaf
        except BaseException:
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise
        return cls(path, version, dirs, made)

    @classmethod
    def open(cls, path: str, *, v2_mount: str | None = None) -> Cgroup:
        """An existing cgroup (FileNotFoundError if it exists in no
        controller); ``remove`` deletes its directories."""
        version, bases, parts = _locate(path, v2_mount)
        dirs = {c: b.joinpath(*parts) for c, b in bases.items() if b.joinpath(*parts).is_dir()}
        if not dirs:
            raise FileNotFoundError(errno.ENOENT, f"no cgroup {path!r}")
        return cls(path, version, dirs, list(dict.fromkeys(dirs.values())))

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the cgroup."""
        for d in dict.fromkeys(self.dirs.values()):
            _write(d / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        """The pids of every process in the cgroup and its sub-cgroups, sorted."""
        top = self.dirs.get("freezer") or next(iter(self.dirs.values()))
        if not top.is_dir():
            raise FileNotFoundError(errno.ENOENT, f"cgroup {self.path!r} is gone", str(top))
        found: set[int] = set()
        for d, _subdirs, _files in os.walk(top):
            try:
                found.update(int(p) for p in _read(Path(d) / "cgroup.procs").split())
            except FileNotFoundError:
                pass  # removed while we walked
        return sorted(found)

    def freeze(self, timeout: float = 5.0) -> None:
        """Freeze every process (pause). If the cgroup is not frozen within
        ``timeout`` seconds it is thawed again and TimeoutError raised."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            self._request_frozen(True)  # again each round: catches late forks
            if self._frozen():
                return
            if time.monotonic() >= deadline:
                self.thaw()
                raise TimeoutError(f"cgroup {self.path!r} not frozen after {timeout:g}s")
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def thaw(self) -> None:
        """Let the processes run again (resume)."""
        self._request_frozen(False)

    def state(self) -> str:
        """Return "paused" once frozen, else "running"."""
        return "paused" if self._frozen() else "running"

    def apply(self, resources: dict) -> None:
        """Apply an OCI ``linux.resources`` object, at create or as an update.

        Honoured: memory.limit, memory.reservation, memory.swap (bytes,
        memory+swap as in OCI; -1 = unlimited), cpu.shares, cpu.quota (µs; -1
        = unlimited), cpu.period (µs), cpu.cpus and cpu.mems (lists like
        "0-2,4"), pids.limit (negative = unlimited). A key that is absent,
        null or 0 ("" for the lists) leaves the setting alone; other keys
        are ignored. Everything is checked before anything is written: a bad
        value, a controller this cgroup lacks, or a value the kernel refuses
        raises ValueError naming the key.
        """
        settings = _validate(resources)
        plan = self._plan_v2(settings) if self.version == 2 else self._plan_v1(settings)
        for key, _value, file, _text in plan:
            if not file.exists():
                raise ValueError(f"{key}: {file} does not exist (controller missing on this host"
                                 " or not enabled for this cgroup)")
        for key, value, file, text in plan:
            try:
                _write(file, text)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EBUSY, errno.ERANGE, errno.ENOSPC):
                    raise
                raise ValueError(f"{key}={value!r}: the kernel refused {text!r} for {file}:"
                                 f" {os.strerror(e.errno)}") from None

    def stats(self) -> Message:
        """Usage now, as containerd's Task.Stats reports it: a
        ``io.containerd.cgroups.v1.Metrics`` (v1) or ``...v2.Metrics`` (v2)
        message; parts whose controller is missing stay empty."""
        if not all(d.is_dir() for d in self.dirs.values()):
            raise FileNotFoundError(errno.ENOENT, f"cgroup {self.path!r} is gone")
        return self._stats_v2() if self.version == 2 else self._stats_v1()

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in this cgroup (0
        without a memory controller)."""
        if self.version == 2:
            return _kv(self.dirs[""] / "memory.events").get("oom_kill", 0)
        d = self.dirs.get("memory")
        return _kv(d / "memory.oom_control").get("oom_kill", 0) if d else 0

    def oom_eventfd(self) -> int | None:
        """v1: a new non-blocking eventfd (the caller closes it) that becomes
        readable (an 8-byte counter) each time the cgroup runs out of memory.
        It also fires once when the cgroup is removed, so compare
        ``oom_kills()`` on each wake-up. None on v2 — watch memory.events
        instead (each change raises inotify IN_MODIFY on it) and compare
        ``oom_kills()`` — or without a memory controller."""
        d = self.dirs.get("memory") if self.version == 1 else None
        if d is None:
            return None
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            cfd = os.open(d / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write(d / "cgroup.event_control", f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except BaseException:
            os.close(efd)
            raise
        return efd

    def remove(self, timeout: float = 5.0) -> None:
        """Delete the cgroup's directories (with any sub-cgroups made in them)
        and the parents ``create`` made, if now empty. A group still holding
        processes is retried until ``timeout``, then OSError(EBUSY): ending
        the processes is the caller's job. Idempotent."""
        deadline = time.monotonic() + timeout
        leaves = set(self.dirs.values())
        for d in reversed(self._owned):
            if d in leaves:
                for sub, _subdirs, _files in os.walk(d, topdown=False):
                    _rmdir_retrying(Path(sub), deadline)
            else:
                try:
                    os.rmdir(d)
                except OSError as e:  # another container's group still in it
                    if e.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                        raise

    # -- freezing ---------------------------------------------------------

    def _request_frozen(self, frozen: bool) -> None:
        if self.version == 2:
            _write(self.dirs[""] / "cgroup.freeze", "1" if frozen else "0")
        else:
            _write(self._v1_dir("freezer") / "freezer.state", "FROZEN" if frozen else "THAWED")

    def _frozen(self) -> bool:
        if self.version == 2:
            return _kv(self.dirs[""] / "cgroup.events", missing_ok=False).get("frozen") == 1
        return _read(self._v1_dir("freezer") / "freezer.state") == "FROZEN"

    def _v1_dir(self, controller: str) -> Path:
        d = self.dirs.get(controller)
        if d is None:
            raise RuntimeError(f"cgroup {self.path!r}: no {controller} cgroup controller on this host")
        return d

    # -- resources --------------------------------------------------------

    def _plan_v1(self, s: dict) -> list[tuple[str, object, Path, str]]:
        """(key, value, file, text to write) in the order to write them."""
        plan: list[tuple[str, object, Path, str]] = []

        def put(key, controller, name, text=None):
            d = self.dirs.get(controller)
            if d is None:
                raise ValueError(f"{key}: no {controller} cgroup controller on this host")
            plan.append((key, s[key], d / name, str(s[key]) if text is None else text))

        mem = [("memory.limit", "memory.limit_in_bytes"), ("memory.swap", "memory.memsw.limit_in_bytes")]
        d = self.dirs.get("memory")
        if d is not None and s.get("memory.limit") == -1 and "memory.swap" not in s \
                and (d / "memory.memsw.limit_in_bytes").exists():
            s = {**s, "memory.swap": -1}  # as runc: unlimited memory, unlimited swap
        if d is not None and "memory.limit" in s and "memory.swap" in s:
            # memory+swap may never be below memory: when raising, swap goes first.
            swap = s["memory.swap"]
            if swap == -1 or int(_read(d / "memory.limit_in_bytes")) < swap:
                mem.reverse()
        for key, name in mem:
            if key in s:
                put(key, "memory", name)
        if "memory.reservation" in s:
            put("memory.reservation", "memory", "memory.soft_limit_in_bytes")
        for key, controller, name in (("cpu.shares", "cpu", "cpu.shares"),
                                      ("cpu.period", "cpu", "cpu.cfs_period_us"),
                                      ("cpu.quota", "cpu", "cpu.cfs_quota_us"),
                                      ("cpu.cpus", "cpuset", "cpuset.cpus"),
                                      ("cpu.mems", "cpuset", "cpuset.mems")):
            if key in s:
                put(key, controller, name)
        if "pids.limit" in s:
            put("pids.limit", "pids", "pids.max", _max_or(s["pids.limit"]))
        return plan

    def _plan_v2(self, s: dict) -> list[tuple[str, object, Path, str]]:
        """As _plan_v1, converted to the v2 files the way runc does."""
        d = self.dirs[""]
        plan: list[tuple[str, object, Path, str]] = []
        if "memory.swap" in s:
            limit, swap = s.get("memory.limit"), s["memory.swap"]
            if swap != -1 and limit is None:
                raise ValueError("memory.swap: cgroup v2 needs memory.limit with it"
                                 " (OCI swap is memory+swap)")
            plan.append(("memory.swap", swap, d / "memory.swap.max",
                         "max" if swap == -1 or limit == -1 else str(swap - limit)))
        if "memory.limit" in s:
            plan.append(("memory.limit", s["memory.limit"], d / "memory.max", _max_or(s["memory.limit"])))
        if "memory.reservation" in s:
            plan.append(("memory.reservation", s["memory.reservation"], d / "memory.low",
                         _max_or(s["memory.reservation"])))
        if "cpu.shares" in s:
            weight = 1 + (s["cpu.shares"] - 2) * 9999 // 262142
            plan.append(("cpu.shares", s["cpu.shares"], d / "cpu.weight", str(weight)))
        if "cpu.quota" in s or "cpu.period" in s:
            key = "cpu.quota" if "cpu.quota" in s else "cpu.period"
            try:
                quota, period = _read(d / "cpu.max").split()
            except FileNotFoundError:
                raise ValueError(f"{key}: {d / 'cpu.max'} does not exist (cpu controller not"
                                 " enabled for this cgroup)") from None
            quota = _max_or(s["cpu.quota"]) if "cpu.quota" in s else quota
            period = str(s.get("cpu.period", period))
            plan.append((key, s[key], d / "cpu.max", f"{quota} {period}"))
        for key, name in (("cpu.cpus", "cpuset.cpus"), ("cpu.mems", "cpuset.mems"),
                          ("pids.limit", "pids.max")):
            if key in s:
                text = _max_or(s[key]) if key == "pids.limit" else s[key]
                plan.append((key, s[key], d / name, text))
        return plan

    # -- statistics -------------------------------------------------------

    def _stats_v1(self) -> v1_metrics.Metrics:
        m = v1_metrics.Metrics()
        if d := self.dirs.get("pids"):
            m.pids.current = _int(d / "pids.current")
            m.pids.limit = _int(d / "pids.max", unlimited=0)
        if d := self.dirs.get("cpuacct"):
            usage = m.cpu.usage
            usage.total = _int(d / "cpuacct.usage")
            if (d / "cpuacct.usage_user").exists():
                usage.user = _int(d / "cpuacct.usage_user")
                usage.kernel = _int(d / "cpuacct.usage_sys")
            else:  # older kernels: clock ticks only
                ticks = _kv(d / "cpuacct.stat")
                ns_per_tick = 10**9 // os.sysconf("SC_CLK_TCK")
                usage.user = ticks.get("user", 0) * ns_per_tick
                usage.kernel = ticks.get("system", 0) * ns_per_tick
            usage.per_cpu.extend(int(v) for v in _read(d / "cpuacct.usage_percpu").split())
        if d := self.dirs.get("cpu"):
            cpu = _kv(d / "cpu.stat")
            throttling = m.cpu.throttling
            throttling.periods = cpu.get("nr_periods", 0)
            throttling.throttled_periods = cpu.get("nr_throttled", 0)
            throttling.throttled_time = cpu.get("throttled_time", 0)
        if d := self.dirs.get("memory"):
            mem = m.memory
            _fill(mem, {_v1_stat_field(k): v for k, v in _kv(d / "memory.stat").items()})
            for entry, prefix in ((mem.usage, "memory."), (mem.swap, "memory.memsw."),
                                  (mem.kernel, "memory.kmem."), (mem.kernel_tcp, "memory.kmem.tcp.")):
                entry.usage = _int(d / f"{prefix}usage_in_bytes")
                entry.limit = _int(d / f"{prefix}limit_in_bytes")
                entry.max = _int(d / f"{prefix}max_usage_in_bytes")
                entry.failcnt = _int(d / f"{prefix}failcnt")
            _fill(m.memory_oom_control, _kv(d / "memory.oom_control"))
        return m

    def _stats_v2(self) -> v2_metrics.Metrics:
        d = self.dirs[""]
        m = v2_metrics.Metrics()
        m.pids.current = _int(d / "pids.current")
        m.pids.limit = _int(d / "pids.max")
        _fill(m.cpu, _kv(d / "cpu.stat"))
        mem = m.memory
        _fill(mem, _kv(d / "memory.stat"))
        for field, name in (("usage", "memory.current"), ("usage_limit", "memory.max"),
                            ("swap_usage", "memory.swap.current"), ("swap_limit", "memory.swap.max"),
                            ("max_usage", "memory.peak"), ("swap_max_usage", "memory.swap.peak")):
            setattr(mem, field, _int(d / name))
        _fill(m.memory_events, _kv(d / "memory.events"))
        return m


# -- locating a cgroup ----------------------------------------------------

def _locate(path: str, v2_mount: str | None) -> tuple[int, dict[str, Path], list[str]]:
    """(version, {controller or "": directory the path is relative to}, path components)."""
    absolute, parts = _split(path)
    mounts = _cgroup_mounts()
    own = {} if absolute else _own_cgroups()
    if v2_mount is None and any(fs == "cgroup2" and mp == CGROUP_ROOT for fs, _r, mp, _o in mounts):
        v2_mount = CGROUP_ROOT
    if v2_mount is not None:
        v2_mount = os.path.normpath(v2_mount)
        root = next((r for fs, r, mp, _o in mounts if fs == "cgroup2" and mp == v2_mount), None)
        if root is None:
            raise ValueError(f"{v2_mount} is not a cgroup2 mount point")
        return 2, {"": _base(v2_mount, root, absolute, own.get(""))}, parts
    bases: dict[str, Path] = {}
    for fs, root, mp, opts in mounts:
        for controller in V1_CONTROLLERS:
            if fs == "cgroup" and controller in opts and controller not in bases:
                bases[controller] = _base(mp, root, absolute, own.get(controller))
    if not bases:
        raise RuntimeError("no cgroup v1 controller is mounted and /sys/fs/cgroup is not cgroup2")
    return 1, bases, parts


def _split(path: str) -> tuple[bool, list[str]]:
    """(absolute?, components) of a cgroupsPath; ValueError for forms we refuse."""
    if not isinstance(path, str) or not path:
        raise ValueError("cgroupsPath is empty")
    if not path.startswith("/") and path.count(":") == 2:
        raise ValueError(f"cgroupsPath {path!r}: the systemd form slice:prefix:name is not"
                         " supported; use a path such as /ringfence/<id>")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"cgroupsPath {path!r} must not contain '..'")
    if not parts:
        raise ValueError(f"cgroupsPath {path!r} names a hierarchy root")
    return path.startswith("/"), parts


def _base(mountpoint: str, mount_root: str, absolute: bool, own: str | None) -> Path:
    """What a cgroupsPath is relative to in one hierarchy: the mount point for
    an absolute path, this process's own cgroup there for a relative one."""
    if absolute:
        return Path(mountpoint)
    if own is None:
        raise RuntimeError(f"/proc/self/cgroup has no entry for the hierarchy at {mountpoint}")
    rel = os.path.relpath(own, mount_root)
    if rel == ".." or rel.startswith("../"):
        raise RuntimeError(f"own cgroup {own} lies outside the mount at {mountpoint}")
    return Path(mountpoint, rel)


def _cgroup_mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, root, mount point, super options) of every cgroup and cgroup2 mount."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _sep, after = line.partition(" - ")
            fields, super_fields = before.split(), after.split()
            fstype, options = super_fields[0], super_fields[2]  # [1] is the source
            if fstype in ("cgroup", "cgroup2"):
                mounts.append((fstype, _unescape(fields[3]), _unescape(fields[4]),
                               set(options.split(","))))
    return mounts


def _unescape(field: str) -> str:
    r"""A mountinfo path with its octal escapes (\040 for a space) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller ("" for the v2 hierarchy)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(",") if names else [""]:
                own[name] = path
    return own


def _mkdirs(base: Path, parts: list[str]) -> list[Path]:
    """mkdir -p base/parts; the directories made, parents first. Starts over
    when another container's remove() deletes a parent in between."""
    made: list[Path] = []
    attempts = 5
    while True:
        d = base
        try:
            for part in parts:
                d = d / part
                try:
                    d.mkdir()
                    made.append(d)
                except FileExistsError:
                    pass
            return made
        except FileNotFoundError:
            attempts -= 1
            if not attempts or not base.is_dir():
                raise


def _v1_stat_field(key: str) -> str:
    """The MemoryStat field of a v1 memory.stat key (pgpgin → pg_pg_in, ...)."""
    total, base = ("total_", key[6:]) if key.startswith("total_") else ("", key)
    return total + _V1_STAT_NAMES.get(base, base)


def _enable_controllers(d: Path) -> None:
    """Enable V2_CONTROLLERS for d's children where d has them. Failures
    (processes in d, a threaded group) are left for apply() to report."""
    available = set(_read(d / "cgroup.controllers").split())
    enabled = set(_read(d / "cgroup.subtree_control").split())
    for controller in V2_CONTROLLERS:
        if controller in available and controller not in enabled:
            try:
                _write(d / "cgroup.subtree_control", f"+{controller}")
            except OSError:
                pass


def _rmdir_retrying(d: Path, deadline: float) -> None:
    delay = 0.005
    while True:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


# -- validating resources -------------------------------------------------

def _validate(resources: dict) -> dict:
    """The settings to apply, keyed "memory.limit", "cpu.shares", ...; values
    that mean "leave alone" are dropped. ValueError for a bad one."""
    if not isinstance(resources, dict):
        raise ValueError("linux.resources must be a JSON object")
    s: dict = {}
    for section, keys in (("memory", ("limit", "reservation", "swap")),
                          ("cpu", ("shares", "quota", "period", "cpus", "mems")),
                          ("pids", ("limit",))):
        sub = resources.get(section)
        if sub is None:
            continue
        if not isinstance(sub, dict):
            raise ValueError(f"linux.resources.{section} must be a JSON object, not {sub!r}")
        for k in keys:
            if sub.get(k) is not None:
                s[f"{section}.{k}"] = sub[k]

    def fail(key, why):
        raise ValueError(f"linux.resources {key}={s[key]!r}: {why}")

    for key, value in s.items():
        if key in ("cpu.cpus", "cpu.mems"):
            if not isinstance(value, str):
                fail(key, "must be a string such as \"0-3,6\"")
            for item in value.split(",") if value else ():
                m = _CPU_LIST.fullmatch(item.strip())
                if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                    fail(key, "must be a list of numbers and ranges such as \"0-3,6\"")
        elif not isinstance(value, int) or isinstance(value, bool):
            fail(key, "must be an integer")
        elif key == "cpu.shares" and value and not 2 <= value <= 262144:
            fail(key, "must be between 2 and 262144")
        elif key == "cpu.period" and value and not 1000 <= value <= 1000000:
            fail(key, "must be between 1000 and 1000000 (µs)")
        elif key == "cpu.quota" and value and value != -1 and value < 1000:
            fail(key, "must be -1 (unlimited) or at least 1000 (µs)")
        elif key.startswith("memory.") and value < -1:
            fail(key, "must be -1 (unlimited) or a number of bytes")
    limit, swap = s.get("memory.limit", 0), s.get("memory.swap", 0)
    if limit > 0 and 0 < swap < limit:
        fail("memory.swap", f"memory+swap must be at least memory.limit ({limit})")
    return {k: v for k, v in s.items() if v not in (0, "")}


# -- files ----------------------------------------------------------------

def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, text: str) -> None:
    """One write(2), so the kernel's error for the value reaches us."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _int(path: Path, unlimited: int = _UINT64_MAX) -> int:
    """A one-number file; "max" reads as ``unlimited``, a missing file as 0."""
    try:
        text = _read(path)
    except FileNotFoundError:
        return 0
    return unlimited if text == "max" else int(text)


def _kv(path: Path, missing_ok: bool = True) -> dict[str, int]:
    """A flat-keyed file ("name value" lines) as a dict ({} if missing)."""
    try:
        lines = _read(path).splitlines()
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise
    return {k: int(v) for k, v in (line.split() for line in lines)}


def _fill(message: Message, values: dict[str, int]) -> None:
    """Set the scalar fields of message named like the keys of values."""
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in values.items():
        field = fields.get(name)
        if field is not None and field.message_type is None and 0 <= value <= _UINT64_MAX:
            setattr(message, name, value)


def _max_or(value: int) -> str:
    """A limit as v2 and pids.max write it: negative means "max"."""
    return "max" if value < 0 else str(value)
