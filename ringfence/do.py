"""`ringfence do`: run a command sandboxed over a host directory (runsc's `do`).

The root (default `/`) is served read-only by a gofer; the sentry puts an
in-memory writable layer on top.  The command's exit status is ours; SIGINT,
SIGTERM and friends are forwarded to the sandbox's init.
"""
from __future__ import annotations

import os
import signal
import socket
import sys

import structlog

log = structlog.get_logger("ringfence")

DEFAULT_COMMAND = ["/bin/sh", "-c",
                   'echo "Hello from the ringfence sandbox: pid $$ on $(uname -sr)"; ls /']
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _find_executable(root: str, name: str, path: str) -> str:
    """Resolve `name` like execvp does, but inside `root` (the sandbox's view)."""
    if "/" in name:
        return name
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        host = os.path.join(root, candidate.lstrip("/"))
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return candidate
    raise FileNotFoundError(name)


def _status_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_do(args) -> int:
    """Run `args.cmd` in a fresh sandbox; returns its exit status."""
    from ringfence.gofer import server as gofer
    from ringfence.sentry import boot

    root = os.path.realpath(args.do_root)
    if not os.path.isdir(root):
        print(f"ringfence do: --root {args.do_root}: not a directory", file=sys.stderr)
        return 2
    if args.cwd == "." and root != "/":
        cwd = "/"
    else:
        cwd = os.path.abspath(args.cwd)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else list(args.cmd)
    cmd = cmd or DEFAULT_COMMAND
    env = dict(os.environ)
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"ringfence do: --env {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        env[key] = value
    try:
        cmd[0] = _find_executable(root, cmd[0], env.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    except FileNotFoundError:
        print(f"ringfence do: {cmd[0]}: command not found", file=sys.stderr)
        return 127
    config = boot.SentryConfig(
        argv=[os.fsencode(a) for a in cmd],
        envp=[os.fsencode(f"{k}={v}") for k, v in env.items()],
        cwd=os.fsencode(cwd),
        platform=args.platform,
        hostname=os.fsencode(socket.gethostname()),
        strace=args.strace or bool(args.strace_syscalls),
        strace_syscalls=set(filter(None, args.strace_syscalls.split(","))) or None,
    )
    log.debug("starting sandbox", root=root, cwd=cwd, argv=cmd)
    gofer_pid, gofer_sock = gofer.start(root, readonly=True)
    try:
        sentry_pid = boot.start(config, gofer_sock)
    except (OSError, RuntimeError) as err:
        os.kill(gofer_pid, signal.SIGKILL)
        os.waitpid(gofer_pid, 0)
        print(f"ringfence do: the sandbox did not start: {err}", file=sys.stderr)
        return 125
    finally:
        gofer_sock.close()
    for sig in FORWARDED:
        signal.signal(sig, lambda signo, _frame: os.kill(sentry_pid, signo))
    _, status = os.waitpid(sentry_pid, 0)
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_DFL)
    _reap_gofer(gofer_pid)
    code = _status_code(status)
    log.debug("sandbox exited", status=code)
    return code


def _reap_gofer(pid: int) -> None:
    """The gofer exits when the sentry's socket closes; make sure of it."""
    import time

    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
