#!/usr/bin/env python3
"""Benchmark `tracetree collect`: events per second from many concurrent posters, none lost.

A realistic stream (benchmarks/generate.py, made when missing) is cut into batches of --batch
events and POSTed by --posters concurrent clients (aiohttp, keep-alive, one connection each,
each poster sending its share in order) to:

  floor      an aiohttp server in a subprocess that reads each body and answers 200, nothing
             else: the cost of HTTP alone with this client and server library (the baseline)
  no-fsync   python -m tracetree collect -o FILE --no-fsync -q   (each batch flushed to the OS)
  collect    python -m tracetree collect -o FILE -q              (flushed and fsynced: the default)

Each measurement starts a fresh server, best of --repeat, runs interleaved. After every collect
run the file is checked: every line whole, every event present exactly once, each poster's
batches in the order it sent them, each batch's lines together. Any loss fails the benchmark.

Usage (from the project root):
    python benchmarks/bench_collect.py [--events 200000] [--batch 100] [--posters 16] [--repeat 3]
        [--input FILE] [--json [PATH]]

Run on demand; not a test. Needs aiohttp (a tracetree dependency) and orjson.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
LISTENING = re.compile(rb"^listening on (http://\S+/)$")

FLOOR_SERVER = """\
import sys
from aiohttp import web

async def receive(request):
    await request.read()
    return web.json_response({"accepted": 0})

async def main():
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}/", file=sys.stderr, flush=True)
    await asyncio.Event().wait()

import asyncio
try:
    asyncio.run(main())
except KeyboardInterrupt:
    pass
"""


@dataclass
class Row:
    name: str
    what: str
    seconds: list[float] = field(default_factory=list)
    checked: str = ""


def stream(events: int, given: Path | None) -> list[bytes]:
    """The input's lines (each a whole JSON object, without its newline)."""
    path = given
    if path is None:
        path = DATA / f"collect-{events}.events.jsonl"
        if not path.exists():
            DATA.mkdir(parents=True, exist_ok=True)
            print(f"generating {path.relative_to(ROOT)} …", file=sys.stderr)
            subprocess.run([sys.executable, str(HERE / "generate.py"), "--events", str(events),
                            "-o", str(path)], check=True)
    lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    return lines[:events] if given is None else lines


def start(command: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    assert process.stderr is not None
    first = process.stderr.readline()
    match = LISTENING.match(first.rstrip(b"\n"))
    if match is None:
        process.kill()
        raise SystemExit(f"server did not start: {first!r} {process.communicate()[1]!r}")
    return process, match.group(1).decode()


def stop(process: subprocess.Popen[bytes]) -> bytes:
    process.send_signal(2)  # SIGINT: what a user's Ctrl-C sends
    _, err = process.communicate(timeout=300)
    if process.returncode != 0:
        raise SystemExit(f"server exited {process.returncode}: {err!r}")
    return err


async def post_all(url: str, shares: list[list[bytes]]) -> float:
    """Every poster sends its batches in order on its own keep-alive connection; returns the
    seconds from the first request to the last answer. Any answer but 200 aborts."""
    connector = aiohttp.TCPConnector(limit=len(shares), force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def poster(batches: list[bytes]) -> None:
            for body in batches:
                async with session.post(url, data=body,
                                        headers={"Content-Type": "application/x-ndjson"}) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"answered {response.status}: {await response.text()}")

        began = time.perf_counter()
        await asyncio.gather(*(poster(batches) for batches in shares))
        return time.perf_counter() - began


def check(path: Path, shares: list[list[bytes]]) -> str:
    """The file holds every event exactly once, whole, in per-poster order; else exit."""
    got = path.read_bytes()
    if got and not got.endswith(b"\n"):
        raise SystemExit("FAIL: the file ends in a cut line")
    lines = got.split(b"\n")[:-1]
    expected = [line for batches in shares for body in batches for line in body.split(b"\n") if line]
    for number, line in enumerate(lines, 1):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            raise SystemExit(f"FAIL: line {number} of the output is torn") from None
    have, want = Counter(lines), Counter(expected)
    lost = sum((want - have).values())
    extra = sum((have - want).values())
    if lost or extra:
        raise SystemExit(f"FAIL: {lost} events lost, {extra} duplicated or foreign")
    # Order: each batch's lines together, each poster's batches in the order sent.
    batch_of = {}
    for poster, batches in enumerate(shares):
        for index, body in enumerate(batches):
            batch_of[body.split(b"\n", 1)[0]] = (poster, index, body.count(b"\n"))
    position, last = 0, [-1] * len(shares)
    while position < len(lines):
        poster, index, count = batch_of[lines[position]]
        if index != last[poster] + 1:
            raise SystemExit(f"FAIL: poster {poster}'s batch {index} came after batch {last[poster]}")
        last[poster] = index
        block = b"".join(line + b"\n" for line in lines[position:position + count])
        if block != shares[poster][index]:
            raise SystemExit(f"FAIL: batch {index} of poster {poster} is not whole at line {position + 1}")
        position += count
    return f"{len(lines):,} events, 0 lost, 0 duplicated, 0 torn, order kept"


def run_once(row: Row, shares: list[list[bytes]], folder: Path) -> None:
    out = folder / f"{row.name}.jsonl"
    if row.name == "floor":
        command = [sys.executable, "-c", FLOOR_SERVER]
    else:
        command = [sys.executable, "-m", "tracetree", "collect", "--listen", "127.0.0.1:0", "-o", str(out),
                   "-q"]
        if row.name == "no-fsync":
            command.append("--no-fsync")
    process, url = start(command)
    try:
        row.seconds.append(asyncio.run(post_all(url, shares)))
    finally:
        stop(process)
    if row.name != "floor":
        row.checked = check(out, shares)
        out.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to send (default 200,000)")
    parser.add_argument("--batch", type=int, default=100, help="events per batch (default 100)")
    parser.add_argument("--posters", type=int, default=16, help="concurrent posters (default 16)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    parser.add_argument("--input", type=Path, help="send this JSON Lines file instead of a generated one")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    lines = stream(args.events, args.input)
    batches = [b"".join(line + b"\n" for line in lines[i:i + args.batch])
               for i in range(0, len(lines), args.batch)]
    shares = [batches[p::args.posters] for p in range(args.posters)]
    size = sum(len(body) for body in batches)
    rows = [Row("floor", "HTTP alone: read the body, answer 200"),
            Row("no-fsync", "collect --no-fsync"),
            Row("collect", "collect (fsync per write)")]
    with tempfile.TemporaryDirectory(prefix="bench-collect-", dir=DATA if DATA.is_dir() else None) as tmp:
        for _ in range(args.repeat):
            for row in rows:
                run_once(row, shares, Path(tmp))

    floor = min(rows[0].seconds)
    print(f"{len(lines):,} events ({size / 2**20:.1f} MiB) in {len(batches):,} batches of {args.batch}, "
          f"{args.posters} posters; best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'row':<10} {'best s':>7} {'median s':>8} {'events/s':>10} {'MiB/s':>7} {'× floor time':>12}  "
          "check")
    figures = []
    for row in rows:
        best = min(row.seconds)
        figures.append({"row": row.name, "what": row.what, "best_s": best,
                        "median_s": statistics.median(row.seconds), "events_per_s": len(lines) / best,
                        "mib_per_s": size / 2**20 / best, "x_floor": best / floor, "check": row.checked})
        median = statistics.median(row.seconds)
        print(f"{row.name:<10} {best:>7.2f} {median:>8.2f} {len(lines) / best:>10,.0f} "
              f"{size / 2**20 / best:>7.1f} {best / floor:>11.2f}×  {row.checked or '(not stored)'}")
    if args.json:
        report = {"events": len(lines), "bytes": size, "batch": args.batch, "posters": args.posters,
                  "repeat": args.repeat, "python": platform.python_version(), "aiohttp": aiohttp.__version__,
                  "loadavg": os.getloadavg()[0], "rows": figures}
        data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
        if args.json == "-":
            sys.stdout.buffer.write(data + b"\n")
        else:
            Path(args.json).write_bytes(data + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
