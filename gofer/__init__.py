"""The gofer: serves a container's files (its root and bind mounts, each read-only or writable)
to the sentry over a unix socket.

`protocol` is the wire format, `server` the gofer process, `client` the sentry's side.
"""
