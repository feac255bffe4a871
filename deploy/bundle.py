"""Build a self-contained, relocatable ringfence: the tree the installer image
copies onto a Kubernetes node (`ringfence install --bundle`).

    python3 deploy/bundle.py SOURCE DEST

Run it with the interpreter the bundle should carry (the Dockerfile uses
Debian bookworm's /usr/bin/python3). DEST gets:

    bin/ringfence, bin/containerd-shim-ringfence-v1   sh launchers
    libexec/ringfence, ...                              the loader, under the launchers' names
    python/bin/python3.X                                this interpreter
    python/lib/python3.X/                               its standard library
    python/lib/python3/dist-packages/                   ringfence and its dependencies (pip --target)
    lib/                                                the dynamic loader and every shared
                                                        library the above link to (glibc too)

A launcher runs the bundle's interpreter through the bundle's own dynamic
loader (`ld.so --library-path DEST/lib`), so the node needs neither Python 3.X
nor a glibc as new as the build machine's: only /bin/sh and readlink. Nothing
in ringfence execs another program (the shim, the supervisor, the gofer and
the sentry are forks), so every process of it keeps that loader and those
libraries. The launchers find the tree from their own real path, so DEST can
be moved or reached through symlinks.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ENTRY_POINTS = {  # launcher name -> the function it runs (pyproject's [project.scripts])
    "ringfence": "ringfence.cli:main",
    "containerd-shim-ringfence-v1": "ringfence.shim.main:main",
}
# Loaded with dlopen at run time, so ldd of the files does not name them:
# libgcc_s (glibc loads it for pthread_exit/cancellation) and libseccomp
# (pyseccomp's ctypes.CDLL).
DLOPENED = ("libgcc_s.so.1", "libseccomp.so.2")
# Parts of the standard library ringfence never imports.
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
               "EXTERNALLY-MANAGED"}

SITECUSTOMIZE = '''\
"""ringfence bundle: ctypes.util.find_library looks in the bundle's lib/ first,
so the libraries the bundle carries (libseccomp) are used even on a node that
has none (find_library otherwise asks the host's ldconfig)."""
import ctypes.util as _util
import os as _os

_LIB = _os.path.normpath(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)),
                                       _os.pardir, _os.pardir, _os.pardir, _os.pardir, "lib"))
_host_find_library = _util.find_library


def find_library(name):
    stem = "lib%s.so" % name
    try:
        found = sorted(n for n in _os.listdir(_LIB) if n == stem or n.startswith(stem + "."))
    except OSError:
        found = []
    return _os.path.join(_LIB, found[0]) if found else _host_find_library(name)


_util.find_library = find_library
'''

LAUNCHER = '''\
#!/bin/sh
# {name}: ringfence's launcher (a self-contained bundle, see deploy/bundle.py).
# Runs the bundle's Python through the bundle's dynamic loader and libraries,
# so the node needs neither Python {pyver} nor a particular glibc. libexec/{name}
# is that loader under this name, which is what ps shows.
d=$(readlink -f "$0") && d=${{d%/bin/*}} || exit 127
exec "$d/libexec/{name}" --library-path "$d/lib" "$d/python/bin/{python}" -I -c \\
  'import sys; sys.argv[0] = sys.argv.pop(1); from {module} import {func}; sys.exit({func}())' "$0" "$@"
'''


def log(msg: str) -> None:
    print(f"bundle: {msg}", file=sys.stderr, flush=True)


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


_LDD_LINE = re.compile(r"^\s*(\S+)(?:\s+=>\s+(\S+))?\s+\(0x[0-9a-f]+\)\s*$")


def needed(path: Path) -> tuple[dict[str, str], str | None]:
    """The shared libraries `path` loads ({soname: resolved path}) and the
    dynamic loader it names, from ldd."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    libs: dict[str, str] = {}
    loader = None
    for line in out.stdout.splitlines():
        if "not found" in line:
            log(f"warning: {path}: {line.strip()}")
            continue
        m = _LDD_LINE.match(line)
        if not m:
            continue
        name, target = m.group(1), m.group(2)
        if target:
            libs[name] = target
        elif name.startswith("/"):
            loader = name
    return libs, loader


def find_system_lib(soname: str) -> str | None:
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    for d in (f"/lib/{arch}", f"/usr/lib/{arch}", "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    return None


def copy_python(dest: Path) -> str:
    """Copy this interpreter and its standard library; returns the
    interpreter's file name (python3.X)."""
    exe = Path(os.path.realpath(sys.executable))
    pydir = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (dest / "python" / "bin").mkdir(parents=True)
    shutil.copy2(exe, dest / "python" / "bin" / pydir)
    os.symlink(pydir, dest / "python" / "bin" / "python3")
    lib = dest / "python" / "lib" / pydir
    stdlib = Path(sysconfig.get_path("stdlib"))
    shutil.copytree(stdlib, lib, symlinks=True,
                    ignore=lambda d, names: [n for n in names if Path(d) == stdlib and n in STDLIB_SKIP])
    platstdlib = Path(sysconfig.get_path("platstdlib"))
    if platstdlib != stdlib:
        shutil.copytree(platstdlib, lib, dirs_exist_ok=True, symlinks=True)
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "")
    if dynload.is_dir() and not (lib / "lib-dynload").exists():
        shutil.copytree(dynload, lib / "lib-dynload", symlinks=True)
    log(f"python: {exe} and {stdlib}")
    return pydir


def install_package(source: Path, site: Path) -> None:
    """pip install ringfence from a clean copy of `source` (pip builds in the
    tree: a stale build/ there would be packaged) into `site`."""
    site.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="ringfence-bundle-") as tmp:
        clean = Path(tmp) / "src"
        shutil.copytree(source, clean, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                      ".pytest_cache", ".benchmarks"))
        subprocess.run([sys.executable, "-m", "pip", "install", "--target", str(site), str(clean)],
                       check=True)
    # pip --target's scripts use this machine's interpreter path: the launchers replace them.
    shutil.rmtree(site / "bin", ignore_errors=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(site / "sitecustomize.py")], check=True)


def copy_libraries(dest: Path) -> str:
    """Copy the loader and every library the bundle's ELF files need into
    dest/lib; returns the loader's file name."""
    libdir = dest / "lib"
    libdir.mkdir()
    todo = [p for p in dest.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    for soname in DLOPENED:
        path = find_system_lib(soname)
        if not path:
            sys.exit(f"bundle: {soname} is not installed on this machine")
        shutil.copy2(os.path.realpath(path), libdir / soname)
        todo.append(libdir / soname)
    loader = None
    seen: set[str] = set()
    while todo:
        libs, ld = needed(todo.pop())
        loader = loader or ld
        for soname, path in libs.items():
            if soname not in seen:
                seen.add(soname)
                target = libdir / soname
                if not target.exists():
                    shutil.copy2(os.path.realpath(path), target)
                    todo.append(target)
    if not loader:
        sys.exit("bundle: ldd named no dynamic loader for the interpreter")
    shutil.copy2(os.path.realpath(loader), libdir / os.path.basename(loader))
    log(f"libraries: {', '.join(sorted(os.listdir(libdir)))}")
    return os.path.basename(loader)


def write_launchers(dest: Path, loader: str, python: str) -> None:
    (dest / "bin").mkdir()
    (dest / "libexec").mkdir()
    for name, entry in ENTRY_POINTS.items():
        os.symlink(f"../lib/{loader}", dest / "libexec" / name)
        module, func = entry.split(":")
        path = dest / "bin" / name
        path.write_text(LAUNCHER.format(name=name, loader=loader, python=python, module=module,
                                        func=func, pyver=python.removeprefix("python")))
        path.chmod(0o755)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    source, dest = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    if dest.exists() and any(dest.iterdir()):
        sys.exit(f"bundle: {dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    python = copy_python(dest)
    install_package(source, dest / "python" / "lib" / "python3" / "dist-packages")
    loader = copy_libraries(dest)
    write_launchers(dest, loader, python)
    version = subprocess.run([str(dest / "bin" / "ringfence"), "--version"], check=True,
                             capture_output=True, text=True).stdout.split("\n")[0]
    log(f"{dest}: {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
