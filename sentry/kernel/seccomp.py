"""A container's seccomp profile (OCI `linux.seccomp`), enforced by the sentry as runsc does.

The profile is compiled once (`compile_profile`) into a Filter: for each syscall number, either
one fixed outcome or the rules whose argument conditions decide it.  A container holds its
Filter (Container.seccomp) and every process of it is filtered, the ones the runtime executes
included; Kernel.install_seccomp puts `guard` in front of the handlers of the numbers the filter
does not simply allow, so a sandbox without a profile, and the calls a profile allows outright,
take the usual path.

Semantics follow runc over libseccomp: unknown syscall names are ignored (logged); a rule whose
action is the default action is dropped; a rule with several conditions on one argument becomes
one rule per condition; SCMP_ACT_ERRNO without errnoRet is EPERM.  When several rules of a
syscall match a call, the most restrictive action wins (the kernel's precedence order).
Architectures other than x86_64 are accepted and have no effect (the sandbox runs x86_64
programs only).  Actions: ALLOW; LOG (allowed, logged); ERRNO (the call fails with errnoRet,
0 = returns 0); TRACE (no tracer: ENOSYS); TRAP (SIGSYS with si_code SYS_SECCOMP, the call
skipped, %rax left holding its number); KILL_THREAD / KILL (the thread ends; a process's last
thread: the process is killed by SIGSYS); KILL_PROCESS (the process is killed by SIGSYS).
SCMP_ACT_NOTIFY (a user-space listener) is refused.
"""
from __future__ import annotations

import operator

import structlog

from ..abi import errno as E
from ..abi import seccomp as S
from ..abi.signal import SIGSYS
from ..abi.sysno import MAX_NR, NUMBERS
from .siginfo import sys_info
from .waitqueue import NORESUME

log = structlog.get_logger("ringfence.sentry")

_U64 = (1 << 64) - 1
_CMP = {S.CMP_NE: operator.ne, S.CMP_LT: operator.lt, S.CMP_LE: operator.le, S.CMP_EQ: operator.eq,
        S.CMP_GE: operator.ge, S.CMP_GT: operator.gt}
_TESTS = {op: (lambda cmp: lambda arg, value, _two: cmp(arg, value))(cmp) for op, cmp in _CMP.items()}
_TESTS[S.CMP_MASKED_EQ] = lambda arg, mask, value: arg & mask == value
_RANK = {kind: rank for rank, kind in enumerate(S.PRECEDENCE)}


class SeccompError(ValueError):
    """A malformed profile, or one the sandbox cannot enforce (the message names the field)."""


class Action:
    """What a filter does with a call: an SCMP_ACT_* kind and its data (errno, trap data)."""

    __slots__ = ("kind", "data", "rank")

    def __init__(self, kind: str, data: int = 0):
        self.kind, self.data, self.rank = kind, data, _RANK[kind]

    def __eq__(self, other) -> bool:
        return isinstance(other, Action) and (self.kind, self.data) == (other.kind, other.data)

    def __hash__(self) -> int:
        return hash((self.kind, self.data))

    def __repr__(self) -> str:
        return f"Action({self.kind}, {self.data})"

    def enforce(self, t, nr: int):
        """Apply the action to task `t`'s call `nr`: the syscall result (or NORESUME), or
        None when the call goes ahead (LOG)."""
        kind = self.kind
        if kind == S.ACT_ERRNO:
            return -self.data
        if kind == S.ACT_LOG:
            log.info("seccomp: syscall logged", pid=t.tg.pid, tid=t.tid, nr=nr)
            return None
        if kind == S.ACT_TRACE:
            return -E.ENOSYS  # as Linux when no tracer is attached
        k = t.kernel
        if kind == S.ACT_TRAP:
            regs = k.platform.new_regs()
            k.platform.getregs(t.host_tid, regs)
            k.signals.force(t, SIGSYS, S.SYS_SECCOMP, sys_info(regs.rip, nr, S.AUDIT_ARCH_X86_64))
            return nr  # the call is skipped, %rax rolled back to its number
        log.info("seccomp: killing", pid=t.tg.pid, tid=t.tid, nr=nr, action=kind)
        if kind == S.ACT_KILL_THREAD and len(t.tg.tasks) > 1:
            k.exit_thread(t)
        else:
            k.exit_group(t.tg, SIGSYS)
        return NORESUME


# A rule: its conditions ((index, op, value, value_two), ...) all hold, and its action applies.
Rule = tuple[tuple[tuple[int, str, int, int], ...], Action]


class Filter:
    """A compiled profile: the outcome of each syscall number (None: allowed)."""

    def __init__(self, default: Action, rules: dict[int, list[Rule]]):
        self.default = default
        self._fixed: dict[int, Action] = {}  # numbers whose outcome does not depend on arguments
        # The others: their rules, the most restrictive first, each condition as
        # (index, test, value, value_two).
        self._rules: dict[int, tuple] = {}
        for nr, nr_rules in rules.items():
            unconditional = [action for conds, action in nr_rules if not conds]
            if unconditional and min(a.rank for a in unconditional) <= min(a.rank for _, a in nr_rules):
                self._fixed[nr] = min(unconditional, key=lambda a: a.rank)
            else:
                ordered = sorted(nr_rules, key=lambda rule: rule[1].rank)
                self._rules[nr] = tuple((tuple((i, _TESTS[op], v, v2) for i, op, v, v2 in conds), action)
                                        for conds, action in ordered)

    def filtered(self) -> set[int]:
        """The syscall numbers whose calls are not all simply allowed."""
        if self.default.kind == S.ACT_ALLOW:
            return set(self._rules) | {nr for nr, a in self._fixed.items() if a.kind != S.ACT_ALLOW}
        return set(range(MAX_NR + 1)) - {nr for nr, a in self._fixed.items() if a.kind == S.ACT_ALLOW}

    def decide(self, nr: int, args) -> Action | None:
        """What becomes of call `nr` with `args` (None: it is allowed)."""
        action = self._fixed.get(nr)
        if action is None:
            action = self.default
            for conds, rule_action in self._rules.get(nr, ()):
                for i, test, value, value_two in conds:
                    if not test(args[i] & _U64, value, value_two):
                        break
                else:
                    action = rule_action
                    break
        return None if action.kind == S.ACT_ALLOW else action


def guard(nr: int, handler):
    """`handler` (of syscall `nr`) behind the calling container's filter, if it has one."""

    def filtered(t, *args):
        filt = t.tg.container.seccomp
        if filt is not None:
            action = filt.decide(nr, args)
            if action is not None:
                result = action.enforce(t, nr)
                if result is not None:
                    return result
        return handler(t, *args)

    filtered.__name__ = getattr(handler, "__name__", filtered.__name__)
    return filtered


# -- compiling an OCI profile ---------------------------------------------------------------

def _uint(value, what: str, bits: int = 64) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise SeccompError(f"linux.seccomp: {what} must be an unsigned {bits}-bit integer, not {value!r}")
    return value


def _action(name, errno_ret, where: str) -> Action:
    kind = S.ACT_ALIASES.get(name, name)
    if kind not in _RANK:
        raise SeccompError(f"linux.seccomp: {where}: unknown action {name!r}")
    if kind == S.ACT_NOTIFY:
        raise SeccompError(f"linux.seccomp: {where}: {name} (a user-space listener) is not supported by ringfence")
    if kind in (S.ACT_ERRNO, S.ACT_TRAP, S.ACT_TRACE):
        data = E.EPERM if errno_ret is None and kind == S.ACT_ERRNO else errno_ret or 0
        return Action(kind, _uint(data, f"{where}: errnoRet", 16))
    return Action(kind)


def _conditions(args, where: str) -> list[tuple[tuple[int, str, int, int], ...]]:
    """A rule's conditions, as runc adds them: all together, or (several on one argument) one
    rule each."""
    if args is None:
        return [()]
    if not isinstance(args, list):
        raise SeccompError(f"linux.seccomp: {where}.args must be a list")
    conds = []
    for n, arg in enumerate(args):
        at = f"{where}.args[{n}]"
        if not isinstance(arg, dict):
            raise SeccompError(f"linux.seccomp: {at} must be an object")
        index = _uint(arg.get("index"), f"{at}.index", 32)
        if index >= S.SYSCALL_ARGS:
            raise SeccompError(f"linux.seccomp: {at}.index {index}: a syscall has {S.SYSCALL_ARGS} arguments")
        op = arg.get("op")
        if op not in _CMP and op != S.CMP_MASKED_EQ:
            raise SeccompError(f"linux.seccomp: {at}: unknown op {op!r}")
        conds.append((index, op, _uint(arg.get("value", 0), f"{at}.value"),
                       _uint(arg.get("valueTwo", 0), f"{at}.valueTwo")))
    indexes = [c[0] for c in conds]
    if len(set(indexes)) != len(indexes):
        return [(c,) for c in conds]
    return [tuple(conds)]


def compile_profile(profile) -> Filter | None:
    """The Filter of an OCI `linux.seccomp` object (None: no profile); SeccompError if it
    is malformed or asks for what the sandbox cannot do."""
    if profile is None:
        return None
    if not isinstance(profile, dict):
        raise SeccompError("linux.seccomp must be an object")
    default = _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"), "defaultAction")
    arches = profile.get("architectures") or []
    if not isinstance(arches, list):
        raise SeccompError("linux.seccomp: architectures must be a list")
    for arch in arches:
        if arch not in S.ARCH_NATIVE and arch not in S.ARCH_OTHERS:
            raise SeccompError(f"linux.seccomp: unknown architecture {arch!r}")
    syscalls = profile.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise SeccompError("linux.seccomp: syscalls must be a list")
    rules: dict[int, list[Rule]] = {}
    unknown = set()
    for n, entry in enumerate(syscalls):
        where = f"syscalls[{n}]"
        if not isinstance(entry, dict):
            raise SeccompError(f"linux.seccomp: {where} must be an object")
        names = entry.get("names")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise SeccompError(f"linux.seccomp: {where}.names must be a list of syscall names")
        action = _action(entry.get("action"), entry.get("errnoRet"), where)
        conditions = _conditions(entry.get("args"), where)
        if action == default:
            continue  # as runc: nothing to add
        for name in names:
            nr = NUMBERS.get(name)
            if nr is None:
                unknown.add(name)
                continue
            rules.setdefault(nr, []).extend((conds, action) for conds in conditions)
    if unknown:
        log.debug("seccomp: syscalls not known on x86_64 ignored", names=sorted(unknown))
    return Filter(default, rules)
