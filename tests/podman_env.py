"""podman and buildah (Debian's packages) over private storage in a directory of the test's:
nothing of theirs is left on the host once that directory's mounts and files are removed
(test_podman.py, test_image.py)."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import harness

TIMEOUT = 120


class Tools:
    """podman and buildah over private storage, with one runtime."""

    def __init__(self, base: Path, runtime: str, runtime_root: Path, driver: str = "vfs"):
        """Storage under `base` (storage `driver`: vfs copies every layer whole, overlay mounts)
        and OCI runtime `runtime`, whose default --root is `runtime_root`."""
        self.base, self.runtime, self.runtime_root = base, runtime, runtime_root
        self.storage = ["--root", str(base / "storage"), "--runroot", str(base / "run"),
                        "--storage-driver", driver]

    def podman(self, *args, input: bytes | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        argv = ["podman", *self.storage, "--tmpdir", str(self.base / "libpod"), "--cgroup-manager", "cgroupfs",
                "--events-backend", "none", "--network-config-dir", str(self.base / "networks"),
                "--volumepath", str(self.base / "volumes"), "--runtime", self.runtime, *map(str, args)]
        return harness.run(argv, timeout=timeout, input=input)

    def buildah(self, *args, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        return harness.run(["buildah", *self.storage, *map(str, args)], timeout=timeout)

    def remove_all(self) -> None:
        """Remove every container and image, the storage's mounts, the directory, and podman's
        cgroups for conmon once empty."""
        self.podman("rm", "--all", "--force", "--time", "0")
        self.buildah("rm", "--all")
        self.podman("rmi", "--all", "--force")
        for path in (self.base / "storage", self.base / "run"):
            subprocess.run(["umount", "-R", "-l", str(path)], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            for group in ("libpod_parent/conmon", "libpod_parent"):
                with contextlib.suppress(OSError):
                    (hierarchy / group).rmdir()
