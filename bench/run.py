#!/usr/bin/env python3
"""ringfence benchmark: per-syscall cost and start-to-exit, side by side in one run.

    python3 bench/run.py [--reps 7] [--json FILE] [--skip-ringfence]

Builds bench/getpid.c (a loop of raw getpid syscalls) and bench/bare_tracer.c
(a bare C PTRACE_SYSEMU tracer that only sets %rax and resumes, tracer and
tracee pinned to one CPU), then measures, each several times, and prints the
medians as a Markdown table:

- getpid cost per call: native, under the bare tracer (pinned; and unpinned
  for context), under `ringfence do`;
- start-to-exit wall time of `busybox true`: native and under `ringfence do`;
- fork+exec+wait of `/bin/true` and of `python3 -c pass` (bench/spawn.c), inside
  one process natively and inside one sandbox;

with the ratios ringfence/native and ringfence/bare tracer, and whether the
issue's target (sandboxed getpid <= 1.3x the bare tracer) is met.  Exits 1 if
a ringfence measurement failed (the other rows are still printed).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
import harness  # noqa: E402  (tests/harness.py: cache, busybox, gcc, ringfence lookup)

TARGET_RATIO = 1.3


class Failed(Exception):
    pass


def run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        proc = harness.run(argv, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Failed(f"timed out after {timeout:.0f}s: {' '.join(map(str, argv))}") from e
    if proc.returncode != 0:
        raise Failed(f"exit {proc.returncode}: {' '.join(map(str, argv))}\n"
                     + proc.stderr.decode(errors="replace")[-1500:])
    return proc


def reported(key: str):
    """A measurement that runs a bench program and reads the `key=value` it prints."""
    def measure_runs(argv: list[str], reps: int) -> list[float]:
        values = []
        for _ in range(reps):
            out = run(argv).stdout.decode()
            m = re.search(rf"{key}=([0-9.]+)", out)
            if not m:
                raise Failed(f"no {key} in the output of {' '.join(argv)}: {out!r}")
            values.append(float(m.group(1)))
        return values
    return measure_runs


getpid_ns = reported("ns_per_op")  # ns per getpid reported by bench/getpid
spawn_ms = reported("ms_per_op")  # ms per fork+exec+wait reported by bench/spawn


def timed_ms(argv: list, timeout: float = 600) -> float:
    """Start-to-exit wall time of one run of argv, in ms (Failed if it fails)."""
    start = time.perf_counter()
    run([str(a) for a in argv], timeout)
    return (time.perf_counter() - start) * 1000


def wall_ms(argv: list[str], reps: int) -> list[float]:
    """Start-to-exit wall time of argv, in ms, once per repetition."""
    return [timed_ms(argv) for _ in range(reps)]


def measure(name: str, fn, *args, warmup: bool = False) -> dict:
    try:
        if warmup:
            fn(*args[:-1], 1)
        samples = fn(*args)
        return {"name": name, "median": statistics.median(samples), "samples": samples}
    except Failed as e:
        print(f"# {name}: FAILED: {e}", file=sys.stderr)
        return {"name": name, "median": None, "error": str(e)}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    if unit == "µs":
        return f"{value / 1000:.2f} µs"
    return f"{value:.1f} ms"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def side_by_side_args(description: str) -> argparse.Namespace:
    """The flags of a benchmark that alternates runtimes: --rounds, --warmup, --json."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--rounds", type=int, default=10, help="timed runs per runtime (median taken)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per runtime first")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    return ap.parse_args()


def side_by_side(title: str, labels: dict[str, str], once, args: argparse.Namespace) -> int:
    """Time `once(name, i)` (ms; raises Failed) for each runtime of `labels` in turn, round
    after round, so all see the same machine; print the medians and ringfence/runc.
    Returns 1 if a runtime failed."""
    samples: dict[str, list[float]] = {name: [] for name in labels}
    errors: dict[str, str] = {}
    for i in range(args.warmup + args.rounds):
        for name in labels:
            if name in errors:
                continue
            try:
                ms = once(name, i)
            except Failed as e:
                errors[name] = str(e)
                print(f"# {name}: FAILED: {e}", file=sys.stderr)
                continue
            if i >= args.warmup:
                samples[name].append(ms)
    med = {name: statistics.median(v) if v and name not in errors else None for name, v in samples.items()}
    print(f"\n{title} — medians of {args.rounds} runs (after {args.warmup} warm-up)\n")
    print("| runtime | median | min | max |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        low, high = (fmt(min(values), "ms"), fmt(max(values), "ms")) if med[name] else ("–", "–")
        print(f"| {labels[name]} | {fmt(med[name], 'ms')} | {low} | {high} |")
    print(f"\nringfence/runc: {ratio(med['ringfence'], med['runc'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "errors": errors}, indent=2))
    return 1 if errors else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="repetitions per measurement (median taken)")
    ap.add_argument("--native-n", type=int, default=1_000_000, help="getpid calls per native run")
    ap.add_argument("--traced-n", type=int, default=20_000, help="getpid calls per traced run")
    ap.add_argument("--true-reps", type=int, default=20, help="repetitions of busybox true")
    ap.add_argument("--skip-ringfence", action="store_true", help="measure native and bare tracer only")
    ap.add_argument("--json", metavar="FILE", help="also write every sample as JSON")
    args = ap.parse_args()

    getpid = str(harness.compile_c(BENCH_DIR / "getpid.c", "bench-getpid", ("-O2",)))
    tracer = str(harness.compile_c(BENCH_DIR / "bare_tracer.c", "bench-bare-tracer", ("-O2",)))
    spawn = str(harness.compile_c(BENCH_DIR / "spawn.c", "bench-spawn", ("-O2",)))
    python3 = shutil.which("python3") or "/usr/bin/python3"
    busybox = str(harness.find_busybox())
    ringfence = None if args.skip_ringfence else harness.find_ringfence()
    if not args.skip_ringfence and not ringfence:
        print("# ringfence is not installed (python3 -m pip install .): its rows will fail",
              file=sys.stderr)

    def in_sandbox(argv: list[str]) -> list[str]:
        return [ringfence or "ringfence-not-installed", "do", "--quiet", *argv]

    r, n, tn = args.reps, str(args.native_n), str(args.traced_n)
    results = {
        "getpid_native": measure("getpid native", getpid_ns, [getpid, n], r),
        "getpid_bare": measure("getpid bare tracer (pinned)", getpid_ns, [tracer, getpid, tn], r),
        "getpid_bare_unpinned": measure("getpid bare tracer (unpinned)", getpid_ns,
                                        [tracer, "--no-pin", getpid, str(args.traced_n // 4)],
                                        max(3, r // 2)),
        "true_native": measure("busybox true native", wall_ms, [busybox, "true"], args.true_reps),
        "spawn_true_native": measure("fork+exec+wait /bin/true native", spawn_ms,
                                     [spawn, "50", "/bin/true"], r),
        "spawn_python_native": measure("fork+exec+wait python3 native", spawn_ms,
                                       [spawn, "5", python3, "-c", "pass"], r),
    }
    if not args.skip_ringfence:
        results["getpid_ringfence"] = measure("getpid ringfence", getpid_ns,
                                              in_sandbox([getpid, tn]), r, warmup=True)
        results["true_ringfence"] = measure("busybox true ringfence", wall_ms,
                                            in_sandbox([busybox, "true"]),
                                            max(3, args.true_reps // 2), warmup=True)
        results["spawn_true_ringfence"] = measure("fork+exec+wait /bin/true ringfence", spawn_ms,
                                                  in_sandbox([spawn, "20", "/bin/true"]), r)
        results["spawn_python_ringfence"] = measure("fork+exec+wait python3 ringfence", spawn_ms,
                                                    in_sandbox([spawn, "3", python3, "-c", "pass"]), r)

    med = {k: v["median"] for k, v in results.items()}
    rf_getpid, rf_true = med.get("getpid_ringfence"), med.get("true_ringfence")
    skipped = "not measured" if args.skip_ringfence else None

    print(f"\nringfence benchmark — medians of {r} runs "
          f"(getpid: {args.native_n} calls native, {args.traced_n} traced; "
          f"busybox true: {args.true_reps} runs native)\n")
    print("| benchmark | native | bare C tracer | ringfence | ringfence/native | ringfence/bare tracer |")
    print("|---|---|---|---|---|---|")
    print(f"| getpid, per call | {fmt(med['getpid_native'], 'µs')} | {fmt(med['getpid_bare'], 'µs')} "
          f"| {skipped or fmt(rf_getpid, 'µs')} | {ratio(rf_getpid, med['getpid_native'])} "
          f"| {ratio(rf_getpid, med['getpid_bare'])} |")
    print(f"| `busybox true`, start to exit | {fmt(med['true_native'], 'ms')} | – "
          f"| {skipped or fmt(rf_true, 'ms')} | {ratio(rf_true, med['true_native'])} | – |")
    for key, label in (("spawn_true", "fork+exec+wait `/bin/true`"), ("spawn_python", "fork+exec+wait `python3 -c pass`")):
        native, sandboxed = med[f"{key}_native"], med.get(f"{key}_ringfence")
        print(f"| {label} | {fmt(native, 'ms')} | – | {skipped or fmt(sandboxed, 'ms')} "
              f"| {ratio(sandboxed, native)} | – |")
    print(f"\nbare tracer, tracer and tracee on different CPUs: "
          f"{fmt(med['getpid_bare_unpinned'], 'µs')} per getpid "
          f"({ratio(med['getpid_bare_unpinned'], med['getpid_bare'])} the pinned loop)")
    if rf_getpid is not None and med["getpid_bare"]:
        got = rf_getpid / med["getpid_bare"]
        verdict = "met" if got <= TARGET_RATIO else "NOT met"
        print(f"target: sandboxed getpid <= {TARGET_RATIO}x the bare tracer: {verdict} ({got:.2f}x)")

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    failed = [v["name"] for v in results.values() if v["median"] is None]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
