"""Linux inotify ABI: event bits, watch flags, init flags and struct inotify_event."""
import struct

# Events (a watch's mask and an event's mask).
IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_ALL_EVENTS = 0x00000FFF
# Only in events read: sent whatever the watch's mask.
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000  # the subject of the event is a directory
# Watch flags (inotify_add_watch).
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_MASK_CREATE = 0x10000000
IN_MASK_ADD = 0x20000000
IN_ONESHOT = 0x80000000
ALL_INOTIFY_BITS = (IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD
                    | IN_ONESHOT)
# Events a directory's watch also receives about its children (with the child's name).
IN_ON_CHILD = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_OPEN

# inotify_init1 flags (O_NONBLOCK and O_CLOEXEC).
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

INOTIFY_EVENT = struct.Struct("<iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
MAX_QUEUED_EVENTS = 16384  # /proc/sys/fs/inotify/max_queued_events
