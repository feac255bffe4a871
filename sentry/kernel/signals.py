"""Signals: queueing, delivery onto the program's stack, and rt_sigreturn.

Delivery builds a real x86_64 `rt_sigframe` (pretcode, ucontext with the
interrupted registers and signal mask, siginfo, and the FXSAVE area the
ucontext's fpstate points to) the way Linux does, so handlers, sigreturn and
programs that inspect their ucontext all work.
"""
from __future__ import annotations

import struct

from ..abi import errno as E
from ..abi.signal import (
    IGNORE, SA_NODEFER, SA_ONSTACK, SA_RESETHAND, SA_RESTART, SA_RESTORER, SI_KERNEL, SIG_DFL, SIG_IGN,
    SIGBUS, SIGCONT, SIGKILL, SIGRTMIN, SIGSEGV, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SS_DISABLE, SS_ONSTACK, STOP,
    UNBLOCKABLE, bit, default_action,
)
from . import siginfo
from .errors import SysError
from .waitqueue import NORESUME, Block

_SIGCONTEXT = struct.Struct("<18Q4H4QQ8Q")  # 256 bytes
_UC_HEAD = struct.Struct("<QQQiiQ")  # uc_flags, uc_link, ss_sp, ss_flags, pad, ss_size
_FRAME_SIZE = 8 + _UC_HEAD.size + _SIGCONTEXT.size + 8 + 128
_UC = 8  # offset of the ucontext in the frame
_MCONTEXT = _UC + _UC_HEAD.size
_SIGMASK = _MCONTEXT + _SIGCONTEXT.size
_SIGINFO = _SIGMASK + 8
_REDZONE = 128
_UC_FLAGS = 0x2 | 0x4  # UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
# Flags a handler may change through its ucontext (AC OF DF TF SF ZF AF PF CF RF).
_FIX_EFLAGS = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000
_RESTART_CODES = (-E.ERESTARTSYS, -E.ERESTARTNOINTR, -E.ERESTARTNOHAND)


_FAULTS = (SIGSEGV, SIGBUS)  # whose fault address the sigcontext's cr2 carries
_STOP_SIGNALS = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU)


# Who sent a signal, for the protection of containers' inits (Linux's SIGNAL_UNKILLABLE).
FROM_SANDBOX = 0  # a process of the sandbox, or the kernel: an init gets only the signals it handles
FROM_RUNTIME = 1  # the runtime (control service, forwarded host signals), as from an ancestor pid namespace:
# also SIGKILL and SIGSTOP
_RUNTIME_FORCED = frozenset((SIGKILL, SIGSTOP))


class Signals:
    """The kernel's signal machinery."""

    def __init__(self, kernel):
        self.kernel = kernel

    # -- sending ------------------------------------------------------------
    def _ignored(self, tg, sig: int) -> bool:
        act = tg.actions[sig]
        if act.handler == SIG_IGN:
            return True
        return act.handler == SIG_DFL and default_action(sig) == IGNORE

    def send_task(self, t, sig: int, code: int = SI_KERNEL, union: bytes = b"",
                  origin: int = FROM_SANDBOX) -> None:
        """Queue `sig` for thread `t` and make sure it notices."""
        self._queue(t.tg, t.pending, t, sig, code, union, origin)

    def send_group(self, tg, sig: int, code: int = SI_KERNEL, union: bytes = b"",
                   origin: int = FROM_SANDBOX) -> None:
        """Queue a process-directed `sig` for `tg`."""
        target = next((t for t in tg.tasks.values() if not t.sigmask & bit(sig)),
                      next(iter(tg.tasks.values()), None))
        self._queue(tg, tg.pending, target, sig, code, union, origin)

    def _protected(self, tg, sig: int, origin: int) -> bool:
        """A container's init, like a pid namespace's, gets no signal it has no
        handler for (faults are forced past this: see force())."""
        container = tg.container
        if (not self.kernel.protect_inits or container is None or container.init is not tg
                or tg.actions[sig].handler != SIG_DFL):
            return False
        return origin == FROM_SANDBOX or sig not in _RUNTIME_FORCED

    def _queue(self, tg, queue: list, target, sig: int, code: int, union: bytes, origin: int) -> None:
        if tg.exit_status is not None or target is None:
            return
        if sig == SIGKILL:
            if not self._protected(tg, sig, origin):
                self.kernel.exit_group(tg, SIGKILL)
            return
        # Stop and continue signals cancel each other at send time (Linux's prepare_signal).
        if sig == SIGCONT:
            self._drop(tg, _STOP_SIGNALS)
            self.kernel.continue_group(tg)
        elif bit(sig) & _STOP_SIGNALS:
            self._drop(tg, bit(SIGCONT))
        blocked = target.sigmask & bit(sig)
        waited = target.sigwait_mask & bit(sig)
        if not blocked and not waited and self._protected(tg, sig, origin):
            return
        if self._ignored(tg, sig) and not blocked and not waited:
            return
        if sig < SIGRTMIN and any(entry[0] == sig for entry in queue):
            return  # standard signals do not queue twice
        queue.append((sig, code, union))
        if tg.signal_wq:
            tg.signal_wq.notify()  # signalfds polled by its threads
        if waited:
            self.kernel.wake(target)
        elif not blocked and target is not self.kernel.current:
            self.kernel.interrupt(target)

    @staticmethod
    def _drop(tg, mask: int) -> None:
        for queue in [tg.pending] + [t.pending for t in tg.tasks.values()]:
            queue[:] = [e for e in queue if not bit(e[0]) & mask]

    def force(self, t, sig: int, code: int, info: bytes) -> None:
        """A synchronous fault (or a seccomp trap): unblock `sig` (default action if it was
        blocked or ignored); `info` is its siginfo union (siginfo.fault_info, sys_info)."""
        act = t.tg.actions[sig]
        if t.sigmask & bit(sig) or act.handler == SIG_IGN:
            act.handler = SIG_DFL
            t.sigmask &= ~bit(sig)
        t.pending.insert(0, (sig, code, info))

    def dequeue(self, t, mask: int):
        """Take `t`'s first pending signal (thread's, then process's) in `mask`."""
        for queue in (t.pending, t.tg.pending):
            for i, entry in enumerate(queue):
                if bit(entry[0]) & mask:
                    return queue.pop(i)
        return None

    # -- delivery -------------------------------------------------------------
    def deliver(self, t, result):
        """Deliver `t`'s next deliverable signal before it resumes.

        `result` is the syscall result about to be returned (None: not in a
        syscall).  Returns the %rax value to resume with (None when the
        registers were rewritten), or kernel.NORESUME when the task died.
        """
        while True:
            entry = self.dequeue(t, ~t.sigmask)
            if entry is None:
                restore_sigmask(t)  # (sigsuspend, ppoll... ended without a handler)
                if result in _RESTART_CODES:
                    return self._restart(t)
                return result
            sig = entry[0]
            act = t.tg.actions[sig]
            if act.handler == SIG_IGN:
                continue
            if act.handler == SIG_DFL:
                action = default_action(sig)
                if action == IGNORE:
                    continue
                if action == STOP:
                    self.kernel.stop_group(t.tg, sig)
                    continue
                # Terminate (CORE too: the sandbox writes no core file, so
                # the wait status has no core flag, as with RLIMIT_CORE 0).
                self.kernel.exit_group(t.tg, sig)
                return NORESUME
            if not self._setup_frame(t, act, entry, result):
                self.kernel.exit_group(t.tg, SIGSEGV)
                return NORESUME
            return None

    def _restart(self, t) -> None:
        regs = self.kernel.platform.new_regs()
        self.kernel.platform.getregs(t.host_tid, regs)
        regs.rax = regs.orig_rax
        regs.rip -= 2
        self.kernel.platform.setregs(t.host_tid, regs)
        return None

    def _setup_frame(self, t, act, entry, result) -> bool:
        plat = self.kernel.platform
        sig, code, union = entry
        regs = plat.new_regs()
        plat.getregs(t.host_tid, regs)
        if result is not None:
            if result in _RESTART_CODES:
                if act.flags & SA_RESTART or result == -E.ERESTARTNOINTR:
                    regs.rax = regs.orig_rax
                    regs.rip -= 2
                else:
                    regs.rax = (-E.EINTR) & ((1 << 64) - 1)
            else:
                regs.rax = result & ((1 << 64) - 1)
        if not act.flags & SA_RESTORER:
            return False
        sp = regs.rsp - _REDZONE
        ss_sp, ss_flags, ss_size = t.altstack
        if act.flags & SA_ONSTACK and not ss_flags & SS_DISABLE and not ss_sp <= regs.rsp < ss_sp + ss_size:
            sp = ss_sp + ss_size
        fp = plat.getfpregs(t.host_tid)  # the whole XSAVE area (AVX... included)
        fpstate = (sp - len(fp)) & ~63
        frame = ((fpstate - _FRAME_SIZE) & ~15) - 8
        on_stack = SS_ONSTACK if ss_sp <= regs.rsp < ss_sp + ss_size else ss_flags
        mask = t.saved_sigmask if t.saved_sigmask is not None else t.sigmask
        t.saved_sigmask = None
        mcontext = _SIGCONTEXT.pack(
            regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
            regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp,
            regs.rip, regs.eflags, regs.cs, regs.gs, regs.fs, regs.ss,
            0, 0, mask & 0xFFFFFFFF, int.from_bytes(union[:8], "little") if sig in _FAULTS and code > 0 else 0,
            fpstate, *([0] * 8))
        blob = (act.restorer.to_bytes(8, "little")
                + _UC_HEAD.pack(_UC_FLAGS, 0, ss_sp, on_stack, 0, ss_size)
                + mcontext + mask.to_bytes(8, "little") + siginfo.encode(sig, code, union))
        try:
            t.mm.write(fpstate, fp)
            t.mm.write(frame, blob)
        except OSError:
            return False
        regs.rsp = frame
        regs.rip = act.handler
        regs.rdi = sig
        regs.rsi = frame + _SIGINFO
        regs.rdx = frame + _UC
        regs.rax = 0
        regs.eflags &= ~(0x400 | 0x100)
        plat.setregs(t.host_tid, regs)
        t.sigmask |= act.mask
        if not act.flags & SA_NODEFER:
            t.sigmask |= bit(sig)
        t.sigmask &= ~UNBLOCKABLE
        if act.flags & SA_RESETHAND:
            act.handler = SIG_DFL
            act.flags &= ~SA_RESETHAND
        return True

    def sigreturn(self, t) -> None:
        """Restore the registers, mask and FP state saved by the frame at %rsp - 8."""
        plat = self.kernel.platform
        regs = plat.new_regs()
        plat.getregs(t.host_tid, regs)
        frame = regs.rsp - 8
        raw = t.mm.read(frame, _SIGINFO)
        v = _SIGCONTEXT.unpack_from(raw, _MCONTEXT)
        (regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
         regs.rdi, regs.rsi, regs.rbp, regs.rbx, regs.rdx, regs.rax, regs.rcx, regs.rsp, regs.rip) = v[:17]
        regs.eflags = (regs.eflags & ~_FIX_EFLAGS) | (v[17] & _FIX_EFLAGS)
        regs.orig_rax = (1 << 64) - 1
        fpstate = v[26]
        t.sigmask = int.from_bytes(raw[_SIGMASK:_SIGMASK + 8], "little") & ~UNBLOCKABLE
        if fpstate:
            plat.setfpregs(t.host_tid, t.mm.read(fpstate, plat.fpstate_size))
        plat.setregs(t.host_tid, regs)

    # -- exec -------------------------------------------------------------------
    def start_image(self, t, image) -> None:
        """Set `t`'s registers to enter a freshly loaded image."""
        plat = self.kernel.platform
        regs = plat.new_regs()
        plat.getregs(image.host_tid, regs)
        for name in ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
                     "rdx", "rsi", "rdi", "fs_base", "gs_base"):
            setattr(regs, name, 0)
        regs.orig_rax = (1 << 64) - 1
        regs.rip = image.entry
        regs.rsp = image.sp
        regs.eflags = 0x202
        plat.setregs(image.host_tid, regs)

    def reset_for_exec(self, tg) -> None:
        """execve: handled signals return to their default action."""
        for act in tg.actions:
            if act.handler not in (SIG_DFL, SIG_IGN):
                act.handler, act.flags, act.restorer, act.mask = SIG_DFL, 0, 0, 0


def deliverable(t) -> bool:
    """Whether a signal `t` does not block is pending for it (Linux's signal_pending)."""
    return any(not t.sigmask & bit(e[0]) for e in t.pending + t.tg.pending)


def read_sigset(t, addr: int, size: int) -> int:
    """The sigset_t at `addr` (`size` must be 8: EINVAL), without SIGKILL and SIGSTOP."""
    if size != 8:
        raise SysError(E.EINVAL)
    return t.mm.read_u64(addr) & ~UNBLOCKABLE


def with_sigmask(t, addr: int, size: int, wait):
    """Run `wait` (a blocking syscall's body: its result, or a Block with a retry) with the
    signal mask at `addr` (none if 0) installed until it completes, as ppoll, pselect6 and
    epoll_pwait do.  The original mask comes back when it completes, except when it fails
    with EINTR: then it comes back after the interrupting signal's handler (whose frame
    saves it, as rt_sigsuspend's), or at once if no handler runs."""
    if not addr:
        return wait()
    mask = read_sigset(t, addr, size)
    t.saved_sigmask, t.sigmask = t.sigmask, mask

    def run(step):
        try:
            result = step()
        except SysError as err:
            if err.errno != E.EINTR:
                restore_sigmask(t)
            raise
        except BaseException:
            restore_sigmask(t)
            raise
        if result.__class__ is Block:
            retry = result.retry or wait
            result.retry = lambda: run(retry)
        else:
            restore_sigmask(t)
        return result

    return run(wait)


def restore_sigmask(t) -> None:
    """Put back the mask a temporary one (sigsuspend, ppoll...) replaced."""
    if t.saved_sigmask is not None:
        t.sigmask, t.saved_sigmask = t.saved_sigmask, None
