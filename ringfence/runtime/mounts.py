"""Mounting a container's root file system from the mount list containerd
hands over (Task.Create's `rootfs`), and taking it down again."""
from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2
MS_BIND = 0x1000
MS_REC = 0x4000
# mount(8) option -> (flags to set, flags to clear)
_FLAGS = {
    "ro": (0x1, 0), "rw": (0, 0x1),
    "nosuid": (0x2, 0), "suid": (0, 0x2),
    "nodev": (0x4, 0), "dev": (0, 0x4),
    "noexec": (0x8, 0), "exec": (0, 0x8),
    "sync": (0x10, 0), "async": (0, 0x10),
    "noatime": (0x400, 0), "nodiratime": (0x800, 0), "relatime": (0x200000, 0),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
    "defaults": (0, 0),
}


def parse_options(options: list[str]) -> tuple[int, str]:
    """(mount flags, file-system data string) of mount(8)-style options."""
    flags, data = 0, []
    for opt in options:
        if opt in _FLAGS:
            on, off = _FLAGS[opt]
            flags = (flags | on) & ~off
        else:
            data.append(opt)
    return flags, ",".join(data)


def mount(kind: str, source: str, target: str, options: list[str]) -> None:
    """mount(2) one entry; OSError naming it when the kernel refuses."""
    flags, data = parse_options(options)
    if kind == "bind":
        flags |= MS_BIND
    ret = _libc.mount(source.encode(), target.encode(), kind.encode(), flags,
                      data.encode() if data else None)
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {kind} {source} on {target}: {os.strerror(err)}")
    if flags & MS_BIND and flags & 0x1:  # a bind mount only turns read-only on remount
        _libc.mount(None, target.encode(), None, flags | 0x20, None)


def mount_all(mounts, target: str) -> None:
    """Mount each of `mounts` (objects with type, source, options) on `target`,
    in order; on failure, what was mounted is taken down again."""
    done = 0
    try:
        for m in mounts:
            mount(m.type, m.source, target, list(m.options))
            done += 1
    except OSError:
        for _ in range(done):
            unmount(target)
        raise


def unmount(target: str) -> bool:
    """Detach whatever is mounted on `target` (lazily); False when nothing was."""
    if _libc.umount2(target.encode(), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def unmount_all(target: str) -> None:
    """Detach every mount stacked on `target`."""
    while unmount(target):
        pass
