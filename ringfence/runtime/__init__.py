"""The container lifecycle library shared by the shim and the OCI CLI.

An OCI bundle becomes a sandbox: a gofer serving its root, a sentry running
its process, both placed in the container's cgroup.
"""
