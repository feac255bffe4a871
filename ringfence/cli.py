"""The `ringfence` command line: global flags as runsc's main.go, and subcommands."""
from __future__ import annotations

import argparse
import json
import sys

from . import log

DEFAULT_STATE_ROOT = "/var/run/ringfence"
# Go callers pass single-dash long flags (-debug, -log ...): accept both forms.
_GLOBAL_LONG = ("root", "debug", "log", "log-format", "debug-log", "strace", "strace-syscalls", "platform")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ringfence", description="A container sandbox runtime.")
    p.add_argument("--root", default=DEFAULT_STATE_ROOT, help="directory holding container state")
    p.add_argument("--debug", action="store_true", help="log at debug level")
    p.add_argument("--log", default=None, help="file to write logs to (default stderr)")
    p.add_argument("--log-format", default="text", choices=("text", "json"), help="log format")
    p.add_argument("--debug-log", default=None, help="file to write debug logs to (implies --debug)")
    p.add_argument("--strace", action="store_true", help="print every syscall of the sandboxed program")
    p.add_argument("--strace-syscalls", default="", help="comma-separated syscalls to trace (default all)")
    p.add_argument("--platform", default="ptrace", choices=("ptrace",), help="how syscalls are caught")
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
    return p


def _normalise(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        if arg in ("do", "syscalls"):
            return out + argv[i:]
        name = arg[1:].split("=", 1)[0]
        if arg.startswith("-") and not arg.startswith("--") and name in _GLOBAL_LONG:
            arg = "-" + arg
        out.append(arg)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ringfence` console script."""
    args = _parser().parse_args(_normalise(list(sys.argv[1:] if argv is None else argv)))
    debug = args.debug or bool(args.debug_log)
    try:
        log.configure(debug=debug, log_path=args.debug_log or args.log, log_format=args.log_format)
    except OSError as err:
        print(f"ringfence: cannot open log file: {err}", file=sys.stderr)
        return 2
    if args.command == "syscalls":
        return _syscalls(args.format)
    if args.command == "do":
        from .do import run_do

        return run_do(args)
    _parser().print_help(sys.stderr)
    return 2
