"""The life of a process as containerd sees it: a container's init or an exec.

Every state names the states it may move to; any other move is refused with
FAILED_PRECONDITION, which containerd reports to its caller unchanged.
"""
from __future__ import annotations

import asyncio
import enum
import time

from ringfence.proto.containerd.types.task import task_pb2

from .ttrpc import Code, TtrpcError


class State(enum.Enum):
    """A process's state; the value is containerd's task Status."""

    CREATED = task_pb2.CREATED
    RUNNING = task_pb2.RUNNING
    PAUSED = task_pb2.PAUSED
    STOPPED = task_pb2.STOPPED
    DELETED = task_pb2.UNKNOWN


TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.RUNNING, State.STOPPED, State.DELETED}),
    State.RUNNING: frozenset({State.PAUSED, State.STOPPED}),
    State.PAUSED: frozenset({State.RUNNING, State.STOPPED}),
    State.STOPPED: frozenset({State.DELETED}),
    State.DELETED: frozenset(),
}


class Process:
    """One process of a container: its state, pid, stdio and exit."""

    def __init__(self, container_id: str, exec_id: str, stdio, terminal: bool):
        self.container_id = container_id
        self.exec_id = exec_id
        self.stdio = stdio  # the (stdin, stdout, stderr) paths containerd gave
        self.terminal = terminal
        self.state = State.CREATED
        self.pid = 0
        self.exit_status = 0
        self.exited_at: float | None = None
        self._exited = asyncio.Event()
        self.io = None  # its ProcessIO once it has one
        self.spec: dict | None = None  # an exec's OCI process (JSON), as containerd sent it

    @property
    def name(self) -> str:
        """How messages name it: the exec id, or the container id for init."""
        return self.exec_id or self.container_id

    def move(self, new: State, action: str) -> None:
        """Change to `new`, or refuse `action` in the current state."""
        if new not in TRANSITIONS[self.state]:
            raise TtrpcError(Code.FAILED_PRECONDITION,
                             f"cannot {action} {self.name}: it is {self.state.name.lower()}")
        self.state = new

    def require(self, *states: State, action: str) -> None:
        """Refuse `action` unless the process is in one of `states`."""
        if self.state not in states:
            raise TtrpcError(Code.FAILED_PRECONDITION,
                             f"cannot {action} {self.name}: it is {self.state.name.lower()}")

    def set_exited(self, status: int) -> bool:
        """Record the exit (once); False if it was already recorded."""
        if self._exited.is_set():
            return False
        self.exit_status = status
        self.exited_at = time.time()
        if self.state is not State.DELETED:
            self.state = State.STOPPED
        self._exited.set()
        return True

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    async def wait(self) -> None:
        """Return once the process has exited."""
        await self._exited.wait()
