"""Signal syscalls: dispositions, masks, sending, sigreturn, waiting for signals."""
from __future__ import annotations

import struct
import time

from ..abi import errno as E
from ..abi.caps import CAP_KILL
from ..abi.signal import (
    NSIG, SIGCONT, SIG_BLOCK, SIG_IGN, SIG_SETMASK, SIG_UNBLOCK, SIGKILL, SIGSTOP, SI_TKILL, SI_USER, SS_DISABLE,
    SS_ONSTACK, UNBLOCKABLE, bit,
)
from ..kernel import siginfo
from ..kernel.errors import SysError
from ..kernel.siginfo import kill_info
from ..kernel.signals import deliverable, read_sigset
from ..kernel.waitqueue import JUSTRESUME, Block
from .args import s32
from .time import read_timespec

_SIGACTION = struct.Struct("<QQQQ")  # handler, flags, restorer, mask
_STACK = struct.Struct("<Qi4xQ")  # ss_sp, ss_flags, ss_size
MINSIGSTKSZ = 2048


def _check_sig(sig: int) -> int:
    if not 1 <= sig <= NSIG:
        raise SysError(E.EINVAL)
    return sig


def rt_sigaction(t, sig, act, oact, size, *_):
    sig = _check_sig(s32(sig))
    if size != 8:
        raise SysError(E.EINVAL)
    if act and sig in (SIGKILL, SIGSTOP):
        raise SysError(E.EINVAL)
    new = _SIGACTION.unpack(t.mm.read(act, _SIGACTION.size)) if act else None
    cur = t.tg.actions[sig]
    if oact:
        t.mm.write(oact, _SIGACTION.pack(cur.handler, cur.flags, cur.restorer, cur.mask))
    if new is not None:
        cur.handler, cur.flags, cur.restorer, cur.mask = new[0], new[1], new[2], new[3] & ~UNBLOCKABLE
        if cur.handler == SIG_IGN:  # pending instances are discarded
            for queue in [t.tg.pending] + [x.pending for x in t.tg.tasks.values()]:
                queue[:] = [e for e in queue if e[0] != sig]
    return 0


def rt_sigprocmask(t, how, set_, oset, size, *_):
    if size != 8:
        raise SysError(E.EINVAL)
    new = int.from_bytes(t.mm.read(set_, 8), "little") if set_ else None
    if oset:
        t.mm.write_u64(oset, t.sigmask)
    if new is not None:
        how = s32(how)
        if how == SIG_BLOCK:
            t.sigmask |= new
        elif how == SIG_UNBLOCK:
            t.sigmask &= ~new
        elif how == SIG_SETMASK:
            t.sigmask = new
        else:
            raise SysError(E.EINVAL)
        t.sigmask &= ~UNBLOCKABLE
    return 0


def rt_sigreturn(t, *_):
    t.kernel.signals.sigreturn(t)
    return JUSTRESUME


def _may_signal(t, target) -> bool:
    """kill(2)'s permission rule: CAP_KILL, or a real or effective uid matching the
    target's real or saved uid (SIGCONT within the session is always allowed)."""
    c, other = t.creds, target.creds
    return c.capable(CAP_KILL) or bool({c.uid, c.euid} & {other.uid, other.suid})


def _send(t, targets, sig: int, code: int) -> int:
    allowed = [tg for tg in targets
               if tg.leader is None or _may_signal(t, tg.leader) or sig == SIGCONT and tg.sid == t.tg.sid]
    if not allowed:
        raise SysError(E.EPERM)
    if sig:
        for tg in allowed:
            t.kernel.signals.send_group(tg, sig, code, kill_info(t.tg.pid, t.creds.uid))
    return 0


def kill(t, pid, sig, *_):
    """kill(2) within the caller's container, as within a pid namespace: a pid or process
    group of another container is ESRCH; -1 is every process of the container but the
    caller's and the container's init (and, as on Linux, is not EPERM when some of them may
    not be signalled)."""
    pid, sig = s32(pid), s32(sig)
    if not 0 <= sig <= NSIG:
        raise SysError(E.EINVAL)
    container = t.tg.container
    live = [g for g in t.kernel.groups_of(container) if g.exit_status is None]
    if pid > 0:
        targets = [g for g in live if g.pid == pid]
    elif pid == 0:
        targets = [g for g in live if g.pgid == t.tg.pgid]
    elif pid == -1:
        targets = [g for g in live if g is not container.init and g is not t.tg]
    else:
        targets = [g for g in live if g.pgid == -pid]
    if not targets:
        raise SysError(E.ESRCH)
    try:
        return _send(t, targets, sig, SI_USER)
    except SysError as err:
        if pid == -1 and err.errno == E.EPERM:
            return 0
        raise


def tgkill(t, tgid, tid, sig, *_):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    if tgid <= 0 or tid <= 0 or not 0 <= sig <= NSIG:
        raise SysError(E.EINVAL)
    target = t.kernel.find_task(t, tid)
    if target is None or target.tg.pid != tgid:
        raise SysError(E.ESRCH)
    if not _may_signal(t, target):
        raise SysError(E.EPERM)
    if sig:
        t.kernel.signals.send_task(target, sig, SI_TKILL, kill_info(t.tg.pid, t.creds.uid))
    return 0


def tkill(t, tid, sig, *_):
    tid, sig = s32(tid), s32(sig)
    if tid <= 0 or not 0 <= sig <= NSIG:
        raise SysError(E.EINVAL)
    target = t.kernel.find_task(t, tid)
    if target is None:
        raise SysError(E.ESRCH)
    if not _may_signal(t, target):
        raise SysError(E.EPERM)
    if sig:
        t.kernel.signals.send_task(target, sig, SI_TKILL, kill_info(t.tg.pid, t.creds.uid))
    return 0


def _queued_info(t, target_tg, sig: int, info: int) -> tuple[int, bytes]:
    """The (si_code, union) of a program-built siginfo for rt_(tg)sigqueueinfo."""
    _, code, union = siginfo.decode(t.mm.read(info, siginfo.SIGINFO_SIZE))
    # A process may not forge kernel or kill() signals for another one.
    if (code >= 0 or code == SI_TKILL) and target_tg is not t.tg:
        raise SysError(E.EPERM)
    return code, union


def _sigqueue(t, tg, target, sig: int, info: int) -> int:
    """rt_(tg)sigqueueinfo: queue `sig` with the program's siginfo for process `tg`
    (or thread `target`, when given)."""
    if not 0 <= sig <= NSIG:
        raise SysError(E.EINVAL)
    if tg is None or tg.exit_status is not None:
        raise SysError(E.ESRCH)
    code, union = _queued_info(t, tg, sig, info)
    if sig and target is not None:
        t.kernel.signals.send_task(target, sig, code, union)
    elif sig:
        t.kernel.signals.send_group(tg, sig, code, union)
    return 0


def rt_sigqueueinfo(t, tgid, sig, info, *_):
    return _sigqueue(t, t.kernel.find_group(t, s32(tgid)), None, s32(sig), info)


def rt_tgsigqueueinfo(t, tgid, tid, sig, info, *_):
    target = t.kernel.find_task(t, s32(tid))
    if target is None or target.tg.pid != s32(tgid):
        raise SysError(E.ESRCH)
    return _sigqueue(t, target.tg, target, s32(sig), info)


def rt_sigtimedwait(t, set_, info, timeout, size, *_):
    mask = read_sigset(t, set_, size)
    deadline = time.monotonic() + read_timespec(t, timeout) / 1e9 if timeout else None

    def take():
        entry = t.kernel.signals.dequeue(t, mask)
        if entry is not None:
            t.sigwait_mask = 0
            if info:
                t.mm.write(info, siginfo.encode(*entry))
            return entry[0]
        if deadline is not None and time.monotonic() >= deadline:
            t.sigwait_mask = 0
            raise SysError(E.EAGAIN)
        t.sigwait_mask = mask
        return Block(deadline=deadline, retry=take, restartable=False)

    return take()


def sigaltstack(t, ss, old, *_):
    sp, flags, size = t.altstack
    if old:
        regs_sp = _current_sp(t)
        on = SS_ONSTACK if sp <= regs_sp < sp + size else flags & SS_DISABLE
        t.mm.write(old, _STACK.pack(sp, on, size))
    if ss:
        new_sp, new_flags, new_size = _STACK.unpack(t.mm.read(ss, _STACK.size))
        if sp <= _current_sp(t) < sp + size:
            raise SysError(E.EPERM)
        if new_flags & ~(SS_DISABLE | (1 << 31)):
            raise SysError(E.EINVAL)
        if new_flags & SS_DISABLE:
            t.altstack = (0, SS_DISABLE, 0)
        else:
            if new_size < MINSIGSTKSZ:
                raise SysError(E.ENOMEM)
            t.altstack = (new_sp, 0, new_size)
    return 0


def _current_sp(t) -> int:
    regs = t.kernel.platform.new_regs()
    t.kernel.platform.getregs(t.host_tid, regs)
    return regs.rsp


def rt_sigpending(t, set_, size, *_):
    if size > 8:
        raise SysError(E.EINVAL)
    pending = 0
    for entry in t.pending + t.tg.pending:
        pending |= bit(entry[0])
    t.mm.write(set_, (pending & t.sigmask).to_bytes(8, "little")[:size])
    return 0


def rt_sigsuspend(t, mask, size, *_):
    new = read_sigset(t, mask, size)
    t.saved_sigmask = t.sigmask
    t.sigmask = new
    if deliverable(t):
        raise SysError(E.EINTR)
    return Block(retry=lambda: Block(restartable=False), restartable=False)


def pause(t, *_):
    if deliverable(t):
        raise SysError(E.EINTR)
    return Block(restartable=False)
