"""The installer image (Dockerfile), built by buildah (Debian's package) from this work tree
and run by podman, as a DaemonSet runs it on a node: onto a directory standing for the node's
root (mounted at /host), it installs the bundle, the links and the containerd stanza, and the
ringfence so installed runs a sandboxed command on this machine.

There is no registry here: both stages start from a local Debian bookworm image made of the
test rootfs (harness.debian_rootfs, debootstrap), passed as the Dockerfile's BASE.  The build
itself fetches Debian's packages and PyPI's, as on any machine; it trusts the host's CA bundle
(mounted, and named to pip), for a machine whose TLS goes through an intercepting proxy.
Storage is private to the test (podman_env.Tools) and removed afterwards.
"""
from __future__ import annotations

import shutil
import tomllib

import pytest

import harness
from podman_env import Tools

REPO = harness.TESTS_DIR.parent
BASE = "localhost/ringfence-test/debian:bookworm"
IMAGE = "localhost/ringfence-test/installer:latest"
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096")
BUILD_TIMEOUT = 900


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """Private podman/buildah storage holding the local base image."""
    for tool in ("podman", "buildah", "runc"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (Debian: apt-get install podman buildah runc)", pytrace=False)
    try:
        rootfs = harness.debian_rootfs()
    except harness.HarnessError as e:
        pytest.fail(f"cannot build the Debian rootfs: {e}", pytrace=False)
    t = Tools(tmp_path_factory.mktemp("image"), shutil.which("runc"), None, driver="overlay")
    try:
        made = t.buildah("from", "--name", "base", "scratch")
        assert made.returncode == 0, made.stderr
        copied = t.buildah("copy", "base", f"{rootfs}/", "/", timeout=300)
        assert copied.returncode == 0, copied.stderr
        committed = t.buildah("commit", "--rm", "base", BASE, timeout=300)
        assert committed.returncode == 0, committed.stderr
        yield t
    finally:
        t.remove_all()


def test_the_installer_image_installs_a_working_ringfence(tools, tmp_path):
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text("[global]\ncert = /run/host-ca.crt\n")
    built = tools.buildah("bud", "--isolation", "chroot", "--build-arg", f"BASE={BASE}",
                          "-v", f"{HOST_CA}:/run/host-ca.crt:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro",
                          "-t", IMAGE, REPO, timeout=BUILD_TIMEOUT)
    assert built.returncode == 0, built.stdout.decode(errors="replace")[-3000:] + built.stderr.decode(errors="replace")

    node = tmp_path / "node"
    (node / "etc" / "containerd").mkdir(parents=True)
    (node / "usr" / "local" / "bin").mkdir(parents=True)
    (node / "etc" / "containerd" / "config.toml").write_text("version = 2\n")
    ran = tools.podman("run", "--rm", *ULIMITS, "-v", f"{node}:/host", IMAGE)
    out = ran.stdout.decode() + ran.stderr.decode(errors="replace")
    assert ran.returncode == 0, out
    assert "registered runtime 'ringfence' (io.containerd.ringfence.v1)" in out, out

    config = tomllib.loads((node / "etc" / "containerd" / "config.toml").read_text())
    runtimes = config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert runtimes["ringfence"]["runtime_type"] == "io.containerd.ringfence.v1"
    assert (node / "etc" / "containerd" / "config.toml.bak").read_text() == "version = 2\n"
    release = (node / "opt" / "ringfence" / "current").resolve()
    assert release.parent == node / "opt" / "ringfence" / "releases", release
    for name in ("ringfence", "containerd-shim-ringfence-v1"):
        link = node / "usr" / "local" / "bin" / name
        assert link.resolve() == release / "bin" / name, link

    sandboxed = harness.run([node / "usr" / "local" / "bin" / "ringfence", "do", "--quiet", "--",
                             "/bin/sh", "-c", "echo in $(uname -s) $(uname -r)"])
    assert sandboxed.stdout.startswith(b"in Linux 4.4.0"), sandboxed
    assert sandboxed.returncode == 0, sandboxed.stderr
