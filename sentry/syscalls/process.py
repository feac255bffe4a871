"""Process syscalls: creation (fork/clone/execve), exit, wait, sessions, arch_prctl and prctl."""
from __future__ import annotations

import os
import struct

from ..abi import errno as E
from ..abi.caps import CAP_PRCTLS
from ..abi.fs import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW
from ..abi.mm import TASK_SIZE
from ..abi.signal import CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, SIGCHLD, SIGCONT
from ..kernel import siginfo
from ..kernel.errors import SysError
from ..kernel.task import Task, ThreadGroup
from ..kernel.waitqueue import JUSTRESUME, NORESUME, Block, WaitQueue
from ..loader import exec as loader
from . import identity
from .args import s32, s64, u32

CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
CLONE_SETTLS = 0x00080000
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_CHILD_SETTID = 0x01000000
CSIGNAL = 0xFF

WNOHANG = 1
WUNTRACED = WSTOPPED = 2
WEXITED = 4
WCONTINUED = 8
WNOWAIT = 0x01000000
P_ALL, P_PID, P_PGID = 0, 1, 2
__WNOTHREAD = 0x20000000
__WALL = 0x40000000
__WCLONE = 0x80000000

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
PR_SET_NAME, PR_GET_NAME = 15, 16
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39

MAX_ARG_STRLEN = 131072
PATH_MAX = 4096


# -- identity ---------------------------------------------------------------
def getpid(t, *_):
    return t.tg.pid


def getppid(t, *_):
    return t.tg.ppid


def gettid(t, *_):
    return t.tid


# -- sessions and process groups ----------------------------------------------
def _group(t, pid: int) -> ThreadGroup:
    """Process `pid` of t's container (0: t's own); ESRCH if there is none."""
    if pid == 0:
        return t.tg
    tg = t.kernel.find_group(t, pid)
    if tg is None:
        raise SysError(E.ESRCH)
    return tg


def setpgid(t, pid, pgid, *_):
    pid, pgid = s32(pid), s32(pgid)
    if pid < 0 or pgid < 0:
        raise SysError(E.EINVAL)
    tg = _group(t, pid)
    if tg is not t.tg and tg.parent is not t.tg:
        raise SysError(E.ESRCH)
    if tg.sid != t.tg.sid:
        raise SysError(E.EPERM)
    if tg.pid == tg.sid:
        raise SysError(E.EPERM)
    pgid = pgid or tg.pid
    if pgid != tg.pid and not any(g.pgid == pgid and g.sid == tg.sid for g in t.kernel.groups_of(tg.container)):
        raise SysError(E.EPERM)
    tg.pgid = pgid
    return 0


def getpgid(t, pid, *_):
    return _group(t, s32(pid)).pgid


def getpgrp(t, *_):
    return t.tg.pgid


def setsid(t, *_):
    tg = t.tg
    if any(g.pgid == tg.pid for g in t.kernel.groups_of(tg.container)):
        raise SysError(E.EPERM)
    tg.sid = tg.pgid = tg.pid
    tg.tty = None
    return tg.pid


def getsid(t, pid, *_):
    return _group(t, s32(pid)).sid


# -- fork, clone, execve ------------------------------------------------------------
def _clone(t, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int) -> int:
    """fork, vfork and clone: a new process, or a new thread of t's process."""
    k = t.kernel
    thread = bool(flags & CLONE_THREAD)
    if (thread and not flags & CLONE_SIGHAND) or (flags & CLONE_SIGHAND and not flags & CLONE_VM):
        raise SysError(E.EINVAL)
    if flags & CLONE_VM and not thread and not flags & CLONE_VFORK:
        raise SysError(E.EINVAL)  # processes sharing memory without being threads: not built
    vfork = bool(flags & CLONE_VFORK and flags & CLONE_VM)
    if thread:
        host = k.platform.new_thread(t.host_tid)
        mm = t.mm
    elif vfork:  # the child borrows the parent's memory until it execs or exits
        host = k.platform.vfork_process(t.host_tid)
        mm = t.mm
    else:
        space, host = k.platform.fork_address_space(t.host_tid)
        mm = t.mm.fork(space)
    regs = k.platform.new_regs()
    k.platform.getregs(t.host_tid, regs)
    regs.rax = 0
    regs.orig_rax = (1 << 64) - 1
    if stack:
        regs.rsp = stack
    if flags & CLONE_SETTLS:
        regs.fs_base = tls
    k.platform.setregs(host, regs)

    tid = k.new_pid()
    if thread:
        tg = t.tg
        fs = t.fs if flags & CLONE_FS else t.fs.fork()
        files = t.fdtable if flags & CLONE_FILES else t.fdtable.fork()
    else:
        tg = _new_group(t, tid, flags)
        fs, files = t.fs.fork(), t.fdtable.fork()
    child = Task(k, tid, tg, host, mm, fs, files, t.creds.copy())
    if thread:
        child.host_pid = t.host_pid
    child.sigmask = t.sigmask
    child.sched = t.sched.fork()
    child.altstack = t.altstack if not thread else (0, 2, 0)
    if flags & CLONE_CHILD_SETTID:
        mm.write_u32(child_tid, tid)
    if flags & CLONE_CHILD_CLEARTID:
        child.clear_child_tid = child_tid
    if flags & CLONE_PARENT_SETTID:
        t.mm.write_u32(parent_tid, tid)
        if mm is not t.mm:
            mm.write_u32(parent_tid, tid)
    k.add_task(child)
    k.start_task(child)  # (held if its container is frozen)
    if vfork:
        done = child.vfork_done = WaitQueue()

        def wait_for_child():
            if child.vfork_done is None:
                return tid
            return Block((done,), retry=wait_for_child, interruptible=False)

        return wait_for_child()
    return tid


def _new_group(t, pid: int, flags: int) -> ThreadGroup:
    """The process a fork creates: a copy of t's, child of t's (or, CLONE_PARENT, of its parent)."""
    k = t.kernel
    src = t.tg
    parent = src.parent if flags & CLONE_PARENT and src.parent is not None else src
    tg = ThreadGroup(k, pid, parent)
    tg.pgid, tg.sid, tg.tty, tg.comm, tg.exe = src.pgid, src.sid, src.tty, src.comm, src.exe
    tg.actions = [a.copy() for a in src.actions]
    tg.rlimits = dict(src.rlimits)
    tg.no_new_privs = src.no_new_privs
    tg.exit_signal = flags & CSIGNAL
    k.groups[pid] = tg
    parent.children[pid] = tg
    return tg


def fork(t, *_):
    return _clone(t, SIGCHLD, 0, 0, 0, 0)


def vfork(t, *_):
    return _clone(t, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0)


def clone(t, flags, stack, parent_tid, child_tid, tls, *_):
    return _clone(t, flags, stack, parent_tid, child_tid, tls)


_CLONE_ARGS = struct.Struct("<11Q")  # struct clone_args (CLONE_ARGS_SIZE_VER2)
CLONE_ARGS_SIZE_VER0 = 64
CLONE_PIDFD = 0x1000
CLONE_INTO_CGROUP = 0x200000000


def clone3(t, args, size, *_):
    if size < CLONE_ARGS_SIZE_VER0 or size > 4096:
        raise SysError(E.EINVAL)
    raw = t.mm.read(args, size)
    if size > _CLONE_ARGS.size and any(raw[_CLONE_ARGS.size:]):
        raise SysError(E.E2BIG)
    (flags, _pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
     _cgroup) = _CLONE_ARGS.unpack(raw[:_CLONE_ARGS.size].ljust(_CLONE_ARGS.size, b"\0"))
    if flags & (CLONE_PIDFD | CLONE_INTO_CGROUP | CSIGNAL) or set_tid or set_tid_size or exit_signal > 64:
        raise SysError(E.EINVAL)
    if bool(stack) != bool(stack_size):
        raise SysError(E.EINVAL)
    return _clone(t, flags | exit_signal, stack + stack_size if stack else 0, parent_tid, child_tid, tls)


def _read_strings(t, addr: int) -> list[bytes]:
    if addr == 0:
        return []
    return [t.mm.read_cstr(p, MAX_ARG_STRLEN) for p in t.mm.read_ptr_array(addr)]


def execve(t, path, argv, envp, *_):
    return _execveat(t, AT_FDCWD, path, argv, envp, 0)


def execveat(t, dirfd, path, argv, envp, flags, *_):
    return _execveat(t, s32(dirfd), path, argv, envp, u32(flags))


def _execveat(t, dirfd: int, path: int, argv: int, envp: int, flags: int):
    k = t.kernel
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        raise SysError(E.EINVAL)
    path = t.mm.read_cstr(path, PATH_MAX)
    if not path:
        if not flags & AT_EMPTY_PATH:
            raise SysError(E.ENOENT)
        t.fdtable.get(dirfd)  # EBADF
        path, dirfd = b"/proc/self/fd/%d" % dirfd, AT_FDCWD  # fexecve: the fd's file
    image = loader.load(k, t, path, _read_strings(t, argv), _read_strings(t, envp), dirfd,
                        bool(flags & AT_SYMLINK_NOFOLLOW))
    # The point of no return: the old image goes away, with every other thread.
    k.end_other_threads(t)
    old_host, old_mm = t.host_pid, t.mm
    k.rehost(t, image.host_tid)
    t.host_pid = image.host_tid
    t.mm = image.mm
    k.platform.kill_process(old_host)  # a vfork child's: not the memory it borrowed
    if old_mm.space.pid == old_host:
        old_mm.release()
    k.release_vfork(t)
    t.fdtable.close_on_exec()
    t.tg.cancel_timers(posix_only=True)
    k.signals.reset_for_exec(t.tg)
    t.altstack = (0, 2, 0)
    t.clear_child_tid = 0
    t.creds = t.creds.after_exec()
    t.tg.take_image(image)
    k.signals.start_image(t, image)
    return JUSTRESUME


# -- exit and wait -----------------------------------------------------------------
def exit_(t, code, *_):
    if len(t.tg.tasks) == 1:
        return exit_group(t, code)
    t.kernel.exit_thread(t)
    return NORESUME


def exit_group(t, code, *_):
    t.kernel.exit_group(t.tg, (code & 0xFF) << 8)
    return NORESUME


def _matches(t, child: ThreadGroup, pid: int) -> bool:
    if pid > 0:
        return child.pid == pid
    if pid == 0:
        return child.pgid == t.tg.pgid
    if pid == -1:
        return True
    return child.pgid == -pid


def _reap_one(t, pid: int, options: int, report) -> int | Block:
    """The wait machinery shared by wait4 and waitid.

    Finds a child matching `pid` (wait4's encoding) with something to report
    under `options`, calls report(child, wait_status) and reaps it unless
    WNOWAIT.  Returns its pid, 0 for WNOHANG with nothing to report, or a Block.
    """
    children = [c for c in t.tg.children.values() if _matches(t, c, pid)]
    if not children:
        raise SysError(E.ECHILD)
    for child in children:
        if child.exit_status is not None and options & WEXITED:
            report(child, child.exit_status)
            if not options & WNOWAIT:
                t.kernel.reap(child)
            return child.pid
        status = child.wait_report
        if status is not None and (options & WUNTRACED if status & 0xFF == 0x7F else options & WCONTINUED):
            report(child, status)
            if not options & WNOWAIT:
                child.wait_report = None
            return child.pid
    if options & WNOHANG:
        return 0
    return Block((t.tg.child_exit,))


def wait4(t, pid, status, options, rusage, *_):
    options = u32(options)
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE):
        raise SysError(E.EINVAL)

    def report(child, wait_status):
        if status:
            t.mm.write_u32(status, wait_status)
        if rusage:
            t.mm.write(rusage, bytes(144))

    return _reap_one(t, s32(pid), options | WEXITED, report)


def waitid(t, idtype, id_, infop, options, rusage, *_):
    idtype, id_, options = s32(idtype), s32(id_), u32(options)
    if options & ~(WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | __WNOTHREAD | __WALL | __WCLONE):
        raise SysError(E.EINVAL)
    if not options & (WEXITED | WSTOPPED | WCONTINUED):
        raise SysError(E.EINVAL)
    if idtype == P_ALL:
        pid = -1
    elif idtype == P_PID and id_ > 0:
        pid = id_
    elif idtype == P_PGID and id_ >= 0:
        pid = -id_ if id_ else 0
    else:
        raise SysError(E.EINVAL)

    def report(child, wait_status):
        if os.WIFEXITED(wait_status):
            code, value = CLD_EXITED, os.WEXITSTATUS(wait_status)
        elif os.WIFSIGNALED(wait_status):
            code, value = CLD_KILLED, os.WTERMSIG(wait_status)
        elif os.WIFSTOPPED(wait_status):
            code, value = CLD_STOPPED, os.WSTOPSIG(wait_status)
        else:
            code, value = CLD_CONTINUED, SIGCONT
        if infop:
            t.mm.write(infop, siginfo.encode(SIGCHLD, code, siginfo.child_info(child.pid, value)))
        if rusage:
            t.mm.write(rusage, bytes(144))

    found = _reap_one(t, pid, options, report)
    if found == 0 and infop:
        t.mm.write(infop, bytes(siginfo.SIGINFO_SIZE))
    return 0 if found.__class__ is int else found


def set_tid_address(t, addr, *_):
    t.clear_child_tid = addr
    return t.tid


def set_robust_list(t, head, length, *_):
    if length != 24:
        raise SysError(E.EINVAL)
    t.robust_list = (head, length)
    return 0


# -- arch and prctl -------------------------------------------------------------
def arch_prctl(t, code, addr, *_):
    plat = t.kernel.platform
    regs = plat.new_regs()
    plat.getregs(t.host_tid, regs)
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if addr >= TASK_SIZE:
            raise SysError(E.EPERM)
        if code == ARCH_SET_FS:
            regs.fs_base = addr
        else:
            regs.gs_base = addr
        plat.setregs(t.host_tid, regs)
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        t.mm.write_u64(addr, regs.fs_base if code == ARCH_GET_FS else regs.gs_base)
        return 0
    raise SysError(E.EINVAL)


def prctl(t, option, arg2, arg3, arg4, arg5, *_):
    tg = t.tg
    option = s32(option)
    if option in CAP_PRCTLS:
        return identity.cap_prctl(t, option, arg2, arg3, arg4, arg5)
    if option == PR_SET_NAME:
        tg.comm = t.mm.read_partial(arg2, 16).split(b"\0", 1)[0][:15]
        return 0
    if option == PR_GET_NAME:
        t.mm.write(arg2, tg.comm[:15].ljust(16, b"\0"))
        return 0
    if option == PR_SET_PDEATHSIG:
        if not 0 <= s64(arg2) <= 64:
            raise SysError(E.EINVAL)
        tg.pdeathsig = arg2
        return 0
    if option == PR_GET_PDEATHSIG:
        t.mm.write_u32(arg2, tg.pdeathsig)
        return 0
    if option == PR_GET_DUMPABLE:
        return tg.dumpable
    if option == PR_SET_DUMPABLE:
        if arg2 not in (0, 1):
            raise SysError(E.EINVAL)
        tg.dumpable = arg2
        return 0
    if option == PR_SET_NO_NEW_PRIVS:
        if arg2 != 1:
            raise SysError(E.EINVAL)
        tg.no_new_privs = 1
        return 0
    if option == PR_GET_NO_NEW_PRIVS:
        return tg.no_new_privs
    if option == PR_SET_CHILD_SUBREAPER:
        tg.child_subreaper = int(bool(arg2))
        return 0
    if option == PR_GET_CHILD_SUBREAPER:
        t.mm.write_u32(arg2, tg.child_subreaper)
        return 0
    raise SysError(E.EINVAL)
