#!/usr/bin/env python3
"""Benchmark `tracetree export otlp` against `tracetree build --format json` on the same input.

Each run is a fresh subprocess writing to /dev/null; runs of the three commands are interleaved
so a noisy spell hits them alike; the best of --repeat wall times is reported with the median,
as a ratio to `build --format json` (the same read, resolve and assemble, then the canonical
document), and each command's peak RSS (the child's ru_maxrss) as a ratio to the input size.

Usage (from the project root):
    python benchmarks/bench_otlp.py [--events 100000] [--input FILE] [--repeat 3]

Needs opentelemetry-proto for the protobuf row (`pip install -e '.[otlp]'`). Run on demand;
not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_build  # noqa: E402  (benchmarks/bench_build.py: run_once, inputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="generated input size (default 100k)")
    parser.add_argument("--input", type=Path, default=None, help="benchmark this capture instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    path = args.input or bench_build.default_input(args.events)
    if args.input is None:
        bench_build.ensure_input(path, args.events, args.seed)
    size = path.stat().st_size
    python = [sys.executable, "-m", "tracetree"]
    quiet = ["-q", "-o", "/dev/null"]
    rows = {
        "build --format json": [*python, "build", str(path), "--format", "json", *quiet],
        "export otlp (JSON)": [*python, "export", "otlp", str(path), *quiet],
        "export otlp --protobuf": [*python, "export", "otlp", str(path), "--protobuf", *quiet],
    }
    walls: dict[str, list[float]] = {name: [] for name in rows}
    rss: dict[str, int] = dict.fromkeys(rows, 0)
    for run in range(args.repeat):
        for name, command in rows.items():
            wall, peak, status, tail = bench_build.run_once(command)
            if status != 0:
                print(f"{name}: exit {status}: {bench_build._last_lines(tail)}", file=sys.stderr)
                return 1
            walls[name].append(wall)
            rss[name] = max(rss[name], peak)
            print(f"run {run + 1}/{args.repeat} {name}: {wall:.2f} s", file=sys.stderr)

    baseline = min(walls["build --format json"])
    print(f"{path.name}: {size / 2**20:.1f} MiB, best of {args.repeat}\n")
    print("| command | best s | median s | × build json | peak RSS MiB | × input |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in rows:
        best = min(walls[name])
        print(f"| {name} | {best:.2f} | {statistics.median(walls[name]):.2f} | {best / baseline:.2f}× "
              f"| {rss[name] / 2**20:,.0f} | {rss[name] / size:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
