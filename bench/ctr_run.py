#!/usr/bin/env python3
"""ringfence benchmark: `ctr run --rm IMAGE ID /bin/true`, runc's shim against ours, in one run.

    python3 bench/ctr_run.py [--rounds 10] [--warmup 1] [--json FILE]

Starts a private containerd with a locally built busybox image
(tests/containerd_env.py), then times `ctr run --rm` of /bin/true — ctr's
start, the shim's start, the container's create/start/exit and its removal —
with io.containerd.runc.v2 and io.containerd.ringfence.v1, alternating
the two in every round so both see the same machine.  Prints the medians as a
Markdown table with the ratio ringfence/runc; exits 1 if a runtime failed.
"""
from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
import containerd_env as ce  # noqa: E402  (tests/containerd_env.py: private containerd, image)
from run import side_by_side, side_by_side_args, timed_ms  # noqa: E402  (bench/run.py)


def main() -> int:
    args = side_by_side_args(__doc__.split("\n\n")[0])
    with ce.private_containerd() as c:
        c.import_image(ce.busybox_image())
        return side_by_side("`ctr run --rm IMAGE ID /bin/true`", ce.RUNTIMES,
                            lambda name, i: timed_ms(c.ctr_argv("run", "--rm", "--runtime", ce.RUNTIMES[name],
                                                               "--fifo-dir", str(c.fifo_dir), ce.IMAGE_NAME,
                                                               f"bench-{name}-{i}", "/bin/true"), 120), args)


if __name__ == "__main__":
    sys.exit(main())
