"""/proc for processes: the VMA list behind maps, the per-process files, the
system-wide files, and the tools that read them (procps ps/top, busybox ps).

The first tests drive the MemoryManager's VMA list directly; the rest run
programs under `ringfence do` and read what they print.
"""
from __future__ import annotations

import json
import os
import re
import shutil

from ringfence.sentry.abi.mm import PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE
from ringfence.sentry.mm.vma import HEAP, Vma, VmaList

PAGE = 4096
RW = PROT_READ | PROT_WRITE
_MAPS_LINE = re.compile(rb"^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-][w-][x-][ps]) ([0-9a-f]{8}) ([0-9a-f]{2}:[0-9a-f]{2}) "
                        rb"(\d+) *(.*)$")

# Keys of the host's /proc/PID/status the sentry leaves out: the host CPU's
# speculation-mitigation and shadow-stack state are not the sandbox's to show.
STATUS_KEYS_MISSING = {"Speculation_Store_Bypass", "SpeculationIndirectBranch", "x86_Thread_features",
                       "x86_Thread_features_locked"}
# Keys the sentry shows that an older host kernel may not have.
STATUS_KEYS_NEWER = {"Kthread", "untag_mask", "THP_enabled", "Seccomp_filters", "CoreDumping", "NSpgid", "NSsid",
                     "NStgid", "NSpid", "HugetlbPages", "RssShmem", "RssFile", "RssAnon", "VmPin", "Umask"}


def layout(vmas: VmaList) -> list[tuple]:
    return [(v.start // PAGE, v.end // PAGE, v.prot, v.name, v.offset // PAGE) for v in vmas]


# -- the VMA list --------------------------------------------------------------------
def test_vma_map_merges_and_fixed_map_replaces():
    vmas = VmaList()
    vmas.map(Vma(10 * PAGE, 12 * PAGE, RW, False))
    vmas.map(Vma(12 * PAGE, 14 * PAGE, RW, False))  # adjacent, same kind: one mapping
    assert layout(vmas) == [(10, 14, RW, b"", 0)]
    vmas.map(Vma(11 * PAGE, 12 * PAGE, PROT_READ, False, b"/f", 5 * PAGE, dev=1, ino=7))  # MAP_FIXED inside
    assert layout(vmas) == [(10, 11, RW, b"", 0), (11, 12, PROT_READ, b"/f", 5), (12, 14, RW, b"", 0)]
    assert vmas.total == 4 * PAGE and vmas.peak == 4 * PAGE
    assert vmas.find(11 * PAGE + 5).name == b"/f" and vmas.find(14 * PAGE) is None


def test_vma_unmap_and_protect_split():
    vmas = VmaList()
    vmas.map(Vma(0x100 * PAGE, 0x110 * PAGE, RW, False, b"/lib", 0, dev=1, ino=2))
    vmas.unmap(0x104 * PAGE, 0x106 * PAGE)
    vmas.protect(0x108 * PAGE, 0x10A * PAGE, PROT_READ | PROT_EXEC)
    assert layout(vmas) == [(0x100, 0x104, RW, b"/lib", 0), (0x106, 0x108, RW, b"/lib", 6),
                            (0x108, 0x10A, PROT_READ | PROT_EXEC, b"/lib", 8), (0x10A, 0x110, RW, b"/lib", 10)]
    vmas.protect(0x108 * PAGE, 0x10A * PAGE, RW)  # back as it was: the pieces merge again
    assert layout(vmas) == [(0x100, 0x104, RW, b"/lib", 0), (0x106, 0x110, RW, b"/lib", 6)]
    assert vmas.total == 14 * PAGE and vmas.peak == 16 * PAGE


def test_vma_remap_grow_shrink_move_and_copy():
    vmas = VmaList()
    vmas.map(Vma(10 * PAGE, 12 * PAGE, RW, False, b"/f", 0, dev=1, ino=2))
    vmas.remap(10 * PAGE, 2 * PAGE, 10 * PAGE, 4 * PAGE, keep_old=False)  # grown in place
    assert layout(vmas) == [(10, 14, RW, b"/f", 0)]
    vmas.remap(10 * PAGE, 4 * PAGE, 10 * PAGE, PAGE, keep_old=False)  # shrunk
    assert layout(vmas) == [(10, 11, RW, b"/f", 0)]
    fork = vmas.copy()
    vmas.remap(10 * PAGE, PAGE, 50 * PAGE, 2 * PAGE, keep_old=False)  # moved
    assert layout(vmas) == [(50, 52, RW, b"/f", 0)]
    assert layout(fork) == [(10, 11, RW, b"/f", 0)]


def test_vma_describe_names_a_range():
    vmas = VmaList()
    vmas.map(Vma(10 * PAGE, 20 * PAGE, PROT_NONE, False))
    vmas.protect(10 * PAGE, 12 * PAGE, PROT_READ)
    vmas.describe(10 * PAGE, 13 * PAGE, b"/bin/x", 0x3000, dev=5, ino=9)
    vmas.map(Vma(20 * PAGE, 21 * PAGE, RW, False, HEAP))
    assert layout(vmas) == [(10, 12, PROT_READ, b"/bin/x", 3), (12, 13, PROT_NONE, b"/bin/x", 5),
                            (13, 20, PROT_NONE, b"", 0), (20, 21, RW, HEAP, 0)]
    assert [v.perms() for v in vmas] == [b"r--p", b"---p", b"---p", b"rw-p"]


# -- helpers for the sandboxed runs ---------------------------------------------------
def _ok(proc) -> bytes:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _sandboxed_python(run_sandboxed, code: str):
    return json.loads(_ok(run_sandboxed(["python3", "-c", code])))


def _ps_rows(out: bytes) -> list[list[str]]:
    return [line.split() for line in out.decode().splitlines()[1:]]


# -- procps, top and busybox ps -------------------------------------------------------
def test_ps_aux_lists_only_the_sandbox(run_sandboxed):
    rows = _ps_rows(_ok(run_sandboxed(["/bin/bash", "-c", "sleep 3 & ps aux"])))
    assert [(r[1], r[10]) for r in rows] == [("1", "/bin/bash"), ("2", "sleep"), ("3", "ps")]
    stats = {r[1]: r[7] for r in rows}
    assert stats["1"].startswith("S") and "s" in stats["1"] and stats["2"] == "S" and stats["3"] == "R"
    for r in rows:
        assert r[0] == "root" and int(r[4]) > 0 and int(r[5]) > 0  # USER, VSZ and RSS (kB)


def test_ps_ef_parents_and_threads(run_sandboxed):
    out = _ok(run_sandboxed(["/bin/bash", "-c", "sleep 3 & ps -ef; ps -eLf; true"]))
    text = out.decode()
    ef, elf = text.split("UID", 2)[1:]
    assert [r.split()[1:3] for r in ef.splitlines()[1:]] == [["1", "0"], ["2", "1"], ["3", "1"]]
    assert [r.split()[1:4] for r in elf.splitlines()[1:]] == [["1", "0", "1"], ["2", "1", "2"], ["4", "1", "4"]]


def test_top_batch(run_sandboxed):
    out = _ok(run_sandboxed(["/bin/bash", "-c", "sleep 3 & top -b -n1"])).decode()
    assert re.search(r"Tasks: +3 total, +1 running, +2 sleeping, +0 stopped, +0 zombie", out), out
    procs = out.split("COMMAND", 1)[1].split()
    rows = [procs[i:i + 12] for i in range(0, len(procs), 12)]
    assert sorted((r[0], r[7], r[11]) for r in rows) == [("1", "S", "bash"), ("2", "S", "sleep"), ("3", "R", "top")]


def test_busybox_ps(run_sandboxed, busybox):
    rows = _ps_rows(_ok(run_sandboxed(["/bin/bash", "-c", f"sleep 3 & {busybox} ps"])))
    assert [(r[0], r[2:]) for r in rows] == [("1", ["/bin/bash", "-c", "sleep", "3", "&", busybox, "ps"]),
                                             ("2", ["sleep", "3"]), ("3", [busybox, "ps"])]


# -- per-process files ------------------------------------------------------------------
def test_maps_shows_the_program_not_the_stub(run_sandboxed):
    cat = os.path.realpath(shutil.which("cat"))
    lines = _ok(run_sandboxed(["cat", "/proc/self/maps"])).splitlines()
    parsed = [_MAPS_LINE.match(line) for line in lines]
    assert all(parsed), lines
    ranges = [(int(m[1], 16), int(m[2], 16)) for m in parsed]
    assert all(lo < hi for lo, hi in ranges) and all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    names = [m[7] for m in parsed]
    assert cat.encode() in names and b"[heap]" in names and b"[stack]" in names
    assert any(n.endswith(b"/libc.so.6") for n in names) and any(b"ld-linux" in n for n in names)
    # The stub page is the only anonymous executable page a stub has; cat maps none.
    assert not [m for m in parsed if b"x" in m[3] and m[6] == b"0"]
    exe = [m for m in parsed if m[7] == cat.encode()]
    assert exe[0][4] == b"00000000" and any(m[3] == b"r-xp" for m in exe)


def test_maps_follow_mmap_mprotect_munmap_mremap(run_sandboxed):
    code = r"""
import ctypes, json, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = libc.mremap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
P = 4096
def maps(lo, hi):
    out = []
    for line in open("/proc/self/maps"):
        a, b = (int(x, 16) for x in line.split()[0].split("-"))
        if a < hi and b > lo:
            out.append([(max(a, lo) - lo) // P, (min(b, hi) - lo) // P, line.split()[1]])
    return out
base = libc.mmap(None, 8 * P, 3, 0x22, -1, 0)
res = {}
libc.mprotect(base + 2 * P, 2 * P, 1)
res["mprotect"] = maps(base, base + 8 * P)
libc.munmap(base + 5 * P, P)
res["munmap"] = maps(base, base + 8 * P)
new = libc.mremap(base + 6 * P, 2 * P, 4 * P, 1, None)
res["mremap"] = maps(new, new + 4 * P)
res["old"] = maps(base + 6 * P, base + 8 * P) if new != base + 6 * P else "in place"
print(json.dumps(res))
"""
    res = _sandboxed_python(run_sandboxed, code)
    assert res["mprotect"] == [[0, 2, "rw-p"], [2, 4, "r--p"], [4, 8, "rw-p"]]
    assert res["munmap"] == [[0, 2, "rw-p"], [2, 4, "r--p"], [4, 5, "rw-p"], [6, 8, "rw-p"]]
    assert res["mremap"] == [[0, 4, "rw-p"]] and res["old"] in ([], "in place")


def test_stat_fields(run_sandboxed):
    script = "cat /proc/self/stat; cat /proc/uptime; nice -n 5 cat /proc/self/stat"
    out = _ok(run_sandboxed(["/bin/bash", "-c", script]))
    stat_line, uptime, niced = out.decode().splitlines()
    head, rest = stat_line.rsplit(") ", 1)
    pid, comm = head.split(" (", 1)
    fields = [pid, comm] + rest.split()
    assert len(fields) == 52
    assert (fields[0], fields[1], fields[2], fields[3]) == ("2", "cat", "R", "1")
    assert fields[4] == "1" and fields[5] == "1" and fields[6] == "0" and fields[7] == "-1"  # pgrp session tty tpgid
    assert fields[19] == "1"  # num_threads
    assert 0 <= int(fields[21]) <= float(uptime.split()[0]) * 100 + 1  # starttime, in ticks since boot
    assert int(fields[22]) > 0 and int(fields[23]) > 0  # vsize, rss
    code_lo, code_hi, stack = (int(f) for f in fields[25:28])
    assert 0 < code_lo < code_hi and stack > 0
    assert fields[37] == "17"  # exit_signal SIGCHLD
    arg_lo, arg_hi, env_lo, env_hi = (int(f) for f in fields[47:51])
    assert arg_lo < arg_hi <= env_lo < env_hi
    assert fields[51] == "0"
    assert niced.rsplit(") ", 1)[1].split()[15:17] == ["25", "5"]  # priority, nice


def test_status_keys_match_the_host(run_native, run_sandboxed):
    def keys(out: bytes) -> list[str]:
        return [line.split(":", 1)[0] for line in out.decode().splitlines()]

    native = keys(_ok(run_native(["cat", "/proc/self/status"])))
    sandboxed = keys(_ok(run_sandboxed(["cat", "/proc/self/status"])))
    assert len(sandboxed) == len(set(sandboxed))
    assert set(native) - set(sandboxed) <= STATUS_KEYS_MISSING
    assert set(sandboxed) - set(native) <= STATUS_KEYS_NEWER
    common = [k for k in native if k in sandboxed]
    assert [k for k in sandboxed if k in native] == common  # same order


def test_status_values(run_sandboxed):
    code = r"""
import json, os, signal, threading
signal.signal(signal.SIGUSR1, lambda *a: None)
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGHUP])
ev = threading.Event()
ts = [threading.Thread(target=ev.wait) for _ in range(2)]
[t.start() for t in ts]
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines())
statm = open("/proc/self/statm").read().split()
tasks = sorted(os.listdir("/proc/self/task"))
tstat = open(f"/proc/self/task/{tasks[1]}/stat").read().split()
ev.set()
print(json.dumps({"status": status, "statm": statm, "tasks": tasks, "tstat": tstat[:3]}))
"""
    res = _sandboxed_python(run_sandboxed, code)
    st = res["status"]
    assert st["Name"].startswith("python3") and st["State"] == "R (running)"
    assert st["Tgid"] == st["Pid"] == "1" and st["PPid"] == "0" and st["Threads"] == "3"
    assert st["Uid"] == "0\t0\t0\t0" and st["TracerPid"] == "0"
    assert int(st["SigCgt"], 16) & (1 << 9) and int(st["SigIgn"], 16) & (1 << 11)  # SIGUSR1 caught, SIGUSR2 ignored
    assert int(st["SigBlk"], 16) & 1  # SIGHUP blocked
    size_kb = int(st["VmSize"].split()[0])
    assert 0 < int(st["VmRSS"].split()[0]) <= size_kb <= int(st["VmPeak"].split()[0])
    assert int(st["VmStk"].split()[0]) > 0 and int(st["VmExe"].split()[0]) > 0 and int(st["VmLib"].split()[0]) > 0
    assert int(res["statm"][0]) * 4 == size_kb and len(res["statm"]) == 7
    assert res["tasks"] == ["1", "2", "3"] and res["tstat"][:3] == ["2", "(" + st["Name"] + ")", "S"]


def test_cmdline_and_environ_come_from_memory(run_sandboxed):
    out = _ok(run_sandboxed(["env", "-i", "A=1", "B=two words", "cat", "/proc/self/cmdline", "/proc/self/environ"]))
    assert out == b"cat\0/proc/self/cmdline\0/proc/self/environ\0A=1\0B=two words\0"
    # A program that overwrites its arguments, NUL included (setproctitle), shows one string
    # running on into the environment, as on Linux.
    code = ("import ctypes, sys; lo, hi = map(int, open('/proc/self/stat').read().split()[47:49]);"
            "ctypes.memmove(lo, b'renamed' + b'x' * (hi - lo - 7), hi - lo);"
            "sys.stdout.buffer.write(open('/proc/self/cmdline', 'rb').read())")
    out = _ok(run_sandboxed(["env", "-i", "A=1", "python3", "-c", code]))
    assert out.startswith(b"renamedxxx") and out.endswith(b"xA=1\0") and out.count(b"\0") == 1


def test_limits_table_matches_the_host(run_native, run_sandboxed):
    native = _ok(run_native(["cat", "/proc/self/limits"])).decode().splitlines()
    sandboxed = _ok(run_sandboxed(["cat", "/proc/self/limits"])).decode().splitlines()
    assert [line[:26] for line in sandboxed] == [line[:26] for line in native]  # names, in order
    assert [line[68:] for line in sandboxed] == [line[68:] for line in native]  # units
    stack = next(line for line in sandboxed if line.startswith("Max stack size"))
    assert stack == next(line for line in native if line.startswith("Max stack size"))


def test_fd_and_fdinfo(run_sandboxed):
    out = _ok(run_sandboxed(["/bin/bash", "-c", "exec 5</etc/hostname; ls /proc/self/fd /proc/self/fdinfo; "
                                                 "cat /proc/$$/fdinfo/5; readlink /proc/$$/fd/5"])).decode()
    assert out.count("5\n") >= 2
    assert re.search(r"pos:\t0\nflags:\t0\d*\nmnt_id:\t\d+\nino:\t\d+\n/etc/hostname\n$", out), out


def test_zombie(run_sandboxed):
    code = r"""
import json, os, time
pid = os.fork()
if pid == 0:
    os._exit(3)
time.sleep(0.3)
stat = open(f"/proc/{pid}/stat").read().split()
status = open(f"/proc/{pid}/status").read()
print(json.dumps({"state": stat[2], "exit": stat[51], "vsize": stat[22], "vm": "VmSize" in status,
                  "cmdline": open(f"/proc/{pid}/cmdline").read(), "maps": open(f"/proc/{pid}/maps").read()}))
"""
    res = _sandboxed_python(run_sandboxed, code)
    assert res == {"state": "Z", "exit": str(3 << 8), "vsize": "0", "vm": False, "cmdline": "", "maps": ""}


# -- system-wide files ----------------------------------------------------------------
def test_system_files(run_sandboxed):
    script = ("cat /proc/stat; echo ==; cat /proc/loadavg; echo ==; cat /proc/uptime; echo ==; "
              "grep -c ^processor /proc/cpuinfo; nproc; echo ==; cat /proc/sys/kernel/osrelease; uname -r; "
              "cat /proc/sys/kernel/ostype /proc/sys/kernel/pid_max /proc/sys/kernel/hostname; hostname; echo ==; "
              "head -3 /proc/meminfo; echo ==; cat /proc/version")
    stat, loadavg, uptime, cpus, kernel, meminfo, version = _ok(
        run_sandboxed(["/bin/bash", "-c", script])).decode().split("==\n")
    assert re.match(r"cpu  \d+ 0 0 \d+ 0 0 0 0 0 0\ncpu0 ", stat)
    assert re.search(r"^btime \d+$", stat, re.M) and re.search(r"^processes \d+$", stat, re.M)
    assert re.search(r"^procs_running [1-9]\d*$", stat, re.M)
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+\n", loadavg)
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d\n", uptime)
    count, nproc = cpus.split()
    assert count == nproc
    release, uname_r, ostype, pid_max, hostname, uname_n = kernel.split()
    assert release == uname_r and release.endswith("-ringfence") and ostype == "Linux" and pid_max == "32768"
    assert hostname == uname_n
    assert [line.split(":")[0] for line in meminfo.splitlines()] == ["MemTotal", "MemFree", "MemAvailable"]
    assert version.startswith("Linux version " + release)


def test_proc_lists_only_sandbox_pids(run_sandboxed):
    # bash (1), sleep (2), then the pipeline's ls, grep and sort (3-5): nothing of the host's.
    out = _ok(run_sandboxed(["/bin/bash", "-c", "sleep 3 & ls /proc | grep -E '^[0-9]+$' | sort -n"]))
    pids = {int(p) for p in out.split()}
    assert {1, 2, 3} <= pids <= {1, 2, 3, 4, 5}
