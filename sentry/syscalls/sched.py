"""Scheduling and resources: nice values, policies, CPU affinity, resource limits and usage, personality.

The sentry runs every task on the host's scheduler, so policies, priorities
and affinity are kept per task (SchedAttrs) and reported back, with Linux's
permission rules, but do not change how the host schedules the stub.  CPU
times come from the host's CPU clock of the stub process.
"""
from __future__ import annotations

import struct
import time as host

from ..abi import errno as E
from ..abi.caps import CAP_SYS_NICE, CAP_SYS_RESOURCE
from ..abi.proc import CLK_TCK
from ..abi.resource import (
    MAX_NICE, MIN_NICE, NR_OPEN, PRIO_PGRP, PRIO_PROCESS, PRIO_USER, RLIM_NLIMITS, RLIMIT_NICE, RLIMIT_NOFILE,
    RLIMIT_RTPRIO, RUSAGE_CHILDREN, RUSAGE_SELF, RUSAGE_THREAD,
)
from ..abi.sched import (
    FAIR_POLICIES, MAX_RT_PRIO, PERSONALITY_QUERY, RT_POLICIES, SCHED_DEADLINE, SCHED_IDLE, SCHED_RESET_ON_FORK,
)
from ..kernel.errors import SysError
from ..kernel.schedattrs import online_cpus
from ..kernel.task import Task, ThreadGroup
from .args import s32, u32

_RLIMIT = struct.Struct("<QQ")
_RUSAGE = struct.Struct("<18q")  # ru_utime, ru_stime (struct timeval), then 14 longs
_TMS = struct.Struct("<4q")
_NS = 1_000_000_000


def _task(t, pid: int) -> Task | None:
    """The task `pid` names in the caller's container (0: the caller), or None."""
    return t if pid == 0 else t.kernel.find_task(t, pid)


def _same_owner(t, target: Task) -> bool:
    """Linux's check_same_owner: the caller's euid is the target's real or effective uid."""
    return t.creds.euid in (target.creds.uid, target.creds.euid)


# -- resource limits -----------------------------------------------------------------------
def _prlimit(t, tg: ThreadGroup, resource: int, new: tuple[int, int] | None) -> tuple[int, int]:
    """The limit of `tg` for `resource`, replaced by `new` if given (as `t` may); returns the old one."""
    if resource >= RLIM_NLIMITS:
        raise SysError(E.EINVAL)
    old = tg.rlimit(resource)
    if new is None:
        return old
    soft, hard = new
    if soft > hard:
        raise SysError(E.EINVAL)
    if resource == RLIMIT_NOFILE and hard > NR_OPEN:
        raise SysError(E.EPERM)
    if hard > old[1] and not t.creds.capable(CAP_SYS_RESOURCE):
        raise SysError(E.EPERM)
    tg.rlimits[resource] = new
    if resource == RLIMIT_NOFILE:
        for task in tg.tasks.values():
            task.fdtable.set_limit(soft)
    return old


def _may_prlimit(t, target: Task) -> bool:
    """Another task's limits: only with all its uids and gids the caller's real ones, or CAP_SYS_RESOURCE."""
    c, tc = t.creds, target.creds
    if target is t or c.capable(CAP_SYS_RESOURCE):
        return True
    return {tc.uid, tc.euid, tc.suid} == {c.uid} and {tc.gid, tc.egid, tc.sgid} == {c.gid}


def prlimit64(t, pid, resource, new, old, *_):
    pid, resource = s32(pid), u32(resource)
    limit = _RLIMIT.unpack(t.mm.read(new, _RLIMIT.size)) if new else None
    target = _task(t, pid)
    if target is None:
        raise SysError(E.ESRCH)
    if not _may_prlimit(t, target):
        raise SysError(E.EPERM)
    previous = _prlimit(t, target.tg, resource, limit)
    if old:
        t.mm.write(old, _RLIMIT.pack(*previous))
    return 0


def getrlimit(t, resource, old, *_):
    t.mm.write(old, _RLIMIT.pack(*_prlimit(t, t.tg, u32(resource), None)))
    return 0


def setrlimit(t, resource, new, *_):
    _prlimit(t, t.tg, u32(resource), _RLIMIT.unpack(t.mm.read(new, _RLIMIT.size)))
    return 0


# -- nice values ---------------------------------------------------------------------------
def _prio_targets(t, which: int, who: int) -> list[Task]:
    """The tasks getpriority/setpriority act on: a thread, a process group's threads, or a user's (by real uid),
    in the caller's container."""
    k = t.kernel
    which = s32(which)
    if which == PRIO_PROCESS:
        task = _task(t, s32(who))
        return [task] if task is not None else []
    if which == PRIO_PGRP:
        pgid = s32(who) or t.tg.pgid
        return [task for tg in k.groups_of(t.tg.container) if tg.pgid == pgid for task in tg.tasks.values()]
    if which == PRIO_USER:
        uid = u32(who) or t.creds.uid
        return [task for tg in k.groups_of(t.tg.container) for task in tg.tasks.values() if task.creds.uid == uid]
    raise SysError(E.EINVAL)


def _can_nice(t, target: Task, nice: int) -> bool:
    """Whether `target` may get nice value `nice`: within its RLIMIT_NICE, or the caller has CAP_SYS_NICE."""
    return 20 - nice <= target.tg.rlimit(RLIMIT_NICE)[0] or t.creds.capable(CAP_SYS_NICE)


def getpriority(t, which, who, *_):
    """The highest priority among the targets, as 20 - nice (1..40: never negative, unlike nice)."""
    targets = _prio_targets(t, which, who)
    if not targets:
        raise SysError(E.ESRCH)
    return max(20 - task.sched.nice for task in targets)


def setpriority(t, which, who, nice, *_):
    nice = min(max(s32(nice), MIN_NICE), MAX_NICE)
    error = E.ESRCH
    for task in _prio_targets(t, which, who):
        if not (_same_owner(t, task) or t.creds.capable(CAP_SYS_NICE)):
            error = E.EPERM
        elif nice < task.sched.nice and not _can_nice(t, task, nice):
            error = E.EACCES
        else:
            task.sched.nice = nice
            if error == E.ESRCH:
                error = 0
    if error:
        raise SysError(error)
    return 0


# -- policies --------------------------------------------------------------------------------
def _set_policy(t, pid: int, policy: int | None, param: int) -> int:
    """sched_setscheduler (policy given) and sched_setparam (policy None: kept)."""
    pid = s32(pid)
    if not param or pid < 0:
        raise SysError(E.EINVAL)
    priority = u32(int.from_bytes(t.mm.read(param, 4), "little"))
    target = _task(t, pid)
    if target is None:
        raise SysError(E.ESRCH)
    attrs = target.sched
    if policy is None:
        policy, reset = attrs.policy, attrs.reset_on_fork
    else:
        reset = bool(policy & SCHED_RESET_ON_FORK)
        policy &= ~SCHED_RESET_ON_FORK
        if policy not in FAIR_POLICIES + RT_POLICIES:
            raise SysError(E.EINVAL)  # SCHED_DEADLINE too: it needs sched_setattr's parameters
    if priority >= MAX_RT_PRIO or (policy in RT_POLICIES) != (priority != 0):
        raise SysError(E.EINVAL)
    if not t.creds.capable(CAP_SYS_NICE):
        rtprio = target.tg.rlimit(RLIMIT_RTPRIO)[0]
        if policy in RT_POLICIES and (policy != attrs.policy and not rtprio
                                      or priority > attrs.rt_priority and priority > rtprio):
            raise SysError(E.EPERM)
        if attrs.policy == SCHED_IDLE and policy != SCHED_IDLE and not _can_nice(t, target, attrs.nice):
            raise SysError(E.EPERM)
        if not _same_owner(t, target) or attrs.reset_on_fork and not reset:
            raise SysError(E.EPERM)
    attrs.policy, attrs.rt_priority, attrs.reset_on_fork = policy, priority, reset
    return 0


def sched_setscheduler(t, pid, policy, param, *_):
    policy = s32(policy)
    if policy < 0:
        raise SysError(E.EINVAL)
    return _set_policy(t, pid, policy, param)


def sched_setparam(t, pid, param, *_):
    return _set_policy(t, pid, None, param)


def _existing(t, pid: int) -> Task:
    """sched_get*'s target: EINVAL for a negative pid, ESRCH for a missing one."""
    pid = s32(pid)
    if pid < 0:
        raise SysError(E.EINVAL)
    target = _task(t, pid)
    if target is None:
        raise SysError(E.ESRCH)
    return target


def sched_getscheduler(t, pid, *_):
    attrs = _existing(t, pid).sched
    return attrs.policy | (SCHED_RESET_ON_FORK if attrs.reset_on_fork else 0)


def sched_getparam(t, pid, param, *_):
    if not param:
        raise SysError(E.EINVAL)
    t.mm.write_u32(param, _existing(t, pid).sched.rt_priority)
    return 0


def _policy_range(policy: int) -> tuple[int, int]:
    policy = s32(policy)
    if policy in RT_POLICIES:
        return 1, MAX_RT_PRIO - 1
    if policy in FAIR_POLICIES or policy == SCHED_DEADLINE:
        return 0, 0
    raise SysError(E.EINVAL)


def sched_get_priority_max(t, policy, *_):
    return _policy_range(policy)[1]


def sched_get_priority_min(t, policy, *_):
    return _policy_range(policy)[0]


def sched_yield(t, *_):
    return 0


# -- CPU affinity ----------------------------------------------------------------------------
def _mask_bytes() -> int:
    """The size of a kernel cpumask: whole longs covering every CPU."""
    return (online_cpus() + 63) // 64 * 8


def sched_setaffinity(t, pid, size, mask, *_):
    cpus = int.from_bytes(t.mm.read(mask, min(size, _mask_bytes())), "little") & ((1 << online_cpus()) - 1)
    target = _task(t, s32(pid))
    if target is None:
        raise SysError(E.ESRCH)
    if not _same_owner(t, target) and not t.creds.capable(CAP_SYS_NICE):
        raise SysError(E.EPERM)
    if not cpus:
        raise SysError(E.EINVAL)
    target.sched.cpus = cpus
    return 0


def sched_getaffinity(t, pid, size, mask, *_):
    if size * 8 < online_cpus() or size % 8:
        raise SysError(E.EINVAL)
    target = _task(t, s32(pid))
    if target is None:
        raise SysError(E.ESRCH)
    nbytes = _mask_bytes()
    t.mm.write(mask, target.sched.cpus.to_bytes(nbytes, "little"))
    return nbytes


def getcpu(t, cpu, node, *_):
    """The CPU the task runs on, as the sandbox sees it: the first one of its affinity mask."""
    if cpu:
        cpus = t.sched.cpus
        t.mm.write_u32(cpu, (cpus & -cpus).bit_length() - 1)
    if node:
        t.mm.write_u32(node, 0)
    return 0


# -- usage: getrusage, times -----------------------------------------------------------------
def getrusage(t, who, usage, *_):
    """User time is the CPU time of the process (RUSAGE_SELF) or thread (see Task.cpu_ns); the rest
    is 0, as are children's."""
    who = s32(who)
    if who == RUSAGE_SELF:
        cpu = t.tg.cpu_ns()
    elif who == RUSAGE_THREAD:
        cpu = t.cpu_ns()
    elif who == RUSAGE_CHILDREN:
        cpu = 0
    else:
        raise SysError(E.EINVAL)
    usec = cpu // 1000
    t.mm.write(usage, _RUSAGE.pack(usec // 1_000_000, usec % 1_000_000, *(0,) * 16))
    return 0


def times(t, buf, *_):
    """The process's CPU time in clock ticks (all as user time); returns the ticks since the sandbox booted."""
    if buf:
        ticks = t.tg.cpu_ns() * CLK_TCK // _NS
        t.mm.write(buf, _TMS.pack(ticks, 0, 0, 0))
    return int((host.monotonic() - t.kernel.boot_monotonic) * CLK_TCK)


# -- personality -----------------------------------------------------------------------------
def personality(t, persona, *_):
    """Record the execution domain and flags (only recorded: none changes what the sentry does)."""
    old = t.sched.personality
    persona = u32(persona)
    if persona != PERSONALITY_QUERY:
        t.sched.personality = persona
    return old
