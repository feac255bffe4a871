"""The sentry's networking: AF_UNIX sockets, kept entirely inside the sentry (no host sockets)."""
