"""Permission checks: owner/group/other mode bits against a task's credentials."""
from ..abi.fs import S_IFDIR, S_IFMT, S_IXUGO, X_OK
from .inode import Attr


def may_access(creds, attr: Attr, mask: int, real: bool = False) -> bool:
    """Whether `creds` may access a file with attributes `attr` for `mask` (R_OK|W_OK|X_OK bits).

    File-system ids are used, or the real ids when `real` (access(2)).  Root may
    do anything except execute a non-directory that has no execute bit at all.
    """
    uid, gid = (creds.uid, creds.gid) if real else (creds.fsuid, creds.fsgid)
    mode = attr.st_mode
    if uid == 0:
        return not (mask & X_OK) or (mode & S_IFMT) == S_IFDIR or bool(mode & S_IXUGO)
    if uid == attr.st_uid:
        bits = mode >> 6
    elif gid == attr.st_gid or attr.st_gid in creds.groups:
        bits = mode >> 3
    else:
        bits = mode
    return bits & mask == mask
