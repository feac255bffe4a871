"""Fixtures for the ringfence test suite.

- ``busybox``: a static busybox binary (fetched once into the cache).
- ``cprog(name)``: tests/c/<name>.c compiled with ``gcc -static``.
- ``run_native(argv)`` / ``run_sandboxed(argv)``: run with a time limit, return a
  CompletedProcess with bytes stdout/stderr.
- ``differential(argv, filters=...)``: run both, compare filtered stdout and
  exit status.

The cache directory is $RINGFENCE_TEST_CACHE (default /var/cache/ringfence-tests).
A missing ``ringfence`` console script fails the tests that need it; nothing
is skipped.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

import harness

# Test the installed package, not the source tree: `python3 -m pytest` run from
# the repository puts the repository first on sys.path, where `ringfence/` is
# only the CLI folder (setuptools maps sentry/, gofer/, ... into the package at
# install time) and holds no compiled platform extension.
_REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO]
for _name in [m for m in sys.modules if m == "ringfence" or m.startswith("ringfence.")]:
    del sys.modules[_name]


def _fail_on_timeout(fn: Callable[..., subprocess.CompletedProcess], argv, **kw):
    try:
        return fn(argv, **kw)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")[-2000:]
        err = (e.stderr or b"").decode(errors="replace")[-2000:]
        pytest.fail(f"timed out after {e.timeout:.0f}s: {' '.join(map(str, argv))}\n"
                    f"stdout so far:\n{out}\nstderr so far:\n{err}", pytrace=False)


@pytest.fixture(scope="session")
def busybox() -> str:
    """Path to a static busybox."""
    try:
        return str(harness.find_busybox())
    except harness.HarnessError as e:
        pytest.fail(f"cannot get a static busybox: {e}", pytrace=False)


@pytest.fixture(scope="session")
def cprog() -> Callable[[str], str]:
    """cprog(name) -> path of tests/c/<name>.c compiled statically."""
    def build(name: str) -> str:
        try:
            return str(harness.build_c_program(name))
        except harness.HarnessError as e:
            pytest.fail(str(e), pytrace=False)
    return build


@pytest.fixture(scope="session")
def ringfence_bin() -> str:
    """Path to the installed ``ringfence`` console script."""
    path = harness.find_ringfence()
    if not path:
        pytest.fail("the `ringfence` console script is not installed "
                    "(run `python3 -m pip install .` in the repository)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def run_native() -> Callable[..., subprocess.CompletedProcess]:
    """run_native(argv, timeout=..., input=..., **Popen kwargs)."""
    def run(argv, **kw):
        return _fail_on_timeout(harness.run, list(argv), **kw)
    return run


@pytest.fixture(scope="session")
def sandbox_argv(ringfence_bin) -> Callable[..., list[str]]:
    """sandbox_argv(argv, extra_flags=(), global_flags=(), quiet=True): the
    command line that runs argv under ``ringfence do``.  global_flags go before
    ``do`` (--debug, --log FILE, ...), extra_flags after it (--strace, --cwd ...)."""
    def build(argv, extra_flags=(), global_flags=(), quiet=True) -> list[str]:
        return [ringfence_bin, *global_flags, "do", *(["--quiet"] if quiet else []),
                *extra_flags, *map(str, argv)]
    return build


@pytest.fixture(scope="session")
def run_sandboxed(sandbox_argv) -> Callable[..., subprocess.CompletedProcess]:
    """run_sandboxed(argv, extra_flags=(), global_flags=(), quiet=True, **run kwargs)."""
    def run(argv, extra_flags=(), global_flags=(), quiet=True, **kw):
        full = sandbox_argv(argv, extra_flags, global_flags, quiet)
        return _fail_on_timeout(harness.run, full, **kw)
    return run


@pytest.fixture(scope="session")
def differential(run_native, run_sandboxed):
    """differential(argv, filters=(), **kw): run argv natively and sandboxed,
    assert the same filtered stdout and exit status; returns (native, sandboxed).
    Filters: see harness.FILTERS ("pids", "addresses", "times")."""
    def check(argv, filters=(), **kw):
        for name in filters:
            if name not in harness.FILTERS:
                raise KeyError(f"unknown filter {name!r}")
        native = run_native(argv, **kw)
        sandboxed = run_sandboxed(argv, **kw)
        harness.assert_same_behaviour(native, sandboxed, filters)
        return native, sandboxed
    return check
