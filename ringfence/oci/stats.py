"""``ringfence events``: the cgroup's statistics as runc prints them (its
``types.Stats`` JSON) and the events (stats, oom) themselves."""
from __future__ import annotations

_RAW_NAMES = {"pg_pg_in": "pgpgin", "pg_pg_out": "pgpgout", "pg_fault": "pgfault",
              "pg_maj_fault": "pgmajfault", "hierarchical_swap_limit": "hierarchical_memsw_limit"}
_ENTRIES = {"usage": "usage", "swap": "swap", "kernel": "kernel", "kernel_tcp": "kernelTCP"}


def runc_stats(metrics) -> dict:
    """runc's stats object from a cgroup Metrics message (v1 or v2)."""
    if metrics.DESCRIPTOR.full_name.startswith("io.containerd.cgroups.v2"):
        return _v2(metrics)
    return _v1(metrics)


def _v1(m) -> dict:
    usage = m.cpu.usage
    mem = m.memory
    raw = {}
    for field, value in mem.ListFields():
        if field.type != field.TYPE_MESSAGE:
            total, base = ("total_", field.name[6:]) if field.name.startswith("total_") else ("", field.name)
            raw[total + _RAW_NAMES.get(base, base)] = value
    memory = {"cache": mem.cache, "raw": raw}
    for field, key in _ENTRIES.items():
        entry = getattr(mem, field)
        memory[key] = {"limit": entry.limit, "usage": entry.usage, "max": entry.max, "failcnt": entry.failcnt}
    return {
        "cpu": {"usage": {"total": usage.total, "percpu": list(usage.per_cpu), "kernel": usage.kernel,
                          "user": usage.user},
                "throttling": {"periods": m.cpu.throttling.periods,
                               "throttledPeriods": m.cpu.throttling.throttled_periods,
                               "throttledTime": m.cpu.throttling.throttled_time}},
        "memory": memory,
        "pids": {"current": m.pids.current, "limit": m.pids.limit},
        "blkio": {},
        "hugetlb": {},
    }


def _v2(m) -> dict:
    mem = m.memory
    raw = {f.name: v for f, v in mem.ListFields() if f.type != f.TYPE_MESSAGE}
    return {
        "cpu": {"usage": {"total": m.cpu.usage_usec * 1000, "kernel": m.cpu.system_usec * 1000,
                          "user": m.cpu.user_usec * 1000},
                "throttling": {"periods": m.cpu.nr_periods, "throttledPeriods": m.cpu.nr_throttled,
                               "throttledTime": m.cpu.throttled_usec * 1000}},
        "memory": {"usage": {"limit": mem.usage_limit, "usage": mem.usage, "max": mem.max_usage},
                   "swap": {"limit": mem.swap_limit, "usage": mem.swap_usage, "max": mem.swap_max_usage},
                   "raw": raw},
        "pids": {"current": m.pids.current, "limit": m.pids.limit},
        "blkio": {},
        "hugetlb": {},
    }


def stats_event(cid: str, cgroup) -> dict:
    return {"type": "stats", "id": cid, "data": runc_stats(cgroup.stats())}


def oom_event(cid: str) -> dict:
    return {"type": "oom", "id": cid}
