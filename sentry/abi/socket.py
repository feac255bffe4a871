"""Linux x86_64 socket constants and structure layouts (include/linux/socket.h, net/unix)."""
import struct

from .fs import O_CLOEXEC, O_NONBLOCK

# Address families.
AF_UNSPEC = 0
AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
AF_PACKET = 17
AF_MAX = 46

# Socket types and the flags socket(2)/socketpair(2)/accept4(2) take with them.
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
SOCK_SEQPACKET = 5
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = O_NONBLOCK
SOCK_CLOEXEC = O_CLOEXEC

# Socket option levels and SOL_SOCKET options.
SOL_SOCKET = 1
SO_DEBUG = 1
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_OOBINLINE = 10
SO_LINGER = 13
SO_PASSCRED = 16
SO_PEERCRED = 17
SO_RCVLOWAT = 18
SO_SNDLOWAT = 19
SO_RCVTIMEO = 20
SO_SNDTIMEO = 21
SO_ACCEPTCONN = 30
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_PROTOCOL = 38
SO_DOMAIN = 39

# Buffer sizes (net.core.[rw]mem_default and _max; sock.c's minimums).
SOCK_BUF_DEFAULT = 212992
SOCK_BUF_MAX = 212992
SOCK_MIN_SNDBUF = 4608
SOCK_MIN_RCVBUF = 2304

# send/recv flags.
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_DONTROUTE = 0x4
MSG_CTRUNC = 0x8
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
MSG_EOR = 0x80
MSG_WAITALL = 0x100
MSG_NOSIGNAL = 0x4000
MSG_MORE = 0x8000
MSG_WAITFORONE = 0x10000
MSG_CMSG_CLOEXEC = 0x40000000

# Control messages (SOL_SOCKET level).
SCM_RIGHTS = 1
SCM_CREDENTIALS = 2
SCM_MAX_FD = 253

# shutdown(2) how, and the sk_shutdown bits (how + 1).
SHUT_RD = 0
SHUT_WR = 1
SHUT_RDWR = 2
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2
SHUTDOWN_MASK = 3

SOMAXCONN = 4096  # net.core.somaxconn
UNIX_MAX_DGRAM_QLEN = 10  # net.unix.max_dgram_qlen
UNIX_PATH_MAX = 108
SUN_PATH_OFFSET = 2  # offsetof(struct sockaddr_un, sun_path)
SOCKADDR_STORAGE_SIZE = 128  # the longest address a syscall takes
SOCKFS_MAGIC = 0x534F434B

# Structure layouts.
MSGHDR = struct.Struct("<QI4xQQQQi4x")  # struct msghdr: name, namelen, iov, iovlen, control, controllen, flags
MMSGHDR = struct.Struct("<56sI4x")  # struct mmsghdr: msghdr, msg_len
CMSGHDR = struct.Struct("<Qii")  # struct cmsghdr: len, level, type (data follows, 8-aligned)
UCRED = struct.Struct("<iII")  # struct ucred: pid, uid, gid
TIMEVAL = struct.Struct("<qq")
SA_FAMILY = struct.Struct("<H")


def cmsg_align(n: int) -> int:
    """CMSG_ALIGN: `n` rounded up to the 8-byte alignment of control messages."""
    return (n + 7) & ~7
