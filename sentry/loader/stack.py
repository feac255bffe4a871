"""The initial process stack: argc, argv, envp, auxv and the strings they point to."""
from __future__ import annotations

import os
from typing import NamedTuple

from ..abi.auxv import (
    AT_BASE, AT_CLKTCK, AT_EGID, AT_ENTRY, AT_EUID, AT_EXECFN, AT_FLAGS, AT_GID, AT_HWCAP, AT_HWCAP2,
    AT_MINSIGSTKSZ, AT_NULL, AT_PAGESZ, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PLATFORM, AT_RANDOM, AT_SECURE, AT_UID,
)
from ..abi.mm import PAGE_SIZE
from ..abi.proc import CLK_TCK

PLATFORM = b"x86_64"


class InitialStack(NamedTuple):
    """The bytes to write at stack pointer `sp`, and where the argv and envp strings lie in them."""

    sp: int
    blob: bytes
    args: tuple[int, int]
    env: tuple[int, int]


def build(top: int, argv: list[bytes], envp: list[bytes], execfn: bytes, aux: dict[int, int]) -> InitialStack:
    """Lay out the initial stack ending at `top`.

    `aux` holds the loader's auxv values (AT_PHDR, AT_ENTRY, AT_BASE...); the
    pointers to strings and random bytes are added here.  The argv strings
    and then the envp strings are contiguous (/proc/PID/cmdline and environ
    read them back from there).
    """
    strings = bytearray()
    offsets = []
    for s in [execfn, PLATFORM, *argv, *envp]:
        offsets.append(len(strings))
        strings += s + b"\0"
    random_off = len(strings)
    strings += os.urandom(16)
    # Strings sit right below `top`; everything else below them, 16-aligned.
    strings_at = (top - len(strings)) & ~15
    ptr = [strings_at + off for off in offsets]
    execfn_p, platform_p, arg_p, env_p = ptr[0], ptr[1], ptr[2:2 + len(argv)], ptr[2 + len(argv):]
    auxv = dict(aux)
    auxv.update({AT_RANDOM: strings_at + random_off, AT_EXECFN: execfn_p, AT_PLATFORM: platform_p})
    words = [len(argv), *arg_p, 0, *env_p, 0]
    for key, value in auxv.items():
        words += [key, value]
    words += [AT_NULL, 0]
    table = b"".join(w.to_bytes(8, "little") for w in words)
    sp = (strings_at - len(table)) & ~15
    blob = table + bytes(strings_at - sp - len(table)) + bytes(strings)
    args_at = strings_at + len(execfn) + len(PLATFORM) + 2
    env_at = args_at + sum(len(a) + 1 for a in argv)
    return InitialStack(sp, blob, (args_at, env_at), (env_at, strings_at + random_off))


def base_auxv(phdr: int, phnum: int, entry: int, interp_base: int, hwcap: int, hwcap2: int) -> dict[int, int]:
    """The auxv entries that describe the loaded image and the machine."""
    return {
        AT_PHDR: phdr, AT_PHENT: 56, AT_PHNUM: phnum, AT_PAGESZ: PAGE_SIZE, AT_BASE: interp_base,
        AT_FLAGS: 0, AT_ENTRY: entry, AT_UID: 0, AT_EUID: 0, AT_GID: 0, AT_EGID: 0, AT_SECURE: 0,
        AT_HWCAP: hwcap, AT_HWCAP2: hwcap2, AT_CLKTCK: CLK_TCK, AT_MINSIGSTKSZ: 2048,
    }
