"""Credentials of a task, as the sandbox sees them."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Credentials:
    """uid/gid sets and supplementary groups (the sandbox's root by default)."""

    uid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: list[int] = field(default_factory=list)

    def copy(self) -> "Credentials":
        return Credentials(self.uid, self.euid, self.suid, self.fsuid, self.gid, self.egid, self.sgid,
                           self.fsgid, list(self.groups))
