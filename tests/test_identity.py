"""Identity and limits beyond the differential program tests/c/identity.c: what only
the sandbox has (its root holds every capability, where the host's root may lack
some), glibc changing the uid of every thread, shell built-ins over these syscalls,
and the table rows of the family."""
from __future__ import annotations

import pytest

from ringfence.sentry.syscalls import table

CAP_LAST_CAP = 40
ALL_CAPS = (1 << (CAP_LAST_CAP + 1)) - 1

# capget(2) through ctypes: effective, permitted, inheritable.
CAPGET = """
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
header = ctypes.create_string_buffer(struct.pack('<Ii', 0x20080522, 0))
data = ctypes.create_string_buffer(24)
assert libc.syscall(125, header, data) == 0, ctypes.get_errno()
e0, p0, i0, e1, p1, i1 = struct.unpack('<6I', data.raw)
print(hex(e0 | e1 << 32), hex(p0 | p1 << 32), hex(i0 | i1 << 32))
"""

# Raising a hard limit back needs CAP_SYS_RESOURCE.
RAISE_HARD = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard - 1), hard - 1))
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print(resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard))
"""

# glibc runs set*id on every thread (SIGSETXID): a thread waiting meanwhile sees the change.
THREADS_SETUID = """
import os, threading
go, seen = threading.Event(), []
def worker():
    go.wait()
    seen.append((os.getresuid(), os.getresgid(), os.getgroups()))
thread = threading.Thread(target=worker)
thread.start()
os.setgroups([7, 3])
os.setresgid(1000, 1000, 1000)
os.setresuid(1000, 1001, 1002)
go.set()
thread.join()
print('main', os.getresuid(), os.getresgid(), os.getgroups())
print('thread', *seen[0])
try:
    os.setuid(0)
except PermissionError:
    print('setuid 0 refused')
"""

SHELL = """
ulimit -n 6
for fd in 3 4 5 6; do (eval "exec $fd</dev/null") 2>/dev/null && echo "fd $fd ok" || echo "fd $fd refused"; done
ulimit -n
nice -n 7 nice
(ulimit -Sn 4; ulimit -n; ulimit -Hn 5; ulimit -Hn; ulimit -Hn 6 2>/dev/null || echo 'hard limit stays')
"""


def _out(proc) -> str:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc.stdout.decode()


def test_sandbox_root_holds_every_capability(run_sandboxed):
    assert _out(run_sandboxed(["python3", "-c", CAPGET])).split() == [hex(ALL_CAPS), hex(ALL_CAPS), "0x0"]


def test_sandbox_root_may_raise_a_hard_limit(run_sandboxed):
    assert _out(run_sandboxed(["python3", "-c", RAISE_HARD])).strip() == "True"


def test_setuid_reaches_every_thread(differential):
    native, _ = differential(["python3", "-c", THREADS_SETUID])
    assert _out(native).splitlines() == [
        "main (1000, 1001, 1002) (1000, 1000, 1000) [3, 7]",
        "thread (1000, 1001, 1002) (1000, 1000, 1000) [3, 7]",
        "setuid 0 refused",
    ]


def test_shell_ulimit_and_nice(differential):
    native, _ = differential(["/bin/bash", "-c", SHELL])
    assert "fd 6 refused" in _out(native) and "hard limit stays" in _out(native)


FAMILY = ("getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid", "setuid", "setgid",
          "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "capget", "capset",
          "prlimit64", "getrlimit", "setrlimit", "getpriority", "setpriority", "sched_setscheduler",
          "sched_getscheduler", "sched_setparam", "sched_getparam", "sched_get_priority_max",
          "sched_get_priority_min", "sched_setaffinity", "sched_getaffinity", "sched_yield", "getcpu", "getrusage",
          "times", "personality")


@pytest.mark.parametrize("name", FAMILY)
def test_family_rows_are_served_and_partial_ones_say_why(name):
    (row,) = [r for r in table.rows() if r.name == name]
    assert row.handler is not None
    assert row.support is table.FULL or row.note
