"""Resource limits, usage and priorities (sys/resource.h, linux/resource.h)."""

RLIMIT_STACK = 3
RLIMIT_NOFILE = 7
RLIMIT_AS = 9
RLIMIT_NICE = 13
RLIMIT_RTPRIO = 14
RLIM_NLIMITS = 16
RLIM_INFINITY = (1 << 64) - 1
# Every limit by number, as OCI specs name them (process.rlimits[].type).
RLIMIT_NAMES = ("RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
                "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
                "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME")

# The most RLIMIT_NOFILE may be (/proc/sys/fs/nr_open).
NR_OPEN = 1 << 20

RUSAGE_SELF = 0
RUSAGE_CHILDREN = -1
RUSAGE_THREAD = 1

PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
MIN_NICE, MAX_NICE = -20, 19
