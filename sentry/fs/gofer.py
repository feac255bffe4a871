"""The gofer-backed file system: a tree the gofer serves (the container's root, a bind mount's
source), read and written through the gofer protocol.

A node (GoferInode) is one name the sandbox has walked to: its directory node and its name,
and a gofer handle on it.  Nodes for the names of one host file (hard links) share one
`_Host` record, its attributes, so that a write through one name shows in the size and times
of the others.  The sentry does every permission check itself (credentials, umask, set-group-ID
directories are vfs/ops.py's); the gofer, which runs as the host's root, makes new files with
the owner and mode the sentry asks for, and refuses writes to a read-only mount (EROFS, passed
through).

Caching.  Each file system chooses one of two policies, as gVisor's gofer mounts do:
  - exclusive (the container's root): the sandbox is the only one changing the tree, so names
    (negative ones too), attributes, directory listings and link targets are cached and kept
    in step with the sandbox's own changes: a change marks the attributes it affects stale
    (fetched again on the next stat, from an open host fd when there is one, else from the
    gofer), and a write through a donated fd marks the file's.  A directory whose uncached
    names keep being looked up (list_after) is listed once with every entry's attributes
    (DIRSTAT, a page a message): its names are then all known, without a handle each, and any
    other is absent;
  - revalidating (bind mounts, which the host and other containers share): every lookup walks
    the name again, a name that now leads to another file gets a fresh node, and listings are
    not cached; open files stat their host fd.
Gofer handles are a bounded resource (each is an fd in the gofer): at most MAX_HANDLES nodes
hold one, the least recently used give theirs back, and a node without a handle walks again
from its directory when it needs one.  The gofer names a file by its directory and name, so a
handle whose file was renamed or removed behind its back answers ESTALE: the node walks to its
name again once and retries (and is dead if the name now leads elsewhere).

A regular file's data goes through a host fd the gofer donates, opened when the file is: O_RDWR
for writing (the File enforces the sandbox's access mode), O_RDONLY for reading on a revalidating
tree.  On an exclusive tree a file opened for reading gets its fd on the first read (open+fstat
+close costs no round trip), or before its name is removed or replaced: an open file stays the
file it was.  Its attributes then come from that fd (fstat, owners excepted: the sentry's user
namespace does not map the host's ids).
"""
from __future__ import annotations

import ctypes
import os
import time
import weakref
from collections import OrderedDict

from ...gofer.protocol import RENAME_EXCHANGE
from ..abi.errno import EIO, ENOENT, ENXIO, EPERM, EPROTO, EROFS, ESTALE
from ..abi.fs import (AT_REMOVEDIR, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, O_ACCMODE, O_RDONLY, O_RDWR,
                      S_IALLUGO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG, V9FS_MAGIC)
from ..kernel.errors import SysError
from ..mm.cache import MappingCache
from ..vfs.device import open_device
from ..vfs.file import DirFile, File
from ..vfs.inode import Attr, FileSystem, Inode, StatFs

_CHUNK = 1 << 20
_NS = 1_000_000_000
_libc = ctypes.CDLL(None, use_errno=True)  # fallocate and syncfs, which `os` lacks
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
MAX_HANDLES = 512
EVICT_BATCH = 64  # handles given back to the gofer in one message once MAX_HANDLES is passed
LIST_AFTER = 8  # a directory's first misses always walk
_MISSING = object()


def list_after(attr: Attr) -> int:
    """The lookups of names not cached after which a directory (with attributes `attr`) is
    listed with its entries' attributes instead: when the walks have cost about what the
    listing will.  A listed entry costs about an eighth of a walk, and Linux's file systems
    give a directory at least 16 bytes of size an entry (ext4 20-34 here, tmpfs 20)."""
    return max(LIST_AFTER, attr.st_size // (16 * 8))


def _sys(err: OSError) -> SysError:
    """The SysError a failed gofer request or host fd call gives the program."""
    e = err.errno
    if not e or e == EPROTO or isinstance(err, (ConnectionError, TimeoutError)):
        e = EIO  # the gofer is gone or confused: an I/O error, as a dead server gives
    return SysError(e)


def _pread(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset`, read in bounded chunks (no n-sized buffer for short files)."""
    try:
        if n <= _CHUNK:
            return os.pread(fd, n, offset)
        parts = []
        while n > 0:
            part = os.pread(fd, min(n, _CHUNK), offset)
            if not part:
                break
            parts.append(part)
            n -= len(part)
            offset += len(part)
        return b"".join(parts)
    except OSError as err:
        raise _sys(err) from None


def _host_call(result: int) -> None:
    """OSError (errno) if a libc call on a host fd failed."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _timespec(ns: int | None) -> tuple[int, int] | None:
    return None if ns is None else divmod(ns, _NS)


class _Host:
    """What the names of one host file share: its attributes (on the sandbox's device), whether
    they must be fetched again, the host fds the sandbox has open on it (fd -> writable), its
    open Files that have no host fd yet, and its mapping cache while it is mapped shared."""

    __slots__ = ("attr", "stale", "fds", "lazy", "cache", "__weakref__")

    def __init__(self, attr: Attr):
        self.attr = attr
        self.stale = False
        self.fds: dict[int, bool] = {}
        self.lazy: set[GoferFile] = set()
        self.cache: weakref.ref | None = None

    def cached(self) -> MappingCache | None:
        """The mapping cache, if the file is mapped shared (its bytes are read from there)."""
        return self.cache() if self.cache is not None else None

    def open_lazy(self) -> None:
        """Give every open File of the file its host fd now: its name is about to go (an open
        file stays the file it was when opened)."""
        for f in list(self.lazy):
            try:
                f.host_fd()
            except SysError:
                pass

    def writable_fd(self) -> int:
        """An fd open for writing on the file, or -1."""
        return next((fd for fd, w in self.fds.items() if w), -1)


class GoferFS(FileSystem):
    """One tree a gofer serves: mount `mount` of its connection (0: the container's root)."""

    name = "9p"
    magic = V9FS_MAGIC

    def __init__(self, client, max_handles: int = MAX_HANDLES, mount: int = 0, revalidate: bool = False):
        super().__init__()
        self.client = client
        self.max_handles = max_handles
        self.mount = mount
        self.revalidate = revalidate
        self.cache_dentries = not revalidate  # a revalidating tree's lookups must reach the nodes
        self.root: GoferInode | None = None
        self._lru: OrderedDict[GoferInode, None] = OrderedDict()  # nodes holding a handle, root excepted
        self._hosts: weakref.WeakValueDictionary[tuple[int, int], _Host] = weakref.WeakValueDictionary()

    def attach(self) -> GoferInode:
        """The root node (its handle is never given back); SysError if the gofer has no such mount."""
        try:
            handle, st = self.client.attach(self.mount) if self.mount else self.client.attach()
        except OSError as err:
            raise _sys(err) from None
        self.root = GoferInode(self, None, b"", handle, st)
        return self.root

    def writable(self) -> bool:
        """Whether the gofer lets this tree be changed (an empty SETATTR answers EROFS if not)."""
        try:
            self.client.setattr(self.root.handle())
        except OSError as err:
            if err.errno == EROFS:
                return False
            raise _sys(err) from None
        return True

    def attr(self, st) -> Attr:
        """Host attributes `st` (a gofer Stat or an os.stat_result) as the sandbox sees them."""
        return Attr(st.st_mode, st.st_ino, self.dev, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev, st.st_size,
                    st.st_blksize, st.st_blocks, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)

    def fd_attr(self, fd: int, old: Attr) -> Attr:
        """Fresh attributes from a donated host fd.  The sentry's fstat sees owners through its
        user namespace (host ids it does not map read as nobody): those stay as `old` had them
        (owners change only through the gofer's SETATTR, whose reply is exact)."""
        st = os.fstat(fd)
        return self.attr(st)._replace(st_uid=old.st_uid, st_gid=old.st_gid)

    def host(self, st) -> _Host:
        """The shared record of host file `st` (host st_dev and st_ino), with `st` as its attributes."""
        key = (st.st_dev, st.st_ino)
        host = self._hosts.get(key)
        attr = self.attr(st)
        if host is None or (host.attr.st_mode ^ attr.st_mode) & S_IFMT:
            host = self._hosts[key] = _Host(attr)
        else:
            host.attr, host.stale = attr, False
        return host

    def used(self, node: GoferInode) -> None:
        """`node` holds a handle and has just used it: beyond the cap, give back the least
        recently used (a batch of them in one message)."""
        lru = self._lru
        lru[node] = None
        lru.move_to_end(node)
        if len(lru) > self.max_handles:
            handles = []
            while len(lru) > max(1, self.max_handles - EVICT_BATCH):
                old, _ = lru.popitem(last=False)
                handles.append(old._handle)
                old._handle = -1
            self.close(*handles)

    def forget(self, node: GoferInode) -> None:
        """`node` gives its handle back now."""
        handle, node._handle = node._handle, -1
        self._lru.pop(node, None)
        self.close(handle)

    def close(self, *handles: int) -> None:
        """Release gofer handles (a gofer that is gone has released them already)."""
        try:
            self.client.close(*handles)
        except OSError:
            pass

    def statfs(self) -> StatFs:
        """The host file system's figures (none if the gofer cannot tell)."""
        try:
            s = self.client.statfs(self.root.handle())
        except (OSError, SysError, AttributeError):
            return StatFs(self.magic)
        return StatFs(self.magic, s.f_bsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree, s.f_namelen)


class GoferInode(Inode):
    """One name of the served tree: its directory node and name, a gofer handle (or -1), the host
    file's shared record, and (directories) the children and listing cached so far."""

    __slots__ = ("host", "hdev", "parent", "name", "dead", "_handle", "_children", "_complete", "_misses",
                 "_entries", "_target", "_created_fd")

    def __init__(self, fs: GoferFS, parent: GoferInode | None, name: bytes, handle: int, st):
        super().__init__(fs, st.st_mode & S_IFMT)
        self.host = fs.host(st)
        self.hdev = st.st_dev  # the host's device: with st_ino, what a walk again must find
        self.parent = parent
        self.name = name
        self.dead = False  # its name was removed (or leads to another file now)
        self._handle = handle
        self._children: dict[bytes, GoferInode | None] = {}
        self._complete = False  # (exclusive) _children names every entry: another name is absent
        self._misses = 0  # (exclusive) lookups that walked, until the directory is listed
        self._entries: list[tuple[bytes, int, int]] | None = None
        self._target: bytes | None = None
        self._created_fd = -1  # the fd CREATE donated, for the open that follows

    @property
    def attr(self) -> Attr:
        """The attributes (as stat())."""
        return self.stat()

    def identity(self) -> object:
        """The host file's record, which the nodes of its hard links share."""
        return self.host

    # -- handles and attributes ---------------------------------------------------
    def handle(self) -> int:
        """A gofer handle on this node, walked to again from the parent if it was given back;
        SysError(ESTALE) if the name no longer leads to this file."""
        if self._handle < 0:
            if self.dead or self.parent is None:
                raise SysError(ESTALE)
            fs = self.fs
            try:
                handle, st = fs.client.walk(self.parent.handle(), self.name)
            except OSError as err:
                if err.errno != ENOENT:
                    raise _sys(err) from None
                self.dead = True
                raise SysError(ESTALE) from None
            if (st.st_dev, st.st_ino) != (self.hdev, self.host.attr.st_ino):
                fs.close(handle)
                self.dead = True
                raise SysError(ESTALE)
            self._handle = handle
            self.host.attr, self.host.stale = fs.attr(st), False
        if self.parent is not None:
            self.fs.used(self)
        return self._handle

    def _call(self, request, *args):
        """request(handle, *args) on this node's handle; after ESTALE (the gofer's node was renamed
        or removed behind this one's back) walk to the name again and retry once."""
        try:
            try:
                return request(self.handle(), *args)
            except OSError as err:
                if err.errno != ESTALE or self.parent is None:
                    raise
            self.fs.forget(self)
            return request(self.handle(), *args)
        except OSError as err:
            raise _sys(err) from None

    def stat(self) -> Attr:
        """The attributes: cached, fetched again if a change made them stale."""
        host = self.host
        if host.stale:
            self._refresh()
        return host.attr

    def _refresh(self) -> None:
        host = self.host
        try:
            if host.fds:  # an open host fd: no round trip
                attr = self.fs.fd_attr(next(iter(host.fds)), host.attr)
            else:
                attr = self.fs.attr(self._call(self.fs.client.stat))
        except (OSError, SysError):
            host.stale = False  # gone behind our back: keep what we knew
            return
        host.attr, host.stale = attr, False

    def _changed(self) -> None:
        """This directory's entries changed: its listing and attributes (times, nlink) are stale."""
        self._entries = None
        self.host.stale = True

    def setattr(self, mode=None, uid=None, gid=None, size=None, atime_ns=None, mtime_ns=None) -> None:
        """Change attributes through the gofer; a size through an open writable host fd if there is
        one (which also serves a file that has no name any more)."""
        host = self.host
        new_size = size
        if size is not None:
            fd = host.writable_fd()
            if fd >= 0:
                try:
                    os.ftruncate(fd, size)
                except OSError as err:
                    raise _sys(err) from None
                host.stale = True
                size = None
        if (mode, uid, gid, size, atime_ns, mtime_ns) != (None,) * 6:
            st = self._call(lambda h: self.fs.client.setattr(
                h, mode=mode, uid=uid, gid=gid, size=size, atime=_timespec(atime_ns), mtime=_timespec(mtime_ns)))
            host.attr, host.stale = self.fs.attr(st), False
        cache = host.cached()
        if new_size is not None and cache is not None:
            cache.resize(new_size)

    # -- files ---------------------------------------------------------------------
    def open(self, t, loc, flags: int):
        """Regular files (a host fd now if writing), directories, and character devices (through
        the sentry's device registry: a host device is never opened)."""
        kind = self.kind
        if kind == S_IFREG:
            f = GoferFile(loc, flags, self)
            if flags & O_ACCMODE != O_RDONLY or self._created_fd >= 0:
                f.attach(self.host_fd(O_RDWR), True)
            elif self.fs.revalidate:  # the host may replace the file behind our back
                f.host_fd()
            else:  # opened on the first read (open+fstat+close costs no round trip)
                self.host.lazy.add(f)
            return f
        if kind == S_IFDIR:
            return DirFile(loc, flags)
        if kind == S_IFCHR:
            return open_device(t, loc, flags, self.host.attr.st_rdev)
        raise SysError(ENXIO)

    def host_fd(self, flags: int) -> int:
        """A host fd on this regular file (the one CREATE donated, if the open follows a create)."""
        fd, self._created_fd = self._created_fd, -1
        if fd >= 0:
            return fd
        return self._call(self.fs.client.open, flags)

    def contents(self, limit: int) -> bytes:
        """The first `limit` bytes of the file (overlay copy-up)."""
        fd = self._call(self.fs.client.open, O_RDONLY)
        try:
            return _pread(fd, limit, 0)
        finally:
            os.close(fd)

    def readlink(self, t) -> bytes:
        """The link target, read once."""
        if self._target is None:
            self._target = self._call(self.fs.client.readlink)
        return self._target

    def fsync(self) -> None:
        """Flush the file to the host's disk."""
        self._call(self.fs.client.fsync)

    # -- extended attributes (user.* only: the gofer serves no other namespace) -----------
    def getxattr(self, name: bytes) -> bytes:
        """The value of `name`."""
        return self._call(self.fs.client.getxattr, name)

    def setxattr(self, name: bytes, value: bytes, flags: int) -> None:
        """Set `name`."""
        self._call(self.fs.client.setxattr, name, value, flags)
        self.host.stale = True

    def listxattr(self) -> list[bytes]:
        """The names."""
        return self._call(self.fs.client.listxattr)

    def removexattr(self, name: bytes) -> None:
        """Remove `name`."""
        self._call(self.fs.client.removexattr, name)
        self.host.stale = True

    # -- directories -----------------------------------------------------------------
    def lookup(self, name: bytes) -> Inode:
        """The child `name`: cached (exclusive), or walked again and checked (revalidating)."""
        fs = self.fs
        child = self._children.get(name, _MISSING)
        if not fs.revalidate:
            if child is _MISSING and not self._complete:
                self._misses += 1
                if self._misses >= list_after(self.host.attr):
                    self._list()
                    child = self._children.get(name, _MISSING)
            if child is None or child is _MISSING and self._complete:
                raise SysError(ENOENT)
            if child is not _MISSING:
                return child
        try:
            handle, st = fs.client.walk(self.handle(), name)
        except OSError as err:
            if err.errno != ENOENT:
                raise _sys(err) from None
            if isinstance(child, GoferInode):
                child.dead = True
            self._children[name] = None
            raise SysError(ENOENT) from None
        if isinstance(child, GoferInode) and not child.dead and (st.st_dev, st.st_ino) == (
                child.hdev, child.host.attr.st_ino) and st.st_mode & S_IFMT == child.kind:
            child.host.attr, child.host.stale = fs.attr(st), False
            if child._handle < 0:
                child._handle = handle
            else:
                fs.close(handle)
        else:
            if isinstance(child, GoferInode):
                child.dead = True
            child = self._children[name] = GoferInode(fs, self, name, handle, st)
        fs.used(child)
        return child

    def _list(self) -> None:
        """Learn every entry with its attributes (DIRSTAT pages): nodes without a handle for the
        names not cached yet (those cached are kept in step with the sandbox's changes already)."""
        fs = self.fs
        for name, st in self._call(fs.client.dirstat):
            if name not in self._children:
                self._children[name] = GoferInode(fs, self, name, -1, st)
        self._complete = True

    def readdir(self) -> list[tuple[bytes, int, int]]:
        """The directory's entries (listed once while they do not change, on an exclusive tree)."""
        entries = self._entries
        if entries is None:
            entries = [(d.name, d.ino, d.type) for d in self._call(self.fs.client.getdents)]
            if not self.fs.revalidate:
                self._entries = entries
        return entries

    def _add(self, name: bytes, handle: int, st) -> GoferInode:
        """Record child `name` just made by the gofer."""
        child = self._children[name] = GoferInode(self.fs, self, name, handle, st)
        self.fs.used(child)
        self._changed()
        return child

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """A new regular file; the host fd CREATE donates waits for the open that follows."""
        handle, st, fd = self._call(self.fs.client.create, name, O_RDWR, mode & S_IALLUGO, uid, gid)
        child = self._add(name, handle, st)
        child._created_fd = fd
        return child

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        """A new directory (the mode set again if the host's mkdir dropped bits, e.g. set-group-ID)."""
        mode &= S_IALLUGO
        handle, st = self._call(self.fs.client.mkdir, name, mode, uid, gid)
        child = self._add(name, handle, st)
        if st.st_mode & S_IALLUGO != mode:
            child.setattr(mode=mode)
        return child

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        """A FIFO, empty regular file or socket node (a sandbox socket bound to it is found by the
        node's identity: no host socket listens there); device nodes are not made (EPERM)."""
        if mode & S_IFMT in (S_IFCHR, S_IFBLK):
            raise SysError(EPERM)
        handle, st = self._call(self.fs.client.mknod, name, mode & (S_IFMT | S_IALLUGO), uid, gid)
        return self._add(name, handle, st)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        """A new symlink."""
        handle, st = self._call(self.fs.client.symlink, name, target, uid, gid)
        child = self._add(name, handle, st)
        child._target = target
        return child

    def link(self, name: bytes, inode: GoferInode) -> Inode:
        """A new name for `inode`'s file: a node of its own, sharing the file's attributes."""
        target = inode.handle()
        handle, st = self._call(self.fs.client.link, name, target)
        return self._add(name, handle, st)

    def _removed(self, name: bytes, inode: GoferInode) -> None:
        self._children[name] = None
        inode.dead = True
        if inode._handle >= 0:
            self.fs.forget(inode)
        host = inode.host
        a = host.attr
        host.attr = a._replace(st_nlink=max(a.st_nlink - (2 if inode.kind == S_IFDIR else 1), 0),
                               st_ctime_ns=time.time_ns())
        host.stale = bool(host.fds)
        self._changed()

    def unlink(self, name: bytes, inode: GoferInode) -> None:
        """Remove a non-directory name."""
        inode.host.open_lazy()
        self._call(self.fs.client.unlink, name, 0)
        self._removed(name, inode)

    def rmdir(self, name: bytes, inode: GoferInode) -> None:
        """Remove an empty directory (the host says ENOTEMPTY otherwise)."""
        self._call(self.fs.client.unlink, name, AT_REMOVEDIR)
        self._removed(name, inode)

    def rename(self, name: bytes, inode: GoferInode, newdir: GoferInode, newname: bytes,
               target: GoferInode | None, exchange: bool) -> None:
        """renameat2 on the host; the moved nodes walk to their new names when next needed."""
        new_handle = newdir.handle()
        if target is not None and not exchange:
            target.host.open_lazy()
        self._call(self.fs.client.rename, name, new_handle, newname, RENAME_EXCHANGE if exchange else 0)
        if target is not None and not exchange:
            newdir._removed(newname, target)
        self._children[name] = None
        newdir._children[newname] = inode
        self._changed()
        newdir._changed()
        moved = [(inode, newdir, newname)]
        if exchange:
            self._children[name] = target
            moved.append((target, self, name))
        for node, parent, new in moved:
            if node._handle >= 0:
                self.fs.forget(node)  # the gofer's node names the old place: walk again
            node.parent, node.name = parent, new
            node.host.stale = True  # ctime


class GoferFile(File):
    """An open regular file of a served tree, read and written through a host fd the gofer
    donated (opened on the first read unless the open was for writing)."""

    __slots__ = ("node", "_fd")

    def __init__(self, loc, flags: int, node: GoferInode):
        super().__init__(loc, flags)
        self.node = node
        self._fd = -1

    def attach(self, fd: int, writable: bool) -> None:
        """Use host fd `fd` (owned by this File from now on)."""
        self._fd = fd
        host = self.node.host
        host.fds[fd] = writable
        host.lazy.discard(self)

    def host_fd(self) -> int:
        """The host fd, opened (read-only) now if the File has none yet."""
        if self._fd < 0:
            self.attach(self.node.host_fd(O_RDONLY), False)
        return self._fd

    def stat(self) -> Attr:
        """Fresh attributes from the host fd, if one is open (also for a file without a name)."""
        fd = self._fd
        if fd < 0:
            return self.node.stat()
        host = self.node.host
        try:
            host.attr, host.stale = self.node.fs.fd_attr(fd, host.attr), False
        except OSError as err:
            raise _sys(err) from None
        return host.attr

    def size(self) -> int:
        """Current size."""
        return self.stat().st_size

    def lock_key(self):
        """The host file's shared record: opens through any of its names share its locks."""
        return self.node.host

    def data_offset(self, offset: int, hole: bool) -> int:
        """SEEK_DATA/SEEK_HOLE as the host file system answers them on the donated fd."""
        try:
            return os.lseek(self.host_fd(), offset, os.SEEK_HOLE if hole else os.SEEK_DATA)
        except OSError as err:
            raise _sys(err) from None

    def mapping_cache(self) -> MappingCache:
        """The file's mapping cache (for a shared mapping), filled from the host file if the file
        has none yet; a File open for writing gives it the fd to write back through."""
        host = self.node.host
        cache = host.cached()
        try:
            if cache is None:
                cache = MappingCache("9p")
                cache.fill(self.host_fd())
                host.cache = weakref.ref(cache)
            if self.writable:
                cache.set_writeback(self.host_fd())
        except OSError as err:
            raise _sys(err) from None
        return cache

    def pread(self, n: int, offset: int) -> bytes:
        """Read through the donated host fd (from the mapping cache while there is one)."""
        cache = self.node.host.cached()
        if cache is not None:
            return cache.pread(n, offset)
        return _pread(self.host_fd(), n, offset)

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write through the donated host fd, and the mapping cache if there is one (the file's
        attributes are then stale)."""
        try:
            n = os.pwrite(self.host_fd(), data, offset)
        except OSError as err:
            raise _sys(err) from None
        host = self.node.host
        host.stale = True
        cache = host.cached()
        if cache is not None:
            cache.pwrite(data[:n], offset)
        return n

    def _write_back(self) -> None:
        """Write back the stores made through shared mappings, if the file is mapped."""
        cache = self.node.host.cached()
        if cache is not None:
            try:
                cache.sync()
            except OSError as err:
                raise _sys(err) from None

    def fallocate(self, mode: int, offset: int, length: int) -> None:
        """The host file system's fallocate on the donated fd (the mapping cache, if any, follows)."""
        fd = self.host_fd()
        try:
            _host_call(_libc.fallocate(fd, mode, offset, length))
            host = self.node.host
            host.stale = True
            cache = host.cached()
            if cache is not None:
                end = min(offset + length, cache.size)
                if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) and offset < end:
                    cache.pwrite(bytes(end - offset), offset)
                size = os.fstat(fd).st_size
                if size != cache.size:
                    cache.resize(size)
        except OSError as err:
            raise _sys(err) from None

    def syncfs(self, t) -> None:
        """Sync the host file system the file is on (syncfs on the donated fd)."""
        try:
            _host_call(_libc.syncfs(self.host_fd()))
        except OSError as err:
            raise _sys(err) from None

    def fsync(self, t) -> None:
        """Flush to the host's disk (with what shared mappings stored)."""
        self._write_back()
        fd = self._fd
        if fd < 0:
            self.node.fsync()
            return
        try:
            os.fsync(fd)
        except OSError as err:
            raise _sys(err) from None

    def release(self) -> None:
        """Close the host fd (taking the file's attributes from it first if they are stale)."""
        fd = self._fd
        host = self.node.host
        host.lazy.discard(self)
        if fd < 0:
            return
        try:
            self._write_back()
        except SysError:
            pass  # close reports no writeback error
        self._fd = -1
        host.fds.pop(fd, None)
        if host.stale:
            try:
                host.attr, host.stale = self.node.fs.fd_attr(fd, host.attr), False
            except OSError:
                pass
        os.close(fd)
