"""containerd-shim-ringfence-v1: the containerd runtime v2 shim (not built yet)."""
import sys


def main() -> int:
    """Entry point: the shim is the next milestone; say so and fail."""
    print("containerd-shim-ringfence-v1: not implemented yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
