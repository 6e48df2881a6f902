#!/usr/bin/env python3
"""Generate a large, realistic streaming-tail stream (JSON Lines of workerd TailEvents).

Deterministic for a given --seed. What the stream looks like (see ../shared/corpus/README.md,
"What real streams look like"):

- many traces interleaved in arrival order; each trace is a tree of 1 to ~30 invocations, up to
  3 links deep (service bindings, JS RPC, Durable Object calls, queues, cron triggers);
- predictable-mode span ids: every invocation numbers its `spanOpen` spans 0000000000000001,
  0000000000000002, … afresh, so span ids collide across the invocations of a trace; the onset's
  own top-level span id is a random 64-bit id;
- trace and invocation ids are random 128-bit ids by default (`--ids counter` gives
  predictable-mode `2a2a…` XOR a process-wide counter instead);
- lazy delivery, as real workerd: a callee's `onset` arrives before the caller's `spanOpen` of the
  span that dispatched it; onsets arrive in creation order; within one invocation arrival order
  equals `sequence`;
- every `spanOpen` carries the epoch timestamp, every other event a millisecond timestamp;
  `cpuTime`/`wallTime` are 0;
- triggers and dispatch spans fit each other: fetch → `fetch` span (+ `url.full` attributes),
  jsrpc → `jsRpcCall` (+ `jsrpc.method`), Durable Object → `durable_object_subrequest`,
  queue → `queue_send`, scheduled → `scheduled`; plus non-dispatching spans (kv_get, d1_query…),
  nested spans, logs (a few large ones), the odd exception, `spanClose`, `return`, `outcome`.

Beside the output it writes `<name>.truth.json` ({invocationId: {key, parentInvocationId,
parentSpanId, traceId}}, as the corpus truth files), so a folder of generated streams can be
scored with `python ../shared/tools/score_links.py benchmarks/data` when the output name ends in
`.events.jsonl`.

Usage:
    python benchmarks/generate.py --events 1000000 -o benchmarks/data/stream-1m.events.jsonl [--seed N]
"""

from __future__ import annotations

import argparse
import heapq
import random
import re
import sys
import time
from pathlib import Path

import orjson

EPOCH_TS = "1970-01-01T00:00:00.000Z"
BASE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z, as the corpus topologies

# Spans that do not create an invocation, and the dispatch spans that do, by callee trigger.
PLAIN_SPANS = ("kv_get", "kv_put", "d1_query", "cache_match", "durable_object_storage_get", "r2_get")
NESTING_SPANS = ("jsRpcSession", "cache_match", "kv_get")  # can hold a dispatch span inside
DISPATCH = {  # callee kind -> dispatch span name
    "fetch": "fetch",
    "jsrpc": "jsRpcCall",
    "durableObject": "durable_object_subrequest",
    "queue": "queue_send",
    "scheduled": "scheduled",
}
CALLEE_KINDS = ("fetch", "jsrpc", "jsrpc", "durableObject", "queue", "scheduled")
ROOT_KINDS = ("fetch",) * 7 + ("scheduled", "queue", "custom")
METHODS = ("getCounter", "increment", "listItems", "fetchUser", "ping", "render", "enqueue", "sum")
_PLACEHOLDER = re.compile(rb'"@(\d{31})"')
LOG_LEVELS = ("log", "log", "log", "info", "debug", "warn", "error")


class _Clock:
    """ISO timestamps at millisecond resolution, the second part cached."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def iso(self, ms: int) -> str:
        sec, milli = divmod(ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{milli:03d}Z"


class Generator:
    def __init__(self, seed: int, ids: str, gap_ms: float, max_invocations: int, max_depth: int) -> None:
        self.rng = random.Random(seed)
        self.ids = ids
        self.gap_ms = gap_ms
        self.max_invocations = max_invocations
        self.max_depth = max_depth
        self.clock = _Clock()
        self.counter = 0  # predictable-mode process-wide id counter
        self.id_rng = random.Random(seed ^ 0x2A)
        self.placeholders = 0
        self.assigned: dict[bytes, bytes] = {}  # placeholder digits -> counter id
        self.order = 0  # tie-break of equal timestamps: the order events were produced
        self.heap: list[tuple[int, int, bytes]] = []
        self.truth: dict[str, dict[str, str | None]] = {}
        self.events = 0
        self.traces = 0

    # --- ids -------------------------------------------------------------------------------
    def _hex64(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def _new_id(self) -> str:
        if self.ids == "counter":
            # A placeholder, numbered when its first event is written: predictable mode draws
            # ids from its counter as invocations are created, which is arrival order of the
            # onsets, not the order this generator happens to build them in.
            self.placeholders += 1
            return f"@{self.placeholders:031d}"
        return f"{self.rng.getrandbits(128):032x}"

    def _counter_value(self, match: re.Match) -> bytes:
        key = match.group(1)
        value = self.assigned.get(key)
        if value is None:
            # The counter also serves other draws in workerd: ids advance by 1 to 3.
            self.counter += self.id_rng.choice((1, 3, 3))
            half = f"{0x2A2A2A2A2A2A2A2A ^ self.counter:016x}".encode()
            value = self.assigned[key] = half + half
        return b'"' + value + b'"'

    # --- output ----------------------------------------------------------------------------
    def _emit(self, at_ms: int, line: dict) -> None:
        self.order += 1
        heapq.heappush(self.heap, (at_ms, self.order, orjson.dumps(line)))
        self.events += 1

    def flush(self, out, upto_ms: int | None) -> None:
        """Write every queued event due at or before `upto_ms` (all of them when None)."""
        heap = self.heap
        write = out.write
        counter = self.ids == "counter"
        while heap and (upto_ms is None or heap[0][0] <= upto_ms):
            line = heapq.heappop(heap)[2]
            if counter:
                line = _PLACEHOLDER.sub(self._counter_value, line)
            write(line)
            write(b"\n")

    def final_truth(self) -> dict[str, dict[str, str | None]]:
        if self.ids != "counter":
            return self.truth

        def real(value: str | None) -> str | None:
            return value if value is None else self.assigned[value[1:].encode()].decode()

        return {
            real(key): {
                **entry,
                "parentInvocationId": real(entry["parentInvocationId"]),
                "traceId": real(entry["traceId"]),
            }
            for key, entry in self.truth.items()
        }

    # --- shape of a trace ------------------------------------------------------------------
    def _trace_size(self) -> int:
        r = self.rng.random()
        if r < 0.30:
            return 1
        if r < 0.65:
            return self.rng.randint(2, 5)
        if r < 0.90:
            return self.rng.randint(6, 15)
        return self.rng.randint(16, self.max_invocations)

    def _tree(self, size: int) -> list[list[int]]:
        """Children lists of a random tree of `size` nodes (node 0 the root), depth ≤ max_depth."""
        children: list[list[int]] = [[]]
        depth = [0]
        open_nodes = [0] if self.max_depth > 0 else []
        while len(children) < size and open_nodes:
            parent = self.rng.choice(open_nodes)
            node = len(children)
            children.append([])
            depth.append(depth[parent] + 1)
            children[parent].append(node)
            if depth[node] < self.max_depth:
                open_nodes.append(node)
            if len(children[parent]) >= 8:
                open_nodes.remove(parent)
        return children

    # --- one trace -------------------------------------------------------------------------
    def trace(self, start_ms: int) -> None:
        self.traces += 1
        trace_id = self._new_id()
        children = self._tree(self._trace_size())
        kinds = [self.rng.choice(ROOT_KINDS)] + [
            self.rng.choice(CALLEE_KINDS) for _ in range(len(children) - 1)
        ]
        self._invocation(0, children, kinds, trace_id, start_ms, None, None)

    def _invocation(
        self,
        node: int,
        children: list[list[int]],
        kinds: list[str],
        trace_id: str,
        at_ms: int,
        caller: tuple[str, str] | None,  # (caller invocation id, dispatch span id)
        url: str | None,
    ) -> None:
        rng = self.rng
        iso = self.clock.iso
        inv_id = self._new_id()
        top = self._hex64()
        kind = kinds[node]
        service = f"svc{rng.randrange(24)}" if caller else "gateway"
        self.truth[inv_id] = {
            "key": service,
            "parentInvocationId": caller[0] if caller else None,
            "parentSpanId": caller[1] if caller else None,
            "traceId": trace_id,
        }
        seq = 0
        t = at_ms

        def emit(span: str, ts: str, event: dict) -> None:
            nonlocal seq
            self._emit(
                t,
                {
                    "spanContext": {"traceId": trace_id, "spanId": span},
                    "invocationId": inv_id,
                    "timestamp": ts,
                    "sequence": seq,
                    "event": event,
                },
            )
            seq += 1

        # onset
        onset: dict = {"type": "onset", "executionModel": "stateless", "spanId": top}
        if kind == "durableObject":
            onset["executionModel"] = "durableObject"
            onset["entrypoint"] = "Actor" + service[3:]
            onset["durableObjectId"] = f"{rng.getrandbits(256):064x}"
        else:
            onset["entrypoint"] = service
        onset["scriptTags"] = []
        if kind == "fetch":
            method = rng.choice(("GET", "GET", "POST"))
            onset["info"] = {
                "type": "fetch",
                "method": method,
                "url": url or f"https://{service}.example/{rng.getrandbits(16):04x}",
                "headers": [],
            }
        elif kind in ("jsrpc", "durableObject"):
            onset["info"] = {"type": "jsrpc"}
        elif kind == "queue":
            onset["info"] = {
                "type": "queue",
                "queueName": f"queue-{service}",
                "batchSize": rng.randint(1, 10),
            }
        elif kind == "scheduled":
            onset["info"] = {
                "type": "scheduled",
                "scheduledTime": iso(t),
                "cron": rng.choice(("", "* * * * *")),
            }
        else:
            onset["info"] = {"type": "custom"}
        context: dict = {"traceId": trace_id}
        if caller:
            context["spanId"] = caller[1]
        self._emit(
            t,
            {
                "spanContext": context,
                "invocationId": inv_id,
                "timestamp": iso(t),
                "sequence": 0,
                "event": onset,
            },
        )
        seq = 1
        if kind == "jsrpc" or kind == "durableObject":
            t += rng.randint(0, 1)
            emit(
                top,
                iso(t),
                {"type": "attributes", "info": [{"name": "jsrpc.method", "value": rng.choice(METHODS)}]},
            )

        # The body: plain spans, logs and the dispatch of each callee in order, spans closing as
        # it goes. Span ids are sequential per invocation (predictable mode).
        callees = list(children[node])
        steps = ["callee"] * len(callees) + ["span"] * rng.randint(0, 4) + ["log"] * rng.randint(0, 3)
        rng.shuffle(steps)
        next_span = 1
        open_spans: list[tuple[str, bool]] = []  # (span id, can nest a dispatch)
        for step in steps:
            t += rng.randint(0, 12)
            while open_spans and rng.random() < 0.35:  # close something first
                sid, _ = open_spans.pop(rng.randrange(len(open_spans)))
                emit(sid, iso(t), {"type": "spanClose", "outcome": "ok"})
                t += rng.randint(0, 3)
            if step == "log":
                active = rng.choice(open_spans)[0] if open_spans and rng.random() < 0.3 else top
                if rng.random() < 0.01:
                    message: list = ["payload", "x" * rng.randint(2_000, 20_000)]
                else:
                    message = (
                        [f"step {seq}", {"n": rng.randrange(1000)}] if rng.random() < 0.3 else [f"step {seq}"]
                    )
                emit(active, iso(t), {"type": "log", "level": rng.choice(LOG_LEVELS), "message": message})
                continue
            sid = f"{next_span:016x}"
            next_span += 1
            nests = [s for s, can in open_spans if can]
            parent = rng.choice(nests) if nests and rng.random() < 0.3 else top
            if step == "span":
                name = rng.choice(PLAIN_SPANS + NESTING_SPANS)
                emit(parent, EPOCH_TS, {"type": "spanOpen", "name": name, "spanId": sid})
                open_spans.append((sid, name in NESTING_SPANS))
                continue
            # dispatch a callee: its onset arrives first (lazy delivery), then our spanOpen
            child = callees.pop(0)
            child_kind = kinds[child]
            callee_url = None
            if child_kind == "fetch":
                callee_url = f"https://svc{rng.randrange(24)}.example/{rng.getrandbits(16):04x}"
            t += rng.randint(0, 2)
            self._invocation(child, children, kinds, trace_id, t, (inv_id, sid), callee_url)
            emit(parent, EPOCH_TS, {"type": "spanOpen", "name": DISPATCH[child_kind], "spanId": sid})
            open_spans.append((sid, False))
            t += rng.randint(0, 3)
            if child_kind == "fetch":
                emit(sid, iso(t), {"type": "attributes", "info": [{"name": "url.full", "value": callee_url}]})
            elif child_kind in ("jsrpc", "durableObject"):
                emit(
                    sid,
                    iso(t),
                    {"type": "attributes", "info": [{"name": "jsrpc.method", "value": rng.choice(METHODS)}]},
                )
        failed = rng.random() < 0.02
        if failed:
            t += rng.randint(0, 5)
            emit(
                top,
                iso(t),
                {
                    "type": "exception",
                    "name": "Error",
                    "message": "boom",
                    "stack": "    at Object.fetch (worker:12:11)",
                },
            )
        while open_spans:
            t += rng.randint(0, 4)
            sid, _ = open_spans.pop(rng.randrange(len(open_spans)))
            emit(sid, iso(t), {"type": "spanClose", "outcome": "exception" if failed else "ok"})
        t += rng.randint(0, 5)
        if kind == "fetch":
            emit(
                top,
                iso(t),
                {"type": "return", "info": {"type": "fetch", "statusCode": 500 if failed else 200}},
            )
        else:
            emit(top, iso(t), {"type": "return"})
        t += rng.randint(0, 5)
        emit(
            top,
            iso(t),
            {"type": "outcome", "outcome": "exception" if failed else "ok", "cpuTime": 0, "wallTime": 0},
        )


def truth_path(output: Path) -> Path:
    name = output.name
    for suffix in (".events.jsonl", ".jsonl"):
        if name.endswith(suffix):
            return output.with_name(name[: -len(suffix)] + ".truth.json")
    return output.with_name(name + ".truth.json")


def generate(
    output: Path,
    events: int,
    seed: int = 1,
    ids: str = "random",
    gap_ms: float = 2.0,
    max_invocations: int = 30,
    max_depth: int = 3,
) -> dict:
    """Write about `events` events (whole traces: a few more) to `output`, and the truth file."""
    gen = Generator(seed, ids, gap_ms, max_invocations, max_depth)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = BASE_MS
    with open(output, "wb", buffering=1 << 20) as out:
        while gen.events < events:
            gen.trace(start)
            start += round(gen.rng.expovariate(1.0 / gap_ms))
            # no later trace has an event before `start`: what is due by then can go out
            gen.flush(out, start)
        gen.flush(out, None)
    truth = truth_path(output)
    truth.write_bytes(orjson.dumps(gen.final_truth(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    links = sum(1 for t in gen.truth.values() if t["parentInvocationId"])
    return {
        "output": str(output),
        "truth": str(truth),
        "events": gen.events,
        "traces": gen.traces,
        "invocations": len(gen.truth),
        "links": links,
        "bytes": output.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="about this many events (default 1000000)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .jsonl to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ids",
        choices=("random", "counter"),
        default="random",
        help="trace/invocation ids: random 128-bit (default) or predictable-mode 2a2a… counter",
    )
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=2.0,
        help="mean gap between trace starts; smaller interleaves more traces (default 2)",
    )
    parser.add_argument("--max-invocations", type=int, default=30)
    parser.add_argument("--max-depth", type=int, default=3)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    info = generate(
        args.output, args.events, args.seed, args.ids, args.gap_ms, args.max_invocations, args.max_depth
    )
    print(
        f"wrote {info['events']:,} events, {info['traces']:,} traces, {info['invocations']:,} invocations "
        f"({info['links']:,} child links), {info['bytes'] / 2**20:.1f} MiB to {info['output']} "
        f"(+ {Path(info['truth']).name}) in {time.perf_counter() - began:.1f}s",
        file=sys.stderr,
    )
    if not args.output.name.endswith(".events.jsonl"):
        print("note: score_links.py only scores files named *.events.jsonl", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
