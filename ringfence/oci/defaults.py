"""Fixed documents: the config.json ``ringfence spec`` writes (runc's example
spec) and what ``ringfence features`` prints (runc's features shape)."""
from __future__ import annotations

import copy

from .state import OCI_VERSION

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

EXAMPLE_SPEC = {
    "ociVersion": OCI_VERSION,
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "ringfence",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def example_spec(args: list[str] | None = None, rootless: bool = False) -> dict:
    """runc's example config.json (hostname "ringfence"); `args` replaces ["sh"]."""
    spec = copy.deepcopy(EXAMPLE_SPEC)
    if args:
        spec["process"]["args"] = list(args)
    if rootless:  # as runc spec --rootless: a user namespace mapping the caller to root
        import os

        linux = spec["linux"]
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        linux.pop("resources", None)
    return spec


def features() -> dict:
    """What this runtime implements, in the shape of ``runc features``."""
    from importlib.metadata import PackageNotFoundError, version

    from ringfence.runtime.mounts import _FLAGS
    from ringfence.runtime.spec import HOOK_KINDS, NAMESPACE_TYPES
    from ringfence.sentry.abi import seccomp as scmp
    from ringfence.sentry.abi.caps import CAP_NAMES

    try:
        ours = version("ringfence")
    except PackageNotFoundError:
        ours = "unknown"
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),  # all run on the host (runtime/hooks.py)
        "mountOptions": sorted(_FLAGS),
        "linux": {
            # the sandbox always gets its own kernel: every namespace is the sentry's
            "namespaces": sorted(NAMESPACE_TYPES),
            "capabilities": list(CAP_NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            # enforced by the sentry (sentry/kernel/seccomp.py); only x86_64 rules can match
            "seccomp": {"enabled": True,
                        "actions": sorted({*scmp.PRECEDENCE, *scmp.ACT_ALIASES} - {scmp.ACT_NOTIFY}),
                        "operators": sorted([scmp.CMP_EQ, scmp.CMP_NE, scmp.CMP_LT, scmp.CMP_LE, scmp.CMP_GT,
                                             scmp.CMP_GE, scmp.CMP_MASKED_EQ]),
                        "archs": sorted(scmp.ARCH_NATIVE[1:] + scmp.ARCH_OTHERS)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {
            "dev.ringfence.version": ours,
            "dev.ringfence.platforms": "ptrace",
            "dev.ringfence.sandbox": "sentry",
        },
    }
