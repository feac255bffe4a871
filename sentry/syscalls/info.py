"""What the sandbox learns about its machine: uname, sysinfo, random bytes, its host name."""
from __future__ import annotations

import os
import struct
import time

from ..abi import errno as E
from ..abi.caps import CAP_SYS_ADMIN
from ..kernel.errors import SysError

_UTS_LEN = 65
_SYSINFO = struct.Struct("<q3Q6QHH4xQQI4x")
GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4
_MAX_RANDOM = 1 << 25


def uname(t, buf, *_):
    k = t.kernel
    fields = (b"Linux", k.hostname, k.release, k.version, b"x86_64", b"(none)")
    t.mm.write(buf, b"".join(f[:_UTS_LEN - 1].ljust(_UTS_LEN, b"\0") for f in fields))
    return 0


def sysinfo(t, buf, *_):
    k = t.kernel
    total, free = k.memory()
    uptime = int(time.monotonic() - k.boot_monotonic)
    procs = sum(len(g.tasks) for g in k.groups.values())
    t.mm.write(buf, _SYSINFO.pack(uptime, 0, 0, 0, total, free, 0, 0, 0, 0, procs, 0, 0, 0, 1))
    return 0


def getrandom(t, buf, length, flags, *_):
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) or flags & GRND_RANDOM and flags & GRND_INSECURE:
        raise SysError(E.EINVAL)
    length = min(length, _MAX_RANDOM)
    t.mm.write(buf, os.urandom(length))
    return length


def sethostname(t, name, length, *_):
    if length > _UTS_LEN - 1:
        raise SysError(E.EINVAL)
    if not t.creds.capable(CAP_SYS_ADMIN):
        raise SysError(E.EPERM)
    t.kernel.hostname = t.mm.read(name, length)
    return 0
