"""Linux x86_64 file-system ABI: open/at flags, file modes, fcntl, poll, and struct layouts."""
import struct

# open(2) flags.
O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_PATH = 0o10000000
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE
O_TMPFILE = O_TMPFILE_BIT | O_DIRECTORY
# Flags that only matter at open time: not kept in the open file description.
O_OPEN_ONLY = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC
# Flags an O_PATH open keeps.
O_PATH_KEPT = O_PATH | O_DIRECTORY | O_NOFOLLOW
# Flags F_SETFL may change.
O_SETFL_MASK = O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT

# openat2(2): struct open_how (flags, mode, resolve), its RESOLVE_* bits, and the flags it accepts.
OPEN_HOW = struct.Struct("<QQQ")  # OPEN_HOW_SIZE_VER0 = 24 bytes
OPEN_HOW_SIZE_MAX = 4096  # larger structs: E2BIG (PAGE_SIZE)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20
RESOLVE_ALL = 0x3F
O_SYNC_BIT = 0o4000000  # __O_SYNC
FASYNC = 0o20000
VALID_OPEN_FLAGS = (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | O_SYNC_BIT | O_DSYNC
                    | FASYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_PATH
                    | O_TMPFILE_BIT)
O_PATH_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC  # what openat2 lets O_PATH come with

# preadv2(2)/pwritev2(2) flags (RWF_ATOMIC 0x40 and RWF_NOSIGNAL 0x100 are not supported).
RWF_HIPRI = 0x01
RWF_DSYNC = 0x02
RWF_SYNC = 0x04
RWF_NOWAIT = 0x08
RWF_APPEND = 0x10
RWF_NOAPPEND = 0x20
RWF_DONTCACHE = 0x80
RWF_SUPPORTED = RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND | RWF_NOAPPEND | RWF_DONTCACHE

# fallocate(2) modes.
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
FALLOC_FL_UNSHARE_RANGE = 0x40
FALLOC_FL_WRITE_ZEROES = 0x80

# sync_file_range(2) flags.
SYNC_FILE_RANGE_ALL = 0x7  # WAIT_BEFORE | WRITE | WAIT_AFTER

# close_range(2) flags.
CLOSE_RANGE_UNSHARE = 0x2
CLOSE_RANGE_CLOEXEC = 0x4

# *at(2) flags.
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_EACCESS = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000

# access(2) modes.
F_OK = 0
X_OK = 1
W_OK = 2
R_OK = 4

# File types and mode bits.
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000
S_ISUID = 0o4000
S_ISGID = 0o2000
S_ISVTX = 0o1000
S_IXGRP = 0o010
S_IXUGO = 0o111
S_IALLUGO = 0o7777
DT_SHIFT = 12  # d_type == (mode & S_IFMT) >> DT_SHIFT

# lseek(2).
SEEK_SET = 0
SEEK_CUR = 1
SEEK_END = 2
SEEK_DATA = 3
SEEK_HOLE = 4
OFFSET_MAX = (1 << 63) - 1  # the largest loff_t

# fcntl(2).
F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_GETLK = 5
F_SETLK = 6
F_SETLKW = 7
F_OFD_GETLK = 36
F_OFD_SETLK = 37
F_OFD_SETLKW = 38
F_DUPFD_CLOEXEC = 1030
F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
FD_CLOEXEC = 1
F_RDLCK = 0
F_WRLCK = 1
F_UNLCK = 2

# flock(2).
LOCK_SH = 1
LOCK_EX = 2
LOCK_NB = 4
LOCK_UN = 8
LOCK_MAND = 32  # ignored since Linux 5.15: such a request succeeds and does nothing

# splice(2), tee(2), vmsplice(2) flags.
SPLICE_F_MOVE = 1
SPLICE_F_NONBLOCK = 2
SPLICE_F_MORE = 4
SPLICE_F_GIFT = 8
SPLICE_F_ALL = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT

# renameat2(2).
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

# utimensat(2).
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

# statx(2) mask bits.
STATX_BASIC_STATS = 0x7FF
STATX_MNT_ID = 0x1000
STATX__RESERVED = 0x80000000

# statfs(2) f_type and f_flags.
TMPFS_MAGIC = 0x01021994
PROC_SUPER_MAGIC = 0x9FA0
OVERLAYFS_SUPER_MAGIC = 0x794C7630
PIPEFS_MAGIC = 0x50495045
ANON_INODE_FS_MAGIC = 0x09041934
V9FS_MAGIC = 0x01021997
ST_RDONLY = 0x1
ST_NOSUID = 0x2
ST_NODEV = 0x4
ST_NOEXEC = 0x8
ST_VALID = 0x20

# poll(2) events.
POLLIN = 0x1
POLLPRI = 0x2
POLLOUT = 0x4
POLLERR = 0x8
POLLHUP = 0x10
POLLNVAL = 0x20
POLLRDNORM = 0x40
POLLRDBAND = 0x80
POLLWRNORM = 0x100
POLLWRBAND = 0x200
POLLRDHUP = 0x2000
# select(2) sets expressed as poll events (fs/select.c).
SELECT_IN = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR
SELECT_OUT = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR
SELECT_EX = POLLPRI

# Limits.
NAME_MAX = 255
PATH_MAX = 4096
MAXSYMLINKS = 40
IOV_MAX = 1024
MAX_RW_COUNT = 0x7FFFF000
PIPE_BUF = 4096
PIPE_DEF_SIZE = 65536
PIPE_MAX_SIZE = 1048576  # /proc/sys/fs/pipe-max-size: the most an unprivileged F_SETPIPE_SZ may ask
NR_OPEN_DEFAULT = 1024  # RLIMIT_NOFILE soft limit

def makedev(major: int, minor: int) -> int:
    """dev_t of (major, minor) as stat(2) reports it (glibc's 64-bit layout)."""
    return (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & 0xFFFFFF00) << 12) | ((major & 0xFFFFF000) << 32)


def major(dev: int) -> int:
    """Major number of a dev_t."""
    return ((dev >> 8) & 0xFFF) | ((dev >> 32) & 0xFFFFF000)


def minor(dev: int) -> int:
    """Minor number of a dev_t."""
    return (dev & 0xFF) | ((dev >> 12) & 0xFFFFFF00)


# Struct layouts.
STAT = struct.Struct("<QQQIIIiQqqq6q24x")  # struct stat, 144 bytes
STATX = struct.Struct("<IIQIIIHxxQQQQ" + "qIi" * 4 + "IIIIQ104x")  # struct statx, 256 bytes
STATFS = struct.Struct("<qqQQQQQiiqqq32x")  # struct statfs, 120 bytes
DIRENT64 = struct.Struct("<QqHB")  # linux_dirent64 header; name and NUL follow, padded to 8
FLOCK = struct.Struct("<hh4xqqi4x")  # struct flock, 32 bytes
POLLFD = struct.Struct("<ihh")  # struct pollfd
TIMESPEC = struct.Struct("<qq")  # struct timespec / struct timeval
INT = struct.Struct("<i")
INT_PAIR = struct.Struct("<ii")
LOFF = struct.Struct("<q")
