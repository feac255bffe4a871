#!/usr/bin/env python3
"""ringfence benchmark: `ringfence run` of /bin/true against `runc run`, same bundle, in one run.

    python3 bench/oci_run.py [--rounds 10] [--warmup 1] [--json FILE]

Builds one OCI bundle with `ringfence spec` over a busybox rootfs (the static
busybox of tests/harness.py), process /bin/true without a terminal, then
times `RUNTIME --root DIR run --bundle B ID` — the CLI's start, the
container's create, start and exit, and its deletion — for runc and
ringfence, alternating the two in every round so both see the same machine.
Prints the medians as a Markdown table with the ratio ringfence/runc; exits
1 if a runtime failed.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
import harness  # noqa: E402  (tests/harness.py: busybox, the ringfence script)
from run import Failed, side_by_side, side_by_side_args, timed_ms  # noqa: E402  (bench/run.py)


def make_bundle(work: Path, ringfence: str) -> Path:
    rootfs = work / "rootfs"
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy(harness.find_busybox(), rootfs / "bin" / "busybox")
    for applet in ("sh", "true"):
        os.symlink("busybox", rootfs / "bin" / applet)
    bundle = work / "bundle"
    bundle.mkdir()
    r = harness.run([ringfence, "spec", "--bundle", bundle])
    if r.returncode != 0:
        raise Failed(f"ringfence spec: {r.stderr.decode(errors='replace')}")
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = str(rootfs)
    config["process"].update(args=["/bin/true"], terminal=False)
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def main() -> int:
    args = side_by_side_args(__doc__.split("\n\n")[0])
    ringfence = harness.find_ringfence()
    runc = shutil.which("runc")
    if not ringfence or not runc:
        print("needs both `ringfence` (pip install .) and `runc` (apt-get install runc)", file=sys.stderr)
        return 1
    runtimes = {"runc": runc, "ringfence": ringfence}
    with tempfile.TemporaryDirectory(prefix="ringfence-bench-") as tmp:
        work = Path(tmp)
        bundle = make_bundle(work, ringfence)
        return side_by_side("`RUNTIME run --bundle B ID` of /bin/true", {name: name for name in runtimes},
                            lambda name, i: timed_ms([runtimes[name], "--root", work / f"{name}-root", "run",
                                                      "--bundle", bundle, f"bench-{name}-{i}"], 120), args)


if __name__ == "__main__":
    raise SystemExit(main())
