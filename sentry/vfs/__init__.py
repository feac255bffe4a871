"""The sentry's virtual file system: dentries, mounts, path walk, open files and fd tables.

Entry points for the kernel: `build_sandbox_fs` (the init task's FSContext
and FDTable), `std_files` (the sentry's stdio as sandbox files) and
`open_path` (execve's open).  The first two live with the file systems they
assemble and are imported on first use, so that file systems may import
the VFS modules without an import cycle.
"""
from .dentry import Location, Mount, MountNamespace
from .fdtable import FDTable, FSContext
from .file import File
from .inode import Attr
from .ops import open_file as open_path

__all__ = ["Attr", "FDTable", "FSContext", "File", "Location", "Mount", "MountNamespace", "build_sandbox_fs",
           "open_path", "std_files"]


def __getattr__(name: str):
    if name == "build_sandbox_fs":
        from .setup import build_sandbox_fs

        return build_sandbox_fs
    if name == "std_files":
        from ..fs.host import std_files

        return std_files
    raise AttributeError(name)
