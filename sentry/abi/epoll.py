"""epoll(7) constants (include/uapi/linux/eventpoll.h, fs/eventpoll.c)."""
from .fs import POLLERR, POLLHUP, POLLIN, POLLOUT

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
# The flags that are not events (never reported; what a one-shot item keeps after reporting).
EP_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
# What may accompany EPOLLEXCLUSIVE.
EPOLLEXCLUSIVE_OK_BITS = POLLIN | POLLOUT | POLLERR | POLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE
EP_MAX_NESTS = 4  # epoll instances inside epoll instances, at most this deep
EPOLL_EVENT_SIZE = 12  # struct epoll_event is packed on x86_64
EP_MAX_EVENTS = 0x7FFFFFFF // EPOLL_EVENT_SIZE
