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

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
import harness  # noqa: E402  (tests/harness.py: busybox, the ringfence script)
from run import Failed, fmt, ratio  # noqa: E402  (bench/run.py)


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


def run_ms(binary: str, root: Path, bundle: Path, cid: str) -> float:
    """Wall time in ms of one `BINARY --root ROOT run --bundle BUNDLE CID`."""
    start = time.perf_counter()
    try:
        r = subprocess.run([binary, "--root", str(root), "run", "--bundle", str(bundle), cid],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        raise Failed(f"run timed out after {e.timeout:.0f}s") from e
    elapsed = (time.perf_counter() - start) * 1000
    if r.returncode != 0:
        raise Failed(f"run exited {r.returncode}: {r.stderr.decode(errors='replace').strip()[-1500:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="timed runs per runtime (median taken)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per runtime first")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    args = ap.parse_args()

    ringfence = harness.find_ringfence()
    runc = shutil.which("runc")
    if not ringfence or not runc:
        print("needs both `ringfence` (pip install .) and `runc` (apt-get install runc)", file=sys.stderr)
        return 1
    runtimes = {"runc": runc, "ringfence": ringfence}
    samples: dict[str, list[float]] = {name: [] for name in runtimes}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ringfence-bench-") as tmp:
        work = Path(tmp)
        bundle = make_bundle(work, ringfence)
        for i in range(args.warmup + args.rounds):
            for name, binary in runtimes.items():
                if name in errors:
                    continue
                try:
                    ms = run_ms(binary, work / f"{name}-root", bundle, f"bench-{name}-{i}")
                except Failed as e:
                    errors[name] = str(e)
                    print(f"# {name} run: FAILED: {e}", file=sys.stderr)
                    continue
                if i >= args.warmup:
                    samples[name].append(ms)

    med = {name: statistics.median(v) if v and name not in errors else None for name, v in samples.items()}
    print(f"\n`RUNTIME run --bundle B ID` of /bin/true — medians of {args.rounds} runs "
          f"(after {args.warmup} warm-up)\n")
    print("| runtime | median | min | max |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        low, high = (fmt(min(values), "ms"), fmt(max(values), "ms")) if med[name] else ("–", "–")
        print(f"| {name} | {fmt(med[name], 'ms')} | {low} | {high} |")
    print(f"\nringfence/runc: {ratio(med['ringfence'], med['runc'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "errors": errors}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
