"""containerd's Task service (containerd.task.v2.Task) over ringfence sandboxes.

One shim serves one container, or every container of a CRI pod.  Each
container is a sandbox (gofer + sentry) whose init is the container's
process; `ctr task exec` processes run in the same sandbox through the
sentry's control service.  Child processes are reaped here, in one place,
on SIGCHLD.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket

import structlog
from google.protobuf.empty_pb2 import Empty

from ringfence.proto.containerd.events import task_pb2 as events
from ringfence.proto.containerd.task.v2 import shim_pb2
from ringfence.proto.containerd.types.task import task_pb2
from ringfence.proto import typeurl
from ringfence.runtime import hooks, mounts
from ringfence.runtime.cgroups import Cgroup
from ringfence.runtime.daemon import exited_children
from ringfence.runtime.sandbox import Sandbox, SandboxError, exit_code, sentry_config, start_gofer
from ringfence.runtime.spec import SpecError, load, parse_process, rootfs_of

from .events import Publisher, timestamp
from .process import Process, State
from .stdio import ProcessIO
from .ttrpc import Code, TtrpcError

log = structlog.get_logger("ringfence.shim")

VERSION = "ringfence-shim-v1"
PROCESS_SPEC_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process"
IO_DRAIN_SECONDS = 2.0
CONTROL_DIR = "/run/ringfence/control"


def control_path(namespace: str, cid: str) -> str:
    """Where the sentry of container `cid` listens for control calls (a
    fixed name, so that `delete` can clean up after a shim that is gone)."""
    digest = hashlib.sha256(f"{namespace}/{cid}".encode()).hexdigest()[:32]
    return os.path.join(CONTROL_DIR, f"{digest}.sock")


def cgroup_path(spec, namespace: str, cid: str) -> str:
    """The container's cgroup: the spec's cgroupsPath, else /ringfence/NS/ID."""
    return spec.cgroups_path or f"/ringfence/{namespace}/{cid}"


class Container:
    """A container of this shim: its bundle, sandbox, init and execs."""

    def __init__(self, request, spec, rootfs: str, mounted: bool):
        self.id = request.id
        self.bundle = request.bundle
        self.spec = spec
        self.rootfs = rootfs
        self.mounted = mounted
        self.init = Process(request.id, "", (request.stdin, request.stdout, request.stderr),
                            request.terminal)
        self.execs: dict[str, Process] = {}
        self.sandbox: Sandbox | None = None
        self.control_path = ""
        self.namespace = ""
        # A container of a CRI pod runs in the pod sandbox container's sentry.
        self.pod: Container | None = None
        self.gofer_pid = 0  # a pod member's own gofer
        self.cgroup: Cgroup | None = None
        self.oom_fd: int | None = None
        self.oom_kills = 0

    def process(self, exec_id: str) -> Process:
        """The init (empty exec_id) or the exec named; NOT_FOUND otherwise."""
        if not exec_id:
            return self.init
        try:
            return self.execs[exec_id]
        except KeyError:
            raise TtrpcError(Code.NOT_FOUND, f"exec {exec_id} not found in {self.id}") from None

    @property
    def control_id(self) -> str:
        """How the sentry's control service names this container."""
        return self.id if self.pod is not None else ""

    def control(self):
        """A client of the control service of the sentry running this container."""
        from ringfence.sentry.control_client import ControlClient

        return ControlClient((self.pod or self).control_path)


class TaskService:
    """The 17 RPCs of containerd.task.v2.Task."""

    def __init__(self, publisher: Publisher, on_empty_shutdown):
        self.publisher = publisher
        self.containers: dict[str, Container] = {}
        self._on_shutdown = on_empty_shutdown
        self._exits: dict[int, int] = {}  # reaped pid -> status, not yet claimed
        self._watch: dict[int, object] = {}  # pid -> callback(status)

    # -- reaping -------------------------------------------------------------
    def reap(self) -> None:
        """Collect every exited child (SIGCHLD) and pass its status on."""
        for pid, status in exited_children():
            callback = self._watch.pop(pid, None)
            if callback is None:
                self._exits[pid] = status
            else:
                callback(status)

    def _on_exit(self, pid: int, callback) -> None:
        if pid in self._exits:
            callback(self._exits.pop(pid))
        else:
            self._watch[pid] = callback

    def _container(self, cid: str) -> Container:
        try:
            return self.containers[cid]
        except KeyError:
            raise TtrpcError(Code.NOT_FOUND, f"container {cid} not found") from None

    # -- lifecycle -----------------------------------------------------------
    async def Create(self, req, ctx):
        if req.id in self.containers:
            raise TtrpcError(Code.ALREADY_EXISTS, f"container {req.id} already exists")
        if req.checkpoint:
            raise TtrpcError(Code.UNIMPLEMENTED, "restoring a checkpoint is not supported by ringfence")
        try:
            spec = load(req.bundle)
        except SpecError as err:
            raise TtrpcError(Code.INVALID_ARGUMENT, str(err)) from None
        rootfs = rootfs_of(req.bundle, spec)
        if req.rootfs:
            try:
                mounts.mount_all(req.rootfs, rootfs)
            except OSError as err:
                raise TtrpcError(Code.INTERNAL, f"mounting the rootfs: {err}") from None
        c = Container(req, spec, rootfs, mounted=bool(req.rootfs))
        c.namespace = ctx.get_metadata("containerd-namespace-ttrpc") or self.publisher.namespace
        c.pod = self._pod_of(spec)
        try:
            self._create_cgroup(c)
            if c.pod is None:
                self._create_sandbox(c, req)
                await self._hooks(c, hooks.CREATE)
            else:  # (its create hooks run before the pod's sentry builds it)
                await self._hooks(c, hooks.CREATE, c.pod.init.pid)
                await self._create_member(c, req)
        except BaseException:
            if c.sandbox is not None:
                self._abandon(c.sandbox)
            if c.init.io is not None:
                c.init.io.close()
            self._release(c)
            raise
        self.containers[c.id] = c
        self.publisher.publish("/tasks/create", events.TaskCreate(
            container_id=c.id, bundle=c.bundle, rootfs=req.rootfs, pid=c.init.pid,
            io=events.TaskIO(stdin=req.stdin, stdout=req.stdout, stderr=req.stderr,
                             terminal=req.terminal)))
        return shim_pb2.CreateTaskResponse(pid=c.init.pid)

    async def _hooks(self, c: Container, kinds: tuple[str, ...], pid: int = 0) -> None:
        """Run the spec's hooks of `kinds` (runtime/hooks.py) for `c` (its init's pid, or `pid`);
        a failure of one that must succeed is FAILED_PRECONDITION."""
        if not any(c.spec.hooks.get(kind) for kind in kinds):
            return
        state = hooks.state(c.spec.raw.get("ociVersion", ""), c.id, pid or c.init.pid, c.bundle,
                            c.spec.annotations)
        try:
            await asyncio.to_thread(hooks.run, c.spec.hooks, kinds, state)
        except hooks.HookError as err:
            raise TtrpcError(Code.FAILED_PRECONDITION, f"{c.id}: {err}") from None

    def _abandon(self, sandbox: Sandbox) -> None:
        """End a sandbox whose container is not created after all: reaped without a trace."""
        for pid in (sandbox.sentry_pid, sandbox.gofer_pid):
            self._on_exit(pid, lambda status: None)
        sandbox.destroy()

    def _pod_of(self, spec) -> Container | None:
        """The running pod sandbox container whose sentry a new container joins."""
        pod = self.containers.get(spec.sandbox_id) if not spec.is_pod_sandbox else None
        if pod is None or pod.pod is not None or pod.init.state is not State.RUNNING:
            return None
        return pod

    async def _create_member(self, c: Container, req) -> None:
        """A container of a pod: its own gofer, a sub-container of the pod's sentry."""
        from ringfence.sentry.control_client import ControlError

        io = ProcessIO(req.stdin, req.stdout, req.stderr, req.terminal, _foreground_signaller(c, ""))
        try:
            gofer_pid, gofer_sock = start_gofer(c.rootfs, c.spec, c.pod.sandbox.cpu)
        except SandboxError as err:
            io.close()
            raise TtrpcError(Code.FAILED_PRECONDITION, str(err)) from None
        c.cgroup.add(gofer_pid)
        c.gofer_pid = gofer_pid
        self._on_exit(gofer_pid, lambda status: setattr(c, "gofer_pid", 0))
        try:
            await asyncio.to_thread(c.control().create_subcontainer, c.id, c.spec.raw, io.sandbox_fds,
                                    gofer_sock.fileno())
        except ControlError as err:
            io.close()
            os.kill(gofer_pid, signal.SIGKILL)
            raise TtrpcError(Code.FAILED_PRECONDITION, f"create {c.id} in pod {c.pod.id}: {err}") from None
        finally:
            gofer_sock.close()
        io.handed_over()
        c.init.io = io
        c.init.pid = c.pod.init.pid  # the pod's sentry runs it

    def _create_cgroup(self, c: Container) -> None:
        """The container's cgroup (the spec's cgroupsPath, else /ringfence/NS/ID),
        its limits applied, its OOM kills watched."""
        try:
            c.cgroup = Cgroup.create(cgroup_path(c.spec, c.namespace, c.id))
            c.cgroup.apply(c.spec.resources)
        except (ValueError, OSError) as err:
            raise TtrpcError(Code.INVALID_ARGUMENT, f"cgroup of {c.id}: {err}") from None
        c.oom_fd = c.cgroup.oom_eventfd()
        if c.oom_fd is not None:
            asyncio.get_running_loop().add_reader(c.oom_fd, self._check_oom, c)

    def _check_oom(self, c: Container) -> None:
        try:
            os.read(c.oom_fd, 8)
        except BlockingIOError:
            return
        kills = c.cgroup.oom_kills()
        if kills > c.oom_kills:
            c.oom_kills = kills
            log.info("container OOM-killed", id=c.id)
            self.publisher.publish("/tasks/oom", events.TaskOOM(container_id=c.id))

    def _release(self, c: Container) -> None:
        """Take down what a container holds on the host, once its processes are gone."""
        if c.oom_fd is not None:
            asyncio.get_running_loop().remove_reader(c.oom_fd)
            os.close(c.oom_fd)
            c.oom_fd = None
        if c.cgroup is not None:
            try:
                c.cgroup.remove()
            except OSError as err:
                log.warning("cgroup not removed", id=c.id, error=str(err))
        if c.mounted:
            mounts.unmount_all(c.rootfs)
            c.mounted = False
        _unlink(c.control_path)

    def _create_sandbox(self, c: Container, req) -> None:
        io = ProcessIO(req.stdin, req.stdout, req.stderr, req.terminal, _foreground_signaller(c, ""))
        os.makedirs(CONTROL_DIR, mode=0o700, exist_ok=True)
        c.control_path = control_path(c.namespace, c.id)
        _unlink(c.control_path)  # left by a shim that was killed
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            control.bind(c.control_path)
            control.listen(16)
            config = sentry_config(c.spec, c.rootfs, stdio=io.sandbox_fds)
            config.control_sock = control
            c.sandbox = Sandbox.create(config, c.rootfs, gated=True, on_forked=c.cgroup.add)
        except SandboxError as err:
            io.close()
            _unlink(c.control_path)
            raise TtrpcError(Code.FAILED_PRECONDITION, str(err)) from None
        finally:
            control.close()
        io.handed_over()
        c.init.io = io
        c.init.pid = c.sandbox.sentry_pid
        self._on_exit(c.sandbox.gofer_pid, lambda status: c.sandbox.reaped(c.sandbox.gofer_pid))
        self._on_exit(c.sandbox.sentry_pid, lambda status: self._init_exited(c, status))

    def _init_exited(self, c: Container, status: int) -> None:
        c.sandbox.reaped(c.sandbox.sentry_pid)
        code = exit_code(status)
        log.info("container exited", id=c.id, status=code)
        if c.oom_fd is not None:
            self._check_oom(c)  # TaskOOM goes out before TaskExit
        asyncio.get_running_loop().create_task(self._finish(c, c.init, code))
        for p in c.execs.values():  # the sandbox is gone, and its processes with it
            if p.state in (State.RUNNING, State.PAUSED):
                asyncio.get_running_loop().create_task(self._finish(c, p, 128 + signal.SIGKILL))

    async def _finish(self, c: Container, p: Process, code: int) -> None:
        """Let the output drain, then record the exit and tell containerd."""
        if p.io is not None:
            await asyncio.to_thread(p.io.drain, IO_DRAIN_SECONDS)
        if p.set_exited(code) and p.state is not State.DELETED:
            self.publisher.publish("/tasks/exit", events.TaskExit(
                container_id=c.id, id=p.name, pid=p.pid, exit_status=code,
                exited_at=timestamp(p.exited_at)))

    async def Start(self, req, ctx):
        c = self._container(req.id)
        p = c.process(req.exec_id)
        p.require(State.CREATED, action="start")
        if not req.exec_id:
            try:
                await self._hooks(c, hooks.START)
            except TtrpcError:
                if c.pod is None:
                    c.sandbox.signal(signal.SIGKILL)  # the container stops
                raise
            if c.pod is None:
                c.sandbox.start()
            else:
                await self._start_member(c)
            p.move(State.RUNNING, "start")
            self.publisher.publish("/tasks/start", events.TaskStart(container_id=c.id, pid=p.pid))
            await self._hooks(c, hooks.POSTSTART)
            return shim_pb2.StartResponse(pid=p.pid)
        c.init.require(State.RUNNING, action="exec in")
        await self._start_exec(c, p)
        return shim_pb2.StartResponse(pid=p.pid)

    async def _start_member(self, c: Container) -> None:
        from ringfence.sentry.control_client import ControlError

        client = c.control()
        try:
            await asyncio.to_thread(client.start_subcontainer, c.id)
        except ControlError as err:
            raise TtrpcError(Code.FAILED_PRECONDITION, f"start {c.id}: {err}") from None
        asyncio.get_running_loop().create_task(self._wait_control(c, c.init, client))

    async def _start_exec(self, c: Container, p: Process) -> None:
        from ringfence.sentry.control_client import ControlError

        p.io = ProcessIO(*p.stdio, p.terminal, _foreground_signaller(c, p.exec_id))
        client = c.control()
        try:
            p.pid = await asyncio.to_thread(client.exec, p.spec, p.io.sandbox_fds, p.exec_id, p.terminal,
                                            container_id=c.control_id)
        except ControlError as err:
            p.io.close()
            raise TtrpcError(Code.FAILED_PRECONDITION, f"exec {p.exec_id}: {err}") from None
        finally:
            p.io.handed_over()
        p.move(State.RUNNING, "start")
        self.publisher.publish("/tasks/exec-started", events.TaskExecStarted(
            container_id=c.id, exec_id=p.exec_id, pid=p.pid))
        asyncio.get_running_loop().create_task(self._wait_control(c, p, client))

    async def _wait_control(self, c: Container, p: Process, client) -> None:
        """Wait for a process the control service started (an exec, a pod member's init);
        one whose sentry is gone was killed with it."""
        from ringfence.sentry.control_client import ControlError

        try:
            code, _ = await asyncio.to_thread(client.wait, exec_id=p.exec_id, container_id=c.control_id)
        except ControlError as err:
            log.warning("waiting for a process failed", id=c.id, exec_id=p.exec_id, error=str(err))
            code = 128 + signal.SIGKILL
        await self._finish(c, p, code)

    async def Delete(self, req, ctx):
        c = self._container(req.id)
        p = c.process(req.exec_id)
        if p.state in (State.RUNNING, State.PAUSED):
            raise TtrpcError(Code.FAILED_PRECONDITION, f"cannot delete {p.name}: it is still running")
        if req.exec_id:
            del c.execs[req.exec_id]
        else:
            await self._delete_container(c)
        p.move(State.DELETED, "delete")
        if p.io is not None:
            p.io.close()
        exited_at = timestamp(p.exited_at) if p.exited_at else None
        self.publisher.publish("/tasks/delete", events.TaskDelete(
            container_id=c.id, id=req.exec_id, pid=p.pid, exit_status=p.exit_status, exited_at=exited_at))
        return shim_pb2.DeleteResponse(pid=p.pid, exit_status=p.exit_status, exited_at=exited_at)

    async def _delete_container(self, c: Container) -> None:
        # A pod member's gofer ends when its init does; a sandbox of its own is ended here.
        if c.gofer_pid and not await _until(lambda: not c.gofer_pid, 2.0):
            os.kill(c.gofer_pid, signal.SIGKILL)
        if c.sandbox is not None and c.sandbox.alive:
            c.sandbox.destroy()
            await _until(lambda: not c.sandbox.alive, 2.0)
        self._release(c)
        del self.containers[c.id]
        await self._hooks(c, hooks.POSTSTOP)

    async def Exec(self, req, ctx):
        c = self._container(req.id)
        if req.exec_id in c.execs or not req.exec_id:
            raise TtrpcError(Code.ALREADY_EXISTS, f"exec {req.exec_id!r} already exists in {c.id}")
        c.init.require(State.RUNNING, State.PAUSED, action="exec in")
        try:
            spec = json.loads(req.spec.value)
            parse_process(spec)
        except (ValueError, SpecError) as err:
            raise TtrpcError(Code.INVALID_ARGUMENT, f"exec {req.exec_id}: bad process spec: {err}") from None
        p = Process(c.id, req.exec_id, (req.stdin, req.stdout, req.stderr), req.terminal)
        p.spec = spec
        c.execs[req.exec_id] = p
        self.publisher.publish("/tasks/exec-added", events.TaskExecAdded(container_id=c.id, exec_id=p.exec_id))
        return Empty()

    async def Kill(self, req, ctx):
        from ringfence.sentry.control_client import ControlError

        c = self._container(req.id)
        p = c.process(req.exec_id)
        if p.exited or p.state is State.DELETED:
            raise TtrpcError(Code.NOT_FOUND, f"process {p.name} not found: it has exited")
        try:
            if c.pod is None and not req.exec_id and (req.signal == signal.SIGKILL or p.state is State.CREATED):
                c.sandbox.signal(signal.SIGKILL)  # the whole sandbox goes
                if p.state is State.PAUSED:
                    await asyncio.to_thread(c.cgroup.thaw)  # a frozen process cannot die
            elif p.state is State.CREATED:
                raise TtrpcError(Code.FAILED_PRECONDITION, f"cannot kill {p.name}: it is not started")
            else:
                await asyncio.to_thread(c.control().signal, req.signal, exec_id=req.exec_id,
                                        all=req.all, container_id=c.control_id)
        except (ControlError, SandboxError, OSError) as err:
            raise TtrpcError(Code.FAILED_PRECONDITION, f"kill {p.name}: {err}") from None
        return Empty()

    async def Wait(self, req, ctx):
        p = self._container(req.id).process(req.exec_id)
        await p.wait()
        return shim_pb2.WaitResponse(exit_status=p.exit_status, exited_at=timestamp(p.exited_at))

    async def State(self, req, ctx):
        c = self._container(req.id)
        p = c.process(req.exec_id)
        stdin, stdout, stderr = p.stdio
        resp = shim_pb2.StateResponse(
            id=req.id, exec_id=req.exec_id, bundle=c.bundle, pid=p.pid, status=p.state.value,
            stdin=stdin, stdout=stdout, stderr=stderr, terminal=p.terminal, exit_status=p.exit_status)
        if p.exited_at:
            resp.exited_at.CopyFrom(timestamp(p.exited_at))
        return resp

    async def Pids(self, req, ctx):
        from ringfence.sentry.control_client import ControlError

        c = self._container(req.id)
        if c.init.state not in (State.RUNNING, State.PAUSED):
            return shim_pb2.PidsResponse(processes=[task_pb2.ProcessInfo(pid=c.init.pid)])
        try:
            procs = await asyncio.to_thread(c.control().processes, container_id=c.control_id)
        except ControlError as err:
            raise TtrpcError(Code.UNAVAILABLE, f"listing processes of {c.id}: {err}") from None
        return shim_pb2.PidsResponse(processes=[task_pb2.ProcessInfo(pid=proc.pid) for proc in procs])

    # -- the container's cgroup ------------------------------------------------
    async def Pause(self, req, ctx):
        c = self._container(req.id)
        c.init.require(State.RUNNING, action="pause")
        await self._freeze(c, True)
        for p in (c.init, *c.execs.values()):
            if p.state is State.RUNNING:
                p.move(State.PAUSED, "pause")
        self.publisher.publish("/tasks/paused", events.TaskPaused(container_id=c.id))
        return Empty()

    async def Resume(self, req, ctx):
        c = self._container(req.id)
        c.init.require(State.PAUSED, action="resume")
        await self._freeze(c, False)
        for p in (c.init, *c.execs.values()):
            if p.state is State.PAUSED:
                p.move(State.RUNNING, "resume")
        self.publisher.publish("/tasks/resumed", events.TaskResumed(container_id=c.id))
        return Empty()

    async def _freeze(self, c: Container, frozen: bool) -> None:
        """Freeze or thaw a container: its cgroup when it has a sandbox of its
        own, else (a pod member) its tasks in the pod's sentry."""
        from ringfence.sentry.control_client import ControlError

        try:
            if c.pod is None:
                await asyncio.to_thread(c.cgroup.freeze if frozen else c.cgroup.thaw)
            else:
                client = c.control()
                await asyncio.to_thread(client.pause if frozen else client.resume, container_id=c.id)
        except (OSError, TimeoutError, ControlError) as err:
            action = "pausing" if frozen else "resuming"
            raise TtrpcError(Code.INTERNAL, f"{action} {c.id}: {err}") from None

    async def Update(self, req, ctx):
        c = self._container(req.id)
        try:
            resources = json.loads(req.resources.value or b"{}")
            if not isinstance(resources, dict):
                raise ValueError("resources must be a JSON object")
            await asyncio.to_thread(c.cgroup.apply, resources)
        except ValueError as err:
            raise TtrpcError(Code.INVALID_ARGUMENT, f"update {c.id}: {err}") from None
        return Empty()

    async def Stats(self, req, ctx):
        c = self._container(req.id)
        metrics = await asyncio.to_thread(c.cgroup.stats)
        return shim_pb2.StatsResponse(stats=typeurl.pack(metrics))

    async def Checkpoint(self, req, ctx):
        raise TtrpcError(Code.UNIMPLEMENTED, "checkpoint is not supported by ringfence")

    # -- stdio -------------------------------------------------------------------
    async def ResizePty(self, req, ctx):
        p = self._container(req.id).process(req.exec_id)
        if p.io is None or not p.io.terminal:
            raise TtrpcError(Code.FAILED_PRECONDITION, f"{p.name} has no terminal")
        await asyncio.to_thread(p.io.resize, req.width, req.height)  # (may signal the sentry)
        return Empty()

    async def CloseIO(self, req, ctx):
        p = self._container(req.id).process(req.exec_id)
        if req.stdin and p.io is not None:
            p.io.close_stdin()
        return Empty()

    # -- the shim itself -------------------------------------------------------------
    async def Connect(self, req, ctx):
        c = self.containers.get(req.id)
        return shim_pb2.ConnectResponse(shim_pid=os.getpid(), task_pid=c.init.pid if c else 0,
                                        version=VERSION)

    async def Shutdown(self, req, ctx):
        if self.containers and not req.now:
            return Empty()
        for c in list(self.containers.values()):
            await self._delete_container(c)
        self._on_shutdown()
        return Empty()


async def _until(done, timeout: float) -> bool:
    """Wait (polling; the reaper runs meanwhile) until done() or `timeout` seconds; done()."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    return done()


def _foreground_signaller(c: Container, exec_id: str):
    """What a terminal's stdin copier calls for a signal character typed at process `exec_id`
    of `c`: the signal goes to the foreground process group of its terminal, in the sandbox."""
    from ringfence.sentry.control_client import ControlError

    def send(sig: int) -> None:
        try:
            c.control().signal(sig, exec_id=exec_id, container_id=c.control_id, foreground=True)
        except (ControlError, OSError) as err:
            log.warning("typed signal not delivered", signal=sig, exec_id=exec_id, error=str(err))
    return send


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
