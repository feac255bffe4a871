"""`ringfence install`: register ringfence with containerd's CRI plugin (for
Kubernetes) and put its shim where containerd finds it.

Without --apply it only prints the containerd config stanza. With --apply it

1. copies a self-contained bundle (--bundle, built by deploy/bundle.py; the
   installer image has one) into NODE_DIR/releases/ID and points
   NODE_DIR/current at it (so shims already running keep their own files);
2. links ``containerd-shim-ringfence-v1`` and ``ringfence`` into --shim-dir
   (default /usr/local/bin, on containerd's PATH), pointing at the bundle's
   launchers, or at this Python's console scripts without a bundle;
3. appends the runtime's table to the containerd config, once: the rest of
   the file is kept byte for byte (the text is appended to, never
   re-serialised), the result is checked with tomllib before it replaces the
   file atomically, and the first change keeps the original as PATH.bak.

Every path is taken inside --root-prefix (default /): the installer image
runs with the node's root at /host and ``--root-prefix /host``. Links into
such a root are relative, so they resolve the same on the node and from here.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import sys

# tomllib, hashlib and sysconfig are imported where used, and the plans are
# plain classes: every `ringfence` command builds this module's parser, and
# runc-style callers time those commands.

RUNTIME_TYPE = "io.containerd.ringfence.v1"
SHIM = "containerd-shim-ringfence-v1"
CLI = "ringfence"
LAUNCHERS = (SHIM, CLI)
DEFAULT_RUNTIME_NAME = "ringfence"
DEFAULT_CONFIG = "/etc/containerd/config.toml"
DEFAULT_SHIM_DIR = "/usr/local/bin"
DEFAULT_NODE_DIR = "/opt/ringfence"
# The CRI plugin's id in each config version: version 1 (containerd 1.x, no
# `version` line or `version = 1`) names plugins by short id, version 2
# (containerd 1.x) by full id, version 3 (containerd 2.x) splits CRI and puts
# runtimes under its runtime plugin.
CRI_PLUGIN = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
# A RuntimeClass's handler (the runtime's name here) is a DNS label.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


class InstallError(Exception):
    """Something the install cannot or will not do; the message says what."""


def add_arguments(p) -> None:
    """The `install` subcommand's options (ringfence/cli.py)."""
    p.add_argument("--runtime-name", default=DEFAULT_RUNTIME_NAME,
                   help="the runtime's name in containerd: the RuntimeClass handler (default ringfence)")
    p.add_argument("--containerd-config", default=DEFAULT_CONFIG,
                   help=f"containerd's config file (default {DEFAULT_CONFIG})")
    p.add_argument("--apply", action="store_true",
                   help="change the config and write the links (default: print the stanza only)")
    p.add_argument("--shim-dir", default=DEFAULT_SHIM_DIR,
                   help=f"where to link {SHIM} and {CLI} (default {DEFAULT_SHIM_DIR})")
    p.add_argument("--no-links", action="store_true", help="write no links into --shim-dir")
    p.add_argument("--scripts-dir", default=None,
                   help="the directory holding the ringfence executables the links point at, as the"
                        " node sees it (default: this Python's scripts directory, or the bundle's)")
    p.add_argument("--bundle", default=None, metavar="DIR",
                   help="a self-contained ringfence (deploy/bundle.py) to copy onto the node")
    p.add_argument("--node-dir", default=DEFAULT_NODE_DIR,
                   help=f"where --bundle goes on the node (default {DEFAULT_NODE_DIR})")
    p.add_argument("--root-prefix", default="/",
                   help="the node's root directory, when it is mounted elsewhere (e.g. /host)")


# --------------------------------------------------------------- the config


def stanza(name: str, version: int = 2, runtime_type: str = RUNTIME_TYPE) -> str:
    """The TOML table that registers runtime `name` for the CRI plugin."""
    return (f'[plugins.{_key(CRI_PLUGIN[version])}.containerd.runtimes.{_key(name)}]\n'
            f'  runtime_type = "{runtime_type}"\n')


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"'


class ConfigPlan:
    """What --apply does to one containerd config."""

    def __init__(self, path: str, version: int, new_text: str | None, exists: bool,
                 notes: list[str] | None = None, add_version: bool = False, addition: str = ""):
        self.path = path
        self.version = version
        self.new_text = new_text  # None: nothing to change
        self.exists = exists
        self.notes = notes or []
        self.add_version = add_version  # the config is empty: the new text starts it with `version = 2`
        self.addition = addition  # what is appended to it (what print mode shows)


DEFAULT_RUNTIME = ("runc", "io.containerd.runc.v2")  # containerd's built-in CRI runtime


def plan_config(path: str, text: str | None, name: str) -> ConfigPlan:
    """Work out the new text of the config at `path` (text None: the file
    does not exist); raise InstallError for a config we must not touch."""
    import tomllib

    exists = text is not None
    text = text or ""
    try:
        old = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InstallError(f"{path} does not parse as TOML ({err}): fix it first; it was not changed")
    notes = [] if exists else [f"{path} does not exist: creating it"]
    add_version = False
    if "version" not in old:
        if old:
            raise InstallError(
                f"{path} has no `version` line, so containerd reads it as a version 1 config, "
                "whose plugin tables have other names (`plugins.cri`, not "
                '`plugins."io.containerd.grpc.v1.cri"`). Put `version = 2` at its top (renaming '
                "its plugin tables: `containerd config migrate` does it on containerd 1.7+, or "
                "start from `containerd config default`), or `version = 1` to keep it a version 1 "
                "config, then run this again. It was not changed.")
        add_version = True  # empty or only comments: nothing to keep but the bytes
    version = old.get("version", 2)
    if isinstance(version, bool) or version not in CRI_PLUGIN:
        raise InstallError(f"{path} is a version {version!r} containerd config; ringfence install knows "
                           "versions 1, 2 and 3. It was not changed.")
    if version == 1:
        notes.append(f"{path} is a version 1 config (deprecated; containerd 2 migrates it): "
                     "registering the runtime under its `plugins.cri` table")
    plugin = CRI_PLUGIN[version]
    disabled = old.get("disabled_plugins", [])
    if isinstance(disabled, list) and {plugin, "cri", "io.containerd.grpc.v1.cri"} & set(disabled):
        notes.append(f"warning: {path} disables the CRI plugin (disabled_plugins = {disabled}): "
                     "Kubernetes cannot use containerd, nor this runtime, until it is enabled")
    runtimes = _get(old, "plugins", plugin, "containerd", "runtimes")
    existing = runtimes.get(name) if isinstance(runtimes, dict) else None
    if existing is not None:
        have = existing.get("runtime_type") if isinstance(existing, dict) else existing
        if have == RUNTIME_TYPE:
            return ConfigPlan(path, version, None, exists=exists,
                              notes=[f"{path} already registers runtime {name!r} ({RUNTIME_TYPE}): unchanged"],
                              addition=stanza(name, version))
        raise InstallError(f"{path} already has a runtime named {name!r} (runtime_type {have!r}): pass "
                           "another --runtime-name, or remove that one. It was not changed.")
    # A config that names any CRI runtime replaces containerd's built-in list
    # (runc alone): with none named, name runc too, or the CRI plugin would
    # refuse to load (its default runtime missing).
    add = {}
    if not runtimes and name != DEFAULT_RUNTIME[0]:
        add[DEFAULT_RUNTIME[0]] = DEFAULT_RUNTIME[1]
        notes.append(f"{path} named no CRI runtime: adding containerd's default, "
                     f"{DEFAULT_RUNTIME[0]} ({DEFAULT_RUNTIME[1]}), too, as naming one replaces the built-in list")
    add[name] = RUNTIME_TYPE
    addition = ("version = 2\n\n" if add_version else "") + _block(add, version)
    sep = "" if text == "" or text.endswith("\n") else "\n"
    new = text + sep + ("\n" if text.strip() else "") + addition
    _check(path, new, old, add, version, add_version)
    return ConfigPlan(path, version, new, exists=exists, notes=notes, add_version=add_version,
                      addition=addition)


def _block(runtimes: dict[str, str], version: int) -> str:
    name = list(runtimes)[-1]
    lines = [f"# ringfence, the sandbox runtime: pods whose RuntimeClass has handler {name!r}"
             " (added by `ringfence install`)"]
    if len(runtimes) > 1:
        lines.append("# and runc, containerd's default runtime: a config that names CRI runtimes"
                     " replaces containerd's built-in list")
    return "\n".join(lines) + "\n" + "".join(stanza(n, version, t) for n, t in runtimes.items())


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _check(path: str, new: str, old: dict, runtimes: dict[str, str], version: int, add_version: bool) -> None:
    """The new text must parse to the old config plus our runtimes, and nothing else."""
    import tomllib

    expected = copy.deepcopy(old)
    if add_version:
        expected["version"] = 2
    table = expected
    for k in ("plugins", CRI_PLUGIN[version], "containerd", "runtimes"):
        table = table.setdefault(k, {})
    for n, t in runtimes.items():
        table[n] = {"runtime_type": t}
    try:
        got = tomllib.loads(new)
    except tomllib.TOMLDecodeError as err:
        raise InstallError(f"cannot add the runtime's table to {path} as text ({err}: it defines the "
                           "tables above it in a form a new table cannot extend, such as an inline "
                           "table); add this by hand:\n" + _block(runtimes, version)
                           + "It was not changed.")
    if got != expected:
        raise InstallError(f"adding the runtime's table to {path} would change more than it (a bug); "
                           "it was not changed")


def read_config(path: str) -> str | None:
    """The config's text, or None if there is no such file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise InstallError(f"cannot read {path}: {err.strerror}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InstallError(f"{path} does not parse as TOML (not UTF-8: {err}): fix it first; "
                           "it was not changed")


def write_config(plan: ConfigPlan) -> str | None:
    """Replace the config atomically with plan.new_text (keeping the first
    original as PATH.bak); returns the backup's path if one was made now."""
    path = plan.path
    backup = None
    st = None
    if plan.exists:
        st = os.stat(path)
        if not os.path.exists(path + ".bak"):
            backup = path + ".bak"
            tmp = _tmp_name(backup)
            shutil.copy2(path, tmp)
            os.replace(tmp, backup)
    else:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    _write_atomic(path, plan.new_text.encode(), st)
    return backup


def _tmp_name(path: str) -> str:
    return os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.ringfence-{os.getpid()}")


def _write_atomic(path: str, data: bytes, like: os.stat_result | None) -> None:
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            if like is not None:
                os.fchmod(fd, like.st_mode & 0o7777)
                try:
                    os.fchown(fd, like.st_uid, like.st_gid)
                except PermissionError:
                    pass
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# ------------------------------------------------------------ paths, links


def under(prefix: str, path: str) -> str:
    """`path` (absolute, as the node sees it) inside the root at `prefix`."""
    if not os.path.isabs(path):
        raise InstallError(f"{path!r} must be an absolute path (as the node sees it)")
    return os.path.normpath(os.path.join(prefix, path.lstrip("/")))


def node_realpath(prefix: str, path: str) -> str:
    """The node's canonical path for its path `path`: every symlink followed
    as the node would, an absolute target taken inside the root at `prefix`.
    Components that do not exist are kept as they are."""
    parts = [p for p in path.split("/") if p]
    resolved, hops = "/", 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        here = under(prefix, candidate)
        if os.path.islink(here):
            hops += 1
            if hops > 40:
                raise InstallError(f"{here}: too many levels of symbolic links")
            target = os.readlink(here)
            parts = [p for p in target.split("/") if p] + parts
            if target.startswith("/"):
                resolved = "/"
            continue
        resolved = candidate
    return resolved


class LinkPlan:
    """One link --apply makes in the shim directory."""

    def __init__(self, link: str, target: str, action: str):
        self.link = link  # where the link goes (inside the prefix)
        self.target = target  # what it points at: the node's path, relative to the link under a prefix
        self.action = action  # "create", "replace", "keep" (already right), "present" (the file is there)


def plan_links(prefix: str, shim_dir: str, scripts_dir: str, need_target: bool = True) -> list[LinkPlan]:
    """Links SHIM_DIR/NAME -> SCRIPTS_DIR/NAME for the launchers. Into a root
    mounted elsewhere they are relative, so they resolve both on the node and
    from here."""
    local = os.path.realpath(prefix) == "/"
    link_dir = node_realpath(prefix, shim_dir)
    real_scripts = node_realpath(prefix, scripts_dir)
    plans = []
    for name in LAUNCHERS:
        link = under(prefix, os.path.join(link_dir, name))
        target = os.path.join(scripts_dir, name)
        target_here = under(prefix, node_realpath(prefix, target))
        if need_target and not (os.path.isfile(target_here) and os.access(target_here, os.X_OK)):
            where = "" if local else f" under {prefix}"
            raise InstallError(f"{target} is not an executable{where}: install ringfence there first "
                               "(or pass --bundle, or --scripts-dir naming where it is)")
        if not local:
            target = os.path.relpath(target, link_dir)
        if link_dir == real_scripts:
            action = "present"  # the executables are in the shim directory already
        elif os.path.islink(link):
            action = "keep" if os.readlink(link) == target else "replace"
        elif os.path.lexists(link):
            if os.path.exists(target_here) and os.path.samefile(link, target_here):
                action = "present"
            else:
                raise InstallError(f"{link} exists and is not a link: remove it (an older install?) "
                                   "or pass another --shim-dir")
        else:
            action = "create"
        plans.append(LinkPlan(link, target, action))
    return plans


def make_links(plans: list[LinkPlan]) -> None:
    for p in plans:
        if p.action in ("create", "replace"):
            os.makedirs(os.path.dirname(p.link), exist_ok=True)
            _symlink_atomic(p.target, p.link)


def _symlink_atomic(target: str, link: str) -> None:
    tmp = _tmp_name(link)
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        os.unlink(tmp)
        raise


# ---------------------------------------------------------------- bundle


def bundle_id(src: str) -> str:
    """ringfence's version and a digest of the bundle's files (not of the
    bytecode caches: running the bundle may add to them)."""
    import hashlib

    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)
            h.update(rel.encode() + b"\0")
            if os.path.islink(path):
                h.update(b"L" + os.readlink(path).encode() + b"\0")
                continue
            h.update(b"X" if os.access(path, os.X_OK) else b"F")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    version = "0"
    for site in _bundle_sites(src):
        for name in os.listdir(site):
            if name.startswith("ringfence-") and name.endswith(".dist-info"):
                version = name[len("ringfence-"):-len(".dist-info")]
    return f"{version}-{h.hexdigest()[:12]}"


def _bundle_sites(src: str) -> list[str]:
    lib = os.path.join(src, "python", "lib")
    found = []
    for d in (os.listdir(lib) if os.path.isdir(lib) else []):
        for sub in ("dist-packages", "site-packages"):
            if os.path.isdir(os.path.join(lib, d, sub)):
                found.append(os.path.join(lib, d, sub))
    return found


class BundlePlan:
    """Where --apply puts a bundle."""

    def __init__(self, src: str, node_dir: str, release: str, copy: bool):
        self.src = src
        self.node_dir = node_dir  # the node's path of the bundle's home (NODE_DIR)
        self.release = release  # releases/ID, relative to node_dir
        self.copy = copy  # False: that release is on the node already


def plan_bundle(prefix: str, src: str, node_dir: str) -> BundlePlan:
    src = os.path.realpath(src)
    for name in LAUNCHERS:
        if not os.access(os.path.join(src, "bin", name), os.X_OK):
            raise InstallError(f"{src} is no ringfence bundle: it has no bin/{name} (build one with "
                               "deploy/bundle.py)")
    home = under(prefix, node_realpath(prefix, node_dir))
    real_home = os.path.realpath(home)
    if real_home == src or real_home.startswith(src + os.sep) or src.startswith(real_home + os.sep):
        raise InstallError(f"the bundle {src} and the node's {home} overlap: pass another --node-dir")
    current = os.path.join(home, "current")
    if os.path.lexists(current) and not os.path.islink(current):
        raise InstallError(f"{current} exists and is not a link: remove it or pass another --node-dir")
    release = os.path.join("releases", bundle_id(src))
    return BundlePlan(src, node_dir, release, copy=not os.path.isdir(os.path.join(home, release)))


def install_bundle(prefix: str, plan: BundlePlan) -> list[str]:
    """Copy the bundle (unless that release is there) and point `current` at
    it; returns the other releases left on the node."""
    home = under(prefix, node_realpath(prefix, plan.node_dir))
    dest = os.path.join(home, plan.release)
    if plan.copy:
        releases = os.path.dirname(dest)
        os.makedirs(releases, exist_ok=True)
        for name in os.listdir(releases):  # copies an interrupted install left
            if ".tmp-" in name:
                shutil.rmtree(os.path.join(releases, name), ignore_errors=True)
        tmp = f"{dest}.tmp-{os.getpid()}"
        shutil.copytree(plan.src, tmp, symlinks=True)
        os.rename(tmp, dest)
    _symlink_atomic(plan.release, os.path.join(home, "current"))
    releases = os.path.join(home, "releases")
    return sorted(os.path.join(plan.node_dir, "releases", r) for r in os.listdir(releases)
                  if r != os.path.basename(plan.release) and ".tmp-" not in r)


# ------------------------------------------------------------------ command


def runtime_class(name: str) -> str:
    return ("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n"
            f"  name: {name}\nhandler: {name}\n")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def run(args) -> int:
    """The `install` command."""
    try:
        return _run(args)
    except InstallError as err:
        _say(f"ringfence install: {err}")
        return 1
    except OSError as err:
        _say(f"ringfence install: {err}")
        return 1


def _run(args) -> int:
    name = args.runtime_name
    if not re.fullmatch(_DNS_LABEL, name):
        raise InstallError(f"--runtime-name {name!r}: a RuntimeClass handler must be a DNS label "
                           "(lower-case letters, digits and '-', at most 63)")
    prefix = args.root_prefix
    if not os.path.isdir(prefix):
        raise InstallError(f"--root-prefix {prefix}: no such directory (mount the node's root there)")
    config_file = under(prefix, node_realpath(prefix, args.containerd_config))
    if not args.apply:
        return _print(args, config_file, name)

    # Plan everything first: nothing is written unless every step can be done.
    plan = plan_config(config_file, read_config(config_file), name)
    bundle = plan_bundle(prefix, args.bundle, args.node_dir) if args.bundle else None
    if args.scripts_dir:
        scripts_dir = args.scripts_dir
    elif bundle:
        scripts_dir = os.path.join(args.node_dir, "current", "bin")
    else:
        import sysconfig

        scripts_dir = sysconfig.get_path("scripts")
    links = [] if args.no_links else plan_links(prefix, args.shim_dir, scripts_dir, need_target=not bundle)

    if bundle:
        others = install_bundle(prefix, bundle)
        where = os.path.join(bundle.node_dir, bundle.release)
        _say(f"{'copied ringfence to' if bundle.copy else 'ringfence is already at'} {where} "
             f"(as seen from the node; {os.path.join(bundle.node_dir, 'current')} points there)")
        if others:
            _say(f"older releases left in place (running shims may use them): {', '.join(others)}")
        if links:  # the bundle is there now: check the links' targets
            plan_links(prefix, args.shim_dir, scripts_dir)
    make_links(links)
    for link in links:
        verb = {"create": "linked", "replace": "relinked", "keep": "already linked",
                "present": "already installed:"}[link.action]
        _say(f"{verb} {link.link}" + ("" if link.action == "present" else f" -> {link.target}"))
    for note in plan.notes:
        _say(note)
    if plan.new_text is not None:
        backup = write_config(plan)
        _say(f"registered runtime {name!r} ({RUNTIME_TYPE}) in {config_file}"
             + (f" (the original is kept as {backup})" if backup else ""))
    if args.no_links:
        path_step = f"put {SHIM} on containerd's PATH (or in the directory of its binary)"
    else:
        path_step = f"{SHIM} is in {args.shim_dir}: make sure that is on containerd's PATH"
    if plan.new_text is not None:
        restart = "restart containerd so it reads its new config: systemctl restart containerd"
    else:
        restart = "restart containerd if it has not been since the runtime was registered"
    print(f"""
Next:
  1. {path_step};
  2. {restart}
     (on the node; containers already running keep running);
  3. tell Kubernetes about the runtime (once per cluster) with this RuntimeClass,
     and name it in a pod's spec.runtimeClassName:

{runtime_class(name)}""", end="")
    return 0


def _print(args, config_file: str, name: str) -> int:
    """Print mode: what --apply would append to the config, as TOML (notes on stderr)."""
    try:
        plan = plan_config(config_file, read_config(config_file), name)
        body = plan.addition
        there = plan.new_text is None
    except InstallError as err:
        _say(f"ringfence install: note: {err}")
        body, there = stanza(name, 2), False
    if there:
        print(f"# ringfence: {args.containerd_config} has this already.")
    else:
        print(f"# ringfence: add this to {args.containerd_config}, then restart containerd.")
    print(f"# `ringfence install --apply` does it, and links {SHIM} and {CLI} into {args.shim_dir}.")
    print(body, end="")
    return 0
