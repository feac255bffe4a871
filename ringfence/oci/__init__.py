"""The runc-compatible OCI runtime commands of the `ringfence` CLI."""
