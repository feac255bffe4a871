"""Scheduling policies (linux/sched.h) and execution domains (linux/personality.h)."""

SCHED_OTHER = 0
SCHED_FIFO = 1
SCHED_RR = 2
SCHED_BATCH = 3
SCHED_IDLE = 5
SCHED_DEADLINE = 6
SCHED_RESET_ON_FORK = 0x40000000

RT_POLICIES = (SCHED_FIFO, SCHED_RR)
FAIR_POLICIES = (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE)
MAX_RT_PRIO = 100  # real-time priorities are 1..MAX_RT_PRIO-1

# personality(2): the value that only asks, and the default execution domain.
PERSONALITY_QUERY = 0xFFFFFFFF
PER_LINUX = 0x0000
