"""The sentry's file systems: gofer-backed, tmpfs, overlay, proc, dev, pipes and host fds."""
