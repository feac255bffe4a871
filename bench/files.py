#!/usr/bin/env python3
"""ringfence file benchmark: the same file workloads natively and under `ringfence do`, in one run.

    python3 bench/files.py [--reps 5] [--json FILE]

- open+fstat+close of 10,000 files (bench/files.c, timed inside the program);
- reading a 100 MiB file to the end in 128 KiB reads (bench/files.c);
- fork+exec+wait of `python3 -c 'import json, sqlite3, asyncio'` (bench/spawn.c),
  from inside one process natively and inside one sandbox.

The files live in a fresh host directory; under `ringfence do` they come
through the gofer (the host root is read-only under an in-memory layer).
Prints the medians as a Markdown table with the ratios ringfence/native;
exits 1 if a measurement failed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
import harness  # noqa: E402  (tests/harness.py: gcc, the ringfence script)
from run import fmt, measure, ratio, reported  # noqa: E402  (bench/run.py)

N_FILES = 10_000
READ_MIB = 100
READ_BUF = 128 * 1024
IMPORTS = "import json, sqlite3, asyncio"

us_per_op = reported("us_per_op")
ms_per_op = reported("ms_per_op")


def make_files(work: Path) -> tuple[Path, Path]:
    """N_FILES small files in work/many, and a READ_MIB MiB file work/big."""
    many = work / "many"
    many.mkdir()
    for i in range(N_FILES):
        (many / str(i)).write_bytes(b"x" * (i % 512))
    big = work / "big"
    chunk = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for _ in range(READ_MIB):
            f.write(chunk)
    return many, big


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per measurement (median taken)")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    args = ap.parse_args()

    files = str(harness.compile_c(BENCH_DIR / "files.c", "bench-files", ("-O2",)))
    spawn = str(harness.compile_c(BENCH_DIR / "spawn.c", "bench-spawn", ("-O2",)))
    python3 = "/usr/bin/python3"  # Debian's, so both runs import the same modules
    ringfence = harness.find_ringfence() or "ringfence-not-installed"
    work = Path(tempfile.mkdtemp(prefix="ringfence-bench-files."))
    try:
        many, big = make_files(work)
        workloads = {
            "stat": ("open+fstat+close, per file", us_per_op, [files, "stat", str(many), str(N_FILES)], "µs/op"),
            "read": (f"read a {READ_MIB} MiB file ({READ_BUF // 1024} KiB reads)", ms_per_op,
                     [files, "read", str(big), str(READ_BUF)], "ms"),
            "python": (f"`python3 -c '{IMPORTS}'`", ms_per_op, [spawn, "3", python3, "-c", IMPORTS], "ms"),
        }
        results = {}
        for key, (label, fn, argv, _) in workloads.items():
            results[f"{key}_native"] = measure(f"{label} native", fn, argv, args.reps, warmup=True)
            results[f"{key}_ringfence"] = measure(f"{label} ringfence", fn,
                                                  [ringfence, "do", "--quiet", "--", *argv], args.reps, warmup=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nringfence file benchmark — medians of {args.reps} runs\n")
    print("| benchmark | native | ringfence | ringfence/native |")
    print("|---|---|---|---|")
    for key, (label, _, _, unit) in workloads.items():
        native, sandboxed = results[f"{key}_native"]["median"], results[f"{key}_ringfence"]["median"]
        shown = [f"{v:.2f} µs" if unit == "µs/op" and v is not None else fmt(v, "ms") for v in (native, sandboxed)]
        print(f"| {label} | {shown[0]} | {shown[1]} | {ratio(sandboxed, native)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if any(v["median"] is None for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
