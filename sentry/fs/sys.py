"""sys as a container's mounts see it: a small fixed tree in the sentry's memory.

sysfs holds what tools read to count and describe CPUs (/sys/devices/system/cpu/{online,
possible,present,kernel_max,cpuN/}) and an empty /sys/fs/cgroup (tools look for it; no cgroup
controller is served).  Nothing in it is the host's: the CPU count is the sandbox's.
"""
from __future__ import annotations

from ..abi.fs import S_IFREG
from ..kernel.schedattrs import online_cpus
from .tmpfs import TmpfsDir, TmpfsFS

SYSFS_MAGIC = 0x62656572
KERNEL_MAX_CPUS = 8192


class SysFS(TmpfsFS):
    """The sandbox's sysfs (mounted read-only)."""

    name = "sysfs"
    magic = SYSFS_MAGIC


def _dir(parent: TmpfsDir, path: bytes) -> TmpfsDir:
    for name in path.split(b"/"):
        parent = parent.entries.get(name) or parent.mkdir(name, 0o755, 0, 0)
    return parent


def _file(parent: TmpfsDir, name: bytes, data: bytes) -> None:
    parent.create(name, S_IFREG | 0o444, 0, 0).replace(data)


def build_sysfs() -> tuple[SysFS, TmpfsDir]:
    """A fresh sysfs tree."""
    fs = SysFS()
    root = fs.new_root(0o555)
    n = online_cpus()
    span = b"0\n" if n == 1 else b"0-%d\n" % (n - 1)
    cpu = _dir(root, b"devices/system/cpu")
    for name in (b"online", b"possible", b"present"):
        _file(cpu, name, span)
    _file(cpu, b"kernel_max", b"%d\n" % (KERNEL_MAX_CPUS - 1))
    for i in range(n):
        d = _dir(cpu, b"cpu%d" % i)
        if i:
            _file(d, b"online", b"1\n")  # (Linux has none for cpu0, which cannot go offline)
    for path in (b"fs/cgroup", b"kernel", b"class", b"bus", b"block", b"dev/block", b"dev/char", b"module"):
        _dir(root, path)
    return fs, root
