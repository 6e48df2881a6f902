#!/usr/bin/env python3
"""Benchmark the HTML report: its size, the time to write it, and the time to open it in a
headless chromium, for the 1M-event stream's largest trace, a 10,000-invocation stream, and the
largest trace of a stream of very large traces.

In one run, per case:

  size         bytes of `tracetree build FILE --format html`, gzipped bytes, × the input's size
  write        `python -m tracetree build FILE --format html -q -o OUT` (fresh subprocess, best of
               --repeat), against `--format json` on the same input in the same run (the ratio)
  open         the page in Debian's chromium (playwright, executable /usr/bin/chromium, a fresh
               tab per run): navigation start to the report's `tracetree-ready` mark (file read,
               HTML and JSON parsed, first render done), best of --repeat; against the floor, the
               same bytes with the report's script removed (reading and parsing a page that size)
  open all     in the open page, time to open every trace section that starts closed and then
               every closed node, click by click, until the whole forest is drawn (and how many
               rows that is): far more than a reader asks for at once

Inputs are generated with benchmarks/generate.py (seed 1) into --data (default: a folder in the
system's temporary directory, not the repository): `stream-1m` (1,000,000 events; its largest
trace by invocations is cut out into its own file), `stream-10k-invocations` (112,200 events:
10,004 invocations) and `stream-large-traces` (--max-invocations 1000 --max-depth 6; its largest
trace is cut out: a trace of several hundred invocations, for the lazy drawing of one big tree).

Usage (from the project root):
    python benchmarks/bench_html.py [--data DIR] [--repeat 3] [--only CASE,...] [--json [PATH]]

Needs playwright (the test extra) and chromium (`apt-get install -y chromium`). Run on demand;
not a test.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Case:
    name: str
    what: str
    input: Path
    input_bytes: int = 0
    traces: int = 0
    invocations: int = 0
    events: int = 0
    html_bytes: int = 0
    html_gzip_bytes: int = 0
    write_html_s: list[float] = field(default_factory=list)
    write_json_s: list[float] = field(default_factory=list)
    open_ms: list[float] = field(default_factory=list)
    open_wall_s: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    open_all_ms: list[float] = field(default_factory=list)
    rows_all: int = 0
    console_errors: list[str] = field(default_factory=list)


def generate(out: Path, *args: str) -> Path:
    if not out.exists():
        print(f"generating {out.name} …", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "generate.py"), "-o", str(out), *args], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def largest_trace(stream: Path, out: Path) -> Path:
    """Cut the trace with the most invocations (then events) out of `stream`, lines in file order."""
    if out.exists():
        return out
    print(f"finding the largest trace of {stream.name} …", file=sys.stderr)
    invocations: dict[str, set[str]] = {}
    events: dict[str, int] = {}
    with stream.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            event = orjson.loads(line)
            trace = event["spanContext"]["traceId"]
            invocations.setdefault(trace, set()).add(event["invocationId"])
            events[trace] = events.get(trace, 0) + 1
    best = max(invocations, key=lambda trace: (len(invocations[trace]), events[trace], trace))
    needle = f'"traceId":"{best}"'.encode()
    with stream.open("rb") as handle, out.open("wb") as written:
        for line in handle:
            if needle in line.replace(b" ", b""):
                written.write(line)
    return out


def timed_run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def measure_write(case: Case, out: Path, repeat: int) -> None:
    base = [sys.executable, "-m", "tracetree", "build", str(case.input), "-q"]
    for _ in range(repeat):  # interleaved, so a noisy spell hits both alike
        case.write_html_s.append(timed_run([*base, "--format", "html", "-o", str(out)]))
        case.write_json_s.append(timed_run([*base, "--format", "json", "-o", os.devnull]))
    page = out.read_bytes()
    case.html_bytes = len(page)
    case.html_gzip_bytes = len(gzip.compress(page, 6))
    start = page.index(b'id="tracetree-data">') + len(b'id="tracetree-data">')
    data = orjson.loads(page[start:page.index(b"</script>", start)])
    case.traces = len(data["traces"])
    case.invocations = data["summary"]["invocations"]


def floor_page(page: bytes) -> bytes:
    """The same page without the report's script: what reading and parsing that many bytes costs."""
    cut = page.rindex(b"<script>")
    return page[:cut] + page[page.index(b"</script>", cut) + len(b"</script>"):]


def measure_open(case: Case, out: Path, repeat: int, browser: Any) -> None:
    floor = out.with_suffix(".floor.html")
    floor.write_bytes(floor_page(out.read_bytes()))
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda error: case.console_errors.append(str(error)))
        page.on("console", lambda message: case.console_errors.append(message.text)
                if message.type == "error" else None)
        start = time.perf_counter()
        page.goto(out.as_uri(), timeout=600_000)
        page.wait_for_selector("body[data-ready]", state="attached", timeout=600_000)
        case.open_wall_s.append(time.perf_counter() - start)
        case.open_ms.append(page.evaluate("performance.getEntriesByName('tracetree-ready')[0].startTime"))
        # Every trace section opened, then every closed node, level by level, until none is left.
        case.open_all_ms.append(page.evaluate(
            "(() => { const t = performance.now();"
            " document.querySelectorAll('.trace:not(.open) .trace-head').forEach(b => b.click());"
            " const closedToggles = '.row:not(.open) > .label > .toggle:not(.leaf)';"
            " for (;;) { const closed = document.querySelectorAll(closedToggles);"
            "   if (!closed.length) break; closed.forEach(b => b.click()); }"
            " document.body.offsetHeight; return performance.now() - t; })()"))
        case.rows_all = page.evaluate("document.querySelectorAll('.row:not(.axis)').length")
        page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(floor.as_uri(), timeout=600_000)
        page.wait_for_load_state("load")
        case.floor_ms.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
        page.close()


def cases(data: Path) -> list[Case]:
    big = generate(data / "stream-1m.events.jsonl", "--events", "1000000", "--seed", "1")
    small = generate(data / "stream-10k-invocations.events.jsonl", "--events", "112200", "--seed", "1")
    wide = generate(data / "stream-large-traces.events.jsonl", "--events", "150000", "--seed", "1",
                    "--max-invocations", "1000", "--max-depth", "6")
    return [
        Case("1m-largest", "the 1M-event stream's largest trace",
             largest_trace(big, data / "1m-largest.jsonl")),
        Case("10k", "a 10,000-invocation stream (112,200 events)", small),
        Case("wide-largest", "largest trace of a stream of traces up to 1,000 invocations",
             largest_trace(wide, data / "wide-largest.jsonl")),
    ]


def best(values: list[float]) -> float:
    return min(values) if values else float("nan")


def report(results: list[Case]) -> None:
    header = ("case", "invocations", "traces", "input MiB", "html MiB", "gzip MiB", "× input",
              "write html s", "write json s", "× json", "open ms", "floor ms", "× floor", "open all ms",
              "rows")
    rows = []
    for case in results:
        rows.append((
            case.name, f"{case.invocations:,}", f"{case.traces:,}", f"{case.input_bytes / 2**20:.2f}",
            f"{case.html_bytes / 2**20:.2f}", f"{case.html_gzip_bytes / 2**20:.2f}",
            f"{case.html_bytes / case.input_bytes:.2f}×",
            f"{best(case.write_html_s):.2f}", f"{best(case.write_json_s):.2f}",
            f"{best(case.write_html_s) / best(case.write_json_s):.2f}×",
            f"{best(case.open_ms):.0f}", f"{best(case.floor_ms):.0f}",
            f"{best(case.open_ms) / best(case.floor_ms):.1f}×", f"{best(case.open_all_ms):.0f}",
            f"{case.rows_all:,}",
        ))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print("\t".join(header))
        for row in rows:
            print("\t".join(row))
    else:
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        Console(width=220).print(table)
    for case in results:
        if case.console_errors:
            print(f"{case.name}: console errors: {case.console_errors[:3]}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "tracetree-bench-html")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated case names (1m-largest,10k,wide-largest)")
    parser.add_argument("--json", nargs="?", const="-", default=None, help="write the figures as JSON")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.data.mkdir(parents=True, exist_ok=True)
    selected = [case for case in cases(args.data) if not args.only or case.name in args.only.split(",")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for case in selected:
            print(f"{case.name}: {case.what} …", file=sys.stderr)
            case.input_bytes = case.input.stat().st_size
            case.events = sum(1 for line in case.input.open("rb") if line.strip())
            out = args.data / f"{case.name}.html"
            measure_write(case, out, args.repeat)
            measure_open(case, out, args.repeat, browser)
        version = browser.version
        browser.close()
    report(selected)
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        meta = {"python": platform.python_version(), "chromium": version, "repeat": args.repeat,
                "load": os.getloadavg(), "commit": commit}
        payload = orjson.dumps({"meta": meta, "cases": [
            {**asdict(case), "input": str(case.input)} for case in selected]}, option=orjson.OPT_INDENT_2)
        if args.json == "-":
            sys.stdout.buffer.write(payload + b"\n")
        else:
            Path(args.json).write_bytes(payload + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
