"""Loading ELF executables (static, static-PIE, and PT_INTERP) into an address space."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from ..abi.auxv import (
    ELF_MAGIC, ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD,
    PT_PHDR,
)
from ..abi.errno import ENOEXEC
from ..abi.mm import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, page_down, page_up
from ..kernel.errors import SysError

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_MAX_PHDRS = 128


@dataclass
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass
class ElfInfo:
    """What the loader learned about one ELF file."""

    type: int
    entry: int
    phoff: int
    phnum: int
    segments: list[Segment]
    interp: bytes | None


@dataclass
class Loaded:
    """Where an ELF landed: its bias, entry, program headers, brk start, and its
    code and data ranges as Linux's mm_struct records them (start_code...end_data)."""

    bias: int
    entry: int
    phdr: int
    phnum: int
    end: int
    code: tuple[int, int]
    data: tuple[int, int]


def parse(file) -> ElfInfo:
    """Parse and validate the headers of `file` (ENOEXEC if it is no x86_64 ELF)."""
    head = file.pread(_EHDR.size, 0)
    if len(head) < _EHDR.size or not head.startswith(ELF_MAGIC):
        raise SysError(ENOEXEC)
    (ident, etype, machine, _version, entry, phoff, _shoff, _flags, _ehsize, phentsize, phnum,
     *_rest) = _EHDR.unpack(head)
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB or machine != EM_X86_64:
        raise SysError(ENOEXEC)
    if etype not in (ET_EXEC, ET_DYN) or phentsize != _PHDR.size or not 0 < phnum <= _MAX_PHDRS:
        raise SysError(ENOEXEC)
    table = file.pread(phnum * _PHDR.size, phoff)
    if len(table) != phnum * _PHDR.size:
        raise SysError(ENOEXEC)
    segments, interp = [], None
    for i in range(phnum):
        ptype, flags, offset, vaddr, _paddr, filesz, memsz, _align = _PHDR.unpack_from(table, i * _PHDR.size)
        seg = Segment(ptype, flags, offset, vaddr, filesz, memsz)
        if ptype == PT_LOAD:
            if filesz > memsz or (offset - vaddr) % 4096 or vaddr + memsz >= 1 << 47:
                raise SysError(ENOEXEC)
            segments.append(seg)
        elif ptype == PT_INTERP:
            if not 1 < filesz <= 4096:
                raise SysError(ENOEXEC)
            interp = file.pread(filesz, offset).rstrip(b"\0")
        elif ptype == PT_PHDR:
            segments.append(seg)
    if not any(s.type == PT_LOAD for s in segments):
        raise SysError(ENOEXEC)
    return ElfInfo(etype, entry, phoff, phnum, segments, interp)


def _prot(flags: int) -> int:
    return (PROT_READ if flags & PF_R else 0) | (PROT_WRITE if flags & PF_W else 0) | (PROT_EXEC if flags & PF_X else 0)


def load(mm, tid: int, file, info: ElfInfo) -> Loaded:
    """Map `info`'s PT_LOAD segments of `file` into `mm` (via stopped thread `tid`)."""
    loads = [s for s in info.segments if s.type == PT_LOAD]
    lo = page_down(min(s.vaddr for s in loads))
    hi = page_up(max(s.vaddr + s.memsz for s in loads))
    # One writable mapping for the whole image (the host picks its place for
    # ET_DYN), the file bytes copied in, then each segment's protection;
    # pages two segments share end up with the later one's, as on Linux.
    fixed = MAP_FIXED if info.type == ET_EXEC else 0
    base = mm.mmap(tid, lo if fixed else 0, hi - lo, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | fixed)
    bias = base - lo
    for seg in loads:
        if seg.filesz:
            mm.copy_in(file, seg.vaddr + bias, seg.offset, seg.filesz)
    mm.mprotect(tid, base, hi - lo, PROT_NONE)
    for seg in loads:
        start = page_down(seg.vaddr + bias)
        end = page_up(seg.vaddr + bias + seg.memsz)
        if end > start:
            mm.mprotect(tid, start, end - start, _prot(seg.flags))
        if seg.filesz:  # the file's pages; the rest of memsz (bss) stays anonymous
            mm.back_with_file(start, page_up(seg.vaddr + bias + seg.filesz), file, page_down(seg.offset))
    phdr = _phdr_address(info, loads) + bias
    code, data = _code_and_data(loads)
    return Loaded(bias, info.entry + bias, phdr, info.phnum, hi + bias,
                  (code[0] + bias, code[1] + bias), (data[0] + bias, data[1] + bias))


def _code_and_data(loads: list[Segment]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Linux's start_code/end_code (the file extent of the executable segments) and
    start_data/end_data (the last segment start, the last file byte), unbiased."""
    code = [(s.vaddr, s.vaddr + s.filesz) for s in loads if s.flags & PF_X]
    code_range = (min(lo for lo, _ in code), max(hi for _, hi in code)) if code else (0, 0)
    return code_range, (max(s.vaddr for s in loads), max(s.vaddr + s.filesz for s in loads))


def _phdr_address(info: ElfInfo, loads: list[Segment]) -> int:
    for seg in info.segments:
        if seg.type == PT_PHDR:
            return seg.vaddr
    for seg in loads:
        if seg.offset <= info.phoff < seg.offset + seg.filesz:
            return seg.vaddr + info.phoff - seg.offset
    raise SysError(ENOEXEC)
