"""ctypes wrappers for the Linux calls the gofer needs and `os` (Python 3.11) lacks."""
import ctypes
import errno
import os
import struct

import pyseccomp

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_ARCH = pyseccomp.system_arch()
SYS_OPENAT2 = pyseccomp.resolve_syscall(_ARCH, "openat2")
SYS_GETDENTS64 = pyseccomp.resolve_syscall(_ARCH, "getdents64")
SYS_FSTATFS = pyseccomp.resolve_syscall(_ARCH, "fstatfs")
SYS_FCHOWNAT = pyseccomp.resolve_syscall(_ARCH, "fchownat")
SYS_UTIMENSAT = pyseccomp.resolve_syscall(_ARCH, "utimensat")
SYS_LINKAT = pyseccomp.resolve_syscall(_ARCH, "linkat")
SYS_RENAMEAT2 = pyseccomp.resolve_syscall(_ARCH, "renameat2")

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
RENAME_WHITEOUT = 4

_DIRENT64 = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type; then the NUL-terminated name


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _StatFS(ctypes.Structure):
    _fields_ = [
        ("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long), ("f_blocks", ctypes.c_ulong),
        ("f_bfree", ctypes.c_ulong), ("f_bavail", ctypes.c_ulong), ("f_files", ctypes.c_ulong),
        ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.c_int * 2), ("f_namelen", ctypes.c_long),
        ("f_frsize", ctypes.c_long), ("f_flags", ctypes.c_long), ("f_spare", ctypes.c_long * 4),
    ]


def _check(res: int, what: str) -> int:
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return res


def _syscall(nr: int, *args) -> int:
    return _check(_libc.syscall(ctypes.c_long(nr), *args), f"syscall {nr}")


_openat2_missing = False


def open_beneath(dirfd: int, name: bytes, flags: int, mode: int = 0) -> int:
    """Open `name` under `dirfd` with openat2 RESOLVE_BENEATH|NO_SYMLINKS|NO_MAGICLINKS
    (`mode` is for O_CREAT).

    Falls back to openat(flags|O_NOFOLLOW) when the kernel lacks openat2 (ENOSYS); the caller
    must pass a single component, so the fallback resolves nothing but that component.
    """
    global _openat2_missing
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if not _openat2_missing:
        how = _OpenHow(flags, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        try:
            return _syscall(SYS_OPENAT2, ctypes.c_long(dirfd), ctypes.c_char_p(name),
                            ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
            _openat2_missing = True
    return os.open(name, flags, mode, dir_fd=dirfd)


def fchown(fd: int, uid: int, gid: int) -> None:
    """Change the owner of the file `fd` (O_PATH too; a symlink itself), 0xFFFFFFFF: keep."""
    _syscall(SYS_FCHOWNAT, ctypes.c_long(fd), ctypes.c_char_p(b""), ctypes.c_uint32(uid),
             ctypes.c_uint32(gid), ctypes.c_int(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))


def futimens(fd: int, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """Set the times of the file `fd` (O_PATH too; a symlink itself) from (sec, nsec) pairs,
    nsec possibly UTIME_NOW or UTIME_OMIT."""
    times = (_Timespec * 2)(_Timespec(*atime), _Timespec(*mtime))
    _syscall(SYS_UTIMENSAT, ctypes.c_long(fd), ctypes.c_char_p(b""), times,
             ctypes.c_int(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))


def link_fd(fd: int, dirfd: int, name: bytes) -> None:
    """Give the file `fd` (O_PATH too) another name, `name` in directory `dirfd`."""
    _syscall(SYS_LINKAT, ctypes.c_long(fd), ctypes.c_char_p(b""), ctypes.c_long(dirfd),
             ctypes.c_char_p(name), ctypes.c_int(AT_EMPTY_PATH))


def renameat2(olddirfd: int, oldname: bytes, newdirfd: int, newname: bytes, flags: int) -> None:
    """renameat2(2)."""
    _syscall(SYS_RENAMEAT2, ctypes.c_long(olddirfd), ctypes.c_char_p(oldname),
             ctypes.c_long(newdirfd), ctypes.c_char_p(newname), ctypes.c_uint(flags))


def getdents64(fd: int, bufsize: int) -> list[tuple[int, int, int, bytes]]:
    """One getdents64 call on directory `fd`: [(ino, d_off, d_type, name)], [] at the end."""
    buf = ctypes.create_string_buffer(bufsize)
    n = _syscall(SYS_GETDENTS64, ctypes.c_long(fd), buf, ctypes.c_long(bufsize))
    raw, out, pos = buf.raw, [], 0
    while pos < n:
        ino, off, reclen, dtype = _DIRENT64.unpack_from(raw, pos)
        name = raw[pos + _DIRENT64.size:pos + reclen].split(b"\0", 1)[0]
        out.append((ino, off, dtype, name))
        pos += reclen
    return out


def fstatfs(fd: int) -> tuple[int, ...]:
    """fstatfs(2): (f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_fsid,
    f_namelen, f_frsize, f_flags), f_fsid folded into one u64."""
    st = _StatFS()
    _syscall(SYS_FSTATFS, ctypes.c_long(fd), ctypes.byref(st))
    fsid = (st.f_fsid[0] & 0xFFFFFFFF) | (st.f_fsid[1] & 0xFFFFFFFF) << 32
    return (st.f_type, st.f_bsize, st.f_blocks, st.f_bfree, st.f_bavail, st.f_files,
            st.f_ffree, fsid, st.f_namelen, st.f_frsize, st.f_flags)


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: bytes | None, target: bytes, fstype: bytes | None, flags: int) -> None:
    """mount(2) without data."""
    _check(_libc.mount(source, target, fstype, ctypes.c_ulong(flags), None), "mount")


def prctl(option: int, arg: int | bytes) -> None:
    """prctl(2) with one argument (an integer or a buffer)."""
    value = ctypes.c_char_p(arg) if isinstance(arg, bytes) else ctypes.c_ulong(arg)
    _check(_libc.prctl(ctypes.c_int(option), value, ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), "prctl")
