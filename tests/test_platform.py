"""The ptrace platform on its own: clean stubs, injected syscalls, memory copies."""
import os
import re
import socket
import time

import pytest

from ringfence.sentry.abi import sysno
from ringfence.sentry.kernel.errors import SysError
from ringfence.sentry.platform.ptrace import PtracePlatform

MMAP = sysno.NUMBERS["mmap"]
PROT_RW, MAP_PRIVATE_ANON = 3, 0x22
WALL = 0x40000000  # __WALL: threads and tracees that are not our children too


@pytest.fixture
def platform():
    """A platform; afterwards every stub the test made must be gone (the test kills what it
    made, this kills the master) and is reaped, so that no zombie tracee outlives the test."""
    plat = PtracePlatform()
    yield plat
    plat.kill_process(plat.master.pid)
    deadline = time.monotonic() + 10
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            break
        if pid == 0:
            assert time.monotonic() < deadline, "a stub of the test is still alive"
            time.sleep(0.01)


def _maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return [line.split() for line in f]


def _channel_only(pid, platform) -> bool:
    """Whether stub `pid` holds no fd but the channel's end (fd 0)."""
    channel = os.fstat(platform._channel.stub_end.fileno()).st_ino
    return os.listdir(f"/proc/{pid}/fd") == ["0"] and os.readlink(f"/proc/{pid}/fd/0") == f"socket:[{channel}]"


def test_master_stub_holds_only_the_stub_page_and_the_channel(platform):
    pid = platform.master.pid
    maps = [m for m in _maps(pid) if m[-1] != "[vsyscall]"]
    assert len(maps) == 1
    start = int(maps[0][0].split("-")[0], 16)
    assert start == platform.stub_page and maps[0][1] == "r-xp"
    assert _channel_only(pid, platform)
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


def test_memory_file_mapped_through_the_channel(platform):
    """map_file maps a sentry memfd shared into a stub (and its fork) without leaving its fd there."""
    space, tid = platform.new_address_space()
    addr = space.syscall(tid, MMAP, 0, 8192, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    memfd = os.memfd_create("test-cache")
    try:
        os.pwrite(memfd, b"from the sentry", 4096)
        assert space.map_file(tid, addr, 8192, PROT_RW, memfd, 0) == addr
        assert space.read(addr + 4096, 15) == b"from the sentry"
        space.write(addr + 10, b"from the stub")
        assert os.pread(memfd, 13, 10) == b"from the stub"
        child, _ = platform.fork_address_space(tid)
        child.write(addr + 30, b"child")
        assert os.pread(memfd, 5, 30) == b"child"
        assert _channel_only(space.pid, platform) and _channel_only(child.pid, platform)
        assert space.map_file(tid, addr, 4096, PROT_RW, memfd, 1) == -22  # unaligned offset
        for stub in (child, space):
            platform.kill_process(stub.pid)
            os.waitpid(stub.pid, 0)
        with pytest.raises((OSError, SysError)):
            space.map_file(tid, addr, 4096, PROT_RW, memfd, 0)
        socket.send_fds(platform._channel.sentry_end, [b"m"], [memfd])  # as if a stub had not taken it
        platform._channel.drain()
        with pytest.raises(BlockingIOError):  # nothing waits in the channel for the next stub
            platform._channel.stub_end.recv(1, socket.MSG_DONTWAIT)
        assert _channel_only(platform.master.pid, platform)
    finally:
        os.close(memfd)
