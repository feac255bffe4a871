"""The file systems a container's spec asks for, as one plan both sides of a sandbox read alike.

From config.json's `root.readonly`, `mounts`, `linux.maskedPaths` and `linux.readonlyPaths`:
  - the runtime (ringfence/runtime/sandbox.py) starts the container's gofer over the rootfs,
    read-only or not, with one extra gofer mount per bind mount (`gofer_mounts()`: mount ids
    1, 2, ... in the order the spec lists them);
  - the sentry (vfs/setup.py) builds the container's mount table from the same plan, attaching
    each bind mount to its gofer mount id.
The first container's plan travels in its SentryConfig; a pod's sub-container's plan is made
by the sentry from the spec CreateSubcontainer hands it, so both sides agree as long as they
read the same spec.  No plan (None) is `ringfence do`'s (`MountPlan.default()`): the gofer's
tree read-only under an in-memory writable layer (`overlay`), and no mounts but /proc, /dev
and a devpts on /dev/pts.

This module only reads the spec (no file system access): the sentry uses it while confined.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

BIND = "bind"
# Mount options that only say how to propagate or bind, or how to keep times: no effect here.
_IGNORED = frozenset({"bind", "rbind", "private", "rprivate", "shared", "rshared", "slave", "rslave",
                      "unbindable", "runbindable", "relatime", "norelatime", "strictatime", "nostrictatime",
                      "noatime", "atime", "nodiratime", "diratime", "lazytime", "nolazytime", "sync", "async",
                      "dirsync", "mand", "nomand", "silent", "loud", "defaults", "tmpcopyup", "rro", "rrw",
                      "idmap", "ridmap", "newinstance"})
_DEVPTS_OPTIONS = ("nosuid", "noexec", "gid=5", "mode=620", "ptmxmode=666")


class MountPlanError(ValueError):
    """config.json's mount list (or masked/read-only paths) has a field of the wrong shape."""


@dataclass(frozen=True)
class PlannedMount:
    """One entry of the spec's `mounts`: `type` normalised ("bind" for any bind mount)."""

    destination: str
    type: str
    source: str = ""
    options: tuple[str, ...] = ()
    gofer_id: int = 0  # bind mounts: the gofer mount that serves `source`

    @property
    def readonly(self) -> bool:
        """"ro" (the last of ro/rw wins)."""
        ro = False
        for opt in self.options:
            if opt in ("ro", "rw"):
                ro = opt == "ro"
        return ro

    def flag_options(self) -> list[str]:
        """Options without a value, other than those that do nothing here."""
        return [o for o in self.options if "=" not in o and o not in _IGNORED]

    def data(self) -> dict[str, str]:
        """The key=value options (size=, mode=, uid=, gid=...), in order."""
        out = {}
        for opt in self.options:
            key, sep, value = opt.partition("=")
            if sep:
                out[key] = value
        return out


@dataclass
class MountPlan:
    """How a container's root and mounts are served."""

    overlay: bool = False  # the root: the gofer's tree read-only under an in-memory writable layer
    root_readonly: bool = False  # the root refuses writes (EROFS)
    mounts: list[PlannedMount] = field(default_factory=list)
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)

    @classmethod
    def default(cls) -> MountPlan:
        """`ringfence do`'s plan: the overlay root, and /dev/pts with the options Docker gives it."""
        return cls(overlay=True, mounts=[PlannedMount("/dev/pts", "devpts", "devpts", _DEVPTS_OPTIONS)])

    @classmethod
    def from_spec(cls, raw: dict, overlay: bool = False) -> MountPlan:
        """The plan of OCI spec `raw` (config.json as a dict); MountPlanError if malformed."""
        if not isinstance(raw, dict):
            raise MountPlanError("config.json must hold a JSON object")
        root = raw.get("root") or {}
        linux = raw.get("linux") or {}
        if not isinstance(root, dict) or not isinstance(linux, dict):
            raise MountPlanError("config.json: root and linux must be objects")
        readonly = root.get("readonly", False)
        if not isinstance(readonly, bool):
            raise MountPlanError("config.json: root.readonly must be bool")
        entries = raw.get("mounts") or []
        if not isinstance(entries, list):
            raise MountPlanError("config.json: mounts must be a list")
        mounts, binds = [], 0
        for i, entry in enumerate(entries):
            m = _parse_mount(entry, f"mounts[{i}]")
            if m.type == BIND:
                binds += 1
                m = PlannedMount(m.destination, m.type, m.source, m.options, binds)
            mounts.append(m)
        return cls(overlay=overlay, root_readonly=readonly, mounts=mounts,
                   masked_paths=_paths(linux, "maskedPaths"), readonly_paths=_paths(linux, "readonlyPaths"))

    @classmethod
    def from_json(cls, data: bytes | str, overlay: bool = False) -> MountPlan:
        """The plan of the OCI spec `data` (config.json's text)."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise MountPlanError(f"config.json is not valid JSON: {err}") from None
        return cls.from_spec(raw, overlay)

    @property
    def gofer_root_readonly(self) -> bool:
        """Whether the gofer serves the root read-only."""
        return self.overlay or self.root_readonly

    def gofer_mounts(self) -> list[PlannedMount]:
        """The bind mounts, by gofer mount id (1, 2, ...): each serves its `source`, read-only if
        `readonly`."""
        return [m for m in self.mounts if m.type == BIND]


def _parse_mount(entry, where: str) -> PlannedMount:
    if not isinstance(entry, dict):
        raise MountPlanError(f"config.json: {where} must be an object")
    dest, kind, source = entry.get("destination"), entry.get("type", ""), entry.get("source", "")
    options = entry.get("options") or []
    if not isinstance(dest, str) or not dest:
        raise MountPlanError(f"config.json: {where}.destination must be a path")
    if "\0" in dest:
        raise MountPlanError(f"config.json: {where}.destination holds a NUL")
    if not isinstance(kind, str) or not isinstance(source, str):
        raise MountPlanError(f"config.json: {where}.type and .source must be strings")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise MountPlanError(f"config.json: {where}.options must be a list of strings")
    if kind == BIND or "bind" in options or "rbind" in options:
        if not source:
            raise MountPlanError(f"config.json: {where}: a bind mount needs a source")
        kind = BIND
    return PlannedMount(dest, kind, source, tuple(options))


def _paths(linux: dict, key: str) -> list[str]:
    paths = linux.get(key) or []
    if not isinstance(paths, list) or not all(isinstance(p, str) and p and "\0" not in p for p in paths):
        raise MountPlanError(f"config.json: linux.{key} must be a list of paths")
    return paths
