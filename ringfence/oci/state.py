"""Container state under ``--root``: one directory per container.

``<root>/<id>/`` holds

- ``state.json``: what ``create`` recorded (bundle, rootfs, created, the
  supervisor's pid and start time, the sandbox's pids, the cgroup); written
  once, under the container's lock;
- ``status.json``: the lifecycle as the container's supervisor records it
  (running once started; stopped with the exit status, the time and the OOM
  kills once the sandbox's init is gone); the supervisor is its only writer;
- ``lock``: ``fcntl.flock``-ed by every command that changes the container,
  so two commands on one container run one after the other;
- ``sup.sock`` (the supervisor's requests) and ``control.sock`` (the
  sentry's control service).

Every file is written whole to a temporary name and renamed into place, so a
reader sees the old or the new contents, never a part.  A container whose
supervisor is gone without recording an exit (it was killed, say) is stopped.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import time

STATE = "state.json"
STATUS = "status.json"
LOCK = "lock"
SUPERVISOR_SOCK = "sup.sock"
CONTROL_SOCK = "control.sock"
LOG = "log"
OCI_VERSION = "1.0.2"

_ID = re.compile(r"^[\w+\-.]+$")
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, less the terminating NUL


class StateError(Exception):
    """A command cannot be carried out on this container (the message says why)."""


class NotFound(StateError):
    """No container of that id."""


def validate_id(cid: str) -> None:
    """runc's rule: letters, digits, ``_ + - .``; not ``.`` or ``..``."""
    if not cid or cid in (".", "..") or not _ID.match(cid):
        raise StateError(f"invalid container id {cid!r}: use letters, digits and _ + - .")


def now_rfc3339() -> str:
    """The current time as runc prints it (UTC, nanoseconds)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def write_json(path: str, obj) -> None:
    """Replace `path` with `obj` as JSON, atomically (temporary file + rename)."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def read_json(path: str):
    """The JSON in `path`; None when the file does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot): with the pid it
    names one process for good; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None  # a zombie has finished: it only waits to be reaped
    return int(fields[19])


@contextlib.contextmanager
def unix_address(path: str):
    """A name for the socket `path` that fits sockaddr_un (the path itself,
    else /proc/self/fd/N/NAME through an O_PATH fd of its directory)."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


def connect_unix(path: str, timeout: float | None = None) -> socket.socket:
    """A stream socket connected to `path` (OSError if nothing listens)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        with unix_address(path) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_unix(path: str, backlog: int = 16) -> socket.socket:
    """A stream socket listening on `path` (mode 0600)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with unix_address(path) as address:
            sock.bind(address)
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class Container:
    """One container's directory: its recorded state and its status."""

    def __init__(self, root: str, cid: str):
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # -- recorded state ------------------------------------------------------
    def load(self) -> dict:
        """state.json (NotFound when the container does not exist)."""
        try:
            with open(self.path(STATE)) as f:
                return json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"container {self.id} does not exist") from None
        except ValueError as err:
            raise StateError(f"container {self.id}: its state file is damaged: {err}") from None

    def exists(self) -> bool:
        return os.path.exists(self.path(STATE))

    def save(self, state: dict) -> None:
        write_json(self.path(STATE), state)

    def record_status(self, status: dict) -> None:
        write_json(self.path(STATUS), status)

    def status_record(self) -> dict:
        """status.json as the supervisor left it ({} before the container starts)."""
        try:
            return read_json(self.path(STATUS)) or {}
        except ValueError:
            return {}

    # -- the supervisor ------------------------------------------------------
    def supervisor_alive(self, state: dict) -> bool:
        pid = state.get("pid") or 0
        return pid > 0 and process_start_time(pid) == state.get("pid_start")

    def status(self, state: dict | None = None) -> tuple[str, dict]:
        """(runc status: created | running | paused | stopped, status.json)."""
        state = self.load() if state is None else state
        record = self.status_record()
        status = record.get("status", "created")
        if status != "stopped" and not self.supervisor_alive(state):
            status = "stopped"  # the supervisor died without recording an exit
        if status == "running" and _frozen(state):
            status = "paused"
        return status, record

    def runc_state(self, state: dict | None = None) -> dict:
        """The container as ``runc state`` prints it."""
        state = self.load() if state is None else state
        status, _ = self.status(state)
        out = {
            "ociVersion": state.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "pid": state.get("pid", 0) if status != "stopped" else 0,
            "status": status,
            "bundle": state.get("bundle", ""),
            "rootfs": state.get("rootfs", ""),
            "created": state.get("created", ""),
            "owner": "",
        }
        if state.get("annotations"):
            out["annotations"] = state["annotations"]
        return out

    # -- locking -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, must_exist: bool = True):
        """Hold the container's lock. Raises NotFound if the container went
        away (deleted while we waited) or, with `must_exist`, never was."""
        try:
            fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"container {self.id} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(self.path(LOCK)).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same or (must_exist and not self.exists()):
                raise NotFound(f"container {self.id} does not exist")
            yield self
        finally:
            os.close(fd)  # releases the lock

    # -- making and removing -----------------------------------------------
    def make(self) -> int:
        """Create the container's directory and hold its lock: returns the
        lock fd (close it to release). StateError if the id is taken."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.dir, 0o711)
        except FileExistsError:
            raise StateError(f"container with id {self.id} already exists") from None
        fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def remove(self) -> None:
        """Delete the container's directory (the lock file last but one: a
        command waiting on it then finds the container gone)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(LOCK))
        shutil.rmtree(self.dir, ignore_errors=True)


class Store:
    """The containers under one ``--root``."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def container(self, cid: str) -> Container:
        validate_id(cid)
        return Container(self.root, cid)

    def ids(self) -> list[str]:
        """Ids of the containers that exist (fully created), sorted."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _ID.match(n) and os.path.isfile(os.path.join(self.root, n, STATE)))


def open_cgroup(state: dict):
    """The container's cgroup from its recorded directories (or its path);
    FileNotFoundError when it is gone."""
    from pathlib import Path

    from ringfence.runtime.cgroups import Cgroup

    dirs = state.get("cgroup_dirs")
    if dirs:
        dirs = {k: Path(v) for k, v in dirs.items() if os.path.isdir(v)}
        if not dirs:
            raise FileNotFoundError(errno.ENOENT, f"cgroup {state.get('cgroup')!r} is gone")
        return Cgroup(state.get("cgroup", ""), state.get("cgroup_version", 1), dirs,
                      list(dict.fromkeys(dirs.values())))
    return Cgroup.open(state["cgroup"])


def _frozen(state: dict) -> bool:
    """Whether the container's cgroup is frozen (paused)."""
    if not state.get("cgroup"):
        return False
    try:
        return open_cgroup(state).state() == "paused"
    except (OSError, RuntimeError, ValueError, KeyError):
        return False


def owner_name(path: str) -> str:
    """The user name of `path`'s owner (its uid when it has no name)."""
    import pwd

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def is_enoent(err: OSError) -> bool:
    return err.errno in (errno.ENOENT, errno.ECONNREFUSED)
