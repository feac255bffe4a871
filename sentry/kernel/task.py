"""Tasks (threads) and thread groups (processes) of the sandbox."""
from __future__ import annotations

import enum
import time

from ..abi.signal import NSIG, SI_USER, SIG_DFL
from .schedattrs import SchedAttrs
from .siginfo import kill_info
from .timers import SignalTimer
from .waitqueue import WaitQueue

RLIM_INFINITY = (1 << 64) - 1


class TaskState(enum.Enum):
    """Where a task is: running on the platform, parked in a syscall, or gone."""

    RUNNING = "R"
    BLOCKED = "S"
    STOPPED = "T"  # its process is stopped (SIGSTOP...): it resumes at SIGCONT
    FROZEN = "D"  # held off the CPU while its container is frozen (Pause): it resumes at the thaw
    DEAD = "X"


class SigAction:
    """One signal's disposition (struct k_sigaction)."""

    __slots__ = ("handler", "flags", "restorer", "mask")

    def __init__(self, handler: int = SIG_DFL, flags: int = 0, restorer: int = 0, mask: int = 0):
        self.handler, self.flags, self.restorer, self.mask = handler, flags, restorer, mask

    def copy(self) -> "SigAction":
        return SigAction(self.handler, self.flags, self.restorer, self.mask)


class ThreadGroup:
    """A process: its tasks, memory, signal dispositions, children and exit status."""

    def __init__(self, kernel, pid: int, parent: "ThreadGroup | None", container=None):
        """A process of `container` (a kernel.container.Container), or of its parent's."""
        self.kernel = kernel
        self.pid = pid
        self.parent = parent
        self.container = parent.container if parent is not None else container
        self.children: dict[int, ThreadGroup] = {}
        self.tasks: dict[int, Task] = {}
        self.pgid = pid
        self.sid = pid
        self.tty = None  # the controlling terminal (fs.pty.Terminal): fork copies it, setsid drops it
        self.comm = b""
        self.exe = b""
        self.actions = [SigAction() for _ in range(NSIG + 1)]
        self.pending: list[tuple] = []  # process-directed signals: (sig, si_code, siginfo union bytes)
        self.exit_status: int | None = None  # wait status once a zombie
        self.stop_signal = 0  # the signal that stopped the process, while it is stopped
        self.wait_report: int | None = None  # a stop or continue wait4 has yet to report
        self.child_exit = WaitQueue()
        self.signal_wq = WaitQueue()  # notified when a signal is queued for the process or a thread of it
        self.rlimits: dict[int, tuple[int, int]] = {}
        self.itimers: dict[int, SignalTimer] = {}  # setitimer's, by ITIMER_*
        self.posix_timers: dict[int, object] = {}  # timer_create's, by timer id
        self.exit_signal = 17  # SIGCHLD unless clone() named another
        self.pdeathsig = 0
        self.child_subreaper = 0
        self.dumpable = 1
        self.no_new_privs = 0
        self.start_time = time.monotonic()  # /proc/PID/stat's starttime
        self.ended_run_ns = 0  # run time (see Task.run_ns) of its threads that have ended

    def cpu_ns(self) -> int:
        """The CPU time of the process (every thread, the ended ones too): the host's
        clock of its stub process; 0 once that is gone."""
        leader = self.leader if self.leader is not None else next(iter(self.tasks.values()), None)
        if leader is None:
            return 0
        try:
            return time.clock_gettime_ns((~leader.host_pid << 3) | 2)
        except OSError:
            return 0

    def cancel_timers(self, posix_only: bool) -> None:
        """Disarm the process's timers (execve: the timer_create ones; exit: all)."""
        for timer in list(self.posix_timers.values()) + ([] if posix_only else list(self.itimers.values())):
            timer.cancel()
        self.posix_timers.clear()
        if not posix_only:
            self.itimers.clear()

    def rlimit(self, resource: int) -> tuple[int, int]:
        """The (soft, hard) limit: the process's own, else the one the sandbox inherited."""
        return self.rlimits.get(resource) or self.kernel.default_rlimits[resource]

    def take_image(self, image) -> None:
        """Name the process after a freshly loaded program (execve, init): comm is the last
        component of the path it was executed by (a symlink's name, a script's), as Linux's."""
        self.exe = image.exe
        self.comm = image.filename.rsplit(b"/", 1)[-1][:15]

    @property
    def ppid(self) -> int:
        return self.parent.pid if self.parent is not None else 0

    @property
    def leader(self) -> "Task | None":
        return self.tasks.get(self.pid)

    @property
    def state(self) -> str:
        if self.exit_status is not None:
            return "Z"
        if self.stop_signal:
            return "T"
        if self.container is not None and self.container.frozen:
            return "D"  # as Linux's (v1) cgroup freezer shows a frozen task
        leader = self.leader
        return leader.state.value if leader is not None else "Z"


class Task:
    """A thread of the sandbox, run by one stub thread of the platform."""

    def __init__(self, kernel, tid: int, tg: ThreadGroup, host_tid: int, mm, fs, fdtable, creds):
        self.kernel = kernel
        self.tid = tid
        self.tg = tg
        self.host_tid = host_tid
        self.host_pid = host_tid  # the host process of its stub thread (threads: the creator's)
        self.vfork_done: WaitQueue | None = None  # a vfork parent waits here until exec or exit
        self.mm = mm
        self.fs = fs
        self.fdtable = fdtable
        self.creds = creds
        self.sched = SchedAttrs()  # nice, policy, affinity, personality (clone copies them)
        self.state = TaskState.RUNNING
        self.sigmask = 0
        self.saved_sigmask: int | None = None  # restored after sigsuspend's handler
        self.pending: list[tuple] = []  # thread-directed signals
        self.altstack = (0, 2, 0)  # (sp, flags, size): SS_DISABLE
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.block = None  # the Block the task is parked on
        self.block_timer = None  # the timer that ends it at its deadline
        self.sigwait_mask = 0  # signals rt_sigtimedwait is waiting for
        self.waker = None  # its wake callback while parked
        self.stopped_result = None  # the %rax it resumes with when its process continues (or thaws)
        self.syscall = None  # (handler, args) of the syscall parked, for its re-runs
        self.rerun = False  # the syscall being served is a parked one run again (not a new call)
        self.timed_until = 0.0  # when a socket timeout ends the wait of the syscall being served
        self.start_time = time.monotonic()  # /proc/PID/task/TID/stat's starttime
        # Time it spent resumed on the platform (until its next stop), and when it was
        # last resumed (0: stopped): its share of its process's CPU time (see cpu_ns).
        self.run_ns = 0
        self.resumed_ns = 0

    def cpu_ns(self) -> int:
        """The thread's CPU time.  The host lets only a process read its own threads'
        clocks, so the process's CPU time is shared out among its threads by the time
        each spent resumed (exact for a single-threaded process)."""
        tg = self.tg
        total = tg.cpu_ns()
        if len(tg.tasks) == 1 and not tg.ended_run_ns:
            return total
        now = time.monotonic_ns()
        def ran(t):
            return t.run_ns + (now - t.resumed_ns if t.resumed_ns else 0)
        overall = tg.ended_run_ns + sum(ran(t) for t in tg.tasks.values())
        return total * ran(self) // overall if overall else 0

    def send_signal(self, sig: int) -> None:
        """Queue a signal for this thread as sent by itself (e.g. SIGPIPE from a broken pipe)."""
        self.kernel.signals.send_task(self, sig, SI_USER, kill_info(self.tg.pid))

    def __repr__(self) -> str:
        return f"Task({self.tid}, host={self.host_tid}, {self.state.value})"
