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

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
import containerd_env as ce  # noqa: E402  (tests/containerd_env.py: private containerd, image)
from run import Failed, fmt, ratio  # noqa: E402  (bench/run.py)


def ctr_run_ms(c: ce.Containerd, runtime: str, cid: str) -> float:
    """Wall time in ms of one `ctr run --rm` of /bin/true with `runtime`."""
    start = time.perf_counter()
    try:
        r = c.ctr("run", "--rm", "--runtime", ce.RUNTIMES[runtime], "--fifo-dir", str(c.fifo_dir),
                  ce.IMAGE_NAME, cid, "/bin/true")
    except subprocess.TimeoutExpired as e:
        raise Failed(f"ctr run timed out after {e.timeout:.0f}s") from e
    elapsed = (time.perf_counter() - start) * 1000
    if r.returncode != 0:
        raise Failed(f"ctr run exited {r.returncode}: {r.stderr.strip()[-1500:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="timed runs per runtime (median taken)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per runtime first")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    args = ap.parse_args()

    samples: dict[str, list[float]] = {name: [] for name in ce.RUNTIMES}
    errors: dict[str, str] = {}
    with ce.private_containerd() as c:
        c.import_image(ce.busybox_image())
        for i in range(args.warmup + args.rounds):
            for name in ce.RUNTIMES:
                if name in errors:
                    continue
                try:
                    ms = ctr_run_ms(c, name, f"bench-{name}-{i}")
                except Failed as e:
                    errors[name] = str(e)
                    print(f"# ctr run {name}: FAILED: {e}", file=sys.stderr)
                    continue
                if i >= args.warmup:
                    samples[name].append(ms)

    med = {name: statistics.median(v) if v and name not in errors else None
           for name, v in samples.items()}
    print(f"\n`ctr run --rm IMAGE ID /bin/true` — medians of {args.rounds} runs "
          f"(after {args.warmup} warm-up)\n")
    print("| runtime | median | min | max |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        low, high = (fmt(min(values), "ms"), fmt(max(values), "ms")) if med[name] else ("–", "–")
        print(f"| {ce.RUNTIMES[name]} | {fmt(med[name], 'ms')} | {low} | {high} |")
    print(f"\nringfence/runc: {ratio(med['ringfence'], med['runc'])}")

    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "errors": errors}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
