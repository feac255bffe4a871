"""The contents of the per-process files of /proc/PID (and /proc/PID/task/TID).

Each function takes the process (`tg`) and the task the file describes (its
leader for /proc/PID, the thread for task/TID) and returns the text, in
Linux's format.  Memory figures come from the sandbox's VMAs (see mm/), CPU
times from the host's CPU clocks of the stub threads.
"""
from __future__ import annotations


from ..abi.fs import O_CLOEXEC, major, minor
from ..abi.mm import PAGE_SIZE
from ..abi.proc import CLK_TCK, PF_RANDOMIZE, RLIMIT_RSS, RLIMIT_SIGPENDING, RLIMITS, STATE_NAMES
from ..abi.resource import RLIM_INFINITY
from ..abi.sched import RT_POLICIES
from ..abi.signal import NSIG, SIG_DFL, SIG_IGN, bit
from ..kernel.errors import SysError
from ..kernel.schedattrs import online_cpus

# /proc/PID/maps puts the path at this column.
_MAPS_NAME_COLUMN = 73
# The signals the obsolete sigset fields of /proc/PID/stat can show (1-31).
_OLD_SIGSET = 0x7FFFFFFF
# Linux reads at most a page of a setproctitle()'d command line.
_PROCTITLE_MAX = PAGE_SIZE


# -- what the files are made from ---------------------------------------------------
def live_mm(tg, task):
    """The memory of `task`, or None once its process is a zombie (Linux drops it at exit)."""
    return None if tg.exit_status is not None else task.mm


def state(tg, thread) -> str:
    """The one-letter state of the process (thread None) or of one of its threads."""
    if thread is None or tg.exit_status is not None:
        return tg.state
    return "T" if tg.stop_signal else thread.state.value


def process_cpu_ticks(tg, task) -> int:
    """The CPU time of the process (all its threads) in clock ticks (0 once it is a zombie)."""
    return 0 if live_mm(tg, task) is None else tg.cpu_ns() * CLK_TCK // 1_000_000_000


def _thread_cpu_ticks(tg, thread) -> int:
    return 0 if live_mm(tg, thread) is None else thread.cpu_ns() * CLK_TCK // 1_000_000_000


def _priority(sched) -> int:
    """stat's priority: 20 + nice for normal tasks, -1 - rt_priority for real-time ones."""
    return -1 - sched.rt_priority if sched.policy in RT_POLICIES else 20 + sched.nice


def _since_boot_ticks(k, moment: float) -> int:
    return int((moment - k.boot_monotonic) * CLK_TCK)


def _sigmask(entries) -> int:
    mask = 0
    for entry in entries:
        mask |= bit(entry[0])
    return mask


def _dispositions(tg) -> tuple[int, int]:
    """(ignored, caught) signal masks."""
    ignored = caught = 0
    for sig in range(1, NSIG + 1):
        handler = tg.actions[sig].handler
        if handler == SIG_IGN:
            ignored |= bit(sig)
        elif handler != SIG_DFL:
            caught |= bit(sig)
    return ignored, caught


def _escape_name(name: bytes) -> bytes:
    """A command name as status shows it (backslash and newline escaped)."""
    return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


# -- the files ---------------------------------------------------------------------
def stat(tg, task, thread) -> bytes:
    """/proc/PID/stat (thread None) or /proc/PID/task/TID/stat: the 52 fields of proc(5)."""
    k = tg.kernel
    mm = live_mm(tg, task)
    if mm is not None:
        lay = mm.layout
        use = mm.usage()
        memory = [use.size, use.rss // PAGE_SIZE]
        code = [*lay.code, lay.stack]
        data = [*lay.data, mm.brk_start, *lay.args, *lay.env]
    else:
        memory, code, data = [0, 0], [0, 0, 0], [0] * 7
    if thread is None:
        pid, cpu, started = tg.pid, process_cpu_ticks(tg, task), tg.start_time
    else:
        pid, cpu, started = thread.tid, _thread_cpu_ticks(tg, thread), thread.start_time
    ignored, caught = _dispositions(tg)
    # The obsolete signal fields show only signals 1-31, the thread's own pending ones.
    signals = [m & _OLD_SIGSET for m in (_sigmask(task.pending), task.sigmask, ignored, caught)]
    exit_code = tg.exit_status if tg.exit_status is not None else 0
    tty = tg.tty  # the controlling terminal: its device, and its foreground group
    tty_nr, tpgid = (tty.inode.rdev, tty.pgrp or -1) if tty is not None else (0, -1)
    fields = [
        tg.ppid, tg.pgid, tg.sid, tty_nr, tpgid, PF_RANDOMIZE,  # ppid pgrp session tty_nr tpgid flags
        0, 0, 0, 0, cpu, 0, 0, 0,  # minflt cminflt majflt cmajflt utime stime cutime cstime
        _priority(task.sched), task.sched.nice, len(tg.tasks), 0,  # priority nice num_threads itrealvalue
        _since_boot_ticks(k, started),  # starttime
        *memory, tg.rlimit(RLIMIT_RSS)[0],  # vsize rss rsslim
        *code, 0, 0,  # startcode endcode startstack kstkesp kstkeip
        *signals,  # signal blocked sigignore sigcatch
        0, 0, 0, tg.exit_signal, 0,  # wchan nswap cnswap exit_signal processor
        task.sched.rt_priority, task.sched.policy, 0, 0, 0,  # ... delayacct_blkio_ticks guest_time cguest_time
        *data, exit_code,  # start_data end_data start_brk arg_start arg_end env_start env_end exit_code
    ]
    return b"%d (%s) %s %s\n" % (pid, tg.comm, state(tg, thread).encode(), b" ".join(b"%d" % v for v in fields))


def _fd_size(task) -> int:
    """The size Linux's fd table would have grown to: 64, then powers of two times 128."""
    items = task.fdtable.items() if task.fdtable is not None else []
    highest = items[-1][0] if items else 0
    if highest < 64:
        return 64
    slots = 1
    while slots <= highest // 128:
        slots *= 2
    return slots * 128


def _cpu_mask(mask: int, ncpu: int) -> bytes:
    """A CPU bitmap as Linux prints it: hex digits for `ncpu` bits, in comma-separated groups of 32 bits."""
    digits = b"%0*x" % ((ncpu + 3) // 4, mask)
    groups = []
    while digits:
        groups.insert(0, digits[-8:])
        digits = digits[:-8]
    return b",".join(groups)


def _cpu_list(mask: int) -> bytes:
    """A CPU bitmap as a list of ranges ("0-3,6")."""
    ranges, cpu = [], 0
    while mask >> cpu:
        if mask >> cpu & 1:
            last = cpu
            while mask >> (last + 1) & 1:
                last += 1
            ranges.append(b"%d" % cpu if last == cpu else b"%d-%d" % (cpu, last))
            cpu = last
        cpu += 1
    return b",".join(ranges)


def status(tg, task, thread) -> bytes:
    """/proc/PID/status: identity, memory, signals, capabilities and CPUs, in Linux's order."""
    c = task.creds
    st = state(tg, thread)
    tid = task.tid if thread is not None else tg.pid
    lines = [
        b"Name:\t%s" % _escape_name(tg.comm),
        b"Umask:\t%04o" % task.fs.umask,
        b"State:\t%s (%s)" % (st.encode(), STATE_NAMES.get(st, "unknown").encode()),
        b"Tgid:\t%d" % tg.pid,
        b"Ngid:\t0",
        b"Pid:\t%d" % tid,
        b"PPid:\t%d" % tg.ppid,
        b"TracerPid:\t0",
        b"Uid:\t%d\t%d\t%d\t%d" % (c.uid, c.euid, c.suid, c.fsuid),
        b"Gid:\t%d\t%d\t%d\t%d" % (c.gid, c.egid, c.sgid, c.fsgid),
        b"FDSize:\t%d" % _fd_size(task),
        b"Groups:\t%s " % b" ".join(b"%d" % g for g in c.groups),
        b"NStgid:\t%d" % tg.pid,
        b"NSpid:\t%d" % tid,
        b"NSpgid:\t%d" % tg.pgid,
        b"NSsid:\t%d" % tg.sid,
        b"Kthread:\t0",
    ]
    mm = live_mm(tg, task)
    if mm is not None:
        lines += _memory_status(mm)
    ignored, caught = _dispositions(tg)
    queued = len(tg.pending) + sum(len(t.pending) for t in tg.tasks.values())
    lines += [
        b"CoreDumping:\t0",
        b"THP_enabled:\t1",
        b"untag_mask:\t0xffffffffffffffff",
        b"Threads:\t%d" % len(tg.tasks),
        b"SigQ:\t%d/%d" % (queued, tg.rlimit(RLIMIT_SIGPENDING)[0]),
        b"SigPnd:\t%016x" % _sigmask(task.pending),
        b"ShdPnd:\t%016x" % _sigmask(tg.pending),
        b"SigBlk:\t%016x" % task.sigmask,
        b"SigIgn:\t%016x" % ignored,
        b"SigCgt:\t%016x" % caught,
        b"CapInh:\t%016x" % c.cap_inheritable,
        b"CapPrm:\t%016x" % c.cap_permitted,
        b"CapEff:\t%016x" % c.cap_effective,
        b"CapBnd:\t%016x" % c.cap_bounding,
        b"CapAmb:\t%016x" % c.cap_ambient,
        b"NoNewPrivs:\t%d" % tg.no_new_privs,
        b"Seccomp:\t0",
        b"Seccomp_filters:\t0",
        b"Cpus_allowed:\t%s" % _cpu_mask(task.sched.cpus, online_cpus()),
        b"Cpus_allowed_list:\t%s" % _cpu_list(task.sched.cpus),
        b"Mems_allowed:\t00000001",
        b"Mems_allowed_list:\t0",
        b"voluntary_ctxt_switches:\t0",
        b"nonvoluntary_ctxt_switches:\t0",
    ]
    return b"\n".join(lines) + b"\n"


def _memory_status(mm) -> list[bytes]:
    use = mm.usage()
    sizes = [("VmPeak", use.peak), ("VmSize", use.size), ("VmLck", 0), ("VmPin", 0), ("VmHWM", use.rss),
             ("VmRSS", use.rss), ("RssAnon", use.rss_anon), ("RssFile", use.rss_file), ("RssShmem", 0),
             ("VmData", use.data), ("VmStk", use.stack), ("VmExe", use.exe), ("VmLib", use.lib), ("VmPTE", 0),
             ("VmSwap", 0), ("HugetlbPages", 0)]
    return [b"%s:\t%8d kB" % (name.encode(), size // 1024) for name, size in sizes]


def statm(tg, task) -> bytes:
    """/proc/PID/statm: size resident shared text lib data dt, in pages."""
    mm = live_mm(tg, task)
    if mm is None:
        return b"0 0 0 0 0 0 0\n"
    use = mm.usage()
    pages = (use.size, use.rss, use.rss_file, use.exe, 0, use.data + use.stack, 0)
    return b"%d %d %d %d %d %d %d\n" % tuple(n // PAGE_SIZE for n in pages)


def maps(tg, task) -> bytes:
    """/proc/PID/maps: one line per mapping, `start-end perms offset dev inode path`."""
    mm = live_mm(tg, task)
    if mm is None:
        return b""
    lines = []
    for v in mm.vmas:
        line = b"%08x-%08x %s %08x %02x:%02x %d " % (v.start, v.end, v.perms(), v.offset, major(v.dev),
                                                     minor(v.dev), v.ino)
        if v.name:
            line = line.ljust(_MAPS_NAME_COLUMN) + v.name.replace(b"\n", b"\\012")
        lines.append(line + b"\n")
    return b"".join(lines)


def cmdline(tg, task) -> bytes:
    """/proc/PID/cmdline: the argument strings, read from the program's memory.

    As on Linux, a program that overwrote the NUL ending its arguments
    (setproctitle) gets the one string starting at its argv[0]."""
    mm = live_mm(tg, task)
    if mm is None:
        return b""
    lo, hi = mm.layout.args
    data = mm.read_partial(lo, hi - lo)
    if data and data[-1] != 0:
        title = mm.read_partial(lo, _PROCTITLE_MAX)
        nul = title.find(b"\0")
        return title if nul < 0 else title[:nul + 1]
    return data


def environ(tg, task) -> bytes:
    """/proc/PID/environ: the initial environment strings, read from the program's memory."""
    mm = live_mm(tg, task)
    if mm is None:
        return b""
    lo, hi = mm.layout.env
    return mm.read_partial(lo, hi - lo)


def limits(tg) -> bytes:
    """/proc/PID/limits: the resource limits table."""
    lines = [b"%-25s %-20s %-20s %-10s" % (b"Limit", b"Soft Limit", b"Hard Limit", b"Units")]
    for resource, (name, unit) in enumerate(RLIMITS):
        values = [b"unlimited" if v == RLIM_INFINITY else b"%d" % v for v in tg.rlimit(resource)]
        line = b"%-25s %-20s %-20s " % (name.encode(), *values)
        lines.append(line + (b"%-10s" % unit.encode() if unit else b""))
    return b"\n".join(lines) + b"\n"


def fdinfo(task, fd: int) -> bytes:
    """/proc/PID/fdinfo/FD: offset, flags (with O_CLOEXEC), mount id and inode number."""
    try:
        f = task.fdtable.get(fd)
    except SysError:
        return b""
    flags = f.flags | (O_CLOEXEC if task.fdtable.cloexec(fd) else 0)
    return b"pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%d\n" % (f.offset, flags, f.loc.mount.id, f.stat().st_ino)
