"""The canonical tree document: valid, complete, and the same bytes for the same behaviour."""

from __future__ import annotations

import io
import itertools
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from conftest import corpus_streams, ev, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from tracetree.build import build, build_file
from tracetree.document import (
    DEFAULT_NORMALIZATION,
    DOCUMENT_FORMAT,
    PLACEHOLDER,
    Normalization,
    dumps_document,
    load_document,
    to_document,
    write_document,
)
from tracetree.errors import InputError
from tracetree.model import EPOCH
from tracetree.resolve import ResolveOptions

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "tree-document.schema.json"
STREAMS = corpus_streams("real") + corpus_streams("train")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = orjson.loads(SCHEMA_PATH.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# -- helpers -------------------------------------------------------------------------------------


def read_stream(path: Path) -> list[dict[str, Any]]:
    """Every event of a JSONL stream, in file order."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def document_bytes(events: list[dict[str, Any]], **kwargs: Any) -> bytes:
    return dumps_document(to_document(build(events), **kwargs))


def spans_of(invocation: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span node of an invocation node (not those of its callees), in the order of the text."""
    found: list[dict[str, Any]] = []

    def walk(span: dict[str, Any]) -> None:
        found.append(span)
        for child in span["spans"]:
            walk(child)

    for span in ([invocation["span"]] if invocation["span"] else []) + invocation["unattached"]:
        walk(span)
    return found


def invocations_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every invocation node of a document, callees included, in the order they appear in the text."""
    found: list[dict[str, Any]] = []

    def visit(invocation: dict[str, Any]) -> None:
        found.append(invocation)
        roots = ([invocation["span"]] if invocation["span"] else []) + invocation["unattached"]

        def walk(span: dict[str, Any]) -> None:
            for callee in span["callees"]:
                visit(callee)
            for child in span["spans"]:
                walk(child)

        for span in roots:
            walk(span)

    for trace in document["traces"]:
        for root in trace["roots"]:
            visit(root)
    return found


def count_represented(document: dict[str, Any]) -> int:
    """How many input events the document accounts for.

    Each span's `open` is the event that opened it (the onset for a top-level span), each `close`
    its spanClose, each entry of `events` and `stray` one event, and `flags.duplicates` counts the
    redeliveries the model set aside.
    """
    total = 0
    for invocation in invocations_of(document):
        total += len(invocation["stray"]) + invocation["flags"].get("duplicates", 0)
        for span in spans_of(invocation):
            total += (span["open"] is not None) + (span["close"] is not None) + len(span["events"])
    return total


def mask_resolution(document: dict[str, Any]) -> dict[str, Any]:
    """The document with how sure each link is left out (what it links to is kept)."""
    for invocation in invocations_of(document):
        invocation["link"]["resolution"] = invocation["link"]["candidates"] = None
    document["summary"]["links"] = None
    return document


def shuffle_within_runs(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Events of each run of one invocation reordered; how invocations interleave is untouched."""
    shuffled: list[dict[str, Any]] = []
    for _, run in itertools.groupby(events, key=lambda event: event["invocationId"]):
        block = list(run)
        rng.shuffle(block)
        shuffled.extend(block)
    return shuffled


def interleave_traces(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The traces merged in another random interleaving; each trace's own order is untouched."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        queues.setdefault(event["spanContext"]["traceId"], []).append(event)
    pending = [list(reversed(queue)) for queue in queues.values()]
    merged: list[dict[str, Any]] = []
    while pending:
        queue = rng.choice(pending)
        merged.append(queue.pop())
        if not queue:
            pending.remove(queue)
    return merged


# -- the corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_corpus_documents_match_the_schema(stream: Path, validator: jsonschema.Draft202012Validator):
    """Every corpus stream gives a document that the published JSON Schema accepts, raw or normalized."""
    forest = build_file(str(stream))
    for normalization in (DEFAULT_NORMALIZATION, Normalization.none()):
        document = orjson.loads(dumps_document(to_document(forest, normalization=normalization)))
        errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
        assert not errors, f"{errors[0].json_path}: {errors[0].message}"


@pytest.mark.parametrize("stream", STREAMS)
def test_every_event_read_is_in_the_document(stream: Path):
    """Nothing is lost: the document accounts for exactly as many events as the stream has lines."""
    lines = sum(1 for line in stream.read_bytes().splitlines() if line.strip())
    document = to_document(build_file(str(stream)))
    assert document["summary"]["events"] == lines
    assert count_represented(document) == lines


@pytest.mark.parametrize("stream", STREAMS)
def test_reordering_an_invocations_events_keeps_the_bytes(stream: Path):
    """Events of one invocation arriving in another order (interleaving untouched) give identical bytes."""
    events = read_stream(stream)
    expected = document_bytes(events)
    for seed in range(3):
        assert document_bytes(shuffle_within_runs(events, random.Random(seed))) == expected


@pytest.mark.parametrize("stream", STREAMS)
def test_interleaving_traces_differently_keeps_the_bytes(stream: Path):
    """The same traces interleaved another way (each trace's own order kept) give identical bytes."""
    events = read_stream(stream)
    expected = document_bytes(events)
    assert document_bytes(interleave_traces(events, random.Random(0))) == expected


def test_random_and_predictable_runs_of_one_test_give_one_document(corpus: Path):
    """The real suite run with random and with predictable ids documents alike, but for how sure links are."""
    random_run = to_document(build_file(str(corpus / "real" / "upstream-tailtest-random.events.jsonl")))
    predictable = to_document(build_file(str(corpus / "real" / "upstream-tailtest-predictable.events.jsonl")))
    assert dumps_document(mask_resolution(random_run)) == dumps_document(mask_resolution(predictable))


def test_the_documented_example_is_what_tracetree_writes(corpus: Path):
    """The example in docs/document.md is, byte for byte, trace t10 of the real random capture's document."""
    text = (SCHEMA_PATH.parent / "document.md").read_text()
    shown = re.search(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert shown is not None
    document = to_document(build_file(str(corpus / "real" / "upstream-tailtest-random.events.jsonl")))
    [trace] = [trace for trace in document["traces"] if trace["id"] == "t10"]
    assert dumps_document(trace).decode() == shown.group(1) + "\n"


def _fresh_id(old: str, rng: random.Random) -> str:
    # A random id of the same length whose high half is non-zero: still not a sequential span id.
    digits = "".join(rng.choice("0123456789abcdef") for _ in range(len(old) - 1))
    return rng.choice("123456789abcdef") + digits


def _shift(stamp: str, by: timedelta) -> str:
    moved = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + by
    return moved.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rerun(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same events as another run would send them: every id fresh, the clock a day and a bit later."""
    rng = random.Random(seed)
    ids: dict[str, str] = {}
    for event in events:
        context, body = event["spanContext"], event["event"]
        for value in (event["invocationId"], context["traceId"], context.get("spanId"), body.get("spanId"),
                      body.get("durableObjectId")):
            if isinstance(value, str):
                ids.setdefault(value, _fresh_id(value, rng))
    later = timedelta(days=1, milliseconds=rng.randrange(1000))

    def redo(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: redo(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [redo(item, key) for item in value]
        if isinstance(value, str) and value in ids:
            return ids[value]
        if key in ("cpuTime", "wallTime"):
            return rng.randrange(50)
        if isinstance(value, str) and len(value) == 24 and value.endswith("Z") and value != EPOCH:
            try:
                return _shift(value, later)
            except ValueError:
                return value
        return value

    return [redo(event) for event in events]


@pytest.mark.parametrize("name", ["upstream-tailtest-random", "workerd-a362acf55-ms-arrival-random-lazy"])
def test_another_run_with_fresh_ids_and_clock_gives_the_same_bytes(corpus: Path, name: str):
    """A run with other random ids, later timestamps and other CPU times gives byte-identical documents."""
    folder = "real" if name.startswith("upstream") else "train"
    events = read_stream(corpus / folder / f"{name}.events.jsonl")
    expected = document_bytes(events)
    for seed in range(2):
        again = rerun(events, seed)
        assert again != events
        assert document_bytes(again) == expected


@pytest.mark.parametrize("stream", corpus_streams("real"))
def test_labels_are_numbered_in_the_order_they_appear(stream: Path):
    """Invocations read i1, i2, i3… down the file within each trace, and each one's spans s0, s1… likewise."""
    text = dumps_document(to_document(build_file(str(stream)))).decode()
    labels = re.findall(r'"id": "([ti][0-9]+(?:\.s[0-9]+)?)"', text)
    next_invocation, next_span = 1, {}
    for label in labels:
        if label.startswith("t"):
            next_invocation, next_span = 1, {}
        elif ".s" not in label:
            assert label == f"i{next_invocation}"
            next_invocation += 1
        else:
            invocation, span = label.split(".s")
            assert int(span) == next_span.get(invocation, 0), label
            next_span[invocation] = int(span) + 1


# -- a small hand-written trace ------------------------------------------------------------------


ROOT_TOP, DISPATCH, CALL = "9f3c5a7d11e2b4c6", "a1b2c3d4e5f60718", "b2c3d4e5f6071829"
A_TOP, B_TOP, B_SPAN = "c3d4e5f60718293a", "d4e5f60718293a4b", "e5f60718293a4b5c"
OBJECT = "7f" * 32


def stamp(ms: int) -> str:
    return f"2026-05-01T12:00:00.{ms:03d}Z"


def onset(top: str, trigger: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An onset body opening top-level span `top`."""
    return {"type": "onset", "executionModel": "stateless", "spanId": top,
            "info": trigger or {"type": "fetch"}, **extra}


def outcome(result: str = "ok", cpu: int = 0, wall: int = 0) -> dict[str, Any]:
    return {"type": "outcome", "outcome": result, "cpuTime": cpu, "wallTime": wall}


def service_stream() -> list[dict[str, Any]]:
    """A fetch that calls a Durable Object over fetch and a service over RPC, each with logs."""
    trace, root, obj, svc = "5e" * 16, "1a" * 16, "2b" * 16, "3c" * 16
    plan: list[tuple[str, dict[str, Any], str | None]] = [
        (root, onset(ROOT_TOP, {"type": "fetch", "method": "GET", "url": "http://x/"}, scriptName="web"),
         None),
        (root, {"type": "spanOpen", "name": "durable_object_subrequest", "spanId": DISPATCH}, ROOT_TOP),
        (root, {"type": "attributes", "info": [{"name": "objectId", "value": OBJECT}]}, DISPATCH),
        (obj, onset(A_TOP, {"type": "fetch", "method": "POST", "url": "http://do/"},
                    executionModel="durableObject", durableObjectId=OBJECT, entrypoint="Counter"), DISPATCH),
        (obj, {"type": "log", "level": "info", "message": ["counting"]}, A_TOP),
        (obj, {"type": "return", "info": {"type": "fetch", "statusCode": 200}}, A_TOP),
        (obj, outcome("ok", 3, 4), A_TOP),
        (root, {"type": "spanClose", "outcome": "ok"}, DISPATCH),
        (root, {"type": "spanOpen", "name": "jsRpcCall", "spanId": CALL}, ROOT_TOP),
        (svc, onset(B_TOP, {"type": "jsrpc"}, entrypoint="Svc"), CALL),
        (svc, {"type": "spanOpen", "name": "jsRpcCall", "spanId": B_SPAN}, B_TOP),
        (svc, {"type": "attributes", "info": [{"name": "jsrpc.method", "value": "add"},
                                              {"name": "jsrpc.caller_span_id", "value": CALL}]}, B_SPAN),
        (svc, {"type": "log", "level": "log", "message": ["adding"]}, B_SPAN),
        (svc, {"type": "spanClose", "outcome": "ok"}, B_SPAN),
        (svc, outcome("ok", 1, 2), B_TOP),
        (root, {"type": "spanClose", "outcome": "ok"}, CALL),
        (root, {"type": "exception", "name": "Error", "message": "late"}, ROOT_TOP),
        (root, outcome("exception", 5, 20), ROOT_TOP),
    ]
    sequences: dict[str, int] = {}
    events = []
    for ms, (invocation, body, span) in enumerate(plan, start=1):
        sequence = sequences[invocation] = sequences.get(invocation, -1) + 1
        events.append(ev(invocation, sequence, body, span=span, trace=trace, ts=stamp(ms)))
    return events


SERVICE_STREAM = service_stream()


@settings(max_examples=60, deadline=None)
@given(st.permutations(SERVICE_STREAM))
def test_any_arrival_order_of_a_trace_with_unique_ids_gives_the_same_bytes(events: list[dict[str, Any]]):
    """When random span ids leave no doubt about links, any arrival order at all gives identical bytes."""
    assert document_bytes(events) == document_bytes(SERVICE_STREAM)


def test_ids_become_labels_that_keep_their_structure():
    """Normalized ids read as the node they name: the Durable Object id, the RPC caller span, the callees."""
    document = to_document(build(service_stream()))
    [trace] = document["traces"]
    [root] = trace["roots"]
    top = root["span"]
    dispatch, call = top["spans"]
    [obj] = dispatch["callees"]
    [svc] = call["callees"]
    assert (root["id"], obj["id"], svc["id"]) == ("i1", "i2", "i3")
    assert (top["id"], dispatch["id"], call["id"]) == ("i1.s0", "i1.s1", "i1.s2")
    assert dispatch["attributes"]["objectId"] == obj["onset"]["durableObjectId"] == "do1"
    assert obj["link"] == {"resolution": "exact", "caller": "i1.s1", "callerSpanId": "i1.s1", "candidates": 1}
    [rpc] = svc["span"]["spans"]
    assert rpc["attributes"]["jsrpc.caller_span_id"] == "i1.s2" == svc["link"]["caller"]
    assert "invocationId" not in root and "spanId" not in top and "traceId" not in trace
    assert root["outcome"] == {"outcome": "exception", "cpuTime": PLACEHOLDER, "wallTime": PLACEHOLDER}
    assert top["outcome"] == "exception" and top["unclosed"] is False
    assert all(event["timestamp"] == PLACEHOLDER for event in top["events"])
    assert document["normalized"] == sorted(DEFAULT_NORMALIZATION.fields)


def test_raw_mode_keeps_ids_and_timestamps():
    """With --raw the document carries every id and timestamp as received, and lists nothing as normalized."""
    events = service_stream()
    document = to_document(build(events), normalization=Normalization.none())
    text = dumps_document(document)
    assert document["normalized"] == []
    assert PLACEHOLDER.encode() not in text
    for event in events:
        assert event["invocationId"].encode() in text and event["timestamp"].encode() in text
    [trace] = document["traces"]
    [root] = trace["roots"]
    assert trace["traceId"] == "5e" * 16 and root["invocationId"] == "1a" * 16
    assert root["span"]["spanId"] == ROOT_TOP and root["span"]["id"] == "i1.s0"
    assert root["span"]["open"]["timestamp"] == stamp(1)
    assert root["outcome"]["cpuTime"] == 5
    [obj] = root["span"]["spans"][0]["callees"]
    assert obj["link"]["callerSpanId"] == DISPATCH and obj["onset"]["durableObjectId"] == OBJECT


def test_unknown_event_types_and_fields_survive():
    """Event types and fields tracetree does not know are carried into the document where they arrived."""
    top, child = "0f1e2d3c4b5a6978", "1e2d3c4b5a697887"
    onset = ev("aa" * 16, 0, {"type": "onset", "executionModel": "stateless", "spanId": top,
                              "info": {"type": "fetch", "colo": "AMS"}, "futureOnsetField": {"x": 1}})
    onset["region"] = "eu"  # an unknown envelope field
    onset["spanContext"]["traceFlags"] = 1
    events = [
        onset,
        ev("aa" * 16, 1, {"type": "spanOpen", "name": "fetch", "spanId": child, "hint": "h"}, span=top),
        ev("aa" * 16, 2, {"type": "futureEvent", "payload": [1, 2], "timestamp": "2026-05-01T00:00:00Z"},
           span=child),
        ev("aa" * 16, 3, {"type": "attributes", "info": [{"name": "a", "value": 1, "unit": "ms"},
                                                          {"name": "b", "value": 2}]}, span=child),
        ev("aa" * 16, 4, {"type": "spanClose", "outcome": "ok", "reason": "done"}, span=child),
        ev("aa" * 16, 5, {"type": "log", "level": "log", "message": ["hi"], "source": "console"}, span=top),
        ev("aa" * 16, 6, {"type": "outcome", "outcome": "ok", "cpuTime": 1, "wallTime": 1, "exitCode": 0},
           span=top),
    ]
    document = to_document(build(events))
    [root] = document["traces"][0]["roots"]
    assert root["onset"]["futureOnsetField"] == {"x": 1} and root["onset"]["info"]["colo"] == "AMS"
    assert root["span"]["open"]["region"] == "eu"
    assert root["span"]["open"]["spanContext"] == {"traceFlags": 1}
    assert root["outcome"]["exitCode"] == 0
    assert root["span"]["events"][0]["event"]["source"] == "console"
    [span] = root["span"]["spans"]
    assert span["open"]["event"] == {"hint": "h"}
    assert span["close"]["event"] == {"reason": "done"} and span["outcome"] == "ok"
    future, attributes = span["events"]
    assert future["event"] == {"type": "futureEvent", "payload": [1, 2], "timestamp": PLACEHOLDER}
    # The pair with an extra key stays in its event; the plain pair is shown by the merged map.
    assert attributes["event"] == {"type": "attributes", "info": [{"name": "a", "value": 1, "unit": "ms"}]}
    assert span["attributes"] == {"a": 1, "b": 2}
    assert count_represented(document) == len(events)


def test_strays_duplicates_and_gaps_are_accounted_for():
    """Redelivered, misdirected and missing events all show up: as counts, in `stray`, or as flags."""
    top, child, ghost = "0f1e2d3c4b5a6978", "1e2d3c4b5a697887", "2d3c4b5a69788796"
    inv = "bb" * 16
    events = [
        ev(inv, 0, onset(top)),
        ev(inv, 1, {"type": "spanOpen", "name": "fetch", "spanId": child}, span=top),
        ev(inv, 1, {"type": "spanOpen", "name": "fetch", "spanId": child}, span=top),  # redelivered
        ev(inv, 2, {"type": "attributes", "info": [{"name": "a", "value": 1}]}, span=ghost),  # no such span
        ev(inv, 3, {"type": "log", "level": "log", "message": ["lost"]}, span=ghost),  # shown on the top span
        ev(inv, 5, {"type": "spanClose", "outcome": "ok"}, span=child),
        ev(inv, 6, {"type": "spanClose", "outcome": "ok"}, span=child),  # closed twice
    ]
    document = to_document(build(events))
    [root] = document["traces"][0]["roots"]
    assert root["flags"] == {"duplicates": 1, "eventsMissing": 1, "missingSequences": [4],
                             "outcomeMissing": True, "unclosed": 1}
    assert [entry["sequence"] for entry in root["stray"]] == [2, 6]
    assert root["stray"][0]["spanContext"] == {"spanId": "span?1"}
    assert root["span"]["events"][0]["spanContext"] == {"spanId": "span?1"}
    assert root["span"]["unclosed"] is True
    assert document["summary"]["duplicates"] == 1 and document["summary"]["strays"] == 2
    assert count_represented(document) == len(events)


def test_runs_of_missing_sequences_are_first_and_last(validator: jsonschema.Draft202012Validator):
    """A run of lost events is [first, last], however far out a corrupt sequence points."""
    top, inv = "0f1e2d3c4b5a6978", "cc" * 16
    events = [ev(inv, 0, onset(top)), ev(inv, 2, {"type": "log", "message": ["x"]}, span=top),
              ev(inv, 5, {"type": "log", "message": ["y"]}, span=top),
              ev(inv, 2**64 - 1, {"type": "outcome", "outcome": "ok"})]
    document = to_document(build(events))
    [root] = document["traces"][0]["roots"]
    assert root["flags"]["missingSequences"] == [1, [3, 4], [6, 2**64 - 2]]
    assert root["flags"]["eventsMissing"] == 1 + 2 + (2**64 - 2 - 6 + 1)
    validator.validate(document)


def test_spans_whose_parents_form_a_cycle_are_kept():
    """Malformed spanOpens naming each other as parents still appear (unattached), with all their events."""
    top, one, two = "0f1e2d3c4b5a6978", "1e2d3c4b5a697887", "2d3c4b5a69788796"
    inv = "cc" * 16
    events = [
        ev(inv, 0, onset(top)),
        ev(inv, 1, {"type": "spanOpen", "name": "one", "spanId": one}, span=two),
        ev(inv, 2, {"type": "spanOpen", "name": "two", "spanId": two}, span=one),
        ev(inv, 3, {"type": "log", "level": "log", "message": ["in two"]}, span=two),
        ev(inv, 4, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=top),
    ]
    document = to_document(build(events))
    [root] = document["traces"][0]["roots"]
    # The cycle is broken at its earliest span: "one" is unattached, "two" still hangs under it.
    [first] = root["unattached"]
    assert first["name"] == "one"
    assert [span["name"] for span in first["spans"]] == ["two"]
    assert count_represented(document) == len(events)


def test_upstream_rule_cycles_lose_no_invocation():
    """With --naive, two invocations the upstream rule makes each other's caller both stay in the document."""
    a_top, b_top = "0f1e2d3c4b5a6978", "1e2d3c4b5a697887"
    a_span, b_span = "2d3c4b5a69788796", "3c4b5a6978879605"
    events = [
        ev("a" * 32, 0, onset(a_top), span=b_span),
        ev("a" * 32, 1, {"type": "spanOpen", "name": "fetch", "spanId": a_span}, span=a_top),
        ev("b" * 32, 0, onset(b_top), span=a_span),
        ev("b" * 32, 1, {"type": "spanOpen", "name": "fetch", "spanId": b_span}, span=b_top),
    ]
    document = to_document(build(events, options=ResolveOptions(naive=True)))
    assert len(invocations_of(document)) == 2
    assert count_represented(document) == len(events)


CYCLE_SPAN = "2d3c4b5a69788796"


def span_cycle_with_callees(*callee_tops: str) -> list[dict[str, Any]]:
    """An invocation whose two spans name each other as parents; one callee per top-level id,
    each called from span CYCLE_SPAN."""
    top, one = "0f1e2d3c4b5a6978", "1e2d3c4b5a697887"
    return [
        ev("cc" * 16, 0, onset(top)),
        ev("cc" * 16, 1, {"type": "spanOpen", "name": "one", "spanId": one}, span=CYCLE_SPAN),
        ev("cc" * 16, 2, {"type": "spanOpen", "name": "fetch", "spanId": CYCLE_SPAN}, span=one),
        *(ev(f"{n:x}" * 32, 0, onset(callee), span=CYCLE_SPAN) for n, callee in enumerate(callee_tops, 13)),
    ]


def test_spans_in_a_parent_cycle_keep_their_callees():
    """Callees of a span whose parents form a cycle are still in the document, with their caller."""
    events = span_cycle_with_callees("3c4b5a6978879605")
    document = to_document(build(events))
    assert len(invocations_of(document)) == 2
    assert count_represented(document) == len(events)


def test_a_cycle_span_with_two_callees_loses_nothing():
    """A span in a parent cycle that caused two invocations still gives a document holding all three."""
    events = span_cycle_with_callees("3c4b5a6978879605", "4b5a697887960514")
    document = to_document(build(events))
    assert count_represented(document) == len(events)


def object_call_trace(rng: random.Random, word: str) -> list[dict[str, Any]]:
    """A trace (fresh random ids, frozen clock) whose fetch calls a Durable Object that logs `word`."""
    def hex_id(length: int) -> str:
        return _fresh_id("0" * length, rng)

    trace, root, obj, object_id = hex_id(32), hex_id(32), hex_id(32), hex_id(64)
    top, dispatch, object_top = hex_id(16), hex_id(16), hex_id(16)
    kw: dict[str, Any] = {"trace": trace, "ts": "2026-01-01T00:00:00.000Z"}
    opened = {"type": "spanOpen", "name": "durable_object_subrequest", "spanId": dispatch}
    called = onset(object_top, durableObjectId=object_id, executionModel="durableObject")
    return [
        ev(root, 0, onset(top), **kw),
        ev(root, 1, opened, span=top, **kw),
        ev(root, 2, {"type": "attributes", "info": [{"name": "objectId", "value": object_id}]},
           span=dispatch, **kw),
        ev(obj, 0, called, span=dispatch, **kw),
        ev(obj, 1, {"type": "log", "level": "log", "message": [word]}, span=object_top, **kw),
        ev(obj, 2, outcome(), span=object_top, **kw),
        ev(root, 3, {"type": "spanClose", "outcome": "ok"}, span=dispatch, **kw),
        ev(root, 4, outcome(), span=top, **kw),
    ]


def test_traces_tied_on_a_frozen_clock_are_ordered_without_ids():
    """Two traces that start at the same instant come in the same order whatever random ids they carry."""
    documents = set()
    for seed in range(8):
        rng = random.Random(seed)
        documents.add(document_bytes(object_call_trace(rng, "alpha") + object_call_trace(rng, "beta")))
    assert len(documents) == 1


def test_deep_call_chains_still_serialize():
    """A chain of spans too deep for orjson's nesting limit is written in the same layout all the same."""
    inv, top = "dd" * 16, "0f1e2d3c4b5a6978"
    ids = [f"{0x1000000000000000 + n:016x}" for n in range(200)]
    events = [ev(inv, 0, onset(top))]
    parent = top
    for n, span_id in enumerate(ids, start=1):
        events.append(ev(inv, n, {"type": "spanOpen", "name": "fetch", "spanId": span_id}, span=parent))
        parent = span_id
    text = document_bytes(events)
    assert text.endswith(b"}\n") and orjson.loads(text)["summary"]["spans"] == 201
    shallow = orjson.loads(document_bytes(events[:3]))
    assert dumps_document(shallow) == document_bytes(events[:3])


def test_a_forest_built_without_events_is_refused(tmp_path: Path):
    """A document of a forest that dropped its events is an error, not a silently thinner document."""
    path = write_jsonl(tmp_path / "s.jsonl", service_stream())
    with pytest.raises(ValueError, match="keep_events=True"):
        to_document(build_file(str(path), keep_events=False))


# -- bytes and reading back ----------------------------------------------------------------------


def test_dumped_documents_are_indented_sorted_and_end_in_one_newline():
    """The committed bytes are two-space indented, keys sorted, end in one newline, and read back equal."""
    document = to_document(build(service_stream()))
    text = dumps_document(document)
    assert text.startswith(b'{\n  "format": 1,\n  "normalized": [') and text.endswith(b"}\n")
    assert not text.endswith(b"\n\n")
    assert orjson.loads(text) == document


def test_load_document_reads_back_what_was_written(tmp_path: Path):
    """A written document loads back equal."""
    document = to_document(build(service_stream()))
    path = tmp_path / "tree.json"
    path.write_bytes(dumps_document(document))
    assert load_document(path) == document


@pytest.mark.parametrize(("content", "line", "words"), [
    (b'{"format": 1,\n "traces": [\n}', 3, "malformed JSON"),
    (b'{"format": 2, "traces": []}', None, "document format 2 is not supported"),
    (b'{"traces": []}', None, 'no "format" field'),
    (b'{"format": "1", "traces": []}', None, '"format" must be an integer, found a string'),
    (b'[1, 2]', None, "expected a JSON object, found an array"),
    (b'{"format": 1}', None, '"traces" must be a list'),
])
def test_load_document_errors_name_the_file(tmp_path: Path, content: bytes, line: int | None, words: str):
    """A file that is not a document of this format is refused in one line naming the file and the fault."""
    path = tmp_path / "tree.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_document(path)
    message = str(caught.value)
    assert caught.value.path == str(path) and caught.value.line == line
    assert message.startswith(str(path)) and words in message and "\n" not in message


def test_load_document_of_a_missing_file_names_it(tmp_path: Path):
    """A document path that does not exist is refused naming the path."""
    path = tmp_path / "absent.json"
    with pytest.raises(InputError, match="cannot read") as caught:
        load_document(path)
    assert str(path) in str(caught.value)


# -- options ---------------------------------------------------------------------------------


def test_normalize_and_keep_options_adjust_the_default():
    """--normalize adds a field (an id, or a clock with :clock) and --keep takes one out of the default."""
    normalization = Normalization.from_options(["cf-ray", "date:clock", "sequence:clock"], ["traceId"])
    assert {"cf-ray", "date", "sequence", "timestamp"} <= normalization.fields
    assert "traceId" not in normalization.fields
    assert {"date", "sequence", "timestamp"} <= normalization.clocks and "cf-ray" not in normalization.clocks
    raw = Normalization.from_options(["timestamp"], raw=True)
    assert raw.fields == raw.clocks == frozenset({"timestamp"})
    assert Normalization.from_options(raw=True) == Normalization.none()
    assert Normalization.from_options(["http:method:id"], raw=True).fields == {"http:method"}


@pytest.mark.parametrize(("normalize", "keep", "words"), [
    (["date:time"], [], "kind must be 'id' or 'clock'"),
    ([":id"], [], "no field name"),
    ([], ["colour"], "not a normalized field"),
])
def test_bad_normalization_options_are_refused(normalize: list[str], keep: list[str], words: str):
    """A misspelt kind, an empty field or keeping a field not normalized is an error naming the option."""
    with pytest.raises(ValueError, match=words):
        Normalization.from_options(normalize, keep)


def test_a_normalized_header_or_attribute_pair_is_labelled():
    """A field added with --normalize applies to {name, value} pairs too: headers, attributes."""
    inv, top = "ee" * 16, "0f1e2d3c4b5a6978"
    headers = [{"name": "cf-ray", "value": "8a1"}, {"name": "x-other", "value": "8a1"}]
    events = [ev(inv, 0, {"type": "onset", "executionModel": "stateless", "spanId": top,
                          "info": {"type": "fetch", "headers": headers}}),
              ev(inv, 1, {"type": "attributes", "info": [{"name": "cf-ray", "value": "8a1"}]}, span=top)]
    normalization = Normalization.from_options(["cf-ray"])
    [root] = to_document(build(events), normalization=normalization)["traces"][0]["roots"]
    assert root["onset"]["info"]["headers"] == [{"name": "cf-ray", "value": "cf-ray#1"},
                                                {"name": "x-other", "value": "8a1"}]
    assert root["span"]["attributes"] == {"cf-ray": "cf-ray#1"}


def test_document_format_constant_is_what_documents_carry():
    """Documents say which format they are in, the one this version reads."""
    assert to_document(build(service_stream()))["format"] == DOCUMENT_FORMAT == 1


@pytest.mark.parametrize("stream", STREAMS)
def test_writing_trace_by_trace_gives_the_same_bytes(stream: Path):
    """`build --format json` writes trace by trace, byte for byte the document built whole."""
    forest = build_file(str(stream))
    for normalization in (DEFAULT_NORMALIZATION, Normalization.none()):
        written = io.BytesIO()
        write_document(forest, written, normalization=normalization)
        assert written.getvalue() == dumps_document(to_document(forest, normalization=normalization))


def test_stand_ins_are_numbered_across_traces_in_text_order(tmp_path: Path):
    """Ids naming nothing get do1, span?1…, numbered through the whole document in the order
    the text shows them; written trace by trace (events kept as text) or built whole, alike."""
    events = []
    for trace, objects in (("t" * 32, ["X", "Y"]), ("u" * 32, ["Y", "Z"])):
        for n, obj in enumerate(objects):
            inv, top = f"{trace[0]}{n}" * 16, f"{n + 1:016x}"
            events.append(ev(inv, 0, onset(top, executionModel="durableObject", durableObjectId=obj),
                             trace=trace))
            events.append(ev(inv, 1, {"type": "log", "message": ["lost"]}, span=f"ghost-{obj}", trace=trace))
    path = tmp_path / "stand-ins.events.jsonl"
    write_jsonl(path, events)
    whole = to_document(build_file(str(path)))
    objects = [root["onset"]["durableObjectId"] for trace in whole["traces"] for root in trace["roots"]]
    ghosts = [root["span"]["events"][0]["spanContext"]["spanId"]
              for trace in whole["traces"] for root in trace["roots"]]
    assert objects == ["do1", "do2", "do2", "do3"]
    assert ghosts == ["span?1", "span?2", "span?3", "span?4"]  # a span id is its trace's: never shared
    written = io.BytesIO()
    write_document(build_file(str(path), raw_events=True), written)
    assert written.getvalue() == dumps_document(whole)
