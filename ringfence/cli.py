"""The `ringfence` command line: global flags as runsc's main.go, runc's OCI
runtime commands (ringfence/oci), and runsc's `do` and our `syscalls`."""
from __future__ import annotations

import argparse
import json
import sys

from . import log

DEFAULT_STATE_ROOT = "/run/ringfence"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ringfence", description="A container sandbox runtime.")
    p.add_argument("--root", default=DEFAULT_STATE_ROOT, help="directory holding container state")
    p.add_argument("--debug", action="store_true", help="log at debug level")
    p.add_argument("--log", default=None, help="file to write logs to (default stderr; the"
                   " sandbox's own logs: the container's state directory)")
    p.add_argument("--log-format", default="text", choices=("text", "json"), help="log format")
    p.add_argument("--debug-log", default=None, help="file to write debug logs to (implies --debug)")
    p.add_argument("--strace", action="store_true", help="print every syscall of the sandboxed program")
    p.add_argument("--strace-syscalls", default="", help="comma-separated syscalls to trace (default all)")
    p.add_argument("--overlay", action="store_true",
                   help="keep containers' root file systems read-only under an in-memory writable layer")
    p.add_argument("--platform", default="ptrace", choices=("ptrace",), help="how syscalls are caught")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="cgroupsPath is slice:prefix:name (mapped to its cgroupfs path; systemd is not called)")
    p.add_argument("--rootless", default=None, choices=("true", "false", "auto"),
                   help="accepted for runc compatibility (the sentry never needs host privileges)")
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    do = sub.add_parser("do", help="run a command sandboxed over the host's root (read-only, in-memory writes)")
    do.add_argument("--root", dest="do_root", default="/", help="root directory of the sandbox (default /)")
    do.add_argument("--cwd", default=".", help="working directory (default: the current one)")
    do.add_argument("--quiet", action="store_true", help="print nothing of ringfence's own")
    do.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="set an environment variable (repeatable; the host environment is passed too)")
    do.add_argument("cmd", nargs=argparse.REMAINDER, help="command and arguments")

    sc = sub.add_parser("syscalls", help="print the syscall compatibility table")
    sc.add_argument("--format", choices=("text", "json"), default="text")

    _oci_commands(sub)

    from .install import add_arguments

    add_arguments(sub.add_parser("install", allow_abbrev=False,
                                 help="register ringfence with containerd (print the config stanza, or --apply it)"))
    return p


def _oci_commands(sub) -> None:
    def cmd(name, help, id_arg=True):
        c = sub.add_parser(name, help=help)
        if id_arg:
            c.add_argument("id", metavar="ID", help="container id")
        return c

    c = sub.add_parser("spec", help="write a default config.json (runc's example) into the bundle")
    c.add_argument("-b", "--bundle", default=".", help="bundle directory (default .)")
    c.add_argument("--rootless", dest="spec_rootless", action="store_true", help="a spec for a rootless container")
    c.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD", help="process.args (default sh)")

    for name, help in (("create", "create a container (its process waits for start)"),
                       ("run", "create and start a container")):
        c = cmd(name, help)
        c.add_argument("-b", "--bundle", default="", help="bundle directory (default: the current one)")
        c.add_argument("--console-socket", default="", help="unix socket to send the pty master to")
        c.add_argument("--pid-file", default="", help="file to write the container's pid to")
        c.add_argument("--no-pivot", action="store_true", help="accepted for runc compatibility")
        c.add_argument("--no-new-keyring", action="store_true", help="accepted for runc compatibility")
        c.add_argument("--preserve-fds", type=int, default=0, help="accepted for runc compatibility")
        if name == "run":
            c.add_argument("-d", "--detach", action="store_true", help="do not wait for the container")
            c.add_argument("--keep", action="store_true", help="accepted for runc compatibility")

    cmd("start", "start a created container")
    cmd("state", "print a container's state as JSON")

    c = sub.add_parser("list", aliases=["ls"], help="list the containers")
    c.add_argument("-f", "--format", choices=("table", "json"), default="table")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the ids")

    c = cmd("kill", "send a signal to a container's init (default SIGTERM)")
    c.add_argument("signal", nargs="?", default="TERM", help="signal name or number")
    c.add_argument("-a", "--all", action="store_true", help="send it to every process of the container")

    c = cmd("delete", "delete a container (--force: even a running one)")
    c.add_argument("-f", "--force", action="store_true", help="kill a running container first")

    c = cmd("exec", "run a process in a running container")
    c.add_argument("-p", "--process", default="", help="OCI process JSON file")
    c.add_argument("-d", "--detach", action="store_true", help="do not wait for the process")
    c.add_argument("--pid-file", default="", help="file to write the process's pid to")
    c.add_argument("--console-socket", default="", help="unix socket to send the pty master to")
    c.add_argument("--cwd", default="", help="working directory")
    c.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable")
    c.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    c.add_argument("-u", "--user", default="", help="UID[:GID]")
    c.add_argument("-g", "--additional-gids", type=int, action="append", default=[], help="additional gid")
    c.add_argument("--preserve-fds", type=int, default=0, help="accepted for runc compatibility")
    c.add_argument("--process-label", default="", help="accepted for runc compatibility")
    c.add_argument("--apparmor", default="", help="accepted for runc compatibility")
    c.add_argument("--no-new-privs", action="store_true", help="accepted for runc compatibility")
    c.add_argument("-c", "--cap", action="append", default=[], help="accepted for runc compatibility")
    c.add_argument("--ignore-paused", action="store_true", help="accepted for runc compatibility")
    c.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD", help="command and arguments")

    c = cmd("ps", "list the processes of a container")
    c.add_argument("-f", "--format", choices=("table", "json"), default="table")
    c.add_argument("ps_args", nargs=argparse.REMAINDER, help="ignored (runc passes them to ps)")

    c = cmd("debug", "show what a container's sentry is doing (runsc's debug)")
    c.add_argument("--stacks", action="store_true", help="the sentry's stack and every task's state and syscall")

    c = cmd("events", "print the container's events (stats, oom) as JSON lines")
    c.add_argument("--stats", action="store_true", help="print the statistics once and exit")
    c.add_argument("--interval", default="5s", help="statistics interval (5s, 500ms or seconds)")

    cmd("pause", "freeze every process of a container")
    cmd("resume", "thaw a paused container")

    c = cmd("wait", "wait for a container's init (or --pid) to exit; print and return its status")
    c.add_argument("--pid", type=int, default=None, help="a sandbox pid to wait for instead")

    cmd("features", "print what this runtime implements (runc's features JSON)", id_arg=False)

    c = cmd("update", "change a container's cgroup limits")
    c.add_argument("-r", "--resources", default="", help="OCI linux.resources JSON file (- for stdin)")
    for flag in ("memory", "memory-reservation", "memory-swap", "cpu-period", "cpu-quota", "cpu-share",
                 "cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight", "kernel-memory",
                 "kernel-memory-tcp", "cpu-rt-period", "cpu-rt-runtime", "l3-cache-schema",
                 "mem-bw-schema"):
        c.add_argument(f"--{flag}", default=None)


# Go callers pass single-dash long flags (-debug, -log ...) and --flag=value
# alike: accept every form. Normalising stops at a subcommand's first
# positional argument (Go's flag package does the same), so a command's own
# arguments (exec ID sh -c ...) are left alone.
_PASS_THROUGH = ("do", "syscalls")


def _options(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(long option names, those that take a value) of a parser."""
    names, valued = set(), set()
    for action in parser._actions:
        for opt in action.option_strings:
            if opt.startswith("--"):
                names.add(opt[2:])
                if action.nargs != 0:
                    valued.add(opt[2:])
            elif action.nargs != 0:
                valued.add(opt[1:])
    return names, valued


def _normalise(argv: list[str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    parser = parser or _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out: list[str] = []
    names, valued = _options(parser)
    in_sub = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            return out + [arg] + argv[i:]
        if not arg.startswith("-") or arg == "-":
            if in_sub:
                return out + [arg] + argv[i:]
            if arg in _PASS_THROUGH:
                return out + [arg] + argv[i:]
            if arg in subparsers.choices:
                out.append(arg)
                names, valued = _options(subparsers.choices[arg])
                in_sub = True
                continue
            out.append(arg)
            continue
        name, eq, _value = arg.lstrip("-").partition("=")
        if not arg.startswith("--") and len(name) > 1 and name in names:
            arg = "-" + arg
        if not in_sub and name == "rootless" and not eq:  # runc: --rootless VALUE; runsc: a bool
            if i < len(argv) and argv[i] in ("true", "false", "auto"):
                arg, i = f"--rootless={argv[i]}", i + 1
            else:
                arg = "--rootless=true"
            eq = "="
        out.append(arg)
        if not eq and name in valued and i < len(argv):
            out.append(argv[i])
            i += 1
    return out


def _syscalls(fmt: str) -> int:
    from ringfence.sentry.syscalls.table import rows

    table = rows()
    if fmt == "json":
        json.dump([{"nr": r.nr, "name": r.name, "support": r.support.value, "note": r.note} for r in table],
                  sys.stdout, indent=1)
        print()
        return 0
    for r in table:
        print(f"{r.nr:>4}  {r.name:<24} {r.support.value:<12} {r.note}")
    counts = {s: sum(1 for r in table if r.support.value == s) for s in ("full", "partial", "unsupported")}
    print(f"# {counts['full']} full, {counts['partial']} partial, {counts['unsupported']} unsupported")
    return 0


def _oci(args) -> int:
    from ringfence.runtime.spec import SpecError

    from .oci import commands
    from .oci.state import StateError

    fn = getattr(commands, "cmd_" + {"ls": "list"}.get(args.command, args.command))
    try:
        return fn(args)
    except (StateError, SpecError, OSError) as err:
        message = f"ringfence {args.command}: {err}"
        print(message, file=sys.stderr)
        _log_error(args, message)
        return 1


def _log_error(args, message: str) -> None:
    """Also append the error to --log as runc's logrus does: callers such as
    containerd's runc shim read the last error from that file
    ({"level": "error", "msg": ..., "time": ...} with --log-format json)."""
    path = args.debug_log or args.log
    if not path:
        return
    from .oci.state import now_rfc3339

    if args.log_format == "json":
        line = json.dumps({"level": "error", "msg": message, "time": now_rfc3339()})
    else:
        line = f"time={json.dumps(now_rfc3339())} level=error msg={json.dumps(message)}"
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ringfence` console script."""
    parser = _parser()
    args = parser.parse_args(_normalise(list(sys.argv[1:] if argv is None else argv), parser))
    debug = args.debug or bool(args.debug_log)
    try:
        log.configure(debug=debug, log_path=args.debug_log or args.log, log_format=args.log_format,
                      quiet=args.command == "do" and args.quiet)
    except OSError as err:
        print(f"ringfence: cannot open log file: {err}", file=sys.stderr)
        return 2
    if args.version:
        from importlib.metadata import version

        from .oci.state import OCI_VERSION

        print(f"ringfence version {version('ringfence')}\nspec: {OCI_VERSION}")
        return 0
    if args.command == "syscalls":
        return _syscalls(args.format)
    if args.command == "do":
        from .do import run_do

        return run_do(args)
    if args.command == "install":
        from .install import run as run_install

        return run_install(args)
    if args.command:
        return _oci(args)
    parser.print_help(sys.stderr)
    return 2
