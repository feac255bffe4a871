"""Encoders of the file-system structs the syscalls hand to the program."""
from ..abi.fs import DIRENT64, STAT, STATFS, STATX, STATX_BASIC_STATS, STATX_MNT_ID, ST_VALID, major, minor
from .inode import Attr, StatFs

_NS = 1_000_000_000


def stat(a: Attr) -> bytes:
    """struct stat (x86_64, 144 bytes)."""
    return STAT.pack(a.st_dev, a.st_ino, a.st_nlink, a.st_mode, a.st_uid, a.st_gid, 0, a.st_rdev, a.st_size,
                     a.st_blksize, a.st_blocks, *divmod(a.st_atime_ns, _NS), *divmod(a.st_mtime_ns, _NS),
                     *divmod(a.st_ctime_ns, _NS))


def statx(a: Attr, mnt_id: int) -> bytes:
    """struct statx with the basic stats and the mount id (no birth time)."""
    return STATX.pack(STATX_BASIC_STATS | STATX_MNT_ID, a.st_blksize, 0, a.st_nlink, a.st_uid, a.st_gid,
                      a.st_mode, a.st_ino, a.st_size, a.st_blocks, 0,
                      *divmod(a.st_atime_ns, _NS), 0,  # atime
                      0, 0, 0,  # btime: not known
                      *divmod(a.st_ctime_ns, _NS), 0,  # ctime
                      *divmod(a.st_mtime_ns, _NS), 0,  # mtime
                      major(a.st_rdev), minor(a.st_rdev), major(a.st_dev), minor(a.st_dev), mnt_id)


def statfs(s: StatFs, mount_flags: int) -> bytes:
    """struct statfs (120 bytes); f_flags are the mount's ST_* bits."""
    return STATFS.pack(s.type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 0, 0, s.namelen,
                       s.bsize, mount_flags | ST_VALID)


def dirent(ino: int, off: int, dtype: int, name: bytes) -> bytes:
    """One linux_dirent64 record, NUL-terminated and padded to 8 bytes."""
    reclen = (DIRENT64.size + len(name) + 1 + 7) & ~7
    return DIRENT64.pack(ino, off, reclen, dtype) + name + bytes(reclen - DIRENT64.size - len(name))
