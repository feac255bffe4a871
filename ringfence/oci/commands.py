"""The runc-compatible commands: create, start, run, state, list, kill,
delete, exec, ps, events, pause, resume, wait, update, spec, features.

Each ``cmd_*`` takes the parsed arguments (global flags included) and
returns the exit status; a refusal is a StateError (or SpecError), which
the CLI prints on stderr with exit status 1.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import signal
import sys
import threading
import time

import structlog

from ringfence.runtime import hooks
from ringfence.runtime.daemon import close_fds_except, detach
from ringfence.runtime.spec import SpecError, load, parse_hooks, parse_process, rootfs_of

from . import console
from .state import (CONTROL_SOCK, OCI_VERSION, Container, NotFound, StateError, Store, connect_unix,
                    now_rfc3339, open_cgroup, owner_name, process_start_time, write_json)
from .supervisor import FORWARD, Options, SupervisorGone, request

log = structlog.get_logger("ringfence.oci")

STOP_TIMEOUT = 10.0
DEFAULT_CGROUP_PARENT = "/ringfence"


# -- helpers -----------------------------------------------------------------------

def _store(args) -> Store:
    return Store(args.root)


def _loaded(args, cid: str) -> tuple[Container, dict]:
    c = _store(args).container(cid)
    return c, c.load()


def _write_pid_file(path: str, pid: int) -> None:
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def _control(c: Container, timeout: float | None = 30.0):
    from ringfence.sentry.control_client import ControlClient

    path = c.path(CONTROL_SOCK)
    return ControlClient(lambda: connect_unix(path), timeout=timeout)


def _cgroup(state: dict):
    """The container's cgroup (StateError if it is gone)."""
    try:
        return open_cgroup(state)
    except (KeyError, OSError, ValueError, RuntimeError) as err:
        raise StateError(f"the container's cgroup is not there: {err}") from None


def parse_signal(text: str) -> int:
    """A signal by number, or by name with or without SIG (TERM, SIGTERM, term)."""
    text = text.strip()
    if text.isdigit():
        num = int(text)
        if 0 < num < signal.NSIG:
            return num
        raise StateError(f"invalid signal {text!r}")
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX"):
            m = re.fullmatch(r"SIGRT(MIN|MAX)([+-]\d+)?", name)
            if m:
                base = signal.SIGRTMIN if m.group(1) == "MIN" else signal.SIGRTMAX
                num = base + int(m.group(2) or 0)
                if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
                    return num
        raise StateError(f"invalid signal {text!r}")
    return int(sig)


def systemd_cgroup_path(path: str) -> str:
    """A systemd cgroupsPath ``slice:prefix:name`` as the cgroupfs path the
    systemd driver would give it (``machine.slice:libpod:ID`` →
    ``/machine.slice/libpod-ID.scope``); ringfence does not talk to systemd."""
    parts = path.split(":")
    if len(parts) != 3:
        raise StateError(f"expected cgroupsPath of the form slice:prefix:name with --systemd-cgroup, not {path!r}")
    slice_, prefix, name = parts
    slice_ = slice_ or "system.slice"
    if not slice_.endswith(".slice") or "/" in slice_:
        raise StateError(f"cgroupsPath {path!r}: {slice_!r} is not a systemd slice")
    dirs = []
    if slice_ != "-.slice":
        stem = slice_[:-len(".slice")]
        pieces = stem.split("-")
        dirs = ["-".join(pieces[:i + 1]) + ".slice" for i in range(len(pieces))]
    unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
    return "/" + "/".join(dirs + [unit])


class _Prepared:
    def __init__(self, c: Container, bundle: str, spec, rootfs: str, opts: Options):
        self.c, self.bundle, self.spec, self.rootfs, self.opts = c, bundle, spec, rootfs, opts


def _prepare(args, detach: bool) -> _Prepared:
    """Everything checked before any process starts (create, run)."""
    c = _store(args).container(args.id)
    bundle = os.path.abspath(args.bundle or os.getcwd())
    if not os.path.isdir(bundle):
        raise StateError(f"bundle {bundle}: no such directory")
    spec = load(bundle)
    rootfs = rootfs_of(bundle, spec)
    if not os.path.isdir(rootfs):
        raise StateError(f"rootfs {rootfs}: no such directory")
    terminal = spec.process.terminal
    console_socket = getattr(args, "console_socket", "") or ""
    if detach and terminal and not console_socket:
        raise StateError("cannot allocate tty if ringfence will detach without setting console socket")
    if console_socket and (not detach or not terminal):
        raise StateError("cannot use console socket if ringfence will not detach or allocate tty")
    cgroup = spec.cgroups_path
    if cgroup and (args.systemd_cgroup or (not cgroup.startswith("/") and cgroup.count(":") == 2)):
        cgroup = systemd_cgroup_path(cgroup)
    opts = Options(console_socket=os.path.abspath(console_socket) if console_socket else "",
                   log_path=args.debug_log or args.log, debug=args.debug or bool(args.debug_log),
                   log_format=args.log_format, strace=args.strace, strace_syscalls=args.strace_syscalls,
                   platform=args.platform, cgroup_path=cgroup or default_cgroup_path(c.id), bundle=bundle,
                   overlay=args.overlay)
    return _Prepared(c, bundle, spec, rootfs, opts)


def _state_record(p: _Prepared, info: dict) -> dict:
    return {"ociVersion": p.spec.raw.get("ociVersion") or OCI_VERSION, "id": p.c.id, "bundle": p.bundle,
            "rootfs": p.rootfs, "created": now_rfc3339(), "annotations": p.spec.annotations,
            "cgroup": p.opts.cgroup_path, "terminal": p.spec.process.terminal,
            "hooks": p.spec.raw.get("hooks"), **info}


# -- create, start, run --------------------------------------------------------------

def cmd_create(args) -> int:
    _create_detached(args)
    return 0


def _create_detached(args) -> Container:
    from .supervisor import spawn

    p = _prepare(args, detach=True)
    lock = p.c.make()
    try:
        try:
            info = spawn(p.c, p.spec, p.rootfs, p.opts)
        except BaseException:
            p.c.remove()
            raise
        try:
            p.c.save(_state_record(p, info))
            _write_pid_file(args.pid_file, info["pid"])
        except BaseException:
            _stop(p.c, info)
            _cleanup(p.c, {"cgroup": p.opts.cgroup_path, **info})
            raise
    finally:
        os.close(lock)
    return p.c


def cmd_start(args) -> int:
    c = _store(args).container(args.id)
    with c.lock():
        status, _ = c.status()
        if status == "stopped":
            raise StateError("cannot start a container that has stopped")
        if status != "created":
            raise StateError(f"cannot start an already {status} container")
        request(c, {"op": "start"})
    return 0


def cmd_run(args) -> int:
    if args.detach:
        c = _create_detached(args)
        try:
            request(c, {"op": "start"})
        except StateError:
            with contextlib.suppress(StateError):
                _delete(c, force=True)
            raise
        return 0
    return _run_foreground(args)


def _run_foreground(args) -> int:
    """runc run without --detach: this process supervises the container, its
    stdio is the container's (or relays a terminal), and its exit status is
    the container's; the container is deleted when it exits."""
    from .supervisor import Supervisor, configure_logs

    p = _prepare(args, detach=False)
    lock = p.c.make()
    try:
        configure_logs(p.c, p.opts)
        sup = Supervisor(p.c, p.spec, p.rootfs, p.opts)
        sup.setup(keep_master=True)
        try:
            p.c.save(_state_record(p, {"pid": os.getpid(), "pid_start": process_start_time(os.getpid()),
                                       **sup.pids}))
            _write_pid_file(args.pid_file, os.getpid())
            sup.start()
        except BaseException:
            sup.sandbox.destroy()
            sup.serve()  # reaps the sandbox
            _cleanup(p.c, {"cgroup": p.opts.cgroup_path, **sup.pids})
            raise
    except BaseException:
        if not p.c.exists():
            p.c.remove()
        raise
    finally:
        os.close(lock)
    relay = console.Relay(sup.master) if sup.master is not None else None
    try:
        code = sup.serve(relay)
    finally:
        if relay is not None:
            relay.restore()
    with contextlib.suppress(NotFound):
        with p.c.lock():
            _cleanup(p.c, p.c.load())
    return code


# -- state, list -----------------------------------------------------------------------

def cmd_state(args) -> int:
    c, state = _loaded(args, args.id)
    print(json.dumps(c.runc_state(state), indent=2))
    return 0


def cmd_list(args) -> int:
    store = _store(args)
    rows = []
    for cid in store.ids():
        c = store.container(cid)
        try:
            row = c.runc_state()
        except StateError:
            continue
        row["owner"] = owner_name(c.dir)
        rows.append(row)
    if args.quiet:
        for row in rows:
            print(row["id"])
    elif args.format == "json":
        print(json.dumps(rows or None, separators=(",", ":")))
    else:
        table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        table += [[r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]] for r in rows]
        widths = [max(12, max(len(row[i]) for row in table) + 3) for i in range(len(table[0]) - 1)]
        for row in table:
            print("".join(cell.ljust(w) for cell, w in zip(row, widths)) + row[-1])
    return 0


# -- signals, delete, wait ----------------------------------------------------------

def cmd_kill(args) -> int:
    sig = parse_signal(args.signal or "TERM")
    c = _store(args).container(args.id)
    with c.lock():
        status, _ = c.status()
        if status == "stopped":
            raise StateError("container not running")
        if status == "created":
            if sig == signal.SIGKILL or _ends_created(sig):  # init does not exist yet: the sandbox ends
                request(c, {"op": "kill", "signal": signal.SIGKILL})
            return 0
        if sig == signal.SIGKILL or (sig in FORWARD and not args.all):
            request(c, {"op": "kill", "signal": sig})
            return 0
        if status == "paused":
            raise StateError(f"cannot send signal {sig} to a paused container (resume it first)")
        from ringfence.sentry.control_client import ControlError

        try:
            _control(c).signal(sig, all=args.all)
        except ControlError as err:
            raise StateError(f"kill: {err.message}") from None
    return 0


def _ends_created(sig: int) -> bool:
    from .supervisor import _ENDING

    return sig in _ENDING


def _stop(c: Container, state: dict) -> None:
    """SIGKILL the sandbox and wait until its supervisor has recorded the
    exit (and, briefly, until it is gone: a foreground `run` still has its
    own work to finish)."""
    with contextlib.suppress(StateError):
        request(c, {"op": "kill", "signal": signal.SIGKILL})
    with contextlib.suppress(StateError):
        request(c, {"op": "wait"}, timeout=STOP_TIMEOUT)
    pid, start = state.get("pid", 0), state.get("pid_start")
    recorded = c.status_record().get("status") == "stopped"
    deadline = time.monotonic() + (1.0 if recorded else STOP_TIMEOUT)
    while pid and start is not None and process_start_time(pid) == start:
        if time.monotonic() > deadline:
            if not recorded:  # a supervisor that neither acts nor exits
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.005)


def _cleanup(c: Container, state: dict) -> None:
    """Remove what a stopped container holds: its cgroup (ending any process
    still in it) and its state directory; then run its poststop hooks."""
    path = state.get("cgroup")
    if path:
        try:
            cgroup = open_cgroup(state)
        except (OSError, ValueError, RuntimeError):
            cgroup = None
        if cgroup is not None:
            with contextlib.suppress(OSError, RuntimeError):
                cgroup.thaw()
            for _ in range(3):
                try:
                    pids = cgroup.pids()
                except OSError:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    cgroup.remove(timeout=2)
                    break
                except OSError:
                    continue
            if path == default_cgroup_path(c.id):
                _remove_empty_parents(cgroup)
    c.remove()
    if state.get("hooks"):
        _poststop(c, state)


def _poststop(c: Container, state: dict) -> None:
    """Run the poststop hooks recorded at create (their failures are logged)."""
    try:
        recorded = parse_hooks(state["hooks"])
    except SpecError as err:
        log.warning("poststop hooks not run", id=c.id, error=str(err))
        return
    hooks.run(recorded, hooks.POSTSTOP, hooks.state(state.get("ociVersion") or OCI_VERSION, c.id,
                                                    state.get("pid", 0), state.get("bundle", ""),
                                                    state.get("annotations") or {}))


def default_cgroup_path(cid: str) -> str:
    """The cgroup of a container whose spec names none."""
    return f"{DEFAULT_CGROUP_PARENT}/{cid}"


def _remove_empty_parents(cgroup) -> None:
    """Remove DEFAULT_CGROUP_PARENT once its last container is gone (a
    concurrent create makes it again)."""
    for leaf in set(cgroup.dirs.values()):
        with contextlib.suppress(OSError):
            os.rmdir(leaf.parent)


def _delete(c: Container, force: bool) -> None:
    with c.lock(must_exist=False):
        if not c.exists():  # a create that never finished
            c.remove()
            raise NotFound(f"container {c.id} does not exist")
        state = c.load()
        status, _ = c.status(state)
        if status in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {c.id} that is not stopped: {status}")
        if status != "stopped":
            _stop(c, state)
        _cleanup(c, state)


def cmd_delete(args) -> int:
    c = _store(args).container(args.id)
    try:
        _delete(c, args.force)
    except NotFound:
        if args.force:
            return 0
        raise
    return 0


def cmd_wait(args) -> int:
    c, state = _loaded(args, args.id)
    if args.pid is not None:
        from ringfence.sentry.control_client import ControlError

        try:
            code, _ = _control(c, timeout=None).wait(pid=args.pid)
        except ControlError as err:
            raise StateError(f"waiting for pid {args.pid}: {err.message}") from None
    else:
        code = _wait_init(c, state)
    print(json.dumps({"id": c.id, "exitStatus": code}))
    return code


def _wait_init(c: Container, state: dict) -> int:
    status, record = c.status(state)
    if status != "stopped":
        with contextlib.suppress(SupervisorGone):
            return request(c, {"op": "wait"}, timeout=None)["exit_status"]
        _, record = c.status(state)
    code = record.get("exit_status")
    return 128 + signal.SIGKILL if code is None else code  # no record: the supervisor was killed


# -- exec, ps ---------------------------------------------------------------------------

def _exec_process(args, state: dict) -> dict:
    if args.process:
        try:
            with open(args.process) as f:
                process = json.load(f)
        except OSError as err:
            raise StateError(f"cannot read the process file {args.process}: {err.strerror}") from None
        except ValueError as err:
            raise StateError(f"the process file {args.process} is not valid JSON: {err}") from None
    else:
        if not args.argv:
            raise StateError("exec: a command is required (or --process FILE)")
        try:
            base = load(state["bundle"]).raw.get("process", {})
        except SpecError:
            base = {}
        process = {k: v for k, v in base.items() if k not in ("args", "terminal", "consoleSize")}
        process["args"] = list(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
        process["env"] = list(base.get("env", [])) + list(args.env)
        if args.cwd:
            process["cwd"] = args.cwd
        if args.user:
            uid, _, gid = args.user.partition(":")
            try:
                process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
            except ValueError:
                raise StateError(f"--user {args.user!r}: expected UID[:GID]") from None
        if args.additional_gids:
            process.setdefault("user", {"uid": 0, "gid": 0})["additionalGids"] = args.additional_gids
        process["terminal"] = bool(args.tty)
    if args.process and args.tty:
        process["terminal"] = True
    try:
        parse_process(process)
    except SpecError as err:
        raise StateError(str(err).replace("config.json: ", "exec: ")) from None
    return process


def cmd_exec(args) -> int:
    c, state = _loaded(args, args.id)
    status, _ = c.status(state)
    if status != "running":
        raise StateError(f"cannot exec in a {status} container")
    process = _exec_process(args, state)
    terminal = bool(process.get("terminal"))
    if args.detach and terminal and not args.console_socket:
        raise StateError("cannot allocate tty if ringfence will detach without setting console socket")
    if args.console_socket and (not args.detach or not terminal):
        raise StateError("cannot use console socket if ringfence will not detach or allocate tty")
    exec_id = f"exec-{secrets.token_hex(8)}"
    master = slave = forwarder = None
    stdio: tuple = (0, 1, 2)
    if terminal:
        master, slave = console.open_pty(process.get("consoleSize"))
        stdio = (slave, slave, slave)
    # The terminal's Forwarder leads it before the process starts: the host then raises the
    # signals for a size the process sets at once, and the sentry leaves them to it.
    try:
        if args.detach:
            waiter, go = _exec_waiter(c, exec_id, slave)
            with open(go, "wb", buffering=0) as go_file:
                _exec_request(c, process, stdio, exec_id, terminal)
                go_file.write(b"g")
            if args.console_socket:
                console.send_master(args.console_socket, master)
            _write_pid_file(args.pid_file, waiter)
            return 0
        if slave is not None:
            forwarder = console.Forwarder(slave, c.path(CONTROL_SOCK), exec_id)
        _exec_request(c, process, stdio, exec_id, terminal)
        if slave is not None:
            os.close(slave)
            slave = None
        _write_pid_file(args.pid_file, os.getpid())
        return _exec_foreground(c, exec_id, master)
    finally:
        if forwarder is not None:
            forwarder.stop()
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)


def _exec_request(c: Container, process: dict, stdio: tuple, exec_id: str, terminal: bool) -> None:
    """Ask the sentry to start exec `exec_id` (a terminal's signals come from its Forwarder)."""
    from ringfence.sentry.control_client import ControlError

    try:
        _control(c).exec(process, stdio, exec_id, terminal, host_signals=terminal)
    except ControlError as err:
        raise StateError(f"exec failed: {err.message}") from None


def _exec_waiter(c: Container, exec_id: str, slave: int | None) -> tuple[int, int]:
    """A detached exec's host process: it waits for the exec'd process (its
    exit status is the waiter's) and forwards signals to it; the Forwarder
    of its terminal (pty `slave`, if it has one) is the waiter's child.
    Returns, once that forwarder is ready, the waiter's pid and a pipe's write end:
    "g" written there once the process is started (closed without: the waiter exits)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(ready_w)
        os.close(go_r)
        with open(ready_r, "rb") as r:
            ready = r.read()
        if ready != b"r":
            os.close(go_w)
            raise StateError(f"exec: its waiter failed: {ready.decode(errors='replace') or 'it died'}")
        return pid, go_w
    code = 125
    try:
        os.close(go_w)
        detach()
        close_fds_except({0, 1, 2, ready_w, go_r, slave})
        try:
            forwarder = console.Forwarder(slave, c.path(CONTROL_SOCK), exec_id) if slave is not None else None
        except OSError as err:
            os.write(ready_w, str(err).encode())
            raise
        os.write(ready_w, b"r")
        os.close(ready_w)
        if slave is not None:
            os.close(slave)
        try:
            if os.read(go_r, 1) == b"g":
                code = _wait_exec(c, exec_id, None)
        finally:
            if forwarder is not None:
                forwarder.stop()
    finally:
        os._exit(code)


def _exec_foreground(c: Container, exec_id: str, master: int | None) -> int:
    relay = console.Relay(master) if master is not None else None
    try:
        return _wait_exec(c, exec_id, relay)
    finally:
        if relay is not None:
            relay.restore()


def _wait_exec(c: Container, exec_id: str, relay: console.Relay | None) -> int:
    """Wait for exec `exec_id` (relaying its terminal), passing on the
    signals we get; its exit status."""
    from ringfence.sentry.control_client import ControlError

    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    result: list[int] = []

    def waiter():
        try:
            code, _ = _control(c, timeout=None).wait(exec_id=exec_id)
        except ControlError:
            code = 128 + signal.SIGKILL  # the sandbox went away
        result.append(code)
        os.write(done_w, b"x")

    def forward(signo, _frame):
        with contextlib.suppress(ControlError):
            _control(c, timeout=5).signal(signo, exec_id=exec_id)

    old = {sig: signal.signal(sig, forward) for sig in FORWARD}
    threading.Thread(target=waiter, daemon=True).start()
    try:
        fds = [done_r] + (relay.fds() if relay else [])
        while not result:
            ready, _, _ = select.select(fds, [], [])
            for fd in ready:
                if fd != done_r and relay is not None:
                    if not relay.ready(fd) or (relay.stdin is None and fd != relay.master):
                        fds.remove(fd)
        if relay is not None:
            relay.drain()
        return result[0]
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(done_r)
        os.close(done_w)


def cmd_debug(args) -> int:
    from ringfence.sentry.control_client import ControlError

    if not args.stacks:
        raise StateError("debug: say what to show (--stacks)")
    c, state = _loaded(args, args.id)
    status, _ = c.status(state)
    if status != "running":
        raise StateError(f"container {c.id} is {status}: its sentry cannot answer")
    try:
        print(_control(c).stacks(), end="")
    except ControlError as err:
        raise StateError(f"debug: {err.message}") from None
    return 0


def cmd_ps(args) -> int:
    from ringfence.sentry.control_client import ControlError

    c, state = _loaded(args, args.id)
    status, _ = c.status(state)
    if status != "running":
        raise StateError(f"container {c.id} is {status}: no processes to list"
                         if status != "paused" else f"container {c.id} is paused")
    try:
        procs = _control(c).processes()
    except ControlError as err:
        raise StateError(f"listing processes: {err.message}") from None
    if args.format == "json":
        print(json.dumps([p.pid for p in procs]))
        return 0
    rows = [["UID", "PID", "PPID", "STAT", "STIME", "CMD"]]
    for p in procs:
        started = time.strftime("%H:%M", time.localtime(p.started_at.seconds)) if p.started_at.seconds else "?"
        rows.append([str(p.uid), str(p.pid), str(p.ppid), p.state or "?", started,
                     " ".join(p.argv) or p.cmd])
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(cell.rjust(w) if i in (1, 2) else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(r, widths))) + "  " + r[5])
    return 0


# -- the cgroup: pause, resume, update, events --------------------------------------------

def cmd_pause(args) -> int:
    c = _store(args).container(args.id)
    with c.lock():
        state = c.load()
        status, _ = c.status(state)
        if status != "running":
            raise StateError(f"container {c.id} is not running" if status != "paused"
                             else f"container {c.id} is already paused")
        try:
            _cgroup(state).freeze()
        except (OSError, RuntimeError, TimeoutError) as err:
            raise StateError(f"pausing {c.id}: {err}") from None
    return 0


def cmd_resume(args) -> int:
    c = _store(args).container(args.id)
    with c.lock():
        state = c.load()
        status, _ = c.status(state)
        if status != "paused":
            raise StateError(f"container {c.id} is not paused")
        try:
            _cgroup(state).thaw()
        except (OSError, RuntimeError) as err:
            raise StateError(f"resuming {c.id}: {err}") from None
    return 0


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str) -> int:
    """A size such as 100, 512k, 64m, 1g, 1.5GiB (binary units, as runc's
    flags); -1 = unlimited."""
    if text.strip() == "-1":
        return -1
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:i?[bB])?\s*", text)
    if not m:
        raise StateError(f"invalid size {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _update_resources(args) -> dict:
    if args.resources:
        try:
            text = sys.stdin.read() if args.resources == "-" else open(args.resources).read()
            resources = json.loads(text)
        except OSError as err:
            raise StateError(f"cannot read {args.resources}: {err.strerror}") from None
        except ValueError as err:
            raise StateError(f"resources {args.resources}: not valid JSON: {err}") from None
        if not isinstance(resources, dict):
            raise StateError("resources must be a JSON object")
    else:
        resources = {}
    memory, cpu, pids = (resources.setdefault(k, {}) for k in ("memory", "cpu", "pids"))
    for flag, section, key, conv in (
            ("memory", memory, "limit", parse_bytes), ("memory_reservation", memory, "reservation", parse_bytes),
            ("memory_swap", memory, "swap", parse_bytes), ("cpu_period", cpu, "period", int),
            ("cpu_quota", cpu, "quota", int), ("cpu_share", cpu, "shares", int),
            ("cpuset_cpus", cpu, "cpus", str), ("cpuset_mems", cpu, "mems", str),
            ("pids_limit", pids, "limit", int)):
        value = getattr(args, flag)
        if value is not None:
            try:
                section[key] = conv(value)
            except ValueError:
                raise StateError(f"--{flag.replace('_', '-')} {value!r}: not a number") from None
    if args.blkio_weight is not None:
        raise StateError("--blkio-weight: ringfence does not set block I/O weights")
    return {k: v for k, v in resources.items() if v}


def cmd_update(args) -> int:
    c = _store(args).container(args.id)
    resources = _update_resources(args)
    with c.lock():
        state = c.load()
        status, _ = c.status(state)
        if status == "stopped":
            raise StateError(f"container {c.id} is stopped")
        try:
            _cgroup(state).apply(resources)
        except (OSError, ValueError) as err:
            raise StateError(f"update {c.id}: {err}") from None
    return 0


def parse_interval(text: str) -> float:
    """A Go duration (5s, 500ms, 1m) or a number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise StateError(f"invalid interval {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "": 1, "m": 60, "h": 3600}[m.group(2)]


def cmd_events(args) -> int:
    from .stats import oom_event, stats_event

    interval = parse_interval(args.interval)
    c, state = _loaded(args, args.id)

    def emit(event):
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    status, record = c.status(state)
    if status == "stopped":
        if not record.get("oom_kills"):
            raise StateError(f"container {c.id} is not running")
        emit(oom_event(c.id))
        return 0
    cgroup = _cgroup(state)
    if args.stats:
        try:
            emit(stats_event(c.id, cgroup))
        except OSError as err:
            raise StateError(f"stats of {c.id}: {err}") from None
        return 0
    seen = record.get("oom_kills", 0)
    efd = None
    with contextlib.suppress(OSError):
        efd = cgroup.oom_eventfd()
    next_stats = time.monotonic()
    try:
        while True:
            status, record = c.status(state)
            kills = record.get("oom_kills", 0)
            with contextlib.suppress(OSError):
                kills = max(kills, cgroup.oom_kills() - 0)
            if kills > seen:
                seen = kills
                emit(oom_event(c.id))
            if status == "stopped":
                return 0
            if time.monotonic() >= next_stats:
                with contextlib.suppress(OSError):
                    emit(stats_event(c.id, cgroup))
                next_stats = time.monotonic() + interval
            wait = max(0.0, min(next_stats - time.monotonic(), 0.5))
            if efd is not None:
                if select.select([efd], [], [], wait)[0]:
                    with contextlib.suppress(BlockingIOError):
                        os.read(efd, 8)
            else:
                time.sleep(wait)
    finally:
        if efd is not None:
            os.close(efd)


# -- documents ---------------------------------------------------------------------------

def cmd_spec(args) -> int:
    from .defaults import example_spec

    bundle = args.bundle or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise StateError(f"file {path} exists: remove it first")
    if not os.path.isdir(bundle):
        raise StateError(f"bundle {bundle}: no such directory")
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    spec = example_spec(command, rootless=bool(args.rootless) or bool(getattr(args, "spec_rootless", False)))
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    return 0


def cmd_features(args) -> int:
    from .defaults import features

    print(json.dumps(features(), indent=4))
    return 0


__all__ = [name for name in dir() if name.startswith("cmd_")] + ["parse_signal", "write_json"]
