"""execve's loader: from a path to a fresh address space ready to run."""
from __future__ import annotations

from dataclasses import dataclass

from ..abi.errno import EACCES, ELOOP, ENOEXEC
from ..abi.resource import RLIM_INFINITY, RLIMIT_STACK
from ..abi.mm import MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, MAP_STACK, PROT_READ, PROT_WRITE, page_up
from ..kernel.errors import SysError
from ..mm.mm import ImageLayout, MemoryManager
from . import elf, stack

AT_FDCWD = -100
O_RDONLY = 0
O_NOFOLLOW = 0o400000
STACK_SIZE = 8 << 20  # without a finite RLIMIT_STACK
MAX_STACK_SIZE = 1 << 30
_MAX_INTERP_DEPTH = 4


@dataclass
class Image:
    """A loaded program: its memory, the stopped stub thread that will run it, and where."""

    mm: MemoryManager
    host_tid: int
    entry: int
    sp: int
    exe: bytes  # the file run (/proc/PID/exe): the interpreter of a script
    argv: list[bytes]
    filename: bytes = b""  # the path execve was given: comm is its last component


def _open_exec(t, path: bytes, dirfd: int = AT_FDCWD, nofollow: bool = False):
    """Open `path` for execution (a regular, executable file on an exec mount).

    The caller owns the returned File's reference and must unref() it."""
    from ..vfs import open_path

    file = open_path(t, dirfd, path, O_RDONLY | (O_NOFOLLOW if nofollow else 0), for_exec=True)
    if not file.stat().st_mode & 0o111:
        file.unref()
        raise SysError(EACCES)
    return file


def _shebang(head: bytes, path: bytes, argv: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The interpreter and argv for a `#!` script."""
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise SysError(ENOEXEC)
    parts = line.split(None, 1)
    interp = parts[0]
    new_argv = [interp, *parts[1:], path, *argv[1:]]
    return interp, new_argv


def load(kernel, t, path: bytes, argv: list[bytes], envp: list[bytes], dirfd: int = AT_FDCWD,
         nofollow: bool = False) -> Image:
    """Open `path` for `t`, follow `#!` lines, and load the ELF into a new address space."""
    files = []  # every File opened here, released at the end: the image holds copies
    filename = path
    try:
        for _ in range(_MAX_INTERP_DEPTH):
            file = _open_exec(t, path, dirfd, nofollow)
            dirfd, nofollow = AT_FDCWD, False  # an interpreter is looked up as usual
            files.append(file)
            head = file.pread(256, 0)
            if not head.startswith(b"#!"):
                break
            path, argv = _shebang(head, path, argv)
        else:
            raise SysError(ELOOP)
        info = elf.parse(file)
        interp = None
        if info.interp is not None:
            interp_file = _open_exec(t, info.interp)
            files.append(interp_file)
            interp = (interp_file, elf.parse(interp_file))
        soft = t.tg.rlimit(RLIMIT_STACK)[0]
        stack_size = STACK_SIZE if soft == RLIM_INFINITY else max(page_up(min(soft, MAX_STACK_SIZE)), 1 << 17)
        image = _load_image(kernel, file, info, interp, path, argv, envp, stack_size)
        image.filename = filename
        return image
    finally:
        for f in files:
            f.unref()


def _load_image(kernel, file, info, interp, path: bytes, argv: list[bytes], envp: list[bytes],
                stack_size: int) -> Image:
    space, tid = kernel.platform.new_address_space()
    try:
        mm = MemoryManager(space, kernel.reserved_range)
        main = elf.load(mm, tid, file, info)
        entry, interp_base = main.entry, 0
        if interp is not None:
            ld = elf.load(mm, tid, *interp)
            entry, interp_base = ld.entry, ld.bias
        mm.brk_start = mm.brk = page_up(main.end)
        stack_lo = mm.mmap(tid, 0, stack_size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK)
        mm.name_stack(stack_lo, stack_lo + stack_size)
        aux = stack.base_auxv(main.phdr, main.phnum, main.entry, interp_base, kernel.hwcap, kernel.hwcap2)
        initial = stack.build(stack_lo + stack_size, argv, envp, path, aux)
        mm.write(initial.sp, initial.blob)
        mm.layout = ImageLayout(main.code, main.data, initial.sp, initial.args, initial.env)
    except BaseException:
        kernel.platform.kill_process(space.pid)
        raise
    return Image(mm, tid, entry, initial.sp, file.path, argv)
