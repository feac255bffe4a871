"""A task's scheduling attributes and execution domain, which clone() passes on."""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass

from ..abi.sched import PER_LINUX, RT_POLICIES, SCHED_OTHER


@functools.cache
def online_cpus() -> int:
    """How many CPUs the sandbox sees (all of the host's)."""
    return os.cpu_count() or 1


def all_cpus() -> int:
    """The affinity mask with every CPU the sandbox sees."""
    return (1 << online_cpus()) - 1


@dataclass
class SchedAttrs:
    """Nice value, scheduling policy, real-time priority, CPU affinity and personality of a task."""

    nice: int = 0
    policy: int = SCHED_OTHER
    rt_priority: int = 0
    reset_on_fork: bool = False  # SCHED_RESET_ON_FORK
    cpus: int = dataclasses.field(default_factory=all_cpus)  # affinity bitmask
    personality: int = PER_LINUX

    def fork(self) -> "SchedAttrs":
        """The attributes of a task this one creates.

        With SCHED_RESET_ON_FORK the child leaves a real-time policy (for
        SCHED_OTHER, nice 0) or a negative nice value, and does not keep the flag.
        """
        child = dataclasses.replace(self, reset_on_fork=False)
        if self.reset_on_fork:
            if self.policy in RT_POLICIES:
                child.policy, child.rt_priority, child.nice = SCHED_OTHER, 0, 0
            child.nice = max(child.nice, 0)
        return child
