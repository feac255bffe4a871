"""`ringfence do`: run a command sandboxed over a host directory (runsc's `do`).

The root (default `/`) is served read-only by a gofer; the sentry puts an
in-memory writable layer on top.  The command's exit status is ours; SIGINT,
SIGTERM and friends are forwarded to the sandbox's init.

When stdin is our controlling terminal, it is the sandbox's /dev/console, and
what it raises comes to us: ^C (SIGINT), ^\\ (SIGQUIT) and resizes (SIGWINCH)
are forwarded to its foreground process group in the sandbox (a job of a shell
there), as the host's kernel would.  ^Z stops `ringfence do` itself, as usual.
"""
from __future__ import annotations

import os
import signal
import socket
import sys

import structlog

log = structlog.get_logger("ringfence")

# What a terminal raises for its foreground group, and we forward to the sandbox's.
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH)
DEFAULT_COMMAND = ["/bin/sh", "-c",
                   'echo "Hello from the ringfence sandbox: pid $$ on $(uname -sr)"; ls /']


def run_do(args) -> int:
    """Run `args.cmd` in a fresh sandbox; returns its exit status."""
    from ringfence.sentry import boot

    from .runtime.sandbox import FORWARDED, Sandbox, SandboxError, exit_code
    from .runtime.spec import find_executable

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
        cmd[0] = find_executable(root, cmd[0], env.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
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
    if _is_controlling_terminal(0):
        config.terminal_host_signals = True
        config.terminal_typed_signals = TERMINAL_SIGNALS
    log.debug("starting sandbox", root=root, cwd=cwd, argv=cmd)
    try:
        sandbox = Sandbox.create(config, root)
    except SandboxError as err:
        print(f"ringfence do: the sandbox did not start: {err}", file=sys.stderr)
        return 125
    forwarded = {*FORWARDED, *config.terminal_typed_signals}
    for sig in forwarded:
        signal.signal(sig, lambda signo, _frame: sandbox.pass_on(signo))
    _, status = os.waitpid(sandbox.sentry_pid, 0)
    sandbox.reaped(sandbox.sentry_pid)
    for sig in forwarded:
        signal.signal(sig, signal.SIG_DFL)
    _reap_gofer(sandbox)
    code = exit_code(status)
    log.debug("sandbox exited", status=code)
    return code


def _is_controlling_terminal(fd: int) -> bool:
    """Whether `fd` is our controlling terminal."""
    try:
        os.tcgetpgrp(fd)
    except OSError:
        return False
    return True


def _reap_gofer(sandbox) -> None:
    """The gofer exits when the sentry's socket closes; make sure of it."""
    import time

    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        done, _ = os.waitpid(sandbox.gofer_pid, os.WNOHANG)
        if done:
            sandbox.reaped(done)
            return
        time.sleep(0.01)
    sandbox.destroy()
    os.waitpid(sandbox.gofer_pid, 0)
