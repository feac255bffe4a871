"""Credentials of a task, as the sandbox sees them: ids, groups, capabilities, securebits.

The sandbox has one user namespace, whose root holds every capability.  A
Credentials is replaced, never changed in place: each transition below returns
a new one (as Linux's prepare_creds/commit_creds), so a failed check leaves the
task's credentials untouched.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..abi.caps import (
    CAP_FS_SET, CAP_FULL_SET, SECBIT_KEEP_CAPS, SECBIT_NO_SETUID_FIXUP, SECBIT_NOROOT,
)


@dataclass
class Credentials:
    """uid/gid sets, supplementary groups and capability sets (the sandbox's root by default)."""

    uid: int = 0
    euid: int = 0
    suid: int = 0
    fsuid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0
    fsgid: int = 0
    groups: tuple[int, ...] = ()
    cap_permitted: int = CAP_FULL_SET
    cap_effective: int = CAP_FULL_SET
    cap_inheritable: int = 0
    cap_bounding: int = CAP_FULL_SET
    cap_ambient: int = 0
    securebits: int = 0

    @classmethod
    def of_user(cls, uid: int, gid: int, groups=(), caps: tuple[int, int, int, int, int] | None = None
                ) -> "Credentials":
        """A container process's credentials: an OCI process.user, and its process.capabilities
        as masks (effective, permitted, inheritable, bounding, ambient) set once the ids are, as
        runc does (ambient keeps only what is both permitted and inheritable).  Without `caps`,
        root's capabilities are dropped as Linux does when uid changes from 0."""
        creds = cls().with_gids(gid, gid, gid).with_groups(groups).with_uids(uid, uid, uid)
        if caps is None:
            return creds
        effective, permitted, inheritable, bounding, ambient = caps
        return dataclasses.replace(creds, cap_effective=effective, cap_permitted=permitted,
                                   cap_inheritable=inheritable, cap_bounding=bounding,
                                   cap_ambient=ambient & permitted & inheritable)

    def copy(self) -> "Credentials":
        """An equal, independent Credentials (for a new task)."""
        return dataclasses.replace(self)

    def capable(self, cap: int) -> bool:
        """Whether capability `cap` is in the effective set."""
        return bool(self.cap_effective >> cap & 1)

    def with_uids(self, uid: int, euid: int, suid: int) -> "Credentials":
        """Real, effective and saved uids changed (fsuid follows euid), capabilities adjusted.

        capabilities(7): leaving uid 0 in all three ids empties the permitted,
        effective and ambient sets (permitted survives with SECBIT_KEEP_CAPS);
        an effective uid leaving 0 empties the effective set, one becoming 0
        restores it from the permitted set.
        """
        new = dataclasses.replace(self, uid=uid, euid=euid, suid=suid, fsuid=euid)
        if self.securebits & SECBIT_NO_SETUID_FIXUP:
            return new
        was_root = 0 in (self.uid, self.euid, self.suid)
        if was_root and 0 not in (uid, euid, suid):
            new.cap_ambient = 0
            if not self.securebits & SECBIT_KEEP_CAPS:
                new.cap_permitted = new.cap_effective = 0
        if self.euid == 0 and euid != 0:
            new.cap_effective = 0
        elif self.euid != 0 and euid == 0:
            new.cap_effective = new.cap_permitted
        return new

    def with_fsuid(self, fsuid: int) -> "Credentials":
        """The file-system uid changed: leaving 0 drops the file capabilities, reaching 0 restores them."""
        new = dataclasses.replace(self, fsuid=fsuid)
        if self.securebits & SECBIT_NO_SETUID_FIXUP:
            return new
        if self.fsuid == 0 and fsuid != 0:
            new.cap_effective &= ~CAP_FS_SET
        elif self.fsuid != 0 and fsuid == 0:
            new.cap_effective |= self.cap_permitted & CAP_FS_SET
        return new

    def with_gids(self, gid: int, egid: int, sgid: int) -> "Credentials":
        """Real, effective and saved gids changed (fsgid follows egid)."""
        return dataclasses.replace(self, gid=gid, egid=egid, sgid=sgid, fsgid=egid)

    def with_fsgid(self, fsgid: int) -> "Credentials":
        """The file-system gid changed."""
        return dataclasses.replace(self, fsgid=fsgid)

    def with_groups(self, groups) -> "Credentials":
        """Supplementary groups replaced (kept sorted, as Linux keeps them)."""
        return dataclasses.replace(self, groups=tuple(sorted(groups)))

    def with_caps(self, effective: int, permitted: int, inheritable: int) -> "Credentials":
        """capset's sets installed; ambient keeps only what stays both permitted and inheritable."""
        return dataclasses.replace(self, cap_effective=effective, cap_permitted=permitted,
                                   cap_inheritable=inheritable,
                                   cap_ambient=self.cap_ambient & permitted & inheritable)

    def after_exec(self) -> "Credentials":
        """The credentials a program starts with after execve (no set-id bits, no file capabilities).

        Saved and file-system ids take the effective ones.  A root program
        (real or effective uid 0, unless SECBIT_NOROOT) gets every bounding
        capability plus its inheritable and ambient ones as permitted, and
        those as effective if its effective uid is 0; any other program keeps
        only its ambient set, as both permitted and effective.
        """
        new = dataclasses.replace(self, suid=self.euid, fsuid=self.euid, sgid=self.egid, fsgid=self.egid,
                                  securebits=self.securebits & ~SECBIT_KEEP_CAPS)
        root = not self.securebits & SECBIT_NOROOT and 0 in (self.uid, self.euid)
        new.cap_permitted = self.cap_ambient
        if root:
            new.cap_permitted |= self.cap_bounding | self.cap_inheritable
        raise_all = root and self.euid == 0
        new.cap_effective = new.cap_permitted if raise_all else self.cap_ambient
        return new
