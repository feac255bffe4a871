"""OCI hooks, run on the host as runc runs them: each hook's program with its args and env
(nothing else of the runtime's environment), the container's state JSON on its stdin (ociVersion,
id, status, pid, bundle, annotations), killed after its timeout.

When each kind runs, and what its failure does (runc's and the spec's rules):
  prestart, createRuntime, createContainer: at create, once the sandbox exists and before its
      init is started (status "creating"); a failure fails create, which cleans up;
  startContainer: at start, before init runs (status "created"); a failure fails start and
      the container is stopped;
  poststart: once init runs (status "running"); a failure is logged;
  poststop: at delete (status "stopped"); a failure is logged.
runc runs createContainer and startContainer inside the container's namespaces; ringfence's
container lives in the sentry, so they run on the host like the others (with the sandbox's
state on stdin).
"""
from __future__ import annotations

import json
import subprocess

import structlog

from .spec import Hook

log = structlog.get_logger("ringfence.runtime")

CREATE = ("prestart", "createRuntime", "createContainer")
START = ("startContainer",)
POSTSTART = ("poststart",)
POSTSTOP = ("poststop",)
# Hooks of these kinds must succeed; the others' failures are only logged.
MUST_SUCCEED = frozenset(CREATE + START)
STATUS = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
          "startContainer": "created", "poststart": "running", "poststop": "stopped"}


class HookError(RuntimeError):
    """A hook that must succeed failed (the message names it and says how)."""


def state(oci_version: str, cid: str, pid: int, bundle: str, annotations: dict) -> dict:
    """The container state a hook gets on its stdin (`run` adds the status)."""
    return {"ociVersion": oci_version, "id": cid, "pid": pid, "bundle": bundle, "annotations": annotations}


def run(hooks: dict[str, list[Hook]], kinds: tuple[str, ...], container_state: dict) -> None:
    """Run the hooks of `kinds` in order, each given `container_state` with its kind's status.
    A failure of a kind that must succeed raises HookError (no later hook runs); another is logged."""
    for kind in kinds:
        for n, hook in enumerate(hooks.get(kind, ())):
            try:
                _run_one(hook, {**container_state, "status": STATUS[kind]})
            except HookError as err:
                what = f"{kind} hook #{n} ({hook.path}): {err}"
                if kind in MUST_SUCCEED:
                    raise HookError(what) from None
                log.warning("hook failed", hook=what)


def _run_one(hook: Hook, container_state: dict) -> None:
    argv = hook.args or [hook.path]
    try:
        proc = subprocess.run(argv, executable=hook.path, env=dict(_pairs(hook.env)),
                              input=json.dumps(container_state).encode(), capture_output=True,
                              timeout=hook.timeout, close_fds=True, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise HookError(f"timed out after {hook.timeout}s") from None
    except OSError as err:
        raise HookError(err.strerror or str(err)) from None
    if proc.returncode != 0:
        how = f"exit status {proc.returncode}" if proc.returncode > 0 else f"killed by signal {-proc.returncode}"
        output = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise HookError(f"{how}{': ' + output if output else ''}")
    log.debug("hook ran", path=hook.path, stdout=proc.stdout.decode(errors="replace"))


def _pairs(env: list[str]):
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            yield key, value
