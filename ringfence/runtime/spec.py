"""The OCI runtime spec (a bundle's config.json): what the sandbox needs of it, validated.

Anything malformed is a `SpecError` naming the field, before any process is
started.  Fields the sandbox does not act on yet are kept in `raw`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ringfence.sentry.abi.caps import CAP_NAMES
from ringfence.sentry.abi.resource import RLIMIT_NAMES

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX_TYPE = "io.kubernetes.cri.container-type"
SANDBOX_ID = "io.kubernetes.cri.sandbox-id"


class SpecError(ValueError):
    """config.json is missing, not JSON, or has a field of the wrong shape."""


@dataclass
class Process:
    """OCI `process`: what runs, as whom, where."""

    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    terminal: bool = False
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    # RLIMIT_* number -> (soft, hard): process.rlimits (the others: the sandbox's defaults).
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    # process.capabilities as masks (effective, permitted, inheritable, bounding, ambient);
    # None: none given (root keeps every capability, another user has none).
    capabilities: tuple[int, int, int, int, int] | None = None
    no_new_privileges: bool = False

    def env_value(self, name: str, default: str = "") -> str:
        """The value of `name` in env (the last assignment wins, as in a shell)."""
        value = default
        for item in self.env:
            key, sep, val = item.partition("=")
            if sep and key == name:
                value = val
        return value


@dataclass
class Hook:
    """One OCI hook: a host program, run with the container's state on its stdin."""

    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None  # seconds


@dataclass
class Spec:
    """The parts of config.json the runtime acts on."""

    process: Process
    root_path: str
    root_readonly: bool = False
    hostname: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    cgroups_path: str = ""
    resources: dict = field(default_factory=dict)
    # linux.namespaces: type -> the path of one to join ("": a new one).
    namespaces: dict[str, str] = field(default_factory=dict)
    # linux.seccomp compiled (sentry.kernel.seccomp.Filter); None: no profile.
    seccomp: object | None = None
    # hooks: kind (HOOK_KINDS) -> its hooks, in order.
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def is_pod_sandbox(self) -> bool:
        """A CRI pod's sandbox ("pause") container."""
        return self.annotations.get(SANDBOX_TYPE) == "sandbox"

    @property
    def memory_limit(self) -> int | None:
        """linux.resources.memory.limit in bytes (None: no limit)."""
        memory = self.resources.get("memory")
        limit = memory.get("limit") if isinstance(memory, dict) else None
        return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None

    @property
    def sandbox_id(self) -> str:
        """The CRI pod this container belongs to ("" outside a pod)."""
        return self.annotations.get(SANDBOX_ID, "")


def _get(obj: dict, key: str, kind, where: str, default=None):
    value = obj.get(key, default)
    if value is default:
        return value
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SpecError(f"config.json: {where}{key} must be {name}, not {type(value).__name__}")
    return value


def _strings(obj: dict, key: str, where: str) -> list[str]:
    items = _get(obj, key, list, where, [])
    if not all(isinstance(s, str) for s in items):
        raise SpecError(f"config.json: {where}{key} must be a list of strings")
    return items


def _ints(obj: dict, key: str, where: str) -> list[int]:
    items = _get(obj, key, list, where, [])
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1 << 32 for i in items):
        raise SpecError(f"config.json: {where}{key} must be a list of 32-bit unsigned integers")
    return items


def _uint(obj: dict, key: str, where: str, bits: int) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise SpecError(f"config.json: {where}{key} must be an unsigned {bits}-bit integer")
    return value


def _objects(obj: dict, key: str, where: str):
    """(where, item) for each item of list `key` of `obj`, each of which must be an object."""
    for n, item in enumerate(_get(obj, key, list, where, [])):
        if not isinstance(item, dict):
            raise SpecError(f"config.json: {where}{key}[{n}] must be an object")
        yield f"{where}{key}[{n}].", item


def _rlimits(obj: dict) -> dict[int, tuple[int, int]]:
    limits = {}
    for where, item in _objects(obj, "rlimits", "process."):
        kind = _get(item, "type", str, where, "")
        if kind not in RLIMIT_NAMES:
            raise SpecError(f"config.json: {where}type: unknown resource limit {kind!r}")
        resource = RLIMIT_NAMES.index(kind)
        if resource in limits:
            raise SpecError(f"config.json: {where}type: {kind} is set twice")
        soft, hard = _uint(item, "soft", where, 64), _uint(item, "hard", where, 64)
        if soft > hard:
            raise SpecError(f"config.json: {where[:-1]}: the soft limit of {kind} is above its hard limit")
        limits[resource] = (soft, hard)
    return limits


CAP_SETS = ("effective", "permitted", "inheritable", "bounding", "ambient")


def _capabilities(obj: dict) -> tuple[int, int, int, int, int] | None:
    caps = _get(obj, "capabilities", dict, "process.", None)
    if caps is None:
        return None
    masks = []
    for name in CAP_SETS:
        mask = 0
        for cap in _strings(caps, name, "process.capabilities."):
            if cap not in CAP_NAMES:
                raise SpecError(f"config.json: process.capabilities.{name}: unknown capability {cap!r}")
            mask |= 1 << CAP_NAMES.index(cap)
        masks.append(mask)
    return tuple(masks)


def parse_process(obj) -> Process:
    """An OCI `process` object (config.json's, or an exec's) as a Process."""
    if not isinstance(obj, dict):
        raise SpecError("config.json: process must be an object")
    args = _strings(obj, "args", "process.")
    if not args:
        raise SpecError("config.json: process.args must name a program")
    user = _get(obj, "user", dict, "process.", {})
    cwd = _get(obj, "cwd", str, "process.", "/")
    if not cwd.startswith("/"):
        raise SpecError(f"config.json: process.cwd must be absolute, not {cwd!r}")
    return Process(args=args, env=_strings(obj, "env", "process."), cwd=cwd,
                   terminal=_get(obj, "terminal", bool, "process.", False),
                   uid=_get(user, "uid", int, "process.user.", 0),
                   gid=_get(user, "gid", int, "process.user.", 0),
                   additional_gids=_ints(user, "additionalGids", "process.user."),
                   rlimits=_rlimits(obj), capabilities=_capabilities(obj),
                   no_new_privileges=_get(obj, "noNewPrivileges", bool, "process.", False))


NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


def _namespaces(linux: dict) -> dict[str, str]:
    found = {}
    for where, ns in _objects(linux, "namespaces", "linux."):
        kind = _get(ns, "type", str, where, "")
        if kind not in NAMESPACE_TYPES:
            raise SpecError(f"config.json: {where}type: unknown namespace type {kind!r}")
        if kind in found:
            raise SpecError(f"config.json: {where}type: the {kind} namespace is listed twice")
        found[kind] = _get(ns, "path", str, where, "")
    for key in ("uidMappings", "gidMappings"):
        for where, m in _objects(linux, key, "linux."):
            for field_ in ("containerID", "hostID", "size"):
                _uint(m, field_, where, 32)
    return found



HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def parse_hooks(obj) -> dict[str, list[Hook]]:
    """An OCI `hooks` object by kind (SpecError if malformed)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise SpecError("config.json: hooks must be an object")
    hooks = {}
    for kind in HOOK_KINDS:
        for where, item in _objects(obj, kind, "hooks."):
            path = _get(item, "path", str, where, "")
            if not path.startswith("/"):
                raise SpecError(f"config.json: {where}path must be an absolute path, not {path!r}")
            timeout = _get(item, "timeout", int, where, None)
            if timeout is not None and timeout <= 0:
                raise SpecError(f"config.json: {where}timeout must be positive")
            hooks.setdefault(kind, []).append(Hook(path, _strings(item, "args", where), _strings(item, "env", where),
                                                   timeout))
    return hooks


def parse(data: bytes | str) -> Spec:
    """A Spec from config.json's text."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise SpecError(f"config.json is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise SpecError("config.json must hold a JSON object")
    root = _get(raw, "root", dict, "", None)
    if root is None or not isinstance(root.get("path"), str) or not root["path"]:
        raise SpecError("config.json: root.path is required")
    linux = _get(raw, "linux", dict, "", {})
    annotations = _get(raw, "annotations", dict, "", {})
    if not all(isinstance(v, str) for v in annotations.values()):
        raise SpecError("config.json: annotations must map strings to strings")
    return Spec(process=parse_process(raw.get("process")),
                root_path=root["path"],
                root_readonly=_get(root, "readonly", bool, "root.", False),
                hostname=_get(raw, "hostname", str, "", ""),
                annotations=annotations,
                cgroups_path=_get(linux, "cgroupsPath", str, "linux.", ""),
                resources=_get(linux, "resources", dict, "linux.", {}),
                namespaces=_namespaces(linux), seccomp=_seccomp(linux), hooks=parse_hooks(raw.get("hooks")),
                raw=raw)


def _seccomp(linux: dict):
    from ringfence.sentry.kernel.seccomp import SeccompError, compile_profile

    try:
        return compile_profile(linux.get("seccomp"))
    except SeccompError as err:
        raise SpecError(f"config.json: {err}") from None


def load(bundle: str) -> Spec:
    """The Spec of the bundle directory `bundle`."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            return parse(f.read())
    except OSError as err:
        raise SpecError(f"cannot read {path}: {err.strerror}") from None


def rootfs_of(bundle: str, spec: Spec) -> str:
    """The host path of the container's root directory."""
    return os.path.normpath(os.path.join(bundle, spec.root_path))


def find_executable(root: str, name: str, path: str) -> str:
    """Resolve `name` like execvp does, but inside `root` (the sandbox's view);
    FileNotFoundError when no directory of `path` holds it."""
    if "/" in name:
        return name
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        host = os.path.join(root, candidate.lstrip("/"))
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return candidate
    raise FileNotFoundError(name)
