"""The ptrace platform on its own: clean stubs, injected syscalls, memory copies."""
import os
import re

import pytest

from ringfence.sentry.abi import sysno
from ringfence.sentry.kernel.errors import SysError
from ringfence.sentry.platform.ptrace import PtracePlatform

MMAP = sysno.NUMBERS["mmap"]
PROT_RW, MAP_PRIVATE_ANON = 3, 0x22


@pytest.fixture
def platform():
    plat = PtracePlatform()
    yield plat
    plat.kill_process(plat.master.pid)
    os.waitpid(plat.master.pid, 0)


def _maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return [line.split() for line in f]


def test_master_stub_holds_only_the_stub_page_and_no_fds(platform):
    pid = platform.master.pid
    maps = [m for m in _maps(pid) if m[-1] != "[vsyscall]"]
    assert len(maps) == 1
    start = int(maps[0][0].split("-")[0], 16)
    assert start == platform.stub_page and maps[0][1] == "r-xp"
    assert os.listdir(f"/proc/{pid}/fd") == []
    status = open(f"/proc/{pid}/status").read()
    assert re.search(rf"TracerPid:\s+{os.getpid()}\b", status)


def test_injected_mmap_and_memory_copies(platform):
    space, tid = platform.new_address_space()
    addr = space.syscall(tid, MMAP, 0, 8192, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    assert addr > 0 and addr % 4096 == 0
    space.write(addr + 4090, b"hello world\0")
    assert space.read(addr + 4090, 11) == b"hello world"
    assert space.read_cstr(addr + 4090, 100) == b"hello world"
    with pytest.raises(SysError):
        space.read(addr + 8190, 10)  # runs off the mapping
    with pytest.raises(SysError):
        space.write(16, b"x")
    with pytest.raises(SysError):
        space.read_cstr(addr + 4096, 3)  # no NUL within the limit
    platform.kill_process(space.pid)


def test_fork_copies_memory_copy_on_write(platform):
    space, tid = platform.new_address_space()
    addr = space.syscall(tid, MMAP, 0, 4096, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    space.write(addr, b"parent")
    child, child_tid = platform.fork_address_space(tid)
    assert child.read(addr, 6) == b"parent"
    child.write(addr, b"child!")
    assert space.read(addr, 6) == b"parent"
    assert child.read(addr, 6) == b"child!"
    platform.kill_process(child.pid)
    platform.kill_process(space.pid)


def test_failed_host_syscall_returns_errno(platform):
    space, tid = platform.new_address_space()
    ret = space.syscall(tid, MMAP, 0, 4096, PROT_RW, 0x20, -1, 0)  # anonymous, neither private nor shared
    assert ret == -22
    platform.kill_process(space.pid)
