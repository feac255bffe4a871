"""The platform: where the sandboxed program's threads really run.

The kernel sees a narrow interface (see `Platform` and `AddressSpace`): create
a clean address space, fork one, add a thread to one, realise mappings by
running a syscall inside it, copy memory in and out, and run a thread until
its next syscall, fault or signal.  Backends live in subpackages
(`ptrace` today).
"""
from __future__ import annotations

from typing import Protocol


class AddressSpace(Protocol):
    """One host process holding a sandboxed process's memory."""

    pid: int

    def read(self, addr: int, length: int) -> bytes: ...
    def write(self, addr: int, data: bytes) -> None: ...
    def read_cstr(self, addr: int, maximum: int) -> bytes: ...
    def syscall(self, tid: int, nr: int, *args: int) -> int: ...


class Platform(Protocol):
    """A way of running program threads and catching their syscalls."""

    name: str

    def new_address_space(self) -> tuple[AddressSpace, int]: ...
    def fork_address_space(self, tid: int) -> tuple[AddressSpace, int]: ...
    def kill(self, space: AddressSpace) -> None: ...


def get(name: str) -> Platform:
    """Create the platform backend called `name`."""
    if name == "ptrace":
        from .ptrace import PtracePlatform

        return PtracePlatform()
    raise ValueError(f"unknown platform {name!r} (available: ptrace)")
