"""`ringfence install` (ringfence/install.py) and the self-contained bundle the
installer image carries (deploy/bundle.py).

- print mode: the stanza, as TOML that parses;
- --apply on containerd configs: missing, empty, version 2 with comments and
  other runtimes (kept byte for byte), already installed (unchanged),
  malformed or without a `version` (refused, untouched), version 1 and 3;
- a private containerd (Debian's) loads an applied config and its CRI plugin
  lists the runtime;
- --root-prefix/--shim-dir links that run, and --bundle's releases;
- a real bundle built by deploy/bundle.py runs in a root holding nothing but
  it and a static busybox (no python, no glibc), and containerd runs a
  container through the bundle's shim.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest

import containerd_env as ce
import harness

RUNTIME_TYPE = "io.containerd.ringfence.v1"
CRI = "io.containerd.grpc.v1.cri"
REPO = harness.TESTS_DIR.parent
SCRIPTS = Path(sysconfig.get_path("scripts"))
DEBIAN_PYTHON = "/usr/bin/python3"  # what deploy/bundle.py is built with (as in the Dockerfile)

V2_CONFIG = """\
# containerd config of a node: comments, odd spacing, other runtimes
version = 2
oom_score = -999   # keep me

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"   # the default
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
      [plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.kata]
        runtime_type = 'io.containerd.kata.v2'
# a trailing comment, and no newline at the end"""


def install(*args: str, check: bool | None = None) -> subprocess.CompletedProcess:
    """Run `ringfence install ARGS` (the installed console script)."""
    ringfence = harness.find_ringfence()
    if not ringfence:
        pytest.fail("the `ringfence` console script is not installed", pytrace=False)
    proc = subprocess.run([ringfence, "install", *args], capture_output=True, text=True, timeout=120)
    if check is True and proc.returncode != 0:
        pytest.fail(f"ringfence install {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}",
                    pytrace=False)
    return proc


def apply(config: Path, *args: str) -> subprocess.CompletedProcess:
    return install("--apply", "--no-links", "--containerd-config", str(config), *args)


def runtimes(parsed: dict, plugin: str = CRI) -> dict:
    return parsed["plugins"][plugin]["containerd"]["runtimes"]


def files_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


# ----------------------------------------------------------- print mode


def test_print_shows_a_stanza_that_parses(tmp_path):
    proc = install("--containerd-config", str(tmp_path / "none.toml"), check=True)
    parsed = tomllib.loads(proc.stdout)
    assert parsed["version"] == 2
    assert runtimes(parsed)["ringfence"] == {"runtime_type": RUNTIME_TYPE}
    assert "restart containerd" in proc.stdout

    config = tmp_path / "config.toml"
    config.write_text(V2_CONFIG)
    proc = install("--containerd-config", str(config), "--runtime-name", "sandboxed", check=True)
    parsed = tomllib.loads(proc.stdout)  # only the table: it goes into a config with a version
    assert runtimes(parsed) == {"sandboxed": {"runtime_type": RUNTIME_TYPE}}
    assert config.read_text() == V2_CONFIG  # print mode changes nothing
    assert files_in(tmp_path) == ["config.toml"]


def test_print_for_a_version_3_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("version = 3\n")
    parsed = tomllib.loads(install("--containerd-config", str(config), check=True).stdout)
    assert runtimes(parsed, "io.containerd.cri.v1.runtime")["ringfence"]["runtime_type"] == RUNTIME_TYPE


# ---------------------------------------------------------------- --apply


def test_apply_creates_a_missing_config(tmp_path):
    config = tmp_path / "etc" / "containerd" / "config.toml"
    proc = apply(config)
    assert proc.returncode == 0, proc.stderr
    parsed = tomllib.loads(config.read_text())
    assert parsed["version"] == 2
    # naming any runtime replaces containerd's built-in list: runc is kept
    assert runtimes(parsed) == {"runc": {"runtime_type": "io.containerd.runc.v2"},
                                "ringfence": {"runtime_type": RUNTIME_TYPE}}
    assert "restart containerd" in proc.stdout
    assert files_in(config.parent) == ["config.toml"]  # nothing to back up


def test_apply_to_an_empty_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("# only a comment\n")
    proc = apply(config)
    assert proc.returncode == 0, proc.stderr
    text = config.read_text()
    assert text.startswith("# only a comment\n")
    parsed = tomllib.loads(text)
    assert parsed["version"] == 2 and set(runtimes(parsed)) == {"runc", "ringfence"}
    assert (tmp_path / "config.toml.bak").read_text() == "# only a comment\n"


def test_apply_keeps_the_rest_byte_for_byte(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(V2_CONFIG)
    config.chmod(0o600)
    old = tomllib.loads(V2_CONFIG)
    proc = apply(config)
    assert proc.returncode == 0, proc.stderr
    text = config.read_text()
    assert text.startswith(V2_CONFIG + "\n")  # the original, then a newline it lacked
    new = tomllib.loads(text)
    assert runtimes(new).pop("ringfence") == {"runtime_type": RUNTIME_TYPE}
    assert new == old  # runc and kata untouched, and nothing else added
    assert text.count("runtimes.ringfence]") == 1
    assert (config.stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "config.toml.bak").read_text() == V2_CONFIG
    assert files_in(tmp_path) == ["config.toml", "config.toml.bak"]  # no temporary file left
    assert "registered runtime 'ringfence'" in proc.stderr


def test_apply_twice_leaves_one_stanza(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(V2_CONFIG)
    assert apply(config).returncode == 0
    first = config.read_bytes()
    inode = config.stat().st_ino
    proc = apply(config)
    assert proc.returncode == 0, proc.stderr
    assert "already registers runtime 'ringfence'" in proc.stderr
    assert config.read_bytes() == first and config.stat().st_ino == inode  # not even rewritten
    assert first.count(b"runtimes.ringfence]") == 1
    assert (tmp_path / "config.toml.bak").read_text() == V2_CONFIG  # the first original

    # a second runtime name: a second table, and the backup is still the first original
    assert apply(config, "--runtime-name", "ringfence-debug").returncode == 0
    assert set(runtimes(tomllib.loads(config.read_text()))) == {"runc", "kata", "ringfence",
                                                               "ringfence-debug"}
    assert (tmp_path / "config.toml.bak").read_text() == V2_CONFIG


@pytest.mark.parametrize("text, message", [
    ('version = 2\n[plugins."io.containerd.grpc.v1.cri"\n', "does not parse as TOML"),
    ("version = 2\nroot = \n", "does not parse as TOML"),
    (b"version = 2\n# latin-1 \xe9\n", "does not parse as TOML (not UTF-8"),
    # no version line: containerd reads it as version 1
    ('[plugins.cri.containerd]\n  snapshotter = "overlayfs"\n', "no `version` line"),
    ('disabled_plugins = ["cri"]\n', "version 1 config"),
    ("version = 4\n", "version 4"),
    # a runtime of that name already, of another type
    (f'version = 2\n[plugins."{CRI}".containerd.runtimes.ringfence]\n  runtime_type = "io.containerd.runc.v2"\n',
     "already has a runtime named 'ringfence'"),
    # an inline table a new [table] cannot extend
    (f'version = 2\n[plugins."{CRI}".containerd]\n'
     '  runtimes = { runc = { runtime_type = "io.containerd.runc.v2" } }\n',
     "add this by hand"),
])
def test_apply_refuses_and_leaves_the_file_alone(tmp_path, text, message):
    config = tmp_path / "config.toml"
    data = text if isinstance(text, bytes) else text.encode()
    config.write_bytes(data)
    proc = apply(config)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert "not changed" in proc.stderr
    assert config.read_bytes() == data
    assert files_in(tmp_path) == ["config.toml"]


def test_apply_to_version_1_and_3_configs(tmp_path):
    v1 = tmp_path / "v1.toml"
    v1.write_text("version = 1\n[plugins.cri.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n")
    proc = apply(v1)
    assert proc.returncode == 0, proc.stderr
    assert "version 1 config" in proc.stderr
    assert runtimes(tomllib.loads(v1.read_text()), "cri")["ringfence"]["runtime_type"] == RUNTIME_TYPE

    v3 = tmp_path / "v3.toml"
    v3.write_text("version = 3\n")
    assert apply(v3).returncode == 0
    parsed = tomllib.loads(v3.read_text())
    assert runtimes(parsed, "io.containerd.cri.v1.runtime")["ringfence"]["runtime_type"] == RUNTIME_TYPE


def test_apply_follows_a_symlinked_config_inside_the_root(tmp_path):
    root = tmp_path / "host"
    (root / "etc" / "containerd").mkdir(parents=True)
    (root / "srv").mkdir()
    (root / "srv" / "containerd.toml").write_text("version = 2\n")
    (root / "etc" / "containerd" / "config.toml").symlink_to("/srv/containerd.toml")  # the node's path
    proc = install("--apply", "--no-links", "--root-prefix", str(root))
    assert proc.returncode == 0, proc.stderr
    assert (root / "etc" / "containerd" / "config.toml").is_symlink()
    assert "ringfence" in runtimes(tomllib.loads((root / "srv" / "containerd.toml").read_text()))


def test_bad_runtime_name_is_refused(tmp_path):
    proc = apply(tmp_path / "config.toml", "--runtime-name", "Not_A_Label")
    assert proc.returncode == 1 and "DNS label" in proc.stderr
    assert not (tmp_path / "config.toml").exists()


# ---------------------------------------------------- containerd reads it


def _cri_status_info(socket: str) -> dict:
    """CRI RuntimeService/Status(verbose) of the containerd at `socket`: its
    info map (the generated CRI module has no Status, so the messages are
    encoded by hand: StatusRequest{verbose=1}; StatusResponse.info is field 2,
    a map<string, string>)."""
    import grpc

    def varint(buf: bytes, i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = buf[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            if key & 7 == 0:
                value, i = varint(buf, i)
            elif key & 7 == 2:
                n, i = varint(buf, i)
                value, i = buf[i:i + n], i + n
            else:
                raise ValueError(f"wire type {key & 7}")
            yield key >> 3, value

    with grpc.insecure_channel(f"unix://{socket}") as channel:
        status = channel.unary_unary("/runtime.v1.RuntimeService/Status",
                                     request_serializer=lambda b: b, response_deserializer=lambda b: b)
        raw = status(b"\x08\x01", timeout=20)
    info = {}
    for number, entry in fields(raw):
        if number == 2:
            kv = dict(fields(entry))
            info[kv[1].decode()] = kv[2].decode()
    return info


@contextlib.contextmanager
def containerd_with(config: Path, base: Path):
    """Debian's containerd running on `config` (its root, state and socket in `base`)."""
    socket = base / "c.sock"
    log = open(base / "containerd.log", "wb")
    proc = subprocess.Popen([ce.CONTAINERD, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("containerd did not start:\n" + (base / "containerd.log").read_text()[-3000:],
                            pytrace=False)
            time.sleep(0.05)
        yield str(socket)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.parametrize("version", [2, 1])
def test_containerd_loads_the_applied_config(tmp_path, version):
    """A node-like config that names no runtime (containerd's built-in runc),
    with the stanza applied: the CRI plugin loads and lists both runtimes."""
    base = Path(os.path.realpath(tmp_path))
    cri_table = "plugins.cri" if version == 1 else f'plugins."{CRI}"'
    config = base / "config.toml"
    config.write_text(f"""\
version = {version}
# a private containerd: everything under {base}
root = "{base}/root"
state = "{base}/state"
[grpc]
  address = "{base}/c.sock"
[{cri_table}.cni]
  conf_dir = "{base}/net.d"
""")
    assert apply(config).returncode == 0
    with containerd_with(config, base) as socket:
        info = _cri_status_info(socket)
    log = (base / "containerd.log").read_text()
    assert "failed to load plugin io.containerd.grpc.v1.cri" not in log, log[-3000:]
    cri = json.loads(info["config"])["containerd"]
    assert {k: v["runtimeType"] for k, v in cri["runtimes"].items()} == {
        "runc": "io.containerd.runc.v2", "ringfence": RUNTIME_TYPE}
    assert cri["defaultRuntimeName"] == "runc"


# ------------------------------------------------------- links, bundles


def wrapper(path: Path, target: str) -> None:
    """An executable at `path` that runs `target` (a stand-in for ringfence
    installed inside a root: a node's own path, not this machine's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
    path.chmod(0o755)


def assert_runs(root: Path, shim_dir: str) -> None:
    """The links in the root run ringfence and its shim (from here: they are
    relative, so they resolve inside the root as on the node)."""
    bin_dir = root / shim_dir.lstrip("/")
    out = subprocess.run([bin_dir / "ringfence", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ringfence version "), out
    out = subprocess.run([bin_dir / "containerd-shim-ringfence-v1", "-v"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "containerd-shim-ringfence-v1: ringfence " in out.stdout, out
    for name in ("ringfence", "containerd-shim-ringfence-v1"):
        assert not os.readlink(bin_dir / name).startswith("/")


def test_links_on_this_machine(tmp_path):
    """Without --root-prefix the links are absolute, to this Python's console
    scripts by default; a shim directory that holds the scripts is left as it is."""
    config = tmp_path / "config.toml"
    proc = install("--apply", "--shim-dir", str(tmp_path / "bin"), "--containerd-config", str(config))
    assert proc.returncode == 0, proc.stderr
    for name in ("ringfence", "containerd-shim-ringfence-v1"):
        assert os.readlink(tmp_path / "bin" / name) == str(SCRIPTS / name)
    out = subprocess.run([tmp_path / "bin" / "ringfence", "-v"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ringfence version "), out

    scripts = tmp_path / "scripts"
    for name in ("ringfence", "containerd-shim-ringfence-v1"):
        wrapper(scripts / name, str(SCRIPTS / name))
    before = {p.name: p.read_bytes() for p in scripts.iterdir()}
    proc = install("--apply", "--shim-dir", str(scripts), "--scripts-dir", str(scripts),
                   "--containerd-config", str(config))
    assert proc.returncode == 0 and "already installed" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in scripts.iterdir()} == before
    assert not any(p.is_symlink() for p in scripts.iterdir())


def test_links_into_a_root_prefix(tmp_path):
    root = tmp_path / "host"
    for name in ("ringfence", "containerd-shim-ringfence-v1"):
        wrapper(root / "opt" / "rf" / "bin" / name, str(SCRIPTS / name))
    args = ["--apply", "--root-prefix", str(root), "--scripts-dir", "/opt/rf/bin"]
    proc = install(*args, "--shim-dir", "/home/kubernetes/bin")
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(root / "home/kubernetes/bin/ringfence") == "../../../opt/rf/bin/ringfence"
    assert_runs(root, "/home/kubernetes/bin")
    config = root / "etc" / "containerd" / "config.toml"  # the default path, inside the root
    assert "ringfence" in runtimes(tomllib.loads(config.read_text()))

    again = install(*args, "--shim-dir", "/home/kubernetes/bin")
    assert again.returncode == 0 and "already linked" in again.stderr

    # a file of that name that is not ours is left alone, and nothing is done
    (root / "usr" / "local" / "bin").mkdir(parents=True)
    (root / "usr" / "local" / "bin" / "ringfence").write_text("someone else's\n")
    config_before = config.read_bytes()
    refused = install(*args)
    assert refused.returncode == 1 and "is not a link" in refused.stderr
    assert not (root / "usr/local/bin/containerd-shim-ringfence-v1").exists()
    assert config.read_bytes() == config_before

    # ringfence must be in the root already (or come with --bundle)
    missing = install("--apply", "--root-prefix", str(tmp_path / "empty-root"), "--no-links")
    assert missing.returncode == 1 and "--root-prefix" in missing.stderr
    (tmp_path / "empty-root").mkdir()
    missing = install("--apply", "--root-prefix", str(tmp_path / "empty-root"))
    assert missing.returncode == 1 and "is not an executable under" in missing.stderr
    assert not (tmp_path / "empty-root" / "etc").exists()


def test_bundle_releases(tmp_path):
    """--bundle copies the tree to NODE_DIR/releases/ID once, points
    NODE_DIR/current at it and the links at current/bin; a changed bundle is a
    new release, and the old one stays for the shims that still run it."""
    bundle = tmp_path / "bundle"
    for name in ("ringfence", "containerd-shim-ringfence-v1"):
        wrapper(bundle / "bin" / name, str(SCRIPTS / name))
    (bundle / "data").write_text("one\n")
    root = tmp_path / "host"
    root.mkdir()
    args = ["--apply", "--root-prefix", str(root), "--bundle", str(bundle)]
    proc = install(*args)
    assert proc.returncode == 0, proc.stderr
    current = root / "opt" / "ringfence" / "current"
    first = os.readlink(current)
    assert first.startswith("releases/0-")  # no ringfence dist-info in this stand-in: version 0
    assert (current / "data").read_text() == "one\n"
    assert os.readlink(root / "usr/local/bin/containerd-shim-ringfence-v1") == \
        "../../../opt/ringfence/current/bin/containerd-shim-ringfence-v1"
    assert_runs(root, "/usr/local/bin")

    again = install(*args)
    assert again.returncode == 0 and "ringfence is already at" in again.stderr
    assert os.readlink(current) == first

    (bundle / "data").write_text("two\n")
    third = install(*args)
    assert third.returncode == 0, third.stderr
    assert os.readlink(current) != first and (current / "data").read_text() == "two\n"
    assert sorted(os.listdir(root / "opt/ringfence/releases")) == sorted(
        [first.split("/")[1], os.readlink(current).split("/")[1]])
    assert "older releases left in place" in third.stderr

    not_a_bundle = install("--apply", "--root-prefix", str(root), "--bundle", str(tmp_path))
    assert not_a_bundle.returncode == 1 and "is no ringfence bundle" in not_a_bundle.stderr


# ------------------------------------------------------- the real bundle


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory) -> Path:
    """A bundle built by deploy/bundle.py with Debian's python3 from this
    source tree, as the Dockerfile does (it builds from a copy of the tree)."""
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        pytest.fail(f"{DEBIAN_PYTHON} (Debian's python3, .ci/setup installs it) is missing", pytrace=False)
    work = tmp_path_factory.mktemp("bundle")
    dest = work / "ringfence"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    env.update(PIP_BREAK_SYSTEM_PACKAGES="1", PIP_ROOT_USER_ACTION="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([DEBIAN_PYTHON, str(REPO / "deploy" / "bundle.py"), str(REPO), str(dest)],
                          capture_output=True, text=True, timeout=900, env=env, cwd=work)
    if proc.returncode != 0:
        pytest.fail(f"deploy/bundle.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}", pytrace=False)
    return dest


def test_bundle_runs_without_python_or_glibc_on_the_node(real_bundle, tmp_path, busybox):
    """Installed into a root that has nothing else but a static busybox, the
    bundle runs ringfence, and a sandbox, there (the root becomes the mount
    namespace's root with pivot_root; a chroot cannot make user namespaces)."""
    root = tmp_path / "node"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "readlink", "echo", "ls", "cat", "mount", "umount"):
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("proc", "dev", "tmp", ".old"):
        (root / d).mkdir()
    proc = install("--apply", "--root-prefix", str(root), "--bundle", str(real_bundle))
    assert proc.returncode == 0, proc.stderr
    assert_runs(root, "/usr/local/bin")  # from here, through the relative links
    assert not (root / "usr" / "lib").exists() and not (root / "lib").exists()

    (root / "tmp" / "inside.sh").write_text(
        "set -e\numount -l /.old\n"
        "/usr/local/bin/ringfence do /bin/busybox sh -c 'echo sandboxed $$; uname -r'\n"
        "/usr/local/bin/containerd-shim-ringfence-v1 -v\n")
    script = (f"set -e; mount --make-rprivate /; mount --bind {root} {root}; "
              f"mount -t proc proc {root}/proc; mount --rbind /dev {root}/dev; cd {root}; "
              "pivot_root . .old; exec /bin/busybox chroot . /bin/sh /tmp/inside.sh")
    out = harness.run(["unshare", "--mount", "sh", "-c", script], timeout=120)
    text = out.stdout.decode(errors="replace")
    assert out.returncode == 0, text + out.stderr.decode(errors="replace")
    assert "sandboxed 1\n" in text and "ringfence" in text.split("sandboxed 1\n")[1]
    assert "containerd-shim-ringfence-v1: ringfence " in text


def test_containerd_runs_a_container_through_the_bundles_shim(real_bundle, tmp_path, monkeypatch):
    """containerd, with the bundle's link directory first on its PATH, runs a
    container through the bundle's shim (its processes run the bundle's
    loader), and the exit status comes back."""
    root = tmp_path / "node"
    root.mkdir()
    proc = install("--apply", "--root-prefix", str(root), "--bundle", str(real_bundle))
    assert proc.returncode == 0, proc.stderr
    bin_dir = root / "usr" / "local" / "bin"
    release = Path(os.path.realpath(root / "opt" / "ringfence" / "current"))
    monkeypatch.setattr(ce, "shim_dir", lambda: bin_dir)
    with ce.private_containerd() as c:
        c.import_image(ce.busybox_image())
        ctr = subprocess.Popen(c.ctr_argv("run", "--rm", "--runtime", RUNTIME_TYPE, ce.IMAGE_NAME, "bundled",
                                          "sh", "-c", "echo hello from $$; sleep 4; exit 5"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        shims: list[str] = []
        launcher_shell = os.path.realpath("/bin/sh")
        deadline = time.monotonic() + 30
        while not shims and ctr.poll() is None and time.monotonic() < deadline:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    ours = c.socket.encode() in argv
                    exe = os.readlink(f"/proc/{pid}/exe")
                    if ours and any(a.endswith(b"/containerd-shim-ringfence-v1") for a in argv) \
                            and exe != launcher_shell:  # (not the sh launcher before it execs the loader)
                        shims.append(exe)
            time.sleep(0.05)
        try:
            out, _ = ctr.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            harness.kill_group(ctr.pid)
            raise
    assert ctr.returncode == 5, out.decode(errors="replace") + c.log_tail()
    assert out.decode().startswith("hello from 1\n")
    assert shims and all(exe.startswith(str(release) + "/lib/ld-linux") for exe in shims), shims


def test_every_source_package_is_installed():
    """pyproject.toml lists every folder of Python code (a package it misses is absent from a
    `pip install .`, though present in the source tree)."""
    repo = Path(__file__).resolve().parent.parent
    project = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    folders = {package: repo / folder for package, folder in project["package-dir"].items()}
    found = set()
    for package, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            if "_pb2" in str(rel) or package == "ringfence.proto":
                continue  # protobuf code is generated (setup.py) into packages of its own
            found.add(".".join((package, *rel.parts)))
    assert found - listed == set(), "not in pyproject.toml's packages"
