"""The contents of the system-wide files of /proc: uptime, loadavg, stat, meminfo, cpuinfo...

Everything describes the sandbox: its processes, its boot time, its kernel
version.  CPU time is what the sandbox's live processes used (the host's CPU
clocks of their stubs); the machine's memory and CPU count come from the
host's sysconf, the CPU model is a fixed string (the sentry never reads host
files).
"""
from __future__ import annotations

import time

from ..abi.proc import CLK_TCK, HWCAP_FLAGS
from ..kernel.schedattrs import online_cpus
from ..kernel.task import TaskState
from .proc_pid import process_cpu_ticks

FILESYSTEMS = (b"nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevpts\nnodev\toverlay\nnodev\t9p\n"
               b"nodev\tpipefs\n")
CPU_MODEL = b"ringfence virtual CPU"
_CPU_MHZ = 2000.0


def _busy_ticks(k) -> int:
    """CPU time the sandbox's live processes have used, in clock ticks."""
    total = 0
    for tg in k.threadgroups():
        leader = tg.leader or next(iter(tg.tasks.values()), None)
        if leader is not None:
            total += process_cpu_ticks(tg, leader)
    return total


def _uptime(k) -> float:
    return time.monotonic() - k.boot_monotonic


def _counts(k) -> tuple[int, int]:
    """(running tasks, all tasks)."""
    tasks = list(k.tasks.values())
    return sum(t.state is TaskState.RUNNING for t in tasks), len(tasks)


def uptime(k) -> bytes:
    """/proc/uptime: seconds since the sandbox booted, and idle CPU-seconds."""
    up = _uptime(k)
    idle = max(0.0, up * online_cpus() - _busy_ticks(k) / CLK_TCK)
    return b"%.2f %.2f\n" % (up, idle)


def loadavg(k) -> bytes:
    """/proc/loadavg: load averages (not sampled: 0), running/total tasks, the last pid."""
    running, total = _counts(k)
    return b"0.00 0.00 0.00 %d/%d %d\n" % (running, total, k.last_pid)


def stat(k) -> bytes:
    """/proc/stat: CPU time (the sandbox's busy time as user time, the rest idle), boot time, counts."""
    ncpu = online_cpus()
    busy = _busy_ticks(k)
    idle = max(0, int(_uptime(k) * CLK_TCK) * ncpu - busy)
    running, _ = _counts(k)
    lines = [b"cpu  %d 0 0 %d 0 0 0 0 0 0" % (busy, idle)]
    lines += [b"cpu%d %d 0 0 %d 0 0 0 0 0 0" % (i, busy // ncpu, idle // ncpu) for i in range(ncpu)]
    lines += [b"intr 0", b"ctxt 0", b"btime %d" % int(k.boot_time), b"processes %d" % k.last_pid,
              b"procs_running %d" % running, b"procs_blocked 0", b"softirq 0 0 0 0 0 0 0 0 0 0 0"]
    return b"\n".join(lines) + b"\n"


def meminfo(k) -> bytes:
    """/proc/meminfo: the memory the sandbox has (Kernel.memory); what it cannot know is 0."""
    total, free = (n // 1024 for n in k.memory())
    rows = [("MemTotal", total), ("MemFree", free), ("MemAvailable", free)]
    rows += [(name, 0) for name in (
        "Buffers", "Cached", "SwapCached", "Active", "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)",
        "Inactive(file)", "Unevictable", "Mlocked", "SwapTotal", "SwapFree", "Dirty", "Writeback", "AnonPages",
        "Mapped", "Shmem", "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables",
        "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed", "VmallocChunk", "AnonHugePages")]
    return b"".join(b"%-15s %8d kB\n" % (name.encode() + b":", kb) for name, kb in rows)


def cpuinfo(k) -> bytes:
    """/proc/cpuinfo: one block per CPU, a fixed model, the flags the host's AT_HWCAP shows."""
    ncpu = online_cpus()
    flags = b" ".join(name.encode() for i, name in enumerate(HWCAP_FLAGS) if name and k.hwcap >> i & 1)
    blocks = []
    for cpu in range(ncpu):
        rows = [("processor", b"%d" % cpu), ("vendor_id", b"ringfence"), ("cpu family", b"6"), ("model", b"0"),
                ("model name", CPU_MODEL), ("stepping", b"0"), ("cpu MHz", b"%.3f" % _CPU_MHZ),
                ("physical id", b"0"), ("siblings", b"%d" % ncpu), ("core id", b"%d" % cpu),
                ("cpu cores", b"%d" % ncpu), ("apicid", b"%d" % cpu), ("fpu", b"yes"), ("fpu_exception", b"yes"),
                ("wp", b"yes"), ("flags", flags), ("bogomips", b"%.2f" % (2 * _CPU_MHZ)),
                ("clflush size", b"64"), ("cache_alignment", b"64"),
                ("address sizes", b"48 bits physical, 48 bits virtual")]
        blocks.append(b"".join(b"%s%s: %s\n" % (name.encode(), b"\t\t" if len(name) < 8 else b"\t", value)
                               for name, value in rows) + b"\n")
    return b"".join(blocks)
