"""ringfence.proto: the generated modules import, names and field numbers match
containerd 1.6/1.7 (shared/reference/containerd-task-api.md), and a Task API
message goes through our ttrpc and back."""
from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import tempfile

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD

MODULES = {
    "ringfence.proto.containerd.task.v2.shim_pb2": "containerd.task.v2",
    "ringfence.proto.containerd.types.mount_pb2": "containerd.types",
    "ringfence.proto.containerd.types.task.task_pb2": "containerd.v1.types",
    "ringfence.proto.containerd.events.task_pb2": "containerd.events",
    "ringfence.proto.containerd.services.ttrpc.events.v1.events_pb2": "containerd.services.events.ttrpc.v1",
    "ringfence.proto.runtimeoptions.v1.api_pb2": "runtimeoptions.v1",
    "ringfence.proto.ttrpc.request_pb2": "ttrpc",
    "ringfence.proto.google.rpc.status_pb2": "google.rpc",
    "ringfence.proto.sentry.v1.control_pb2": "ringfence.sentry.v1",
}

S, U32, I32, I64, B, BY, E, MSG = (FD.TYPE_STRING, FD.TYPE_UINT32, FD.TYPE_INT32, FD.TYPE_INT64,
                                   FD.TYPE_BOOL, FD.TYPE_BYTES, FD.TYPE_ENUM, FD.TYPE_MESSAGE)
TS, ANY = "google.protobuf.Timestamp", "google.protobuf.Any"


def mod(name):
    return importlib.import_module(name)


def shim():
    return mod("ringfence.proto.containerd.task.v2.shim_pb2")


def check_fields(message_cls, expected):
    """expected: [(number, name, type, message-or-enum full name or None, repeated)]"""
    fields = message_cls.DESCRIPTOR.fields
    got = []
    for f in sorted(fields, key=lambda f: f.number):
        sub = (f.message_type.full_name if f.message_type is not None
               else f.enum_type.full_name if f.enum_type is not None else None)
        # proto3 maps are repeated entry messages; the label API moved between versions
        repeated = f.is_repeated if hasattr(f, "is_repeated") else f.label == FD.LABEL_REPEATED
        got.append((f.number, f.name, f.type, sub, repeated))
    norm = [(n, name, t, sub, rep) for n, name, t, sub, rep in
            ((e + (False,)) if len(e) == 4 else e for e in expected)]
    assert got == norm, f"{message_cls.DESCRIPTOR.full_name}: {got}"


def test_generated_modules_import():
    for name, package in MODULES.items():
        m = mod(name)
        assert m.DESCRIPTOR.package == package, name
    # the generated files import each other through the ringfence.proto package
    assert shim().CreateTaskRequest.DESCRIPTOR.fields_by_name["rootfs"].message_type is \
        mod("ringfence.proto.containerd.types.mount_pb2").Mount.DESCRIPTOR


TASK_RPCS = {
    "State": ("StateRequest", "StateResponse"),
    "Create": ("CreateTaskRequest", "CreateTaskResponse"),
    "Start": ("StartRequest", "StartResponse"),
    "Delete": ("DeleteRequest", "DeleteResponse"),
    "Pids": ("PidsRequest", "PidsResponse"),
    "Pause": ("PauseRequest", "google.protobuf.Empty"),
    "Resume": ("ResumeRequest", "google.protobuf.Empty"),
    "Checkpoint": ("CheckpointTaskRequest", "google.protobuf.Empty"),
    "Kill": ("KillRequest", "google.protobuf.Empty"),
    "Exec": ("ExecProcessRequest", "google.protobuf.Empty"),
    "ResizePty": ("ResizePtyRequest", "google.protobuf.Empty"),
    "CloseIO": ("CloseIORequest", "google.protobuf.Empty"),
    "Update": ("UpdateTaskRequest", "google.protobuf.Empty"),
    "Wait": ("WaitRequest", "WaitResponse"),
    "Stats": ("StatsRequest", "StatsResponse"),
    "Connect": ("ConnectRequest", "ConnectResponse"),
    "Shutdown": ("ShutdownRequest", "google.protobuf.Empty"),
}


def test_task_service_has_the_17_rpcs():
    svc = shim().DESCRIPTOR.services_by_name["Task"]
    assert svc.full_name == "containerd.task.v2.Task"
    got = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in svc.methods}

    def full(n):
        return n if n.startswith("google.") else "containerd.task.v2." + n
    assert got == {k: (full(a), full(b)) for k, (a, b) in TASK_RPCS.items()}
    assert len(got) == 17


def test_task_message_field_numbers():
    s = shim()
    check_fields(s.CreateTaskRequest, [
        (1, "id", S, None), (2, "bundle", S, None), (3, "rootfs", MSG, "containerd.types.Mount", True),
        (4, "terminal", B, None), (5, "stdin", S, None), (6, "stdout", S, None), (7, "stderr", S, None),
        (8, "checkpoint", S, None), (9, "parent_checkpoint", S, None), (10, "options", MSG, ANY)])
    check_fields(s.CreateTaskResponse, [(1, "pid", U32, None)])
    check_fields(s.StartRequest, [(1, "id", S, None), (2, "exec_id", S, None)])
    check_fields(s.StartResponse, [(1, "pid", U32, None)])
    check_fields(s.WaitResponse, [(1, "exit_status", U32, None), (2, "exited_at", MSG, TS)])
    check_fields(s.DeleteResponse, [(1, "pid", U32, None), (2, "exit_status", U32, None),
                                    (3, "exited_at", MSG, TS)])
    check_fields(s.StateResponse, [
        (1, "id", S, None), (2, "bundle", S, None), (3, "pid", U32, None),
        (4, "status", E, "containerd.v1.types.Status"), (5, "stdin", S, None), (6, "stdout", S, None),
        (7, "stderr", S, None), (8, "terminal", B, None), (9, "exit_status", U32, None),
        (10, "exited_at", MSG, TS), (11, "exec_id", S, None)])
    check_fields(s.ExecProcessRequest, [
        (1, "id", S, None), (2, "exec_id", S, None), (3, "terminal", B, None), (4, "stdin", S, None),
        (5, "stdout", S, None), (6, "stderr", S, None), (7, "spec", MSG, ANY)])
    check_fields(s.KillRequest, [(1, "id", S, None), (2, "exec_id", S, None), (3, "signal", U32, None),
                                 (4, "all", B, None)])
    check_fields(s.ResizePtyRequest, [(1, "id", S, None), (2, "exec_id", S, None),
                                      (3, "width", U32, None), (4, "height", U32, None)])
    check_fields(s.CloseIORequest, [(1, "id", S, None), (2, "exec_id", S, None), (3, "stdin", B, None)])
    check_fields(s.PidsResponse, [(1, "processes", MSG, "containerd.v1.types.ProcessInfo", True)])
    check_fields(s.CheckpointTaskRequest, [(1, "id", S, None), (2, "path", S, None),
                                           (3, "options", MSG, ANY)])
    check_fields(s.UpdateTaskRequest, [(1, "id", S, None), (2, "resources", MSG, ANY),
                                       (3, "annotations", MSG,
                                        "containerd.task.v2.UpdateTaskRequest.AnnotationsEntry", True)])
    assert s.UpdateTaskRequest.DESCRIPTOR.fields_by_name["annotations"].message_type.GetOptions().map_entry
    check_fields(s.StatsResponse, [(1, "stats", MSG, ANY)])
    check_fields(s.ConnectResponse, [(1, "shim_pid", U32, None), (2, "task_pid", U32, None),
                                     (3, "version", S, None)])
    check_fields(s.ShutdownRequest, [(1, "id", S, None), (2, "now", B, None)])
    for name in ("PidsRequest", "StatsRequest", "ConnectRequest", "PauseRequest", "ResumeRequest"):
        check_fields(getattr(s, name), [(1, "id", S, None)])
    for name in ("DeleteRequest", "StateRequest", "WaitRequest"):
        check_fields(getattr(s, name), [(1, "id", S, None), (2, "exec_id", S, None)])


def test_containerd_types():
    check_fields(mod("ringfence.proto.containerd.types.mount_pb2").Mount, [
        (1, "type", S, None), (2, "source", S, None), (3, "target", S, None),
        (4, "options", S, None, True)])
    t = mod("ringfence.proto.containerd.types.task.task_pb2")
    assert {v.name: v.number for v in t.Status.DESCRIPTOR.values} == {
        "UNKNOWN": 0, "CREATED": 1, "RUNNING": 2, "STOPPED": 3, "PAUSED": 4, "PAUSING": 5}
    check_fields(t.ProcessInfo, [(1, "pid", U32, None), (2, "info", MSG, ANY)])


def test_task_event_field_numbers():
    ev = mod("ringfence.proto.containerd.events.task_pb2")
    check_fields(ev.TaskExit, [(1, "container_id", S, None), (2, "id", S, None), (3, "pid", U32, None),
                               (4, "exit_status", U32, None), (5, "exited_at", MSG, TS)])
    check_fields(ev.TaskCreate, [(1, "container_id", S, None), (2, "bundle", S, None),
                                 (3, "rootfs", MSG, "containerd.types.Mount", True),
                                 (4, "io", MSG, "containerd.events.TaskIO"), (5, "checkpoint", S, None),
                                 (6, "pid", U32, None)])
    check_fields(ev.TaskStart, [(1, "container_id", S, None), (2, "pid", U32, None)])
    check_fields(ev.TaskDelete, [(1, "container_id", S, None), (2, "pid", U32, None),
                                 (3, "exit_status", U32, None), (4, "exited_at", MSG, TS), (5, "id", S, None)])
    check_fields(ev.TaskIO, [(1, "stdin", S, None), (2, "stdout", S, None), (3, "stderr", S, None),
                             (4, "terminal", B, None)])
    check_fields(ev.TaskExecAdded, [(1, "container_id", S, None), (2, "exec_id", S, None)])
    check_fields(ev.TaskExecStarted, [(1, "container_id", S, None), (2, "exec_id", S, None),
                                      (3, "pid", U32, None)])
    for name in ("TaskOOM", "TaskPaused", "TaskResumed"):
        check_fields(getattr(ev, name), [(1, "container_id", S, None)])
    check_fields(ev.TaskCheckpointed, [(1, "container_id", S, None), (2, "checkpoint", S, None)])


def test_events_service_and_envelope():
    m = mod("ringfence.proto.containerd.services.ttrpc.events.v1.events_pb2")
    svc = m.DESCRIPTOR.services_by_name["Events"]
    assert svc.full_name == "containerd.services.events.ttrpc.v1.Events"
    assert [(x.name, x.input_type.full_name, x.output_type.full_name) for x in svc.methods] == [
        ("Forward", "containerd.services.events.ttrpc.v1.ForwardRequest", "google.protobuf.Empty")]
    check_fields(m.ForwardRequest, [(1, "envelope", MSG, "containerd.services.events.ttrpc.v1.Envelope")])
    check_fields(m.Envelope, [(1, "timestamp", MSG, TS), (2, "namespace", S, None), (3, "topic", S, None),
                              (4, "event", MSG, ANY)])


def test_ttrpc_wire_messages():
    r = mod("ringfence.proto.ttrpc.request_pb2")
    check_fields(r.Request, [(1, "service", S, None), (2, "method", S, None), (3, "payload", BY, None),
                             (4, "timeout_nano", I64, None), (5, "metadata", MSG, "ttrpc.KeyValue", True)])
    check_fields(r.KeyValue, [(1, "key", S, None), (2, "value", S, None)])
    check_fields(r.Response, [(1, "status", MSG, "google.rpc.Status"), (2, "payload", BY, None)])
    check_fields(mod("ringfence.proto.google.rpc.status_pb2").Status, [
        (1, "code", I32, None), (2, "message", S, None), (3, "details", MSG, ANY, True)])


def test_wire_bytes_are_what_containerd_sends():
    s = shim()
    assert s.StartResponse(pid=5).SerializeToString() == b"\x08\x05"
    assert s.CreateTaskRequest(id="a", terminal=True).SerializeToString() == b"\x0a\x01a\x20\x01"
    assert s.StateResponse(status=2, exec_id="e").SerializeToString() == b"\x20\x02\x5a\x01e"
    assert s.WaitResponse(exit_status=3).SerializeToString() == b"\x08\x03"
    r = mod("ringfence.proto.ttrpc.request_pb2")
    assert r.Request(service="s", method="m", timeout_nano=1).SerializeToString() == \
        b"\x0a\x01s\x12\x01m\x20\x01"


def test_runtime_options_and_typeurl():
    from ringfence.proto import typeurl
    opts = mod("ringfence.proto.runtimeoptions.v1.api_pb2").Options
    check_fields(opts, [(1, "type_url", S, None), (2, "config_path", S, None)])
    ev = mod("ringfence.proto.containerd.events.task_pb2")
    packed = typeurl.pack(ev.TaskExit(container_id="c", exit_status=3))
    assert packed.type_url == "containerd.events.TaskExit"
    assert typeurl.unpack(packed, ev.TaskExit).exit_status == 3
    packed.type_url = "type.googleapis.com/containerd.events.TaskExit"
    assert typeurl.is_type(packed, ev.TaskExit)
    with pytest.raises(ValueError):
        typeurl.unpack(packed, ev.TaskStart)


def test_sentry_control_service():
    c = mod("ringfence.proto.sentry.v1.control_pb2")
    svc = c.DESCRIPTOR.services_by_name["Control"]
    assert svc.full_name == "ringfence.sentry.v1.Control"
    assert [m.name for m in svc.methods] == ["CreateSubcontainer", "StartSubcontainer", "Exec", "Signal",
                                             "Wait", "Processes", "Pause", "Resume", "Stacks"]
    assert c.SignalRequest.DESCRIPTOR.fields_by_name["signal"].number == 3
    assert c.WaitResponse.DESCRIPTOR.fields_by_name["exit_status"].number == 1


def test_task_api_round_trip_through_ttrpc():
    from ringfence.shim.ttrpc import Client, Code, Server, TtrpcError
    s = shim()
    mount_pb2 = mod("ringfence.proto.containerd.types.mount_pb2")
    ev = mod("ringfence.proto.containerd.events.task_pb2")
    events = mod("ringfence.proto.containerd.services.ttrpc.events.v1.events_pb2")
    from ringfence.proto import typeurl

    seen = {}

    class Task:
        async def Create(self, req, ctx):
            seen["create"] = (req, ctx.get_metadata("containerd-namespace-ttrpc"))
            return s.CreateTaskResponse(pid=1234)

        async def Wait(self, req, ctx):
            resp = s.WaitResponse(exit_status=3)
            resp.exited_at.FromSeconds(1700000000)
            return resp

        async def Kill(self, req, ctx):
            raise TtrpcError(Code.NOT_FOUND, f"process {req.exec_id} not found")

        async def Shutdown(self, req, ctx):
            return s.StartResponse()  # wrong type: the server refuses to send it

    class Events:
        async def Forward(self, req, ctx):
            seen["event"] = typeurl.unpack(req.envelope.event, ev.TaskExit)
            return None  # google.protobuf.Empty

    async def main():
        d = tempfile.mkdtemp(prefix="rf-proto-", dir="/tmp")
        server = Server()
        server.register_service(s.DESCRIPTOR.services_by_name["Task"], Task())
        server.register_service(events.DESCRIPTOR.services_by_name["Events"], Events())
        await server.serve(os.path.join(d, "shim.sock"))
        client = await Client.connect(os.path.join(d, "shim.sock"))
        try:
            task = client.stub(s.DESCRIPTOR.services_by_name["Task"])
            req = s.CreateTaskRequest(id="c1", bundle="/run/b/c1", terminal=True, stdout="/fifo/out",
                                      rootfs=[mount_pb2.Mount(type="overlay", source="overlay",
                                                              options=["lowerdir=/a", "upperdir=/b"])])
            req.options.Pack(s.ConnectRequest(id="x"))
            resp = await task.Create(req, metadata={"containerd-namespace-ttrpc": "k8s.io"}, timeout=5)
            assert isinstance(resp, s.CreateTaskResponse) and resp.pid == 1234
            got, ns = seen["create"]
            assert got == req and ns == "k8s.io"
            assert list(got.rootfs[0].options) == ["lowerdir=/a", "upperdir=/b"]
            wait = await task.Wait(s.WaitRequest(id="c1"))
            assert wait.exit_status == 3 and wait.exited_at.seconds == 1700000000
            with pytest.raises(TtrpcError) as e:
                await task.Kill(s.KillRequest(id="c1", exec_id="e1", signal=9))
            assert (e.value.code, e.value.message) == (Code.NOT_FOUND, "process e1 not found")
            with pytest.raises(TtrpcError) as e:
                await task.Shutdown(s.ShutdownRequest(id="c1"))
            assert e.value.code == Code.INTERNAL
            with pytest.raises(TtrpcError) as e:
                await task.Stats(s.StatsRequest(id="c1"))  # not implemented by Task above
            assert e.value.code == Code.UNIMPLEMENTED
            with pytest.raises(TypeError):
                await task.Start(s.WaitRequest())
            fwd = client.stub(events.DESCRIPTOR.services_by_name["Events"])
            env = events.Envelope(namespace="default", topic="/tasks/exit",
                                  event=typeurl.pack(ev.TaskExit(container_id="c1", pid=1234, exit_status=3)))
            await fwd.Forward(events.ForwardRequest(envelope=env))
            assert seen["event"].pid == 1234
        finally:
            await client.close()
            server.close()
            await server.wait_closed()
            shutil.rmtree(d, ignore_errors=True)

    asyncio.run(asyncio.wait_for(main(), 30))
