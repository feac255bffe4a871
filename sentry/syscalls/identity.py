"""Identity syscalls: the uid and gid families, supplementary groups and capabilities.

The checks are those of Linux inside a user namespace: changing ids needs
CAP_SETUID/CAP_SETGID in the effective set, or only shuffles the ids the task
already holds; capability sets change as capabilities(7) says
(Credentials.with_uids).  prctl's capability options are served here too.
"""
from __future__ import annotations

import struct
from dataclasses import replace
from typing import Callable, NamedTuple

from ..abi import errno as E
from ..abi.caps import (
    CAP_FULL_SET, CAP_LAST_CAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAPABILITY_U32S, LINUX_CAPABILITY_VERSION_3,
    PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_LOWER, PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP, PR_CAPBSET_READ, PR_GET_KEEPCAPS, PR_GET_SECUREBITS, PR_SET_KEEPCAPS, PR_SET_SECUREBITS,
    SECBIT_KEEP_CAPS, SECBIT_KEEP_CAPS_LOCKED, SECBIT_NO_CAP_AMBIENT_RAISE, SECURE_ALL_BITS, SECURE_ALL_LOCKS,
)
from ..kernel.creds import Credentials
from ..kernel.errors import SysError
from .args import s32, u32

NO_CHANGE = 0xFFFFFFFF  # (uid_t)-1: "leave this id alone", and never a valid id
NGROUPS_MAX = 65536

_CAP_HEADER = struct.Struct("<Ii")  # struct __user_cap_header_struct: version, pid
_CAP_DATA = struct.Struct("<III")  # struct __user_cap_data_struct: effective, permitted, inheritable


# -- reading ids ---------------------------------------------------------------------
def getuid(t, *_):
    return t.creds.uid


def geteuid(t, *_):
    return t.creds.euid


def getgid(t, *_):
    return t.creds.gid


def getegid(t, *_):
    return t.creds.egid


def _write_ids(t, ptrs, ids) -> int:
    for ptr, value in zip(ptrs, ids):
        t.mm.write_u32(ptr, value)
    return 0


def getresuid(t, ruid, euid, suid, *_):
    c = t.creds
    return _write_ids(t, (ruid, euid, suid), (c.uid, c.euid, c.suid))


def getresgid(t, rgid, egid, sgid, *_):
    c = t.creds
    return _write_ids(t, (rgid, egid, sgid), (c.gid, c.egid, c.sgid))


def getgroups(t, size, listp, *_):
    size = s32(size)
    groups = t.creds.groups
    if size < 0:
        raise SysError(E.EINVAL)
    if size:
        if size < len(groups):
            raise SysError(E.EINVAL)
        t.mm.write(listp, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


# -- changing ids: one implementation for uids and gids ------------------------------
class _Family(NamedTuple):
    """How one id family (uids or gids) is read, written and guarded."""

    cap: int
    ids: Callable[[Credentials], tuple[int, int, int]]  # real, effective, saved
    fs: Callable[[Credentials], int]
    with_ids: Callable[[Credentials, int, int, int], Credentials]
    with_fs: Callable[[Credentials, int], Credentials]


_UIDS = _Family(CAP_SETUID, lambda c: (c.uid, c.euid, c.suid), lambda c: c.fsuid,
               Credentials.with_uids, Credentials.with_fsuid)
_GIDS = _Family(CAP_SETGID, lambda c: (c.gid, c.egid, c.sgid), lambda c: c.fsgid,
               Credentials.with_gids, Credentials.with_fsgid)


def _require(t, fam: _Family, wanted: list[tuple[int, tuple[int, ...]]]) -> None:
    """EPERM unless each new id (NO_CHANGE aside) is one of those allowed, or the task has the capability."""
    if t.creds.capable(fam.cap):
        return
    if any(new != NO_CHANGE and new not in allowed for new, allowed in wanted):
        raise SysError(E.EPERM)


def _set_id(t, fam: _Family, new: int) -> int:
    """setuid/setgid: all ids with the capability, else only the effective one, to the real or saved id."""
    new = u32(new)
    if new == NO_CHANGE:
        raise SysError(E.EINVAL)
    c = t.creds
    real, _, saved = fam.ids(c)
    if c.capable(fam.cap):
        t.creds = fam.with_ids(c, new, new, new)
    elif new in (real, saved):
        t.creds = fam.with_ids(c, real, new, saved)
    else:
        raise SysError(E.EPERM)
    return 0


def _set_re_id(t, fam: _Family, new_real: int, new_eff: int) -> int:
    """setreuid/setregid: the saved id follows a new effective id when the real one is set or left behind."""
    new_real, new_eff = u32(new_real), u32(new_eff)
    c = t.creds
    real, eff, saved = fam.ids(c)
    _require(t, fam, [(new_real, (real, eff)), (new_eff, (real, eff, saved))])
    r = real if new_real == NO_CHANGE else new_real
    e = eff if new_eff == NO_CHANGE else new_eff
    if new_real != NO_CHANGE or (new_eff != NO_CHANGE and new_eff != real):
        saved = e
    t.creds = fam.with_ids(c, r, e, saved)
    return 0


def _set_res_id(t, fam: _Family, *new: int) -> int:
    """setresuid/setresgid: each id set to one the task holds, or to anything with the capability."""
    new = tuple(u32(v) for v in new)
    c = t.creds
    old = fam.ids(c)
    _require(t, fam, [(v, old) for v in new])
    t.creds = fam.with_ids(c, *(o if v == NO_CHANGE else v for o, v in zip(old, new)))
    return 0


def _set_fs_id(t, fam: _Family, new: int) -> int:
    """setfsuid/setfsgid: returns the old file-system id, whether or not it changed."""
    new = u32(new)
    c = t.creds
    old = fam.fs(c)
    if new != NO_CHANGE and new != old and (new in fam.ids(c) or c.capable(fam.cap)):
        t.creds = fam.with_fs(c, new)
    return old


def setuid(t, uid, *_):
    return _set_id(t, _UIDS, uid)


def setgid(t, gid, *_):
    return _set_id(t, _GIDS, gid)


def setreuid(t, ruid, euid, *_):
    return _set_re_id(t, _UIDS, ruid, euid)


def setregid(t, rgid, egid, *_):
    return _set_re_id(t, _GIDS, rgid, egid)


def setresuid(t, ruid, euid, suid, *_):
    return _set_res_id(t, _UIDS, ruid, euid, suid)


def setresgid(t, rgid, egid, sgid, *_):
    return _set_res_id(t, _GIDS, rgid, egid, sgid)


def setfsuid(t, fsuid, *_):
    return _set_fs_id(t, _UIDS, fsuid)


def setfsgid(t, fsgid, *_):
    return _set_fs_id(t, _GIDS, fsgid)


def setgroups(t, size, listp, *_):
    if not t.creds.capable(CAP_SETGID):
        raise SysError(E.EPERM)
    size = u32(size)
    if size > NGROUPS_MAX:
        raise SysError(E.EINVAL)
    groups = struct.unpack(f"<{size}I", t.mm.read(listp, 4 * size)) if size else ()
    if NO_CHANGE in groups:
        raise SysError(E.EINVAL)
    t.creds = t.creds.with_groups(groups)
    return 0


# -- capget / capset -----------------------------------------------------------------
def _cap_header(t, header: int) -> tuple[int, int]:
    """(how many data structs the header's version carries, its pid).

    EINVAL, with the current version written back, for an unknown version.
    """
    version, pid = _CAP_HEADER.unpack(t.mm.read(header, _CAP_HEADER.size))
    words = CAPABILITY_U32S.get(version)
    if words is None:
        t.mm.write_u32(header, LINUX_CAPABILITY_VERSION_3)
        raise SysError(E.EINVAL)
    return words, pid


def capget(t, header, data, *_):
    try:
        words, pid = _cap_header(t, header)
    except SysError as e:
        if e.errno == E.EINVAL and not data:
            return 0  # how libcap learns the kernel's version
        raise
    if not data:
        return 0
    if pid < 0:
        raise SysError(E.EINVAL)
    target = t if pid == 0 else t.kernel.find_task(t, pid)
    if target is None:
        raise SysError(E.ESRCH)
    c = target.creds
    sets = (c.cap_effective, c.cap_permitted, c.cap_inheritable)
    t.mm.write(data, b"".join(_CAP_DATA.pack(*(s >> 32 * i & 0xFFFFFFFF for s in sets)) for i in range(words)))
    return 0


def capset(t, header, data, *_):
    words, pid = _cap_header(t, header)
    if pid not in (0, t.tid):
        raise SysError(E.EPERM)
    raw = t.mm.read(data, words * _CAP_DATA.size)
    effective = permitted = inheritable = 0
    for i, (e, p, h) in enumerate(_CAP_DATA.iter_unpack(raw)):
        effective |= e << 32 * i
        permitted |= p << 32 * i
        inheritable |= h << 32 * i
    effective, permitted, inheritable = effective & CAP_FULL_SET, permitted & CAP_FULL_SET, inheritable & CAP_FULL_SET
    c = t.creds
    if not c.capable(CAP_SETPCAP) and inheritable & ~(c.cap_inheritable | c.cap_permitted):
        raise SysError(E.EPERM)
    if inheritable & ~(c.cap_inheritable | c.cap_bounding):
        raise SysError(E.EPERM)
    if permitted & ~c.cap_permitted or effective & ~permitted:
        raise SysError(E.EPERM)
    t.creds = c.with_caps(effective, permitted, inheritable)
    return 0


# -- prctl's capability options ----------------------------------------------------------
def _cap_bit(cap: int) -> int:
    """The bit of capability number `cap`; EINVAL if there is no such capability."""
    if cap > CAP_LAST_CAP:
        raise SysError(E.EINVAL)
    return 1 << cap


def _ambient(t, op: int, cap: int, arg4: int, arg5: int) -> int:
    """PR_CAP_AMBIENT: query, raise (if permitted and inheritable), lower or clear the ambient set."""
    c = t.creds
    if op == PR_CAP_AMBIENT_CLEAR_ALL:
        if cap or arg4 or arg5:
            raise SysError(E.EINVAL)
        t.creds = replace(c, cap_ambient=0)
        return 0
    bit = _cap_bit(cap)
    if arg4 or arg5:
        raise SysError(E.EINVAL)
    if op == PR_CAP_AMBIENT_IS_SET:
        return int(bool(c.cap_ambient & bit))
    if op == PR_CAP_AMBIENT_RAISE:
        if not c.cap_permitted & c.cap_inheritable & bit or c.securebits & SECBIT_NO_CAP_AMBIENT_RAISE:
            raise SysError(E.EPERM)
        t.creds = replace(c, cap_ambient=c.cap_ambient | bit)
        return 0
    if op == PR_CAP_AMBIENT_LOWER:
        t.creds = replace(c, cap_ambient=c.cap_ambient & ~bit)
        return 0
    raise SysError(E.EINVAL)


def _set_securebits(t, bits: int) -> int:
    """PR_SET_SECUREBITS: needs CAP_SETPCAP; a locked bit can neither change nor be unlocked."""
    old = t.creds.securebits
    locks = old & SECURE_ALL_LOCKS
    if ((locks >> 1) & (old ^ bits) or locks & ~bits or bits & ~(SECURE_ALL_BITS | SECURE_ALL_LOCKS)
            or not t.creds.capable(CAP_SETPCAP)):
        raise SysError(E.EPERM)
    t.creds = replace(t.creds, securebits=bits)
    return 0


def cap_prctl(t, option: int, arg2: int, arg3: int, arg4: int, arg5: int) -> int:
    """prctl's options in abi.caps.CAP_PRCTLS: bounding set, ambient set, securebits, keep-caps."""
    c = t.creds
    if option == PR_CAPBSET_READ:
        return int(bool(c.cap_bounding & _cap_bit(arg2)))
    if option == PR_CAPBSET_DROP:
        if not c.capable(CAP_SETPCAP):
            raise SysError(E.EPERM)
        t.creds = replace(c, cap_bounding=c.cap_bounding & ~_cap_bit(arg2))
        return 0
    if option == PR_CAP_AMBIENT:
        return _ambient(t, arg2, arg3, arg4, arg5)
    if option == PR_GET_SECUREBITS:
        return c.securebits
    if option == PR_SET_SECUREBITS:
        return _set_securebits(t, arg2)
    if option == PR_GET_KEEPCAPS:
        return int(bool(c.securebits & SECBIT_KEEP_CAPS))
    if option == PR_SET_KEEPCAPS:
        if arg2 > 1:
            raise SysError(E.EINVAL)
        if c.securebits & SECBIT_KEEP_CAPS_LOCKED:
            raise SysError(E.EPERM)
        t.creds = replace(c, securebits=c.securebits & ~SECBIT_KEEP_CAPS | (SECBIT_KEEP_CAPS if arg2 else 0))
        return 0
    raise SysError(E.EINVAL)
