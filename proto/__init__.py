"""Protobuf messages and services of ringfence, generated at build time from
the .proto files in this folder (``pip install .`` runs grpc_tools.protoc;
see setup.py). The generated modules live below this package, by proto path:

- ``ringfence.proto.containerd.task.v2.shim_pb2`` — containerd.task.v2.Task
  (the shim's Task service: CreateTaskRequest, StateResponse, ...);
- ``ringfence.proto.containerd.types.mount_pb2`` — containerd.types.Mount;
- ``ringfence.proto.containerd.types.task.task_pb2`` — containerd.v1.types
  (Status enum, ProcessInfo, Process);
- ``ringfence.proto.containerd.events.task_pb2`` — containerd.events.Task*;
- ``ringfence.proto.containerd.services.ttrpc.events.v1.events_pb2`` —
  containerd.services.events.ttrpc.v1.Events (Forward, Envelope);
- ``ringfence.proto.runtimeoptions.v1.api_pb2`` — runtimeoptions.v1.Options;
- ``ringfence.proto.ttrpc.request_pb2`` — ttrpc.Request / Response / KeyValue;
- ``ringfence.proto.google.rpc.status_pb2`` — google.rpc.Status;
- ``ringfence.proto.sentry.v1.control_pb2`` — ringfence.sentry.v1.Control.

``typeurl`` packs and unpacks google.protobuf.Any the way containerd does.
"""
