"""A private containerd for tests and benchmarks, and a busybox image for it.

Nothing here is a pytest fixture (tests/test_shim.py and tests/test_ttrpc.py
wrap it):

- ``private_containerd(cri=False)``: a context manager that starts Debian's
  ``/usr/bin/containerd`` with its own root, state and sockets under a fresh
  directory in /tmp, with the installed ``containerd-shim-ringfence-v1`` first
  on its PATH, and yields a :class:`Containerd`; on exit it stops containerd
  and removes everything the daemon, its shims and their containers left.
  With ``cri=True`` the CRI plugin serves on the same socket, with the local
  pause image (``pause_image()``) imported into CRI's namespace ``k8s.io`` as
  its ``sandbox_image``, so nothing is ever pulled.
- ``busybox_image()``: an OCI image archive (busybox and its common applets)
  built locally from the static busybox and cached; ``Containerd.import_image``
  loads and unpacks it.  ``pause_image()``: the same for tests/cri/pause.c.
- ``Containerd.leftovers()``: what a finished container left behind
  (processes, mounts, bundle files, cgroups, shim sockets; with CRI also its
  sandbox and container records, netns mounts, veths on the bridge, IPAM
  reservations).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sysconfig
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Iterable, Iterator

import harness

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
SHIM = "containerd-shim-ringfence-v1"
RINGFENCE_RUNTIME = "io.containerd.ringfence.v1"
RUNC_RUNTIME = "io.containerd.runc.v2"
RUNTIMES = {"runc": RUNC_RUNTIME, "ringfence": RINGFENCE_RUNTIME}  # short name -> runtime type
CNI_BIN_DIR = "/usr/lib/cni"  # Debian package containernetworking-plugins
IMAGE_NAME = "localhost/ringfence/busybox:latest"
PAUSE_IMAGE_NAME = "localhost/ringfence/pause:latest"  # the CRI sandbox_image
PAUSE_SOURCE = harness.TESTS_DIR / "cri" / "pause.c"
CRI_NAMESPACE = "k8s.io"  # containerd's CRI plugin keeps everything in this namespace
CRI_PLUGIN_DIR = "io.containerd.grpc.v1.cri"  # its folder under root and under state
TASK_DIR = "io.containerd.runtime.v2.task"
RUN_DIR = Path("/run/containerd")
SHIM_SOCKET_DIR = RUN_DIR / "s"  # where containerd's shim helpers put shim sockets
CTR_TIMEOUT = 60.0


class ContainerdError(Exception):
    """The private containerd, or the image for it, could not be set up."""


def shim_dir() -> Path:
    """The directory holding the installed ``containerd-shim-ringfence-v1``
    (the interpreter's scripts directory, where ``pip install .`` puts it)."""
    scripts = Path(sysconfig.get_path("scripts"))
    if not os.access(scripts / SHIM, os.X_OK):
        raise ContainerdError(f"{SHIM} is not installed in {scripts} "
                              "(run `python3 -m pip install .` in the repository)")
    return scripts


# ------------------------------------------------------------------- containerd


class Containerd:
    """A running private containerd: its paths, a ``ctr`` runner and checks."""

    def __init__(self, base: Path, namespace: str, cri: bool = False, bridge: str = ""):
        self.base = base
        self.root = base / "root"
        self.state = base / "state"
        self.socket = str(base / "containerd.sock")
        self.log = base / "containerd.log"
        self.fifo_dir = base / "fifo"  # for ctr's --fifo-dir (default: /run/containerd/fifo)
        self.namespace = namespace
        self.cri = cri
        self.cni_dir = base / "cni"  # CNI network config (net.d) and IPAM state (ipam)
        self.bridge = bridge  # the CNI bridge's interface name (with cri)
        self.proc: subprocess.Popen | None = None

    @property
    def task_dir(self) -> Path:
        """Where containerd keeps this namespace's task bundles."""
        return self.state / TASK_DIR / self.namespace

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The containerd namespaces this containerd's users work in: ctr's,
        and with CRI also k8s.io."""
        return (self.namespace, CRI_NAMESPACE) if self.cri else (self.namespace,)

    def ctr_argv(self, *args: str, namespace: str | None = None) -> list[str]:
        """The ``ctr`` command line for args, against this containerd and
        namespace (default: ctr's own)."""
        return [CTR, "--address", self.socket, "--namespace", namespace or self.namespace, *args]

    def ctr(self, *args: str, timeout: float = CTR_TIMEOUT, check: bool = False,
            input: bytes | None = None, namespace: str | None = None) -> subprocess.CompletedProcess:
        """Run ``ctr args...`` with a time limit; stdout/stderr as text.

        Raises subprocess.TimeoutExpired (the process group killed) past
        `timeout`, and ContainerdError on a non-zero exit if `check`."""
        proc = harness.run(self.ctr_argv(*args, namespace=namespace), timeout=timeout, input=input)
        result = subprocess.CompletedProcess(proc.args, proc.returncode,
                                             proc.stdout.decode(errors="replace"),
                                             proc.stderr.decode(errors="replace"))
        if check and result.returncode != 0:
            raise ContainerdError(f"`ctr {' '.join(args)}` exited {result.returncode}:\n"
                                  f"{result.stdout}{result.stderr}")
        return result

    def import_image(self, archive: Path, namespace: str | None = None) -> None:
        """Import an OCI archive from :func:`busybox_image` (as IMAGE_NAME) or
        :func:`pause_image` and unpack it for the default (overlayfs)
        snapshotter, into `namespace` (default: ctr's; CRI_NAMESPACE for CRI)."""
        self.ctr("images", "import", str(archive), check=True, namespace=namespace)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of containerd's own log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ---------------------------------------------------------- leftovers

    def _cgroup_dirs(self) -> list[Path]:
        """Cgroup directories below /<namespace> (ctr's default cgroupsPath is
        /<namespace>/<id>; CRI users put pods there with cgroup_parent
        "/<namespace>") in every mounted cgroup hierarchy, deepest first."""
        found = []
        for mount in _mounts():
            if mount.fstype in ("cgroup", "cgroup2"):
                top = Path(mount.point) / self.namespace
                if top.is_dir():
                    found.extend(Path(p) for p, _, _ in os.walk(top))
        return sorted(set(found), key=lambda p: -len(p.parts))

    def _processes(self) -> dict[int, str]:
        """pid -> command line of the processes this containerd's shims and
        containers left: argv naming its socket or directory, members of its
        namespace's cgroups, and their descendants."""
        mine = (os.getpid(), self.proc.pid if self.proc else -1)
        found: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in mine:
                argv = _cmdline(int(entry))
                if self.socket in argv or str(self.base) in argv:
                    found[int(entry)] = argv
        for cgroup in self._cgroup_dirs():
            with contextlib.suppress(OSError):
                for line in (cgroup / "cgroup.procs").read_text().split():
                    found.setdefault(int(line), _cmdline(int(line)))
        for pid in list(found):
            for child in harness.descendants(pid):
                found.setdefault(child, _cmdline(child))
        return found

    def _mount_points(self) -> list[str]:
        """Mount points under this containerd's directory, deepest first."""
        points = {m.point for m in _mounts()
                  if m.point == str(self.base) or m.point.startswith(str(self.base) + "/")}
        return sorted(points, key=lambda p: -p.count("/"))

    def _runtime_roots(self) -> list[Path]:
        """Runtimes' state roots for this namespace (runc's /run/containerd/runc/<ns>)."""
        return [p for p in RUN_DIR.glob(f"*/{self.namespace}") if p.is_dir()]

    def _cri_records(self) -> list[Path]:
        """The CRI plugin's per-sandbox and per-container folders (under its
        root: metadata, status; under its state: /dev/shm, stdio FIFOs) and
        its pods' network namespace files (state/.../netns/cni-*)."""
        return sorted(p for top in (self.root, self.state)
                      for kind in ("sandboxes", "containers", "netns")
                      for p in (top / CRI_PLUGIN_DIR / kind).glob("*"))

    def _cri_runtime_state(self, ids: Iterable[str]) -> list[Path]:
        """Runtimes' state for `ids` in CRI's namespace: /run/containerd/*/k8s.io
        is shared by every containerd with CRI on the host, so only the given
        ids (and those with a bundle or CRI record here) are ours."""
        ids = set(ids) | {p.name for p in self._cri_records()}
        task_dir = self.state / TASK_DIR / CRI_NAMESPACE
        if task_dir.is_dir():
            ids.update(p.name for p in task_dir.iterdir())
        return sorted(p for i in ids for p in RUN_DIR.glob(f"*/{CRI_NAMESPACE}/{i}"))

    def _veths(self) -> list[str]:
        """Interfaces still enslaved to this containerd's CNI bridge (the host
        ends of pods' veth pairs)."""
        brif = Path("/sys/class/net", self.bridge, "brif") if self.bridge else None
        return sorted(os.listdir(brif)) if brif and brif.is_dir() else []

    def _ip_reservations(self) -> list[Path]:
        """host-local IPAM's address files (one per address in use) in this
        containerd's CNI state ("last_reserved_ip.*" and "lock" stay)."""
        return sorted(p for p in (self.cni_dir / "ipam").glob("*/*")
                      if p.name != "lock" and not p.name.startswith("last_reserved_ip"))

    def _control_sockets(self, ids: Iterable[str]) -> list[Path]:
        """Our sentries' control sockets for `ids` in this containerd's
        namespaces, at the path the installed shim gives them
        (ringfence.shim.service.control_path; none if it has no such function)."""
        try:
            from ringfence.shim.service import control_path
        except ImportError:
            return []
        paths = {Path(control_path(ns, i)) for ns in self.namespaces for i in ids}
        return sorted(p for p in paths if os.path.lexists(p))

    def _shim_sockets(self, ids: Iterable[str]) -> list[Path]:
        """Existing shim sockets at the path containerd's shim helpers use
        (/run/containerd/s/sha256(<address>/<namespace>/<id>)), for `ids` and
        for every id that still has a bundle, runtime state or CRI record, in
        each of this containerd's namespaces."""
        ids = set(ids)
        for folder in (*(self.state / TASK_DIR / ns for ns in self.namespaces),
                       *self._runtime_roots()):
            if folder.is_dir():
                ids.update(p.name for p in folder.iterdir())
        if self.cri:
            ids.update(p.name for p in self._cri_records())
        paths = [SHIM_SOCKET_DIR / hashlib.sha256(
            os.path.join(self.socket, ns, i).encode()).hexdigest()
            for ns in self.namespaces for i in ids]
        return [p for p in paths if os.path.lexists(p)]

    def leftovers(self, ids: Iterable[str] = ()) -> list[str]:
        """What this containerd's tasks left behind, one description per item:
        processes (other than containerd), mounts under its directory, entries
        in its namespaces' task-bundle folders and runtime state roots, cgroups
        below /<namespace>, shim sockets (see _shim_sockets) and our
        sentries' control sockets for `ids` (see _control_sockets).  With CRI
        also: CRI's sandbox and container folders, runtime state of `ids` in
        k8s.io, the bridge's veths and IPAM reservations.  (Netns bind mounts
        are under the state directory: netns_mounts_under_state_dir.)  Empty
        when everything was cleaned up."""
        ids = list(ids)
        found = [f"process {pid}: {argv}" for pid, argv in sorted(self._processes().items())]
        found += [f"mount {p}" for p in self._mount_points()]
        bundles = [self.state / TASK_DIR / ns for ns in self.namespaces]
        for folder, what in (*((b, "bundle") for b in bundles),
                             *((r, "runtime state") for r in self._runtime_roots())):
            if folder.is_dir():
                found += [f"{what} {p}" for p in sorted(folder.iterdir())]
        # the /<namespace> cgroups themselves stay, as with the system containerd
        found += [f"cgroup {p}" for p in self._cgroup_dirs() if p.name != self.namespace]
        found += [f"shim socket {p}" for p in self._shim_sockets(ids)]
        found += [f"sentry control socket {p}" for p in self._control_sockets(ids)]
        if self.cri:
            found += [f"runtime state {p}" for p in self._cri_runtime_state(ids)]
            found += [f"CRI record {p}" for p in self._cri_records()]
            found += [f"veth {v} on bridge {self.bridge}" for v in self._veths()]
            found += [f"IP reservation {p}" for p in self._ip_reservations()]
        return found

    def wait_clean(self, ids: Iterable[str] = (), timeout: float = 5.0) -> list[str]:
        """Poll :meth:`leftovers` until it is empty or `timeout` passes (shims
        exit a moment after their last task is deleted); returns the last list."""
        ids = list(ids)
        deadline = time.monotonic() + timeout
        while (found := self.leftovers(ids)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    def reap(self, ids: Iterable[str] = ()) -> list[str]:
        """Remove every leftover by force (SIGKILL by pid, lazy unmount, delete
        bundle folders, runtime state, cgroups and shim sockets); returns what
        it found."""
        ids = list(ids)
        found = self.leftovers(ids)
        sockets = self._shim_sockets(ids) + self._control_sockets(ids)
        cri_state = self._cri_runtime_state(ids) if self.cri else []
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for point in self._mount_points():
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)
        # never delete through a mount (it might be a bind mount of host files)
        if not self._mount_points():
            for ns in self.namespaces:
                task_dir = self.state / TASK_DIR / ns
                if task_dir.is_dir():
                    for entry in task_dir.iterdir():
                        shutil.rmtree(entry, ignore_errors=True)
        for root in [*self._runtime_roots(), *cri_state]:
            shutil.rmtree(root, ignore_errors=True)
        for veth in self._veths():  # a pod's veth pair goes with either end
            subprocess.run(["ip", "link", "delete", veth], capture_output=True, timeout=30)
        deadline = time.monotonic() + 5
        for cgroup in self._cgroup_dirs():  # deepest first; busy until the killed processes are gone
            while os.path.isdir(cgroup):
                try:
                    cgroup.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        for sock in sockets:
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
        return found

    def stop(self) -> None:
        """Stop containerd (SIGTERM by pid, SIGKILL after 10 s)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _cmdline(pid: int) -> str:
    """The process's argv joined by spaces, else its [comm] (kernel threads,
    zombies, processes that cleared their argv)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        return argv.decode(errors="replace") or f"[{Path(f'/proc/{pid}/comm').read_text().strip()}]"
    except OSError:
        return ""


class _Mount:
    __slots__ = ("point", "fstype")

    def __init__(self, point: str, fstype: str):
        self.point, self.fstype = point, fstype


def _mounts() -> list[_Mount]:
    """Mount points and filesystem types from /proc/self/mountinfo."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        point = fields[4].encode().decode("unicode_escape")  # \040 etc.
        mounts.append(_Mount(point, fields[sep + 1]))
    return mounts


def _config(c: Containerd, cri: bool, cni_dir: Path, bridge: str) -> str:
    """containerd's config.toml (version 2); with `cri`, also writes the CNI
    network config into cni_dir/net.d.  CRI's sandbox_image is the local
    pause image (imported by private_containerd), and pods' network
    namespaces are bind-mounted under the state directory rather than
    /var/run/netns, so they are this containerd's own and its leftovers
    check sees them."""
    config = textwrap.dedent(f"""\
        version = 2
        root = "{c.root}"
        state = "{c.state}"
        {"" if cri else 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'}
        [grpc]
          address = "{c.socket}"
        """)
    if not cri:
        return config
    cri_table = 'plugins."io.containerd.grpc.v1.cri"'
    config += textwrap.dedent(f"""\
        [{cri_table}]
          restrict_oom_score_adj = true
          sandbox_image = "{PAUSE_IMAGE_NAME}"
          netns_mounts_under_state_dir = true
        [{cri_table}.containerd]
          default_runtime_name = "runc"
        [{cri_table}.containerd.runtimes.runc]
          runtime_type = "{RUNC_RUNTIME}"
        [{cri_table}.containerd.runtimes.ringfence]
          runtime_type = "{RINGFENCE_RUNTIME}"
        [{cri_table}.cni]
          bin_dir = "{CNI_BIN_DIR}"
          conf_dir = "{cni_dir}/net.d"
        """)
    cni_dir.joinpath("net.d").mkdir(parents=True)
    # No gateway and no masquerading: the bridge gets no host address and
    # route, so nothing reaches the host's network and the fixed subnet cannot
    # clash with another instance's.
    cni_dir.joinpath("net.d", "10-ringfence-test.conflist").write_text(json.dumps({
        "cniVersion": "0.4.0",
        "name": "ringfence-test",
        "plugins": [{
            "type": "bridge", "bridge": bridge, "isGateway": False, "ipMasq": False,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.0.0/24"}]],
                     "dataDir": str(cni_dir / "ipam")},
        }],
    }, indent=2))
    return config


@contextlib.contextmanager
def private_containerd(cri: bool = False, start_timeout: float = 20.0) -> Iterator[Containerd]:
    """Start a private containerd and yield it; stop it and clean up on exit.

    Its root, state, gRPC socket (``<socket>``) and ttrpc socket
    (``<socket>.ttrpc``) live in a fresh directory in /tmp; ctr calls use a
    namespace unique to it.  Its PATH starts with the directory of the
    installed ringfence shim.  With `cri`, the CRI plugin runs with
    ``restrict_oom_score_adj``, runtimes ``runc`` and ``ringfence``
    (io.containerd.ringfence.v1), a CNI bridge network (no gateway, no
    masquerading, host-local IPAM on 10.213.0.0/24) whose plugins are in
    /usr/lib/cni, and the local pause image (PAUSE_IMAGE_NAME, imported into
    k8s.io) as its sandbox image; CRI serves runtime.v1 and v1alpha2 on the
    same socket as containerd's own API."""
    for tool in (CONTAINERD, CTR):
        if not os.access(tool, os.X_OK):
            raise ContainerdError(f"{tool} is missing: install Debian's `containerd` package "
                                  "(.ci/setup does)")
    if os.geteuid() != 0:
        raise ContainerdError("a private containerd needs root")
    if cri and not os.access(os.path.join(CNI_BIN_DIR, "bridge"), os.X_OK):
        raise ContainerdError(f"no CNI plugins in {CNI_BIN_DIR}: install Debian's "
                              "`containernetworking-plugins` package")
    path = f"{shim_dir()}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    base = Path(tempfile.mkdtemp(prefix="rf-ctd-", dir="/tmp"))
    tag = hashlib.sha256(base.name.encode()).hexdigest()[:10]
    bridge = f"rf{tag}"  # Linux interface names are at most 15 bytes
    c = Containerd(base, namespace=f"rftest-{tag}", cri=cri, bridge=bridge if cri else "")
    try:
        config = base / "config.toml"
        config.write_text(_config(c, cri, base / "cni", bridge))
        with open(c.log, "wb") as log:
            c.proc = subprocess.Popen([CONTAINERD, "--config", str(config)],
                                      stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env={**os.environ, "PATH": path})
        deadline = time.monotonic() + start_timeout
        while not (os.path.exists(c.socket) and os.path.exists(c.socket + ".ttrpc")):
            if c.proc.poll() is not None or time.monotonic() > deadline:
                raise ContainerdError(f"private containerd did not start:\n{c.log_tail()}")
            time.sleep(0.05)
        if cri:
            c.import_image(pause_image(), namespace=CRI_NAMESPACE)
        yield c
    finally:
        try:
            c.stop()
            c.reap()  # with CRI, also the runtime state of the ids in CRI's records
        finally:
            if os.path.exists(f"/sys/class/net/{bridge}"):
                subprocess.run(["ip", "link", "delete", bridge], capture_output=True, timeout=30)
            if still := c._mount_points():  # see reap: never delete through a mount
                raise ContainerdError(f"left {base} in place: still mounted: {still}")
            shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------- the image

APPLETS = ("sh echo cat ls sleep true false ps top id env kill wc head tr printf mkdir rm "
           "touch tty stty uname hostname seq date test").split()
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": b"root:x:0:\nnobody:x:65534:\n",
}
DIRS = {"bin": 0o755, "etc": 0o755, "root": 0o700, "tmp": 0o1777,
        "dev": 0o755, "proc": 0o755, "sys": 0o755}
# Every archive member gets this time, so the same busybox gives the same digests.
EPOCH = 1_700_000_000
# Part of the cache key: change it whenever the recipe above changes.
RECIPE = json.dumps([APPLETS, PATH_ENV, sorted(FILES.items(), key=str), sorted(DIRS.items()),
                     IMAGE_NAME, EPOCH], default=str)


def _tar(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in entries:
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes, mode: int, data: bytes | None = None,
           link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info, data


def _layer(busybox: bytes) -> bytes:
    """The rootfs layer: directories, bin/busybox, applet symlinks, etc files."""
    entries = [_entry(d, tarfile.DIRTYPE, mode) for d, mode in DIRS.items()]
    entries.append(_entry("bin/busybox", tarfile.REGTYPE, 0o755, busybox))
    entries += [_entry(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox") for a in APPLETS]
    entries += [_entry(name, tarfile.REGTYPE, 0o644, data) for name, data in FILES.items()]
    return _tar(entries)


def _blob(data: bytes, media_type: str, blobs: dict[str, bytes]) -> dict:
    """Record `data` as a blob; return its OCI descriptor."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_oci_archive(busybox: bytes) -> bytes:
    """An OCI image layout tarball (oci-layout, index.json, blobs) holding one
    linux/amd64 image named IMAGE_NAME whose single uncompressed layer is the
    busybox rootfs; Env PATH, Cmd ["sh"]."""
    return _oci_archive(IMAGE_NAME, _layer(busybox), {"Env": [PATH_ENV], "Cmd": ["sh"]})


def _oci_archive(name: str, layer: bytes, image_config: dict) -> bytes:
    """An OCI image layout tarball holding one linux/amd64 image `name` with
    one uncompressed `layer` and `image_config` (Env, Cmd, Entrypoint...)."""
    blobs: dict[str, bytes] = {}
    config = {
        "architecture": "amd64", "os": "linux",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH)),
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "tests/containerd_env.py"}],
    }
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _blob(_json(config), "application/vnd.oci.image.config.v1+json", blobs),
        "layers": [_blob(layer, "application/vnd.oci.image.layer.v1.tar", blobs)],
    }
    descriptor = _blob(_json(manifest), manifest["mediaType"], blobs)
    descriptor["platform"] = {"architecture": "amd64", "os": "linux"}
    descriptor["annotations"] = {"io.containerd.image.name": name,
                                 "org.opencontainers.image.ref.name": name.rpartition(":")[2]}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [descriptor]}
    return _tar([
        _entry("oci-layout", tarfile.REGTYPE, 0o644, _json({"imageLayoutVersion": "1.0.0"})),
        _entry("index.json", tarfile.REGTYPE, 0o644, _json(index)),
        _entry("blobs", tarfile.DIRTYPE, 0o755),
        _entry("blobs/sha256", tarfile.DIRTYPE, 0o755),
        *(_entry(f"blobs/sha256/{d.removeprefix('sha256:')}", tarfile.REGTYPE, 0o644, data)
          for d, data in blobs.items()),
    ])


def build_pause_archive(pause: bytes) -> bytes:
    """The pause image: /pause (a static binary) and the directories a
    runtime mounts over (dev, proc, sys, etc); Entrypoint ["/pause"], no Cmd."""
    entries = [_entry(d, tarfile.DIRTYPE, 0o755) for d in ("dev", "etc", "proc", "sys")]
    entries.append(_entry("pause", tarfile.REGTYPE, 0o755, pause))
    return _oci_archive(PAUSE_IMAGE_NAME, _tar(entries), {"Entrypoint": ["/pause"]})


def pause_image() -> Path:
    """The pause OCI archive, from tests/cri/pause.c compiled statically
    (harness.compile_c) and cached like busybox_image()."""
    pause = harness.compile_c(PAUSE_SOURCE, "cri-pause").read_bytes()
    key = hashlib.sha256(pause + PAUSE_IMAGE_NAME.encode() + str(EPOCH).encode()).hexdigest()[:16]
    archive = harness.cache_dir() / f"pause-oci-{key}.tar"
    if not archive.exists():
        tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
        tmp.write_bytes(build_pause_archive(pause))
        os.replace(tmp, archive)
    return archive


def busybox_image() -> Path:
    """The busybox OCI archive, built from the static busybox (harness.find_busybox)
    and cached in harness.cache_dir(), keyed by the binary's and the recipe's hash."""
    busybox = harness.find_busybox().read_bytes()
    key = hashlib.sha256(busybox + RECIPE.encode()).hexdigest()[:16]
    archive = harness.cache_dir() / f"busybox-oci-{key}.tar"
    if not archive.exists():
        tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
        tmp.write_bytes(build_oci_archive(busybox))
        os.replace(tmp, archive)
    return archive
