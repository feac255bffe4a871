"""Pseudo-terminals made by the sentry: /dev/ptmx, devpts's replicas, /dev/tty, and
controlling terminals (as Linux's pty driver and gVisor's devpts).

Opening ptmx makes a Terminal in a devpts instance (devpts.py): a master file and a replica,
/dev/pts/N, joined by a line discipline (ldisc.py).  The replica opens once unlocked
(TIOCSPTLCK 0, unlockpt).  Termios, window-size and session ioctls act on the replica's side
from either end.  Closing the master hangs the replica up (its open files read end-of-file and
fail writes with EIO), takes /dev/pts/N away and sends SIGHUP and SIGCONT to the leader of the
session it controls; the master reads EIO once every replica file is closed.

A process's controlling terminal is ThreadGroup.tty: inherited at fork, dropped by setsid,
acquired by a session leader without one through TIOCSCTTY or by opening a replica without
O_NOCTTY.  /dev/tty opens it (ENXIO without).  Signal characters, and a changed window size
(SIGWINCH), signal the terminal's foreground process group.  When the session leader exits,
its foreground group gets SIGHUP and the session loses the terminal.

Not done: packet mode (TIOCPKT), TIOCSTI, TIOCEXCL, TIOCVHANGUP, and job control for
background process groups (their reads and writes raise no SIGTTIN/SIGTTOU; tcsetpgrp from
the background is allowed).
"""
from __future__ import annotations

import time

from ..abi.caps import CAP_SYS_ADMIN
from ..abi.errno import EAGAIN, EINVAL, EIO, ENODEV, ENOTTY, ENXIO, EPERM, ESRCH
from ..abi.fs import (INT, O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK, POLLERR, POLLHUP, POLLIN, POLLOUT,
                      POLLRDNORM, POLLWRNORM, makedev)
from ..abi.ioctl import (FIONREAD, TCFLSH, TCGETS, TCSBRK, TCSBRKP, TCSETS, TCSETSF, TCSETSW, TCXONC, TIOCGPGRP,
                         TIOCGPTLCK, TIOCGPTN, TIOCGPTPEER, TIOCGSID, TIOCGWINSZ, TIOCNOTTY, TIOCOUTQ, TIOCSCTTY,
                         TIOCSPGRP, TIOCSPTLCK, TIOCSWINSZ)
from ..abi.signal import SIGCONT, SIGHUP, SIGWINCH
from ..abi.termios import (TCIFLUSH, TCIOFF, TCIOFLUSH, TCION, TCOFLUSH, TCOOFF, TCOON, TERMIOS, TTY_MINOR,
                           TTYAUX_MAJOR, VMIN, VTIME, WINSIZE)
from ..kernel.errors import SysError
from ..kernel.waitqueue import Block, WaitQueue
from ..vfs.dentry import Location
from ..vfs.device import register
from ..vfs.file import File
from .devpts import PTMX, DevptsFS, DevptsRoot, replica_location
from .ldisc import INPUT_MAX, OUTPUT_MAX, LineDiscipline

CTTY = makedev(TTYAUX_MAJOR, TTY_MINOR)  # /dev/tty
_HUNG_UP = POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM


class Controlling:
    """A terminal as a controlling terminal: the session it controls and that session's
    foreground process group (a sentry Terminal, or a host pty: fs/host.py's HostTerminal).
    `inode` is its replica's (its device number); `open_replica(t, loc, flags)` opens it."""

    __slots__ = ("inode", "sid", "pgrp", "container")

    def __init__(self):
        self.sid: int | None = None  # the session it controls
        self.pgrp: int | None = None  # that session's foreground process group
        self.container = None  # whose pid space sid and pgrp are in

    def acquire_on_open(self, tg, flags: int, readable: bool) -> None:
        """Opening a replica without O_NOCTTY makes it the controlling terminal of a session
        leader without one, if no session has it."""
        if not flags & O_NOCTTY and readable and tg.pid == tg.sid and tg.tty is None and self.sid is None:
            self.attach(tg)

    def attach(self, tg) -> None:
        """Become the controlling terminal of `tg`'s session, `tg`'s group in the foreground."""
        self.sid, self.pgrp, self.container = tg.sid, tg.pgid, tg.container
        tg.tty = self

    def _session(self) -> list:
        if self.sid is None:
            return []
        kernel = self.container.kernel
        return [g for g in kernel.groups_of(self.container) if g.sid == self.sid and g.exit_status is None]

    def detach(self) -> None:
        """The session loses its controlling terminal."""
        for g in self._session():
            if g.tty is self:
                g.tty = None
        self.sid = self.pgrp = self.container = None

    def signal_foreground(self, sig: int) -> None:
        """Send `sig` to the foreground process group."""
        if self.pgrp is None:
            return
        kernel = self.container.kernel
        for g in kernel.groups_of(self.container):
            if g.pgid == self.pgrp and g.exit_status is None:
                kernel.signals.send_group(g, sig)

    def disassociate(self, leaving: bool) -> None:
        """The session leader gives the terminal up: the foreground group gets SIGHUP (and
        SIGCONT unless the leader is `leaving`, i.e. exiting), the session loses the terminal."""
        self.signal_foreground(SIGHUP)
        if not leaving:
            self.signal_foreground(SIGCONT)
        self.detach()

    def leader_exited(self, tg) -> None:
        """The kernel's hook: `tg`, the leader of a session this terminal controlled, exited."""
        if self.sid == tg.sid and self.container is tg.container:
            self.disassociate(leaving=True)

    def hang_up(self) -> None:
        """The terminal went away: its session's leader gets SIGHUP and SIGCONT, and the session
        loses it."""
        kernel = self.container.kernel if self.container is not None else None
        for g in self._session():
            if g.pid == g.sid:
                kernel.signals.send_group(g, SIGHUP)
                kernel.signals.send_group(g, SIGCONT)
        self.detach()


class Terminal(Controlling):
    """A master/replica pair: its line discipline, window size, lock, and the session it
    controls with that session's foreground process group."""

    __slots__ = ("devpts", "ldisc", "winsize", "locked", "master_open", "replicas", "opened", "master_q",
                 "replica_q")

    def __init__(self, t, devpts: DevptsFS):
        super().__init__()
        self.devpts = devpts
        self.ldisc = LineDiscipline(self.signal_foreground)
        self.winsize = bytes(WINSIZE.size)
        self.locked = True  # the replica cannot be opened until unlockpt
        self.master_open = True
        self.replicas = 0  # open replica files
        self.opened = False  # a replica was opened once
        self.master_q = WaitQueue()  # the master's readers and writers
        self.replica_q = WaitQueue()  # the replica's readers and writers
        self.inode = devpts.add(self, t.creds.fsuid, t.creds.fsgid)

    @property
    def number(self) -> int:
        """N of /dev/pts/N."""
        return self.inode.number

    @property
    def other_closed(self) -> bool:
        """Whether every replica file opened so far is closed (the master then reads EIO)."""
        return self.opened and not self.replicas

    def wake(self, master: bool = True, replica: bool = True) -> None:
        """Re-run the syscalls waiting on either side."""
        if master and self.master_q:
            self.master_q.notify()
        if replica and self.replica_q:
            self.replica_q.notify()

    def open_replica(self, t, loc: Location, flags: int) -> ReplicaFile:
        """A replica file at `loc`; EIO while locked or once the master is closed.  Without
        O_NOCTTY a session leader with no controlling terminal acquires this one."""
        if not self.master_open or self.locked:
            raise SysError(EIO)
        f = ReplicaFile(loc, flags, self)
        self.acquire_on_open(t.tg, flags, f.readable)
        return f

    # -- closing -------------------------------------------------------------------
    def master_closed(self) -> None:
        """Hang the replica up, remove /dev/pts/N, and signal the session's leader."""
        self.master_open = False
        self.devpts.hide(self.number)
        if not self.replicas:
            self.devpts.release(self.number)
        self.hang_up()
        self.wake()

    def replica_closed(self) -> None:
        """One replica file fewer."""
        self.replicas -= 1
        if not self.replicas:
            if not self.master_open:
                self.devpts.release(self.number)
            self.wake(replica=False)


class SessionIoctls:
    """The session ioctls of a file on a terminal (`self.term`, a Controlling; `master`: the
    file is a master, which answers them for its replica)."""

    __slots__ = ()
    master = False

    def _session_ioctl(self, t, cmd: int, arg: int) -> int:
        """TIOCSCTTY, TIOCNOTTY, TIOC[GS]PGRP and TIOCGSID (for the master, on its replica)."""
        term = self.term
        tg = t.tg
        mine = tg.tty is term
        if cmd == TIOCSCTTY:
            return self._set_controlling(t, arg)
        if cmd == TIOCNOTTY:
            if self.master or not mine:
                raise SysError(ENOTTY)
            if tg.pid == tg.sid:
                term.disassociate(leaving=False)
            tg.tty = None
        elif cmd in (TIOCGPGRP, TIOCGSID):
            if not self.master and not mine:
                raise SysError(ENOTTY)
            if cmd == TIOCGSID and term.sid is None:
                raise SysError(ENOTTY)
            t.mm.write(arg, INT.pack((term.pgrp if cmd == TIOCGPGRP else term.sid) or 0))
        elif cmd == TIOCSPGRP:
            pgrp = INT.unpack(t.mm.read(arg, INT.size))[0]
            if pgrp < 0:
                raise SysError(EINVAL)
            if not mine or term.sid != tg.sid:
                raise SysError(ENOTTY)
            members = [g for g in t.kernel.groups_of(tg.container) if g.pgid == pgrp]
            if not members:
                raise SysError(ESRCH)
            if members[0].sid != tg.sid:
                raise SysError(EPERM)
            term.pgrp = pgrp
        else:
            raise SysError(ENOTTY)
        return 0

    def _set_controlling(self, t, steal: int) -> int:
        """TIOCSCTTY: a session leader without a controlling terminal takes this one (one
        controlling another session only with `steal` 1 and CAP_SYS_ADMIN)."""
        term = self.term
        tg = t.tg
        if tg.pid == tg.sid and term.sid == tg.sid and term.container is tg.container:
            return 0
        if tg.pid != tg.sid or tg.tty is not None:
            raise SysError(EPERM)
        admin = t.creds.capable(CAP_SYS_ADMIN)
        if term.sid is not None:
            if steal != 1 or not admin:
                raise SysError(EPERM)
            term.detach()
        if not self.readable and not admin:
            raise SysError(EPERM)
        term.attach(tg)
        return 0


class TerminalFile(SessionIoctls, File):
    """What both ends answer: termios, window size, sessions, flushing."""

    __slots__ = ("term",)
    seekable = False

    def __init__(self, loc: Location, flags: int, term: Terminal):
        super().__init__(loc, flags)
        self.term = term

    def _input_count(self) -> int:
        raise NotImplementedError

    def _flush_input(self) -> None:
        """TCIFLUSH: discard what this end has to read."""
        raise NotImplementedError

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """Termios (TCGETS, TCSETS[WF]), TIOC[GS]WINSZ, FIONREAD, TIOCOUTQ, TCFLSH, TCSBRK[P],
        TCXONC, and the session ioctls."""
        term = self.term
        ldisc = term.ldisc
        if cmd == TCGETS:
            t.mm.write(arg, ldisc.termios.pack())
        elif cmd in (TCSETS, TCSETSW, TCSETSF):
            raw = t.mm.read(arg, TERMIOS.size)
            if cmd == TCSETSF:
                ldisc.flush_input()
            ldisc.set_termios(raw)
            term.wake()
        elif cmd == TIOCGWINSZ:
            t.mm.write(arg, term.winsize)
        elif cmd == TIOCSWINSZ:
            size = t.mm.read(arg, WINSIZE.size)
            if size != term.winsize:
                term.winsize = size
                term.signal_foreground(SIGWINCH)
        elif cmd == FIONREAD:
            t.mm.write(arg, INT.pack(self._input_count()))
        elif cmd == TIOCOUTQ:
            t.mm.write(arg, INT.pack(0))  # output is never held back in the driver
        elif cmd == TCFLSH:  # (TCOFLUSH: written bytes are with the other end already, as on Linux)
            if arg not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
                raise SysError(EINVAL)
            if arg != TCOFLUSH:
                self._flush_input()
                term.wake()
        elif cmd in (TCSBRK, TCSBRKP):
            pass  # tcdrain, tcsendbreak: nothing is ever waiting to go out
        elif cmd == TCXONC:
            if arg in (TCOOFF, TCOON):
                ldisc.stopped = arg == TCOOFF
                term.wake()
            elif arg not in (TCIOFF, TCION):  # (no flow control characters are sent)
                raise SysError(EINVAL)
        else:
            return self._session_ioctl(t, cmd, arg)
        return 0

    def wait_sources(self, events: int) -> tuple[tuple, tuple]:
        """This end's wait queue."""
        return (self.term.master_q if self.master else self.term.replica_q,), ()

    def _block(self, retry=None):
        if self.flags & O_NONBLOCK:
            raise SysError(EAGAIN)
        return Block(queues=self.wait_sources(0)[0], retry=retry)


class MasterFile(TerminalFile):
    """The master (/dev/ptmx): reads the replica's output, writes its input."""

    __slots__ = ("pts",)
    master = True

    def __init__(self, loc: Location, flags: int, term: Terminal, pts: Location):
        super().__init__(loc, flags, term)
        self.pts = pts  # the root of the devpts mount the terminal was made in

    def release(self) -> None:
        """Close the terminal (see Terminal.master_closed)."""
        self.term.master_closed()

    def _input_count(self) -> int:
        return len(self.term.ldisc.out)

    def _flush_input(self) -> None:
        self.term.ldisc.out.clear()

    def read(self, t, n: int):
        """The replica's output; EIO once the replica is closed and nothing is left."""
        term = self.term
        out = term.ldisc.out
        if not n:
            return b""
        if out:
            data = bytes(out[:n])
            del out[:n]
            term.wake(master=False)
            return data
        if term.other_closed:
            raise SysError(EIO)
        return self._block()

    def unread(self, data: bytes) -> None:
        """Put undelivered output back."""
        self.term.ldisc.out[:0] = data

    def write(self, t, data: bytes):
        """Type `data` at the terminal."""
        return self._write(t, data, 0) if data else 0

    def _write(self, t, data: bytes, done: int):
        term = self.term
        taken = term.ldisc.receive(data[done:])
        if taken:
            done += taken
            term.wake()
        if done == len(data) or done and self.flags & O_NONBLOCK:
            return done
        return self._block(lambda: self._write(t, data, done))

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK and TIOCGPTPEER, and the requests of either end."""
        term = self.term
        if cmd == TIOCGPTN:
            t.mm.write(arg, INT.pack(term.number))
        elif cmd == TIOCSPTLCK:
            term.locked = bool(INT.unpack(t.mm.read(arg, INT.size))[0])
        elif cmd == TIOCGPTLCK:
            t.mm.write(arg, INT.pack(term.locked))
        elif cmd == TIOCGPTPEER:
            loc = replica_location(self.pts, term.inode)
            f = term.open_replica(t, loc, arg & (O_ACCMODE | O_NONBLOCK | O_NOCTTY))
            return t.fdtable.install(f, bool(arg & O_CLOEXEC))
        else:
            return super().ioctl(t, cmd, arg)
        return 0

    def readiness(self) -> int:
        """Readable with output waiting, writable with input room, POLLHUP once the replica closed."""
        term = self.term
        ev = POLLOUT | POLLWRNORM if term.ldisc.queued() < INPUT_MAX else 0
        if term.ldisc.out:
            ev |= POLLIN | POLLRDNORM
        if term.other_closed:
            ev |= POLLHUP
        return ev


class ReplicaFile(TerminalFile):
    """The replica (/dev/pts/N): the terminal as its programs see it."""

    __slots__ = ("_timer",)

    def __init__(self, loc: Location, flags: int, term: Terminal):
        super().__init__(loc, flags, term)
        # A VTIME read waiting: (the task, its deadline, the input it had seen).
        self._timer: tuple | None = None
        term.replicas += 1
        term.opened = True

    @property
    def hung_up(self) -> bool:
        """Whether the terminal was hung up (its one master closed: no replica opens after)."""
        return not self.term.master_open

    def release(self) -> None:
        """One replica file fewer (the master reads EIO after the last)."""
        self.term.replica_closed()

    def _input_count(self) -> int:
        return self.term.ldisc.readable()

    def _flush_input(self) -> None:
        self.term.ldisc.flush_input()

    def read(self, t, n: int):
        """Input as the termios modes deliver it (canonical lines; VMIN/VTIME otherwise);
        end-of-file once hung up."""
        if self.hung_up or not n:
            return b""
        ldisc = self.term.ldisc
        if ldisc.canonical:
            if ldisc.input_ready():
                return self._take(n)
            return self._block()
        return self._read_raw(t, n)

    def _take(self, n: int) -> bytes:
        self._timer = None
        data = self.term.ldisc.read(n)
        self.term.wake(replica=False)
        return data

    def _read_raw(self, t, n: int):
        """VMIN bytes (at most n), or what came before VTIME tenths of a second passed
        without more (VMIN > 0: counted from the last byte; VMIN 0: from the call).  The
        timer lives across the re-runs of the task's syscall (one reader at a time)."""
        ldisc = self.term.ldisc
        cc = ldisc.termios.cc
        vmin, vtime = cc[VMIN], cc[VTIME]
        have = len(ldisc.raw)
        if have >= (min(vmin, n) if vmin else 1):
            return self._take(n)
        if not vmin and not vtime:
            return b""
        if have and self.flags & O_NONBLOCK:
            return self._take(n)
        if not vtime or (vmin and not have):
            return self._block()
        timer = self._timer
        now = time.monotonic()
        if timer is None or not t.rerun or timer[0] is not t or (vmin and have != timer[2]):
            deadline = now + vtime / 10
        elif now >= timer[1]:
            return self._take(n)
        else:
            deadline = timer[1]
        if self.flags & O_NONBLOCK:
            raise SysError(EAGAIN)
        self._timer = (t, deadline, have)
        return Block(queues=(self.term.replica_q,), deadline=deadline)

    def unread(self, data: bytes) -> None:
        """Put undelivered input back."""
        self.term.ldisc.unread(data)

    def write(self, t, data: bytes):
        """Output through the output modes; EIO once hung up."""
        if self.hung_up:
            raise SysError(EIO)
        return self._write(t, data, 0) if data else 0

    def _write(self, t, data: bytes, done: int):
        if self.hung_up:
            if done:
                return done
            raise SysError(EIO)
        term = self.term
        taken = term.ldisc.transmit(data[done:])
        if taken:
            done += taken
            term.wake(replica=False)
        if done == len(data) or done and self.flags & O_NONBLOCK:
            return done
        return self._block(lambda: self._write(t, data, done))

    def ioctl(self, t, cmd: int, arg: int) -> int:
        """The requests of either end; EIO once hung up (ENOTTY for TIOCSPGRP)."""
        if self.hung_up:
            raise SysError(ENOTTY if cmd == TIOCSPGRP else EIO)
        return super().ioctl(t, cmd, arg)

    def readiness(self) -> int:
        """Readable with input, writable with room for output; everything once hung up."""
        if self.hung_up:
            return _HUNG_UP
        ldisc = self.term.ldisc
        ev = 0
        if ldisc.input_ready(poll=True):
            ev |= POLLIN | POLLRDNORM
        if len(ldisc.out) < OUTPUT_MAX and not ldisc.stopped:
            ev |= POLLOUT | POLLWRNORM
        return ev


def _devpts_root(loc: Location) -> Location:
    """The devpts a ptmx node makes terminals in: its own, or else the one mounted on `pts`
    beside it (ENODEV without one)."""
    if isinstance(loc.inode.fs, DevptsFS):
        return Location(loc.mount, loc.mount.root)
    parent = loc.dentry.parent
    if parent is None or loc.mount.ns is None:
        raise SysError(ENODEV)
    try:
        pts = loc.mount.ns.covering(Location(loc.mount, parent.child(b"pts")))
    except SysError:
        raise SysError(ENODEV) from None
    if not isinstance(pts.inode, DevptsRoot):
        raise SysError(ENODEV)
    return pts


def _open_ptmx(t, loc: Location, flags: int) -> MasterFile:
    pts = _devpts_root(loc)
    return MasterFile(loc, flags, Terminal(t, pts.inode.fs), pts)


def _open_tty(t, loc: Location, flags: int) -> ReplicaFile:
    term = t.tg.tty
    if term is None:
        raise SysError(ENXIO)
    return term.open_replica(t, loc, flags | O_NOCTTY)


register(PTMX, _open_ptmx)
register(CTTY, _open_tty)
