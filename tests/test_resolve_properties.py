"""Properties of the resolver on generated collision-heavy traces whose true links are known."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from conftest import ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetree.build import Forest, build
from tracetree.resolve import ResolveOptions

COUNTER_MASK = 0x2A2A2A2A2A2A2A2A
EPOCH = "1970-01-01T00:00:00.000Z"
BASE = datetime(2026, 11, 17, 12, 0, 0, tzinfo=timezone.utc)
DISPATCH_NAME = {"fetch": "fetch", "jsrpc": "jsRpcCall"}
# Spans that create no invocation in the trace. "fetch" is an outbound request to the internet and
# "jsRpcSession" holds jsRpcCall spans: both share names with dispatch spans, as in real streams.
FILLER_NAMES = ["kv_get", "jsRpcSession", "fetch", "cache_match"]

SETTINGS = settings(derandomize=True, max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Generated:
    """A file's events (in file order) and each captured invocation's true (caller, span) or None."""

    events: list[dict]
    truth: dict[str, tuple[str, str] | None]
    dropped: str | None  # the caller whose events were left out of the capture
    orphaned: frozenset[str]  # callees whose caller was left out: they have no parent in the file

    def describe(self) -> str:
        lines = [f"dropped={self.dropped}", *(str(event) for event in self.events)]
        return "\n".join(lines)


@dataclass
class _Inv:
    inv_id: str
    top: str
    seq: int = 0
    next_span: int = 1
    finished: bool = False
    open_spans: list[tuple[str, str]] = field(default_factory=list)  # (span id, name) still open


def _pid(counter: int) -> str:
    return f"{COUNTER_MASK ^ counter:016x}" * 2


@st.composite
def generated_traces(draw, order: str | None = None, partial: bool | None = None) -> Generated:
    count = draw(st.integers(2, 7), label="invocations")
    parents: list[int | None] = [None] + [draw(st.integers(0, k - 1)) for k in range(1, count)]
    triggers = ["custom"] + [draw(st.sampled_from(["fetch", "jsrpc"])) for _ in range(1, count)]
    ids_mode = draw(st.sampled_from(["counter", "random"]), label="ids")
    clock_mode = draw(st.sampled_from(["ms", "coarse", "frozen"]), label="clock")
    order = order or draw(st.sampled_from(["arrival", "grouped"]), label="order")
    open_stamps = draw(st.sampled_from(["epoch", "real"]), label="spanOpen stamps")

    if ids_mode == "counter":
        first = draw(st.integers(1, 50))
        gaps = [draw(st.integers(1, 3)) for _ in range(count)]
        counters = [first + sum(gaps[: k + 1]) for k in range(count)]
        trace_id = _pid(first)
        ids = [_pid(c) for c in counters]
    else:
        trace_id = f"{draw(st.integers(0, 2**128 - 1)):032x}"
        ids = [f"{n:032x}" for n in draw(st.lists(st.integers(0, 2**128 - 1), min_size=count,
                                                   max_size=count, unique=True))]
    tops = [f"{n:016x}" for n in draw(st.lists(st.integers(2**40, 2**64 - 1), min_size=count,
                                                max_size=count, unique=True))]
    invs = [_Inv(ids[k], tops[k]) for k in range(count)]
    # The schedule (fillers, closes, logs, clock ticks, interleaving) comes from one seed: fast to
    # generate, and it shrinks to the plainest schedule.
    rng = random.Random(draw(st.integers(0, 2**32 - 1), label="schedule seed"))
    children = {k: [c for c in range(count) if parents[c] == k] for k in range(count)}

    now = 0
    arrival: list[dict] = []
    truth: dict[str, tuple[str, str] | None] = {ids[0]: None}

    def stamp(ms: int) -> str:
        if clock_mode == "frozen":
            ms = 0
        elif clock_mode == "coarse":
            ms -= ms % 50
        return (BASE + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def tick(most: int = 7) -> int:
        nonlocal now
        now += rng.randint(0, most)
        return now

    def emit(inv: _Inv, body: dict, span: str | None, at: str) -> dict:
        event = ev(inv.inv_id, inv.seq, body, trace=trace_id, span=span, ts=at)
        inv.seq += 1
        return event

    def open_span(inv: _Inv, name: str) -> tuple[str, str, dict, int]:
        """Open a span under the top-level span or an open jsRpcSession; not yet emitted."""
        sessions = [sid for sid, n in inv.open_spans if n == "jsRpcSession"]
        parent = rng.choice([inv.top, *sessions])
        span_id = f"{inv.next_span:016x}"
        inv.next_span += 1
        opened_at = tick()
        body = {"type": "spanOpen", "name": name, "spanId": span_id}
        return span_id, parent, body, opened_at

    def step(inv: _Inv, may_finish: bool) -> None:
        """One thing a running invocation does besides dispatching: open, close, log or finish."""
        choices = ["open", "log"] + (["close"] if inv.open_spans else []) + (["finish"] if may_finish else [])
        action = rng.choice(choices)
        if action == "open":
            name = rng.choice(FILLER_NAMES)
            span_id, parent, body, at = open_span(inv, name)
            arrival.append(emit(inv, body, parent, EPOCH if open_stamps == "epoch" else stamp(at)))
            inv.open_spans.append((span_id, name))
        elif action == "log":
            active = inv.open_spans[-1][0] if inv.open_spans else inv.top
            arrival.append(emit(inv, {"type": "log", "level": "log", "message": ["x"]}, active,
                                stamp(tick())))
        elif action == "close":
            span_id, _ = inv.open_spans.pop(rng.randrange(len(inv.open_spans)))
            arrival.append(emit(inv, {"type": "spanClose", "outcome": "ok"}, span_id, stamp(tick())))
        else:
            while inv.open_spans:
                span_id, _ = inv.open_spans.pop()
                arrival.append(emit(inv, {"type": "spanClose", "outcome": "ok"}, span_id, stamp(tick())))
            arrival.append(emit(inv, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
                                inv.top, stamp(tick())))
            inv.finished = True

    def onset_body(k: int) -> dict:
        info: dict = {"type": triggers[k]}
        if triggers[k] == "fetch":
            info |= {"method": "GET", "url": "http://placeholder/", "headers": []}
        return {"type": "onset", "executionModel": "stateless", "spanId": tops[k], "scriptTags": [],
                "info": info}

    arrival.append(emit(invs[0], onset_body(0), None, stamp(0)))
    for k in range(1, count):
        for _ in range(rng.randint(0, 3)):
            running = [j for j in range(k) if not invs[j].finished]
            j = rng.choice(running)
            step(invs[j], may_finish=all(c < k for c in children[j]) and len(running) > 1)
        caller = invs[parents[k]]
        name = DISPATCH_NAME[triggers[k]]
        span_id, parent, body, opened_at = open_span(caller, name)
        # Delivered as real workerd does: the callee's onset arrives before the caller's spanOpen,
        # whose stamp is still the earlier one.
        arrival.append(emit(invs[k], onset_body(k), span_id, stamp(tick())))
        arrival.append(emit(caller, body, parent, EPOCH if open_stamps == "epoch" else stamp(opened_at)))
        caller.open_spans.append((span_id, name))
        truth[ids[k]] = (caller.inv_id, span_id)
    while running := [inv for inv in invs if not inv.finished]:
        step(rng.choice(running), may_finish=True)

    dropped = None
    orphaned: frozenset[str] = frozenset()
    callers = [k for k in range(count) if children[k]]
    if (partial if partial is not None else draw(st.booleans(), label="partial")) and callers:
        gone = draw(st.sampled_from(callers))
        dropped = ids[gone]
        orphaned = frozenset(ids[c] for c in children[gone])
        arrival = [event for event in arrival if event["invocationId"] != dropped]
        del truth[dropped]
        for key in orphaned:
            truth[key] = None
    if order == "grouped":
        arrival.sort(key=lambda event: (event["invocationId"], event["sequence"]))
    return Generated(arrival, truth, dropped, orphaned)


def links_of(forest: Forest) -> dict[str, tuple]:
    return {key: (link.parent_invocation_id, link.parent_span_id, str(link.resolution))
            for key, link in forest.links.items()}


@SETTINGS
@given(generated_traces())
def test_every_invocation_gets_exactly_one_link(case):
    """Every invocation in the input gets exactly one link, keyed by its own id."""
    forest = build(case.events)
    assert set(forest.links) == set(case.truth)
    assert all(link.invocation_id == key for key, link in forest.links.items())


@SETTINGS
@given(generated_traces())
def test_resolved_parents_never_form_a_cycle(case):
    """Following parents from any invocation always ends at a root: the links form a forest."""
    forest = build(case.events)
    for start in forest.links:
        seen = {start}
        key = forest.links[start].parent_invocation_id
        while key is not None:
            assert key not in seen, f"cycle through {key}\n{case.describe()}"
            seen.add(key)
            key = forest.links[key].parent_invocation_id


def certain_but_wrong(case: Generated, options: ResolveOptions | None = None) -> dict[str, tuple]:
    """Links labelled root, exact or causal that do not name the true caller span (None: no parent)."""
    forest = build(case.events, options=options or ResolveOptions())
    wrong = {}
    for key, link in forest.links.items():
        if link.resolution.certain and (key in case.orphaned or link.parent != case.truth[key]):
            wrong[key] = (str(link.resolution), link.parent, case.truth[key], link.reason)
    return wrong


@SETTINGS
@given(generated_traces(partial=False))
def test_certain_labels_are_never_wrong(case):
    """A link labelled root, exact or causal always names the true caller span (a root: none)."""
    assert certain_but_wrong(case) == {}, case.describe()


@SETTINGS
@given(generated_traces(partial=True))
def test_certain_labels_are_never_wrong_when_a_caller_was_not_captured(case):
    """On a capture declared partial (one caller's events are missing), its callees get no root,
    exact or causal link, and every other certain link is still right."""
    assert certain_but_wrong(case, ResolveOptions(partial=True)) == {}, case.describe()


def test_a_namesake_of_a_missing_caller_is_not_proof_on_a_partial_capture():
    """With the real caller missing, the only other owner of a sequential id is at most heuristic."""
    trace = _pid(1)
    events = [
        ev(_pid(2), 0, {"type": "onset", "spanId": "a1a1a1a1a1a1a1a1", "info": {"type": "custom"}},
           trace=trace),
        ev(_pid(4), 0, {"type": "onset", "spanId": "c3c3c3c3c3c3c3c3", "info": {"type": "fetch"}},
           trace=trace, span="0000000000000001"),
        ev(_pid(2), 1, {"type": "spanOpen", "name": "fetch", "spanId": "0000000000000001"},
           trace=trace, span="a1a1a1a1a1a1a1a1"),
    ]
    assert build(events).links[_pid(4)].resolution.value == "exact"
    capped = build(events, options=ResolveOptions(partial=True)).links[_pid(4)]
    assert (capped.resolution.value, capped.parent_invocation_id) == ("heuristic", _pid(2))


@SETTINGS
@given(generated_traces(order="grouped"), st.integers(0, 2**32 - 1))
def test_reordering_a_grouped_file_gives_the_same_links(case, seed):
    """Reordering a file sorted by invocation (its order says nothing across invocations) changes no link."""
    groups: dict[str, list[dict]] = {}
    for event in case.events:
        groups.setdefault(event["invocationId"], []).append(event)
    blocks = list(groups.values())
    rng = random.Random(seed)
    rng.shuffle(blocks)
    for block in blocks:
        rng.shuffle(block)
    shuffled = [event for block in blocks for event in block]
    assert links_of(build(shuffled)) == links_of(build(case.events)), case.describe()
