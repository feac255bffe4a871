"""--strace: print every syscall of the program with decoded arguments and result.

Handlers chosen for tracing are wrapped (the table's argument kinds say how
to show each argument); untraced syscalls keep their bare handlers, so the
hot path pays nothing when tracing is off.
"""
from __future__ import annotations

import os

from .abi import errno as E
from .abi import signal as S
from .kernel.errors import SysError
from .kernel.waitqueue import NORESUME, Block
from .syscalls.args import s32

_MAX_STR = 64
_OFLAGS = [(0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
           (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o200000, "O_DIRECTORY"),
           (0o400000, "O_NOFOLLOW"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH")]
_ATFLAGS = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
            (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH")]
_MPROT = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")]
_MFLAGS = [(0x01, "MAP_SHARED"), (0x02, "MAP_PRIVATE"), (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"),
           (0x100, "MAP_GROWSDOWN"), (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"),
           (0x20000, "MAP_STACK"), (0x100000, "MAP_FIXED_NOREPLACE")]
_CLONE = [(0x100, "CLONE_VM"), (0x200, "CLONE_FS"), (0x400, "CLONE_FILES"), (0x800, "CLONE_SIGHAND"),
          (0x4000, "CLONE_VFORK"), (0x8000, "CLONE_PARENT"), (0x10000, "CLONE_THREAD"),
          (0x80000, "CLONE_SETTLS"), (0x100000, "CLONE_PARENT_SETTID"),
          (0x200000, "CLONE_CHILD_CLEARTID"), (0x1000000, "CLONE_CHILD_SETTID")]
_WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}


def _flags(value: int, names, rest_first: str = "") -> str:
    parts = [rest_first] if rest_first else []
    for bit, name in names:
        if value & bit:
            parts.append(name)
            value &= ~bit
    if value or not parts:
        parts.append(hex(value))
    return "|".join(parts)


def _quote(data: bytes) -> str:
    """A C-like quoted string (bytes' repr needs no codec: the sentry cannot import one)."""
    body = repr(data[:_MAX_STR])[2:-1]
    return f'"{body}"' + ("..." if len(data) > _MAX_STR else "")


class Strace:
    """Formats syscalls to `out` (a binary file descriptor)."""

    def __init__(self, fd: int, only: set[str] | None = None):
        self.fd = fd
        self.only = only

    def wants(self, name: str) -> bool:
        """Whether syscall `name` is traced (--strace-syscalls filters)."""
        return self.only is None or name in self.only

    def emit(self, t, text: str) -> None:
        os.write(self.fd, f"[{t.tg.pid:>4}:{t.tid:>4}] {text}\n".encode())

    def _arg(self, t, kind: str, value: int, args, result) -> str:
        kind, _, ref = kind.partition(":")
        try:
            if kind in ("int", "fd"):
                return str(s32(value))
            if kind == "dirfd":
                return "AT_FDCWD" if s32(value) == -100 else str(s32(value))
            if kind == "uint":
                return str(value)
            if kind in ("path", "str"):
                return _quote(t.mm.read_cstr(value, 4096)) if value else "NULL"
            if kind == "wbuf":
                return _quote(t.mm.read_partial(value, min(args[int(ref)], _MAX_STR + 1)))
            if kind == "rbuf":
                if result is None or result < 0:
                    return hex(value)
                return _quote(t.mm.read_partial(value, min(result, _MAX_STR + 1)))
            if kind == "oflags":
                return _flags(value & ~3, _OFLAGS, ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[value & 3])
            if kind == "atflags":
                return _flags(value, _ATFLAGS)
            if kind == "mode":
                return oct(value)
            if kind == "sig":
                return S.name(s32(value)) if 0 < s32(value) <= S.NSIG else str(s32(value))
            if kind == "argv":
                if not value:
                    return "NULL"
                ptrs = t.mm.read_ptr_array(value)
                shown = ", ".join(_quote(t.mm.read_cstr(p, 4096)) for p in ptrs[:8])
                return f"[{shown}{', ...' if len(ptrs) > 8 else ''}]"
            if kind == "clone":
                return _flags(value & ~0xFF, _CLONE, S.name(value & 0xFF) if value & 0xFF else "")
            if kind == "mprot":
                return _flags(value, _MPROT) if value else "PROT_NONE"
            if kind == "mflags":
                return _flags(value, _MFLAGS)
            if kind == "whence":
                return _WHENCE.get(value, str(value))
        except SysError:
            return hex(value)
        return hex(value)

    def _line(self, t, row, args, result) -> str:
        shown = ", ".join(self._arg(t, kind, value, args, result) for kind, value in zip(row.args, args))
        return f"{row.name}({shown})"

    def wrap(self, row, handler):
        """A handler that runs `handler` (row's) and prints the call and its result."""

        def traced(t, *args):
            enter = self._line(t, row, args, None)  # strings read before the call changes them
            try:
                result = handler(t, *args)
            except (SysError, OSError) as err:
                self.emit(t, f"{enter} = -1 {E.name(err.errno)}")
                raise
            if result.__class__ is int:
                if result < 0:
                    shown = f"-1 {E.name(-result)}"
                else:
                    if any(k.startswith("rbuf") for k in row.args):
                        enter = self._line(t, row, args, result)
                    shown = f"{result} ({hex(result)})" if result > 9 else str(result)
                self.emit(t, f"{enter} = {shown}")
            elif result.__class__ is Block:
                self.emit(t, f"{enter} ... (blocked)")
            else:
                self.emit(t, f"{enter} = {'?' if result is NORESUME else 0}")
            return result

        return traced
