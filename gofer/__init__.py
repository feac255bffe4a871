"""The gofer: serves a container's root directory to the sentry over a unix socket.

`protocol` is the wire format, `server` the gofer process, `client` the sentry's side.
"""
