"""Signal numbers, sigaction flags and default actions (x86_64)."""
import signal as _host

NSIG = 64

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT = 9, 10, 11, 12, 13, 14, 15, 16
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU = 17, 18, 19, 20, 21, 22, 23, 24
SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = 25, 26, 27, 28, 29, 30, 31
SIGRTMIN = 32

SIG_DFL = 0
SIG_IGN = 1

SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2

SS_ONSTACK = 1
SS_DISABLE = 2

# si_code values
SI_USER = 0
SI_KERNEL = 0x80
SI_TKILL = -6
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6
SI_QUEUE = -1
SI_TIMER = -2

UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

# Default actions.
TERMINATE, CORE, IGNORE, STOP = "terminate", "core", "ignore", "stop"
_CORE = {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS}
_IGNORE = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH}
_STOP = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}


def default_action(sig: int) -> str:
    """What SIG_DFL does for `sig`."""
    if sig in _CORE:
        return CORE
    if sig in _IGNORE:
        return IGNORE
    if sig in _STOP:
        return STOP
    return TERMINATE


def bit(sig: int) -> int:
    """The sigset bit of `sig`."""
    return 1 << (sig - 1)


def name(sig: int) -> str:
    """SIGxxx name of `sig`."""
    if SIGRTMIN <= sig <= NSIG:
        return f"SIGRT{sig - SIGRTMIN}"
    try:
        return _host.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"
