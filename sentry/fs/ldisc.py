"""The line discipline of the sentry's pseudo-terminals (Linux's n_tty).

What the master writes is input typed at the terminal: `receive` applies the input modes
(ISTRIP, INLCR, IGNCR, ICRNL; IXON/IXANY flow control), the signal characters (ISIG: VINTR,
VQUIT, VSUSP), canonical editing (ICANON: lines ended by newline, VEOL, VEOL2 or VEOF; VERASE,
VWERASE, VKILL, VLNEXT, VREPRINT) and echo (ECHO, ECHOE, ECHOK, ECHOKE, ECHONL, ECHOCTL); the
replica reads the result.  What the replica writes, and the echoes, go through `transmit`:
OPOST with ONLCR, OCRNL, ONOCR, ONLRET and XTABS, keeping the cursor column that erasing needs;
the master reads the result.  Not done: parity and breaks (PARMRK, INPCK, IGNBRK...),
IUCLC/OLCUC/XCASE, ECHOPRT, PENDIN, FLUSHO and VDISCARD, output delays.
"""
from __future__ import annotations

import re
from collections import deque

from ..abi.termios import (
    DEFAULT_CC, DEFAULT_CFLAG, DEFAULT_IFLAG, DEFAULT_LFLAG, DEFAULT_OFLAG, ECHO, ECHOCTL, ECHOE, ECHOK, ECHOKE,
    ECHONL, ICANON, ICRNL, IEXTEN, IGNCR, INLCR, ISIG, ISTRIP, IUTF8, IXANY, IXON, NOFLSH, OCRNL, ONLCR, ONLRET,
    ONOCR, OPOST, TABDLY, TERMIOS, VEOF, VEOL, VEOL2, VERASE, VINTR, VKILL, VLNEXT, VMIN, VQUIT, VREPRINT, VSTART,
    VSTOP, VSUSP, VTIME, VWERASE, XTABS,
)
from ..abi.signal import SIGINT, SIGQUIT, SIGTSTP

INPUT_MAX = 4096 + 65536  # input the replica may have waiting (Linux: n_tty's buffer and the flip buffers)
LINE_MAX = 4095  # the longest canonical line: more characters are dropped
OUTPUT_MAX = 65536  # output the master may have waiting
NL, CR, TAB, BS = 0x0A, 0x0D, 0x09, 0x08
_SIGNAL_CHARS = ((VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP))
_INPUT_MODES = ISTRIP | INLCR | IGNCR | ICRNL | IXON
_LOCAL_MODES = ISIG | ICANON | ECHO | ECHONL
_SPECIAL_OUTPUT = re.compile(rb"[\x00-\x1f\x7f]")
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))  # bytes that take no column


def _cntrl(c: int) -> bool:
    return c < 0x20 or c == 0x7F


class Termios:
    """struct termios: the mode flags and control characters (Linux's defaults for a pty)."""

    __slots__ = ("iflag", "oflag", "cflag", "lflag", "line", "cc")

    def __init__(self):
        self.iflag, self.oflag, self.cflag, self.lflag = DEFAULT_IFLAG, DEFAULT_OFLAG, DEFAULT_CFLAG, DEFAULT_LFLAG
        self.line = 0
        self.cc = bytearray(DEFAULT_CC)

    def pack(self) -> bytes:
        """The kernel's struct termios."""
        return TERMIOS.pack(self.iflag, self.oflag, self.cflag, self.lflag, self.line, bytes(self.cc))

    def unpack(self, raw: bytes) -> None:
        """Take every field from a struct termios."""
        self.iflag, self.oflag, self.cflag, self.lflag, self.line, cc = TERMIOS.unpack(raw)
        self.cc = bytearray(cc)

    def special(self, c: int, index: int) -> bool:
        """Whether `c` is control character `index` (0 disables one, as _POSIX_VDISABLE)."""
        v = self.cc[index]
        return v != 0 and c == v


class LineDiscipline:
    """The queues between a master and its replica, and the processing between them.

    lines:  complete canonical lines the replica may read (b"" is an end-of-file);
    line:   the canonical line being edited;
    raw:    non-canonical input;
    out:    output for the master.
    `on_signal(sig)` is called for a signal character.
    """

    __slots__ = ("termios", "lines", "line", "raw", "out", "column", "canon_column", "stopped", "lnext",
                 "split", "on_signal")

    def __init__(self, on_signal):
        self.termios = Termios()
        self.lines: deque[bytes] = deque()
        self.line = bytearray()
        self.raw = bytearray()
        self.out = bytearray()
        self.column = 0  # the cursor column output has reached
        self.canon_column = 0  # the column where the line being edited began
        self.stopped = False  # output held by VSTOP (IXON)
        self.lnext = False  # the next character is literal (VLNEXT)
        self.split = False  # the last read took only the start of a line
        self.on_signal = on_signal

    # -- state --------------------------------------------------------------------
    @property
    def canonical(self) -> bool:
        """Whether input is read line by line (ICANON)."""
        return bool(self.termios.lflag & ICANON)

    def queued(self) -> int:
        """Bytes of input held (complete lines, the line being edited, raw input)."""
        return sum(map(len, self.lines)) + len(self.line) + len(self.raw)

    def readable(self) -> int:
        """Bytes a read may return now (FIONREAD)."""
        return sum(map(len, self.lines)) if self.canonical else len(self.raw)

    def input_ready(self, poll: bool = False) -> bool:
        """Whether a read would return input now; for poll, non-canonical input counts from
        VMIN bytes when VTIME is 0 (as Linux's)."""
        if self.canonical:
            return bool(self.lines)
        cc = self.termios.cc
        need = cc[VMIN] if poll and cc[VMIN] and not cc[VTIME] else 1
        return len(self.raw) >= need

    def set_termios(self, raw: bytes) -> None:
        """TCSETS: new modes; switching ICANON turns held input into raw input or one line."""
        t = self.termios
        was_canonical = self.canonical
        t.unpack(raw)
        if was_canonical != self.canonical:
            if self.canonical:
                if self.raw:
                    self.lines.append(bytes(self.raw))
                    self.raw.clear()
            else:
                self.raw[:0] = b"".join(self.lines) + self.line
                self.lines.clear()
                self.line.clear()
            self.lnext = False
        if not t.iflag & IXON:
            self.stopped = False

    def flush_input(self) -> None:
        """Discard input not yet read (TCIFLUSH)."""
        self.lines.clear()
        self.line.clear()
        self.raw.clear()
        self.lnext = False

    # -- the replica reads ------------------------------------------------------------
    def read(self, n: int) -> bytes:
        """Up to `n` bytes of input: in canonical mode never past the end of the first line
        (b"" for an end-of-file); the caller checks `input_ready` first."""
        if self.canonical:
            first = self.lines[0]
            self.split = len(first) > n
            if not self.split:
                self.lines.popleft()
                return first
            self.lines[0] = first[n:]
            return first[:n]
        data = bytes(self.raw[:n])
        del self.raw[:n]
        return data

    def unread(self, data: bytes) -> None:
        """Put back what the last read returned (the program's buffer faulted)."""
        if not self.canonical:
            self.raw[:0] = data
        elif self.split and self.lines:
            self.lines[0] = data + self.lines[0]
        else:
            self.lines.appendleft(data)

    # -- input: what the master writes ---------------------------------------------------
    def receive(self, data: bytes) -> int:
        """Process typed bytes; returns how many were taken (fewer when the input is full)."""
        room = INPUT_MAX - self.queued()
        if room <= 0:
            return 0
        data = data[:room]
        t = self.termios
        if not t.iflag & _INPUT_MODES and not t.lflag & _LOCAL_MODES and not self.lnext:
            self.raw += data
            return len(data)
        for c in data:
            self._receive(c)
        return len(data)

    def _receive(self, c: int) -> None:
        t = self.termios
        iflag, lflag = t.iflag, t.lflag
        if iflag & ISTRIP:
            c &= 0x7F
        if self.lnext:
            self.lnext = False
            self._store(c)
            return
        if iflag & IXON:
            if t.special(c, VSTOP):
                self.stopped = True
                return
            if t.special(c, VSTART):
                self.stopped = False
                return
        if lflag & ISIG:
            for index, sig in _SIGNAL_CHARS:
                if t.special(c, index):
                    self._signal(c, sig)
                    return
        if self.stopped and iflag & IXON and iflag & IXANY:
            self.stopped = False
        if c == CR:
            if iflag & IGNCR:
                return
            if iflag & ICRNL:
                c = NL
        elif c == NL and iflag & INLCR:
            c = CR
        if lflag & ICANON and self._canonical_special(c):
            return
        self._store(c)

    def _store(self, c: int) -> None:
        """An ordinary input character: echoed, and added to the line or the raw input."""
        canonical = self.canonical
        if canonical and len(self.line) >= LINE_MAX:
            return
        if self.termios.lflag & ECHO:
            if canonical and not self.line:
                self.canon_column = self.column
            self._echo(c)
        (self.line if canonical else self.raw).append(c)

    def _signal(self, c: int, sig: int) -> None:
        t = self.termios
        if not t.lflag & NOFLSH:
            self.flush_input()  # (output has gone to the master already, as it has on Linux)
        self.on_signal(sig)
        if t.iflag & IXON:
            self.stopped = False
        if t.lflag & ECHO:
            self._echo(c)

    def _canonical_special(self, c: int) -> bool:
        """Line editing and line ends; False for an ordinary character."""
        t = self.termios
        lflag = t.lflag
        iexten = lflag & IEXTEN
        if t.special(c, VERASE) or t.special(c, VKILL) or (iexten and t.special(c, VWERASE)):
            self._erase(c)
        elif iexten and t.special(c, VLNEXT):
            self.lnext = True
            if lflag & ECHO and lflag & ECHOCTL:
                self._echo_raw(b"^\b")
        elif iexten and lflag & ECHO and t.special(c, VREPRINT):
            self._echo(c)
            self._echo_raw(b"\n")
            for b in self.line:
                self._echo(b)
        elif c == NL:
            if lflag & (ECHO | ECHONL):
                self._echo_raw(b"\n")
            self._end_line(b"\n")
        elif t.special(c, VEOF):
            self._end_line(b"")
        elif t.special(c, VEOL) or (iexten and t.special(c, VEOL2)):
            if lflag & ECHO:
                if not self.line:
                    self.canon_column = self.column
                self._echo(c)
            self._end_line(bytes((c,)))
        else:
            return False
        return True

    def _end_line(self, end: bytes) -> None:
        self.lines.append(bytes(self.line) + end)
        self.line.clear()

    def _width(self, c: int, column: int) -> int:
        """The columns character `c`'s echo took at `column`."""
        if c == TAB:
            return 8 - (column & 7)
        if _cntrl(c):
            return 2 if self.termios.lflag & ECHOCTL else 0
        if self.termios.iflag & IUTF8 and c & 0xC0 == 0x80:
            return 0
        return 1

    def _erase(self, c: int) -> None:
        """VERASE (a character), VWERASE (a word) or VKILL (the line), echoed as ECHOE/ECHOK/ECHOKE say."""
        t = self.termios
        lflag = t.lflag
        line = self.line
        if not line:
            return
        kill = t.special(c, VKILL)
        word = not kill and not t.special(c, VERASE)
        if kill and not (lflag & ECHO and lflag & ECHOK and lflag & ECHOKE and lflag & ECHOE):
            line.clear()
            if lflag & ECHO:
                self._echo(c)
                if lflag & ECHOK:
                    self._echo_raw(b"\n")
            return
        utf8 = t.iflag & IUTF8
        seen_alnum = False
        while line:
            end = len(line)
            start = end - 1
            while utf8 and start > 0 and line[start] & 0xC0 == 0x80:
                start -= 1
            last = line[start]
            if word:
                if chr(last).isalnum() and last < 0x80 or last == ord("_"):
                    seen_alnum = True
                elif seen_alnum:
                    break
            if lflag & ECHO:
                if not kill and not word and not lflag & ECHOE:
                    self._echo(c)
                elif last == TAB:
                    column = self.canon_column
                    for b in line[:start]:
                        column += self._width(b, column)
                    self._echo_raw(b"\b" * self._width(TAB, column))
                else:
                    self._echo_raw(b"\b \b" * self._width(last, 0))
            del line[start:]
            if not kill and not word:
                break

    # -- output: what the replica writes, and echoes ------------------------------------
    def transmit(self, data: bytes) -> int:
        """Queue the replica's output for the master; returns how many bytes were taken
        (none while output is stopped or the master has OUTPUT_MAX bytes waiting)."""
        room = OUTPUT_MAX - len(self.out)
        if self.stopped or room <= 0:
            return 0
        data = data[:room]
        if not self.termios.oflag & OPOST:
            self.out += data
            return len(data)
        utf8 = self.termios.iflag & IUTF8
        pos = 0
        for m in _SPECIAL_OUTPUT.finditer(data):
            self._printable(data[pos:m.start()], utf8)
            self._output(data[m.start()])
            pos = m.end()
        self._printable(data[pos:], utf8)
        return len(data)

    def _printable(self, run: bytes, utf8: int) -> None:
        if run:
            self.out += run
            self.column += len(run.translate(None, _UTF8_CONTINUATION)) if utf8 else len(run)

    def _echo(self, c: int) -> None:
        """Echo an input character, a control character as ^X under ECHOCTL (tab excepted)."""
        if not self.termios.lflag & ECHOCTL or not _cntrl(c) or c == TAB:
            self._echo_raw(bytes((c,)))
        elif len(self.out) < OUTPUT_MAX:
            self.out += bytes((ord("^"), c ^ 0x40))
            self.column += 2

    def _echo_raw(self, chars: bytes) -> None:
        """Echo `chars` through the output modes, unless the master has OUTPUT_MAX bytes
        waiting (Linux drops echoes that do not fit too)."""
        if len(self.out) < OUTPUT_MAX:
            for c in chars:
                self._output(c)

    def _output(self, c: int) -> None:
        """One output byte through the output modes."""
        out = self.out
        oflag = self.termios.oflag
        if not oflag & OPOST:
            out.append(c)
            return
        if c == NL:
            if oflag & ONLCR:
                out += b"\r\n"
                self.column = self.canon_column = 0
                return
            if oflag & ONLRET:
                self.column = self.canon_column = 0
        elif c == CR:
            if oflag & ONOCR and self.column == 0:
                return
            if oflag & OCRNL:
                c = NL
                if oflag & ONLRET:
                    self.column = self.canon_column = 0
            else:
                self.column = self.canon_column = 0
        elif c == TAB:
            spaces = 8 - (self.column & 7)
            self.column += spaces
            if oflag & TABDLY == XTABS:
                out += b" " * spaces
                return
        elif c == BS:
            if self.column > 0:
                self.column -= 1
        elif not _cntrl(c) and not (self.termios.iflag & IUTF8 and c & 0xC0 == 0x80):
            self.column += 1
        out.append(c)
