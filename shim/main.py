"""containerd-shim-ringfence-v1: the containerd runtime v2 shim.

containerd runs it two ways, always with cwd = the task's bundle:

- ``... -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start``:
  fork the long-lived shim (or find it, for a pod's later containers), write
  the bundle's ``address`` file and print only the address;
- ``... -bundle PATH delete``: clean up after a shim that is gone, printing
  a protobuf DeleteResponse.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import signal
import socket
import sys

SOCKET_DIR = "/run/containerd/s"
PR_SET_CHILD_SUBREAPER = 36


class ShimError(Exception):
    """A start or delete that cannot be done (printed, exit status 1)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="containerd-shim-ringfence-v1",
                                description="containerd runtime v2 shim for ringfence sandboxes")
    p.add_argument("-namespace", default="", help="containerd namespace of the task")
    p.add_argument("-address", default="", help="containerd's gRPC socket")
    p.add_argument("-publish-binary", dest="publish_binary", default="containerd",
                   help="containerd binary (for publishing events the legacy way)")
    p.add_argument("-id", default="", help="id of the task")
    p.add_argument("-bundle", default="", help="bundle directory (delete)")
    p.add_argument("-socket", default="", help="accepted for containerd's sake; unused")
    p.add_argument("-debug", action="store_true", help="log at debug level")
    p.add_argument("-v", dest="version", action="store_true", help="print the version and exit")
    p.add_argument("action", nargs="?", choices=("start", "delete"), help="start or delete")
    return p


def _normalise(argv: list[str]) -> list[str]:
    """Go's flag package takes -flag and --flag alike: so do we."""
    return [a[1:] if a.startswith("--") and len(a) > 2 else a for a in argv]


def socket_address(containerd_address: str, namespace: str, group: str) -> str:
    """The shim socket of a task group, as containerd's shims name it."""
    digest = hashlib.sha256(f"{containerd_address}/{namespace}/{group}".encode()).hexdigest()
    return f"unix://{SOCKET_DIR}/{digest}"


def _group_of(bundle: str, task_id: str) -> str:
    """Containers of one CRI pod share the pod's shim; others get their own."""
    from ringfence.runtime.spec import SpecError, load

    try:
        spec = load(bundle)
    except SpecError:
        return task_id
    return task_id if spec.is_pod_sandbox else (spec.sandbox_id or task_id)


def _connectable(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def start(args) -> str:
    """The `start` verb: returns the address to print."""
    bundle = os.getcwd()
    address = socket_address(args.address, args.namespace, _group_of(bundle, args.id))
    path = address[len("unix://"):]
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as err:
        sock.close()
        if _connectable(path):  # the pod's shim already runs: share it
            _write_address(bundle, address)
            return address
        if not os.path.exists(path):
            raise ShimError(f"cannot listen on {path}: {err}") from None
        os.unlink(path)  # a dead shim's socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(128)
    try:
        _write_address(bundle, address)
        _spawn_daemon(args, sock, path)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        sock.close()
    return address


def _write_address(bundle: str, address: str) -> None:
    tmp = os.path.join(bundle, ".address.tmp")
    with open(tmp, "w") as f:
        f.write(address)
    os.rename(tmp, os.path.join(bundle, "address"))


def _spawn_daemon(args, sock: socket.socket, path: str) -> None:
    """Fork the long-lived shim.  It keeps this interpreter and what it has
    imported (no second start-up), runs in its own session with its stdio on
    /dev/null (containerd reads our output to EOF) and serves on `sock`."""
    from ringfence.runtime.daemon import detach

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            detach()
            code = _daemon(args, sock, path)
        finally:
            os._exit(code)


def delete(args) -> bytes:
    """The `delete` verb: clean the bundle of a shim that is gone; returns a
    serialized DeleteResponse (the sandbox died with its shim: SIGKILL)."""
    from ringfence.proto.containerd.task.v2 import shim_pb2
    from ringfence.runtime import mounts
    from ringfence.runtime.cgroups import Cgroup
    from ringfence.runtime.spec import SpecError, load, rootfs_of

    from .events import timestamp
    from .service import cgroup_path, control_path

    bundle = args.bundle or os.getcwd()
    try:
        spec = load(bundle)
    except SpecError:
        spec = None
    mounts.unmount_all(rootfs_of(bundle, spec) if spec else os.path.join(bundle, "rootfs"))
    if spec is not None:
        try:
            Cgroup.open(cgroup_path(spec, args.namespace, args.id)).remove()
        except FileNotFoundError:
            pass  # the shim removed it
        except (OSError, ValueError) as err:
            print(f"cgroup not removed: {err}", file=sys.stderr)  # containerd logs it as a warning
    shim_socket = socket_address(args.address, args.namespace, _group_of(bundle, args.id))[len("unix://"):]
    for path in (control_path(args.namespace, args.id), shim_socket):
        if not _connectable(path):  # (a pod's shim may still serve its other containers)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    return shim_pb2.DeleteResponse(exit_status=128 + signal.SIGKILL, exited_at=timestamp()).SerializeToString()


def _open_log() -> None:
    """Send stderr (and so our logs) to the bundle's `log` FIFO, which
    containerd reads; never block on it (a full FIFO loses lines instead)."""
    try:
        fd = os.open("log", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    os.dup2(fd, 2)
    os.close(fd)


async def _serve(args, sock: socket.socket, path: str) -> None:
    import asyncio

    from ringfence.proto.containerd.task.v2 import shim_pb2

    from .events import Publisher
    from .service import TaskService
    from .ttrpc import Server

    import structlog

    log = structlog.get_logger("ringfence.shim")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    publisher = Publisher(os.environ.get("TTRPC_ADDRESS", args.address + ".ttrpc"), args.namespace)
    service = TaskService(publisher, done.set)
    loop.add_signal_handler(signal.SIGCHLD, service.reap)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    server = Server()
    server.register_service(shim_pb2.DESCRIPTOR.services_by_name["Task"], service)
    await server.serve(sock=sock)
    log.info("shim serving", id=args.id, namespace=args.namespace, socket=path)
    service.reap()  # children that exited before the handler was installed
    await done.wait()
    await publisher.flush(5)
    await server.shutdown(2)
    await publisher.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    log.info("shim exiting", id=args.id)


def _daemon(args, sock: socket.socket, path: str) -> int:
    import asyncio

    from ringfence import log as logs

    _open_log()
    logs.configure(debug=args.debug, stream=logs.FdStream(2))
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    asyncio.run(_serve(args, sock, path))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of containerd-shim-ringfence-v1."""
    args = _parser().parse_args(_normalise(list(sys.argv[1:] if argv is None else argv)))
    if args.version:
        from importlib.metadata import version

        print(f"containerd-shim-ringfence-v1: ringfence {version('ringfence')}")
        return 0
    if not args.id or not args.namespace:
        print("containerd-shim-ringfence-v1: -id and -namespace are required", file=sys.stderr)
        return 2
    try:
        if args.action == "start":
            print(start(args), end="")
            return 0
        if args.action == "delete":
            sys.stdout.buffer.write(delete(args))
            return 0
    except (ShimError, OSError) as err:
        print(f"containerd-shim-ringfence-v1: {args.action}: {err}", file=sys.stderr)
        return 1
    print("containerd-shim-ringfence-v1: an action is required: start or delete", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
