"""The sentry's kernel: the PID namespace (one for all the sandbox's containers, see
container.py), the scheduler loop and process exit.

One Python thread serves every task.  A task is RUNNING while its stub
thread runs on the platform, BLOCKED while parked in a syscall (see
waitqueue.Block), DEAD once exited.  The loop waits for the next platform
stop, serves the syscall through the table and resumes the task; the common
case (the syscall completes at once, nothing else to watch) is one call into
the C extension that resumes and waits for the next stop.  The same loop
serves the sentry's own host fds (the control socket, see `watch`): SIGIO
pulls it out of that wait when they need serving.
"""
from __future__ import annotations

import collections
import fcntl
import itertools
import os
import select
import struct
import time
from typing import Callable

import structlog

from ..abi import errno as E
from ..abi import sysno
from ..abi.signal import (
    CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, SA_NOCLDSTOP, SA_NOCLDWAIT, SI_USER, SIG_IGN, SIGCHLD,
    SIGCONT, SIGKILL, SIGSTOP,
)
from .siginfo import child_info, fault_info, kill_info
from ..syscalls.table import TABLE
from . import seccomp
from .creds import Credentials
from .errors import SysError
from .futex import Futexes, futex_key
from .signals import FROM_RUNTIME, Signals, deliverable
from .task import Task, TaskState, ThreadGroup
from .timers import TimerQueue
from .waitqueue import JUSTRESUME, NORESUME, Block

log = structlog.get_logger("ringfence.sentry")

RELEASE = b"4.4.0-ringfence"
VERSION = b"#1 SMP Sun Jan 10 15:06:54 PST 2016"

SYSCALL_STOP = (5 | 0x80) << 8 | 0x7F  # WIFSTOPPED with SIGTRAP|0x80
_ULONG = (1 << 64) - 1
RLIMIT_NOFILE = 7
_ROBUST_HEAD = struct.Struct("<QqQ")  # struct robust_list_head: next, futex_offset, list_op_pending
ROBUST_LIST_LIMIT = 2048
FUTEX_WAITERS, FUTEX_OWNER_DIED, FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF



def _host_rlimit(resource: int) -> tuple[int, int]:
    """The sentry's own limit: what the sandbox inherits, as a runtime's child would."""
    import resource as host

    soft, hard = host.getrlimit(resource)
    infinity = (1 << 64) - 1
    return (infinity if soft < 0 else soft, infinity if hard < 0 else hard)


class Kernel:
    """The sandbox kernel: tasks, their processes, and the loop that serves them."""

    def __init__(self, platform, hostname: bytes = b"ringfence", strace=None, hwcap: tuple[int, int] = (0, 0)):
        self.platform = platform
        self.reserved_range = (platform.stub_page, platform.stub_page + 4096)
        self.hostname = hostname
        self.release = RELEASE
        self.version = VERSION
        self.version_string = b"Linux version %s (ringfence@sentry) (gcc) %s\n" % (RELEASE, VERSION)
        self.boot_time = time.time()
        self.boot_monotonic = time.monotonic()
        self.hwcap, self.hwcap2 = hwcap
        self.signals = Signals(self)
        self.futexes = Futexes()
        self.default_rlimits = {r: _host_rlimit(r) for r in range(16)}
        self._pids = itertools.count(1)
        self.last_pid = 0  # the most recently allocated pid (/proc/loadavg, /proc/stat)
        self.tasks: dict[int, Task] = {}
        self.by_host: dict[int, Task] = {}
        self.groups: dict[int, ThreadGroup] = {}
        self.init: ThreadGroup | None = None  # the first container's init: its exit ends the sandbox
        self.current: Task | None = None  # the task whose syscall is being served
        self.ready: collections.deque[Task] = collections.deque()
        self.timers = TimerQueue()
        self.host_waits: dict[Task, tuple[tuple[int, int], ...]] = {}
        # The sentry's own host fds (the control socket and its connections): fd -> (poll events, callback).
        self.host_io: dict[int, tuple[int, Callable[[int], None]]] = {}
        self.io_due = False  # SIGIO came: serve host_io even while the stubs keep the loop busy
        self.on_exit: Callable[[ThreadGroup], None] | None = None  # called as each process exits
        # Frozen containers (see freeze); never rebound (the loop holds it).
        self.frozen: set = set()
        self._freezing: list[tuple[object, Callable[[], None]]] = []  # (container, done) until frozen
        # Containers' inits get Linux's pid-namespace-init signal rules (see
        # Signals._protected); `ringfence do`'s command is a plain process.
        self.protect_inits = False
        self.memory_limit: int | None = None  # the container's, in bytes (see memory())
        self.external_signals: list[int] = []
        self._typed: frozenset[int] = frozenset()  # (forward_host_signals)
        self._typed_to = None
        self._enosys_logged: set[int] = set()
        self._strace = strace
        self._guarded: set[int] = set()  # numbers whose handler is behind a seccomp filter
        self.handlers = [self._handler(nr) for nr in range(sysno.MAX_NR + 1)]
        self._stop_fd = platform.stop_notifier()
        self._signal_fd = -1

    def _handler(self, nr: int, filtered: bool = False):
        """What serves syscall `nr`: its table handler (ENOSYS if none), behind the containers'
        seccomp filters if `filtered`, traced if --strace asks for it."""
        row = TABLE.get(nr)
        handler = row.handler if row is not None and row.handler else \
            self._unsupported(nr, quiet=row is not None and row.quiet)
        if filtered:
            handler = seccomp.guard(nr, handler)
        strace = self._strace
        return strace.wrap(row, handler) if row is not None and strace and strace.wants(row.name) else handler

    def install_seccomp(self, container, filt) -> None:
        """Filter the syscalls of every process of `container` through `filt` (a compiled
        kernel.seccomp.Filter; None: no filter).  Only the handlers of numbers some filter does
        not simply allow are guarded; the others keep the unfiltered path."""
        container.seccomp = filt
        if filt is not None:
            for nr in filt.filtered() - self._guarded:
                self._guarded.add(nr)
                self.handlers[nr] = self._handler(nr, filtered=True)

    def forward_host_signals(self, signals, terminal=None, typed=()) -> None:
        """Deliver these signals, when the sentry receives them, to the sandbox's init; those
        in `typed` (also caught) to the foreground process group of `terminal` instead."""
        import signal as host

        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._signal_fd = r
        host.set_wakeup_fd(w)
        self._typed_to = terminal
        self._typed = frozenset(typed)
        for sig in {*signals, *typed}:
            host.signal(sig, lambda signo, _frame: self.external_signals.append(signo))

    def watch(self, fd: int, events: int, callback: Callable[[int], None]) -> None:
        """Serve host fd `fd` of the sentry itself from the loop: `callback(revents)` runs when
        poll reports `events`.  The fd is made O_ASYNC, so that its I/O interrupts the loop
        (SIGIO) even while the stubs keep it busy; calling again changes the events."""
        import signal as host

        if not self.host_io:
            host.signal(host.SIGIO, self._sigio)
        if fd not in self.host_io:
            fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK | os.O_ASYNC)
        self.host_io[fd] = (events, callback)

    def unwatch(self, fd: int) -> None:
        """Stop serving `fd` (before closing it)."""
        self.host_io.pop(fd, None)

    def _sigio(self, _signo, _frame) -> None:
        self.io_due = True

    def memory(self) -> tuple[int, int]:
        """(total, free) memory in bytes as the sandbox sees it: the machine's, capped by the
        container's memory limit (free is the machine's free memory, capped the same way: the
        sentry cannot read its cgroup's usage)."""
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        free = os.sysconf("SC_AVPHYS_PAGES") * page
        if self.memory_limit is not None:
            total, free = min(total, self.memory_limit), min(free, self.memory_limit)
        return total, free

    # -- process table -------------------------------------------------------
    def threadgroups(self):
        """The live (not yet reaped) processes."""
        return list(self.groups.values())

    def find_group(self, t: Task, pid: int) -> ThreadGroup | None:
        """Process `pid` as task `t` sees it: a process of t's container (zombies included),
        else None: another container's pids are not there for it, as in another pid namespace."""
        tg = self.groups.get(pid)
        return tg if tg is not None and tg.container is t.tg.container else None

    def find_task(self, t: Task, tid: int) -> Task | None:
        """Thread `tid` as task `t` sees it: a thread of t's container, else None."""
        task = self.tasks.get(tid)
        return task if task is not None and task.tg.container is t.tg.container else None

    def groups_of(self, container) -> list[ThreadGroup]:
        """The processes (not yet reaped) of `container`."""
        return [tg for tg in self.groups.values() if tg.container is container]

    def new_pid(self) -> int:
        pid = next(self._pids)
        while pid in self.tasks or pid in self.groups:
            pid = next(self._pids)
        self.last_pid = pid
        return pid

    def add_task(self, t: Task) -> None:
        self.tasks[t.tid] = t
        self.by_host[t.host_tid] = t
        t.tg.tasks[t.tid] = t

    def rehost(self, t: Task, host_tid: int) -> None:
        """Point task `t` at a new stub thread (after execve)."""
        self.by_host.pop(t.host_tid, None)
        t.host_tid = host_tid
        self.by_host[host_tid] = t

    def spawn(self, container, path: bytes, argv: list[bytes], envp: list[bytes], fs, fdtable,
              creds: Credentials | None = None, rlimits: dict[int, tuple[int, int]] | None = None,
              no_new_privs: bool = False) -> ThreadGroup:
        """Start a process of `container` running `path` in a new session, with no parent: a
        container's init, or a process the control service executes (the kernel reaps it itself
        when it exits).  It is executed as by execve with credentials `creds` (root's by
        default), its resource limits `rlimits` (the others: the sandbox's defaults) and
        no_new_privs as given."""
        from ..loader import exec as loader

        pid = self.new_pid()
        tg = ThreadGroup(self, pid, None, container)
        tg.rlimits = dict(rlimits or {})
        tg.no_new_privs = int(no_new_privs)
        fdtable.set_limit(min(tg.rlimit(RLIMIT_NOFILE)[0], 1 << 20))
        t = Task(self, pid, tg, 0, None, fs, fdtable, (creds or Credentials()).after_exec())
        image = loader.load(self, t, path, argv, envp)
        t.host_tid = t.host_pid = image.host_tid
        t.mm = image.mm
        tg.take_image(image)
        self.groups[pid] = tg
        self.add_task(t)
        self.signals.start_image(t, image)
        t.resumed_ns = time.monotonic_ns()
        self.platform.resume(t.host_tid, None)
        return tg

    # -- the loop ------------------------------------------------------------
    def run(self) -> int:
        """Serve the sandbox until init exits; return init's wait status."""
        init = self.init
        step, stop_syscall, stop = self.platform.step, self.platform.stop_syscall, self.platform.stop
        handlers = self.handlers
        nhandlers = len(handlers)
        by_host = self.by_host
        running = TaskState.RUNNING
        frozen = self.frozen
        monotonic_ns = time.monotonic_ns
        tid = 0
        while init.exit_status is None:
            if tid <= 0:
                tid = self._next_stop()
                continue
            t = self.current = by_host.get(tid)
            tid = 0
            if t is None or t.state is not running:
                continue  # a stub thread we already let go of
            if t.resumed_ns:
                t.run_ns += monotonic_ns() - t.resumed_ns
                t.resumed_ns = 0
            stopped = stop_syscall()  # (wait status, nr, six arguments)
            if stopped[0] != SYSCALL_STOP:
                self._other_stop(t, stopped[0])
                continue
            nr = stopped[1]
            args = stopped[2:]
            handler = handlers[nr] if nr < nhandlers else self._unsupported(nr)
            try:
                result = handler(t, *args)
            except SysError as err:
                result = -err.errno
            except OSError as err:
                result = -(err.errno or E.EIO)
            except Exception:  # a sentry bug: fail the syscall, keep serving
                log.exception("syscall handler failed", nr=nr, name=sysno.NAMES.get(nr))
                result = -E.EIO
            if result.__class__ is not int:
                if result.__class__ is Block:
                    t.syscall = (handler, args)
                    self._park(t, result)
                    continue
                if result is NORESUME or t.state is not running:
                    continue
                result = None
            if t.pending or t.tg.pending or self.external_signals or frozen:
                self._finish(t, result)
            elif self.ready or self.timers or self.host_waits or self.io_due:
                t.resumed_ns = monotonic_ns()
                self.platform.resume(t.host_tid, result)
            else:
                t.resumed_ns = monotonic_ns()
                if result is None:
                    tid = step(t.host_tid, 0, 0, 0, stop)
                else:
                    tid = step(t.host_tid, 1, result & _ULONG, 0, stop)
                if tid == -E.EINTR:
                    self._take_external_signals()
                elif tid < 0:
                    self._lost(t, -tid)
        return init.exit_status

    def _unsupported(self, nr: int, quiet: bool = False):
        """The handler of an unimplemented syscall: ENOSYS, logged once per number with the
        table's note (at debug level for the `quiet` rows, e.g. rseq: libc copes)."""
        emit = log.debug if quiet else log.warning
        row = TABLE.get(nr)
        why = {"note": row.note} if row is not None and row.note else {}

        def enosys(t, *_):
            if nr not in self._enosys_logged:
                self._enosys_logged.add(nr)
                emit("unsupported syscall", nr=nr, name=sysno.NAMES.get(nr, f"syscall_{nr}"), **why)
            return -E.ENOSYS
        return enosys

    def _lost(self, t: Task, err: int) -> None:
        """The platform failed on task `t` (its stub died): the process is killed."""
        log.warning("stub thread lost", tid=t.tid, error=os.strerror(err))
        self.exit_group(t.tg, SIGKILL)

    def _next_stop(self) -> int:
        """Run woken tasks and timers, then wait for a platform stop; 0 if none came."""
        self.current = None
        while self.ready:
            self._rerun(self.ready.popleft())
        self.current = None  # (no task is being served: signals sent now must kick their target)
        if self._freezing:
            self._check_freezes()
        if self.external_signals:
            self._take_external_signals()
        self.timers.fire_due(time.monotonic())
        if self.io_due:
            self._poll(0)
        if self.ready:
            return 0
        if not self.timers and not self.host_waits and not self.host_io:
            tid = self.platform.wait(block=True)
            if tid == -E.EINTR:
                self._take_external_signals()
                return 0
            if tid < 0:
                raise OSError(-tid, "wait for stub threads")
            return tid
        tid = self.platform.wait(block=False)
        if tid != 0:
            return tid if tid > 0 else 0
        timeout = None
        deadline = self.timers.next_deadline()
        if deadline is not None:
            timeout = max(0.0, deadline - time.monotonic()) * 1000
        self._poll(timeout)
        return 0

    def _poll(self, timeout: float | None) -> None:
        """Wait at most `timeout` ms (None: until something happens) for a stub stop, a host
        signal or a host fd; wake the tasks parked on ready fds and serve the sentry's own."""
        self.io_due = False
        poller = select.poll()
        poller.register(self._stop_fd, select.POLLIN)
        if self._signal_fd >= 0:
            poller.register(self._signal_fd, select.POLLIN)
        owners: dict[int, list[Task]] = {}
        for t, fds in self.host_waits.items():
            for fd, events in fds:
                poller.register(fd, events)
                owners.setdefault(fd, []).append(t)
        for fd, (events, _callback) in self.host_io.items():
            poller.register(fd, events)
        try:
            ready = poller.poll(timeout)
        except InterruptedError:
            ready = []
        for fd, events in ready:
            if fd in (self._stop_fd, self._signal_fd):
                try:
                    os.read(fd, 4096)
                except BlockingIOError:
                    pass
                continue
            watch = self.host_io.get(fd)
            if watch is not None:
                watch[1](events)
            for t in owners.get(fd, ()):
                self._wake(t)

    def _take_external_signals(self) -> None:
        sigs, self.external_signals = self.external_signals, []
        for sig in sigs:
            if sig in self._typed:
                self._typed_to.signal_foreground(sig)
            elif self.init is not None and self.init.exit_status is None:
                self.signals.send_group(self.init, sig, SI_USER, kill_info(0), FROM_RUNTIME)

    # -- blocking ------------------------------------------------------------
    def _park(self, t: Task, block: Block) -> None:
        t.state = TaskState.BLOCKED
        t.block = block
        waker = t.waker = lambda: self._wake(t)
        for q in block.queues:
            q.add(waker)
        for q in block.exclusive:
            q.add(waker, exclusive=True)
        if block.deadline is not None:
            t.block_timer = self.timers.call_at(block.deadline, waker)
        if block.host_fds:
            self.host_waits[t] = block.host_fds
        if block.interruptible and deliverable(t):
            # A signal came while t ran, after its stub had stopped for this syscall (the kick
            # is only seen once it resumes): it must not sleep through it, as on Linux.
            self.interrupt(t)

    def _unpark(self, t: Task, rerun: bool = False) -> Block | None:
        """End `t`'s wait: for a re-run of its syscall if `rerun`, else for good (the Block's
        cancel runs)."""
        t.sigwait_mask = 0
        block, t.block = t.block, None
        if block is not None:
            for q in block.queues + block.exclusive:
                q.remove(t.waker)
            self.host_waits.pop(t, None)
            self.timers.cancel(t.block_timer)
            t.block_timer = None
            if not rerun and block.cancel is not None:
                block.cancel()
        t.waker = None
        return block

    def wake(self, t: Task) -> None:
        """Re-run `t`'s blocked syscall soon (rt_sigtimedwait's signal arrived)."""
        self._wake(t)

    def stop_group(self, tg: ThreadGroup, sig: int) -> None:
        """A stop signal's default action: every task of `tg` stops until SIGCONT."""
        if tg.stop_signal:
            return
        tg.stop_signal = sig
        for t in tg.tasks.values():
            if t.state is TaskState.RUNNING and t is not self.current:
                self.platform.interrupt(t.host_pid, t.host_tid)
        self._notify_parent(tg, CLD_STOPPED, sig, (sig << 8) | 0x7F)

    def continue_group(self, tg: ThreadGroup) -> None:
        """SIGCONT: a stopped `tg` runs again."""
        if not tg.stop_signal:
            return
        tg.stop_signal = 0
        for t in list(tg.tasks.values()):
            if t.state is TaskState.STOPPED:
                t.state = TaskState.RUNNING
                self._finish(t, t.stopped_result)
        self._notify_parent(tg, CLD_CONTINUED, SIGCONT, 0xFFFF)

    def _notify_parent(self, tg: ThreadGroup, code: int, value: int, wait_status: int) -> None:
        """Tell `tg`'s parent (SIGCHLD and its wait queue) that `tg` stopped or continued."""
        parent = tg.parent
        if parent is None:
            return
        tg.wait_report = wait_status
        if not parent.actions[SIGCHLD].flags & SA_NOCLDSTOP:
            self.signals.send_group(parent, SIGCHLD, code, child_info(tg.pid, value))
        parent.child_exit.notify()

    def _wake(self, t: Task) -> None:
        if t.state is TaskState.BLOCKED and t.block is not None and t not in self.ready:
            if t.tg.container.frozen:
                self._defer_wake(t)
                return
            self.ready.append(t)

    def _defer_wake(self, t: Task) -> None:
        """Blocked task `t` of a frozen container would run again: it stays parked (its host
        fds unpolled) and its syscall is re-run at the thaw."""
        t.tg.container.thaw_wakes[t] = None
        self.host_waits.pop(t, None)

    # -- freezing (the control service's Pause and Resume) --------------------------------
    def freeze(self, container, done: Callable[[], None] | None = None) -> None:
        """Freeze `container`, as Linux's cgroup freezer does: its tasks running in user space
        are kicked off the CPU (a platform interrupt, which the program never sees) and held,
        a task whose syscall is being served is held when it completes, tasks blocked in the
        sentry stay blocked (a wake-up, a deadline or a signal re-runs their syscall only at
        the thaw), and none runs again until `thaw`.  No stop, no SIGCHLD, no EINTR: the
        freeze is invisible to the program; signals sent meanwhile stay pending (SIGKILL
        still kills at once).  `done()` is called once no task of the container runs.
        Freezing a frozen container does nothing more."""
        if not container.frozen:
            container.frozen = True
            self.frozen.add(container)
            for tg in self.groups_of(container):
                for t in tg.tasks.values():
                    if t.state is TaskState.RUNNING:
                        self.platform.interrupt(t.host_pid, t.host_tid)
            if any(t.tg.container is container for t in self.ready):
                for t in self.ready:
                    if t.tg.container is container:
                        self._defer_wake(t)
                self.ready = collections.deque(t for t in self.ready if t.tg.container is not container)
        if done is not None:
            self._freezing.append((container, done))
            self._check_freezes()

    def _check_freezes(self) -> None:
        """Call the `done` of every freeze that is complete (no task of its container runs)."""
        pending, self._freezing = self._freezing, []
        for container, done in pending:
            if container.frozen and any(t.state is TaskState.RUNNING for tg in self.groups_of(container)
                                        for t in tg.tasks.values()):
                self._freezing.append((container, done))
            else:
                done()

    def thaw(self, container) -> None:
        """Let a frozen `container` run again: held tasks resume where they were (pending
        signals delivered first), blocked tasks whose wait ended meanwhile re-run their
        syscall.  Thawing a container that is not frozen does nothing."""
        if not container.frozen:
            return
        container.frozen = False
        self.frozen.discard(container)
        self.current = None
        for tg in self.groups_of(container):
            for t in list(tg.tasks.values()):
                if t.state is TaskState.FROZEN:
                    t.state = TaskState.RUNNING
                    self._finish(t, t.stopped_result)
        woken, container.thaw_wakes = container.thaw_wakes, {}
        for t in woken:
            self._wake(t)
        self._check_freezes()

    def start_task(self, t: Task) -> None:
        """Let new task `t` (its stub stopped, registers set) run, unless its container is frozen:
        then it is held until the thaw."""
        if t.tg.container.frozen:
            t.state = TaskState.FROZEN
            t.stopped_result = None
            return
        t.resumed_ns = time.monotonic_ns()
        self.platform.resume(t.host_tid, None)

    def _rerun(self, t: Task) -> None:
        if t.state is not TaskState.BLOCKED:
            return
        if t.tg.container.frozen:
            self._defer_wake(t)
            return
        block = self._unpark(t, rerun=True)
        t.state = TaskState.RUNNING
        self.current = t
        handler, args = t.syscall
        t.rerun = True
        try:
            result = block.retry() if block.retry is not None else handler(t, *args)
        except SysError as err:
            result = -err.errno
        except OSError as err:
            result = -(err.errno or E.EIO)
        except Exception:
            log.exception("syscall handler failed on re-run", tid=t.tid)
            result = -E.EIO
        t.rerun = False
        if result.__class__ is Block:
            self._park(t, result)
            return
        if result is NORESUME or t.state is not TaskState.RUNNING:
            return
        self._finish(t, None if result is JUSTRESUME else result)

    def interrupt(self, t: Task) -> None:
        """A signal arrived for `t`: stop its blocking syscall or kick it off the CPU."""
        if t.state is TaskState.BLOCKED and t.block is not None and not t.block.interruptible:
            return  # the signal stays pending until the wait completes
        if t.state is TaskState.BLOCKED and t.tg.container.frozen:
            self._defer_wake(t)  # the signal stays pending: its syscall is re-run at the thaw, and
            return  # parking again sees the signal (_park)
        if t.state is TaskState.BLOCKED:
            partial = t.block.partial if t.block is not None else None
            block = self._unpark(t, rerun=partial is not None)  # (what moved stays: no cancel)
            t.state = TaskState.RUNNING
            self.ready = collections.deque(x for x in self.ready if x is not t)
            if partial is not None:  # a transfer under way returns what it moved, as Linux
                try:
                    result = partial()
                except SysError as err:
                    result = -err.errno
            else:
                result = -E.ERESTARTSYS if block is not None and block.restartable else -E.EINTR
            self._finish(t, result)
        elif t.state is TaskState.RUNNING:
            self.platform.interrupt(t.host_pid, t.host_tid)

    def _finish(self, t: Task, result: int | None) -> None:
        """Resume `t` with syscall result `result` (None: registers as they are),
        delivering pending signals first."""
        if self.external_signals:
            self._take_external_signals()
        if t.state is not TaskState.RUNNING:
            return
        if t.tg.container.frozen:  # held, its result kept, until the thaw (see freeze)
            t.state = TaskState.FROZEN
            t.stopped_result = result
            return
        result = self.signals.deliver(t, result)
        if result is NORESUME:
            return
        if t.tg.stop_signal:
            t.state = TaskState.STOPPED
            t.stopped_result = result
            return
        try:
            t.resumed_ns = time.monotonic_ns()
            self.platform.resume(t.host_tid, result)
        except OSError as err:
            self._lost(t, err.errno or E.ESRCH)

    def _other_stop(self, t: Task, status: int) -> None:
        """A stop that is not a syscall: the stub died, or a signal (fault or kick)."""
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.exit_group(t.tg, SIGKILL)
            return
        sig = os.WSTOPSIG(status)
        if status >> 16 == 0 and sig != SIGSTOP:
            signo, code, addr = self.platform.siginfo(t.host_tid)
            if code > 0 and signo == sig:  # a fault of the program: a forced signal
                self.signals.force(t, sig, code, fault_info(addr))
        self._finish(t, None)

    # -- exit ------------------------------------------------------------------
    def exit_thread(self, t: Task) -> None:
        """One thread of a multi-threaded process exits (the exit syscall)."""
        self._drop_task(t)
        if all(other.fdtable is not t.fdtable for other in t.tg.tasks.values()):
            t.fdtable.close_all()  # its own table (close_range's CLOSE_RANGE_UNSHARE, clone without CLONE_FILES)
        self._release_robust_futexes(t)
        if t.clear_child_tid:
            try:
                t.mm.write_u32(t.clear_child_tid, 0)
                self.futexes.wake(futex_key(t.mm, t.clear_child_tid, False), 1, 0xFFFFFFFF)
            except SysError:
                pass

    def _release_robust_futexes(self, t: Task) -> None:
        """Mark the robust mutexes `t` holds as FUTEX_OWNER_DIED and wake a waiter of each
        (its set_robust_list list, walked at most ROBUST_LIST_LIMIT entries)."""
        head = t.robust_list[0]
        if not head:
            return
        try:
            nxt, offset, pending = _ROBUST_HEAD.unpack(t.mm.read(head, _ROBUST_HEAD.size))
            entries = [pending & ~1] if pending else []
            while nxt not in (0, head) and len(entries) < ROBUST_LIST_LIMIT:
                entries.append(nxt & ~1)
                nxt = t.mm.read_u64(nxt & ~1)
            for entry in entries:
                addr = entry + offset
                word = int.from_bytes(t.mm.read(addr, 4), "little")
                if word & FUTEX_TID_MASK != t.tid:
                    continue
                t.mm.write_u32(addr, (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
                if word & FUTEX_WAITERS:
                    for private in (True, False):
                        self.futexes.wake(futex_key(t.mm, addr, private), 1, 0xFFFFFFFF)
        except SysError:
            pass  # a bad list is the program's problem, as on Linux
        self.release_vfork(t)
        if t.host_tid != t.host_pid:
            self.platform.end_thread(t.mm.space, t.host_tid)
        # (a process's first host thread stays stopped until the process ends)

    def end_other_threads(self, t: Task) -> None:
        """execve: every other thread of t's process ends; t takes the process's pid."""
        tg = t.tg
        for other in list(tg.tasks.values()):
            if other is not t:
                self._drop_task(other)
        if t.tid != tg.pid:
            del self.tasks[t.tid]
            del tg.tasks[t.tid]
            t.tid = tg.pid
            self.tasks[t.tid] = t
            tg.tasks[t.tid] = t

    @staticmethod
    def release_vfork(t: Task) -> None:
        """t (a vfork child) executed or exited: its parent may go on."""
        if t.vfork_done is not None:
            done, t.vfork_done = t.vfork_done, None
            done.notify()

    def _drop_task(self, t: Task) -> None:
        self._unpark(t)
        t.tg.ended_run_ns += t.run_ns
        t.state = TaskState.DEAD
        self.by_host.pop(t.host_tid, None)
        self.tasks.pop(t.tid, None)
        t.tg.tasks.pop(t.tid, None)

    def exit_group(self, tg: ThreadGroup, status: int) -> None:
        """End every task of `tg`; `status` is the wait status (code << 8 or signal)."""
        if tg.exit_status is not None:
            return
        host_pids = set()
        for t in list(tg.tasks.values()):
            self._release_robust_futexes(t)
            self._unpark(t)
            t.state = TaskState.DEAD
            self.by_host.pop(t.host_tid, None)
            self.tasks.pop(t.tid, None)
            host_pids.add(t.host_pid)
            self.release_vfork(t)
            if t.fdtable is not None:
                t.fdtable.close_all()
        for pid in host_pids:
            self.platform.kill_process(pid)
        for mm in {t.mm for t in tg.tasks.values() if t.mm.space.pid == t.host_pid}:
            mm.release()  # its mappings went with its memory (a vfork child's memory is its parent's)
        if tg.tty is not None and tg.pid == tg.sid:
            tg.tty.leader_exited(tg)
        tg.cancel_timers(posix_only=False)
        tg.exit_status = status
        if self.on_exit is not None:
            self.on_exit(tg)
        for child in list(tg.children.values()):
            self._reparent(child)
        if tg is tg.container.init:
            self._end_container(tg.container, status)
            if tg is self.init:
                return
        parent = tg.parent
        if parent is None:
            self.groups.pop(tg.pid, None)
            return
        act = parent.actions[SIGCHLD]
        if act.handler == SIG_IGN or act.flags & SA_NOCLDWAIT:
            self.reap(tg)
        else:
            if os.WIFSIGNALED(status):
                code = CLD_KILLED
                value = os.WTERMSIG(status)
            else:
                code, value = CLD_EXITED, os.WEXITSTATUS(status)
            if tg.exit_signal:
                self.signals.send_group(parent, tg.exit_signal, code, child_info(tg.pid, value))
        parent.child_exit.notify()

    def _reparent(self, child: ThreadGroup) -> None:
        """child's parent exited: it signals the child's PR_SET_PDEATHSIG, and the
        child moves to the nearest living subreaper ancestor, else to its container's init."""
        old = child.parent
        old.children.pop(child.pid, None)
        if child.pdeathsig and child.exit_status is None:
            self.signals.send_group(child, child.pdeathsig, SI_USER, kill_info(old.pid))
        init = child.container.init
        if init is None or init.exit_status is not None or child is init:
            child.parent = None
            if child.exit_status is not None:
                self.groups.pop(child.pid, None)
            return
        heir = old.parent
        while heir is not None and (heir.exit_status is not None or not heir.child_subreaper):
            heir = heir.parent
        heir = heir or init
        child.parent = heir
        heir.children[child.pid] = child
        if child.exit_status is not None:
            heir.child_exit.notify()

    def reap(self, tg: ThreadGroup) -> None:
        """Remove zombie `tg` from its parent and the pid namespace."""
        if tg.parent is not None:
            tg.parent.children.pop(tg.pid, None)
        self.groups.pop(tg.pid, None)

    def _end_container(self, container, status: int) -> None:
        """`container`'s init exited with `status`: its other processes are killed (as when a
        pid namespace's init exits) and the container ends.  The sandbox's init takes every
        process (and the platform's master stub) with it."""
        whole = container.init is self.init
        for tg in list(self.groups.values()):
            if tg.exit_status is None and (whole or tg.container is container):
                self.exit_group(tg, SIGKILL)
        self.frozen.discard(container)  # (killing thawed what had to die; nothing is left)
        if whole:
            self.platform.kill_process(self.platform.master.pid)
        container.end(status)
