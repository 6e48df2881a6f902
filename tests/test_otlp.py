"""OTLP export, checked by parsing with the official opentelemetry-proto package."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import corpus_streams, ev

import tracetree
from tracetree.otlp import MAX_VALUE_DEPTH, dumps_json, forest_to_otlp, iter_requests, otlp_trace_id
from tracetree.otlp_proto import parse_otlp_json, to_message, to_protobuf

trace_service_pb2 = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="opentelemetry-proto is in the test extra: pip install -e '.[test]'",
)

ROOT = Path(__file__).resolve().parents[1]
PREDICTABLE = ROOT / "fixtures" / "tail-worker-test.events.jsonl"
RANDOM = ROOT / "fixtures" / "tail-worker-test-random-ids.events.jsonl"

SERVER, INTERNAL, CLIENT = 2, 1, 3
UNSET, OK, ERROR = 0, 1, 2


def value_of(any_value: Any) -> Any:
    """A protobuf AnyValue as a Python value."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: value_of(item.value) for item in any_value.kvlist_value.values}
    return getattr(any_value, kind)


def attrs(holder: Any) -> dict[str, Any]:
    return {item.key: value_of(item.value) for item in holder.attributes}


def spans_of(message: Any) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, span) for every span of a parsed ExportTraceServiceRequest."""
    return [
        (attrs(resource_spans.resource), span)
        for resource_spans in message.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def exported_spans(forest: tracetree.Forest) -> tuple[dict[tuple[Any, Any], Any], dict[str, Any]]:
    """The forest's exported spans by (trace id, span id), and its server spans by invocation id."""
    spans = [span for _, span in spans_of(exported(forest))]
    by_id = {(span.trace_id, span.span_id): span for span in spans}
    servers = {attrs(span)["tracetree.invocation_id"]: span for span in spans if span.kind == SERVER}
    return by_id, servers


def exported(forest: tracetree.Forest) -> Any:
    """The forest's OTLP/JSON bytes, parsed by the official package (hex ids mapped to bytes);
    its protobuf bytes, parsed with ParseFromString, must be the same message."""
    request = forest_to_otlp(forest)
    message = parse_otlp_json(dumps_json(request))
    binary = trace_service_pb2.ExportTraceServiceRequest()
    binary.ParseFromString(to_protobuf(request))
    assert binary == message
    return message


def assert_well_formed(message: Any) -> None:
    """Ids of the right size and unique; every parent exists in its trace; times ordered and set."""
    spans = [span for _, span in spans_of(message)]
    keys = [(span.trace_id, span.span_id) for span in spans]
    assert len(set(keys)) == len(keys), "span ids collide"
    known = set(keys)
    for span in spans:
        assert len(span.trace_id) == 16 and any(span.trace_id)
        assert len(span.span_id) == 8 and any(span.span_id)
        if span.parent_span_id:
            assert (span.trace_id, span.parent_span_id) in known, span.name
        assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano, span.name
        for event in span.events:
            assert event.time_unix_nano > 0


def test_predictable_ids_collide_in_the_input_but_not_in_the_output() -> None:
    """The shipped capture's sequential span ids repeat across invocations; exported ids do not."""
    forest = tracetree.build_file(str(PREDICTABLE))
    owners: dict[tuple[str, str], int] = {}
    for trace in forest.traces:
        for invocation in trace.invocations.values():
            for span_id in invocation.spans:
                owners[(trace.trace_id, span_id)] = owners.get((trace.trace_id, span_id), 0) + 1
    assert max(owners.values()) > 1, "the fixture no longer has colliding span ids"

    message = exported(forest)
    assert_well_formed(message)
    spans = spans_of(message)
    assert len(spans) == sum(len(inv.spans) for t in forest.traces for inv in t.invocations.values())
    servers = [span for _, span in spans if span.kind == SERVER]
    assert len(servers) == sum(len(trace.invocations) for trace in forest.traces)
    assert len({span.trace_id for _, span in spans}) == len(forest.traces)


@pytest.mark.parametrize("fixture", [PREDICTABLE, RANDOM], ids=["predictable", "random"])
def test_each_callee_hangs_under_the_span_tracetree_resolved(fixture: Path) -> None:
    """A callee's server span's parent is the caller span of its link; roots have no parent."""
    forest = tracetree.build_file(str(fixture))
    by_id, servers = exported_spans(forest)
    checked = 0
    for invocation_id, link in forest.links.items():
        server = servers[invocation_id]
        assert attrs(server)["tracetree.resolution"] == link.resolution.value
        if link.parent is None:
            assert not server.parent_span_id
            continue
        parent = by_id[(server.trace_id, server.parent_span_id)]
        assert attrs(parent)["tracetree.invocation_id"] == link.parent_invocation_id
        assert attrs(parent)["tracetree.span_id"] == link.parent_span_id
        assert parent.kind in (CLIENT, SERVER)  # a dispatch span, or a top-level one (hibernation)
        checked += 1
    assert checked == 23


def test_the_collision_the_upstream_rule_gets_wrong_is_exported_as_resolved() -> None:
    """nonFunctionProperty hangs under custom's jsRpcCall span 2, not under getCounter's namesake."""
    forest = tracetree.build_file(str(PREDICTABLE))
    spans = [span for _, span in spans_of(exported(forest))]
    by_id = {(span.trace_id, span.span_id): span for span in spans}
    [callee] = [span for span in spans
                if span.kind == SERVER and attrs(span).get("jsrpc.method") == "nonFunctionProperty"]
    parent = by_id[(callee.trace_id, callee.parent_span_id)]
    assert (parent.name, attrs(parent)["tracetree.span_id"]) == ("jsRpcCall", "0000000000000002")
    assert parent.kind == CLIENT
    above = by_id[(parent.trace_id, parent.parent_span_id)]
    while above.kind != SERVER:
        above = by_id[(above.trace_id, above.parent_span_id)]
    assert above.name == "custom"
    assert attrs(above)["tracetree.invocation_id"] == attrs(parent)["tracetree.invocation_id"]
    assert attrs(callee)["tracetree.resolution"] == "causal"
    assert attrs(callee)["tracetree.candidates"] == 2


def test_protobuf_bytes_are_the_same_request_as_the_json() -> None:
    """The binary encoding parses (ParseFromString) to the message the JSON parses to."""
    request = forest_to_otlp(tracetree.build_file(str(PREDICTABLE)))
    parsed = trace_service_pb2.ExportTraceServiceRequest()
    parsed.ParseFromString(to_protobuf(request))
    assert parsed == to_message(request)
    assert_well_formed(parsed)


def test_json_uses_otlp_encoding_rules() -> None:
    """Hex ids, int64 as decimal strings, enums as integers, as the OTLP/JSON spec asks."""
    request = forest_to_otlp(tracetree.build_file(str(PREDICTABLE)))
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
    assert len(span["spanId"]) == 16 and int(span["spanId"], 16)
    assert isinstance(span["startTimeUnixNano"], str) and span["startTimeUnixNano"].isdigit()
    assert span["kind"] == SERVER
    assert request["resourceSpans"][0]["scopeSpans"][0]["scope"]["name"] == "tracetree"
    # The ids in the JSON are the bytes in the parsed message.
    message = parse_otlp_json(orjson.dumps(request))
    first = message.resource_spans[0].scope_spans[0].spans[0]
    assert first.trace_id.hex() == span["traceId"] and first.span_id.hex() == span["spanId"]


def test_export_is_deterministic_and_ignores_arrival_order() -> None:
    """The same events give the same bytes; shuffled, the same spans with the same ids."""
    lines = PREDICTABLE.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    first = dumps_json(forest_to_otlp(tracetree.build(events)))
    assert dumps_json(forest_to_otlp(tracetree.build(events))) == first

    def identities(data: bytes) -> set[tuple[str, str, str | None, str]]:
        request = orjson.loads(data)
        return {(span["traceId"], span["spanId"], span.get("parentSpanId"), span["name"])
                for group in request["resourceSpans"] for scope in group["scopeSpans"]
                for span in scope["spans"]}

    # Shuffled within each trace only between invocations: arrival order may change, the
    # invocations' own event order (sequence) is what the model reads.
    random.Random(7).shuffle(events)
    assert identities(dumps_json(forest_to_otlp(tracetree.build(events)))) == identities(first)


# -- events, status, attributes -------------------------------------------------------------------


def _stream() -> list[dict[str, Any]]:
    """A fetch that calls a jsrpc service which logs and throws; typed attributes; spans nested."""
    ts = "2026-03-01T10:00:00.{:03d}Z".format
    return [
        ev("a", 0, {"type": "onset", "spanId": "aaaa", "scriptName": "front",
                    "info": {"type": "fetch", "method": "GET", "url": "https://x/y"}}, ts=ts(0)),
        ev("a", 1, {"type": "spanOpen", "name": "jsRpcSession", "spanId": "0000000000000001"},
           span="aaaa", ts="1970-01-01T00:00:00.000Z"),
        ev("b", 0, {"type": "onset", "spanId": "bbbb", "entrypoint": "Back", "info": {"type": "jsrpc"}},
           span="0000000000000001", ts=ts(5)),
        ev("b", 1, {"type": "attributes", "info": [
            {"name": "jsrpc.method", "value": "go"}, {"name": "n", "value": 3},
            {"name": "ratio", "value": 0.5}, {"name": "flag", "value": True},
            {"name": "list", "value": ["x", "y"]}, {"name": "huge", "value": 2**70}]}, span="bbbb", ts=ts(6)),
        ev("b", 2, {"type": "log", "level": "warn", "message": ["careful", {"k": 1}]}, span="bbbb", ts=ts(7)),
        ev("b", 3, {"type": "exception", "name": "TypeError", "message": "boom",
                    "stack": "TypeError: boom\n    at go (worker.js:1:1)"}, span="bbbb", ts=ts(8)),
        ev("b", 4, {"type": "outcome", "outcome": "exception", "cpuTime": 2, "wallTime": 4},
           span="bbbb", ts=ts(9)),
        ev("a", 2, {"type": "spanClose", "outcome": "ok"}, span="0000000000000001", ts=ts(10)),
        ev("a", 3, {"type": "return", "info": {"type": "fetch", "statusCode": 500}}, span="aaaa", ts=ts(11)),
        ev("a", 4, {"type": "outcome", "outcome": "ok", "cpuTime": 1, "wallTime": 12},
           span="aaaa", ts=ts(12)),
    ]


def test_logs_exceptions_status_and_attributes_are_carried() -> None:
    message = exported(tracetree.build(_stream()))
    assert_well_formed(message)
    spans = {attrs(span)["tracetree.invocation_id"] + ":" + span.name: (resource, span)
             for resource, span in spans_of(message)}
    resource, back = spans["b:jsrpc go"]
    assert resource["service.name"] == "Back"  # no scriptName: the entrypoint names the service
    assert back.kind == SERVER
    values = attrs(back)
    assert (values["n"], values["ratio"], values["flag"], values["list"]) == (3, 0.5, True, ["x", "y"])
    assert values["huge"] == str(2**70)  # past int64: kept exactly, as text
    assert values["cloudflare.cpu_time_ms"] == 2 and values["cloudflare.outcome"] == "exception"
    assert back.status.code == ERROR and back.status.message == "exception: TypeError: boom"
    log, exception = back.events
    assert (log.name, attrs(log)["log.level"]) == ("log", "warn")
    assert attrs(log)["log.message"] == 'careful {"k":1}'  # console.log's arguments, joined
    assert exception.name == "exception"
    assert {key: attrs(exception)[key] for key in ("exception.type", "exception.message")} == {
        "exception.type": "TypeError", "exception.message": "boom"}
    assert attrs(exception)["exception.stacktrace"] == "TypeError: boom\n    at go (worker.js:1:1)"

    resource, front = spans["a:fetch GET https://x/y"]
    assert resource["service.name"] == "front"
    assert front.status.code == OK
    assert attrs(front)["http.response.status_code"] == 500
    assert attrs(front)["url.full"] == "https://x/y"
    [ret] = front.events
    assert ret.name == "return" and attrs(ret)["info"] == {"type": "fetch", "statusCode": 500}
    _, session = spans["a:jsRpcSession"]
    assert session.kind == CLIENT and back.parent_span_id == session.span_id
    assert session.parent_span_id == front.span_id


def test_epoch_stamped_spans_get_the_latest_earlier_time() -> None:
    """Predictable mode's 1970 spanOpen stamps become a lower bound, and say they were inferred."""
    message = exported(tracetree.build(_stream()))
    spans = {span.name: span for _, span in spans_of(message)}
    session, front, back = spans["jsRpcSession"], spans["fetch GET https://x/y"], spans["jsrpc go"]
    assert session.start_time_unix_nano == front.start_time_unix_nano  # the onset's instant
    assert session.end_time_unix_nano == front.start_time_unix_nano + 10_000_000
    assert attrs(session)["tracetree.timing"] == "inferred"
    assert attrs(back)["tracetree.timing"] == "measured"
    assert front.end_time_unix_nano - front.start_time_unix_nano == 12_000_000


def test_a_frozen_clock_gives_ordered_ordinal_times_and_says_so() -> None:
    """Every stamp equal: spans still get distinct, ordered times, callees inside their caller."""
    events = _stream()
    for event in events:
        event["timestamp"] = "2026-03-01T10:00:00.000Z"
    message = exported(tracetree.build(events))
    assert_well_formed(message)
    spans = {span.name: span for _, span in spans_of(message)}
    session, front, back = spans["jsRpcSession"], spans["fetch GET https://x/y"], spans["jsrpc go"]
    assert {attrs(span)["tracetree.timing"] for span in spans.values()} == {"ordinal"}
    assert front.start_time_unix_nano < session.start_time_unix_nano < back.start_time_unix_nano
    assert back.end_time_unix_nano < session.end_time_unix_nano < front.end_time_unix_nano
    # Anchored at the frozen instant, not at 1970.
    assert front.start_time_unix_nano // 10**9 == 1772359200


def test_trace_ids_are_hex_of_the_right_size() -> None:
    assert otlp_trace_id("AB" * 16) == "ab" * 16
    assert otlp_trace_id("00000000000000ab") == "0" * 30 + "ab"
    hashed = otlp_trace_id("t1")
    assert len(hashed) == 32 and int(hashed, 16) and hashed == otlp_trace_id("t1")
    assert otlp_trace_id("0" * 32) != "0" * 32  # all zeros is invalid in OTLP
    assert otlp_trace_id("t1") != otlp_trace_id("t2")


def test_missing_onset_and_loose_spans_keep_every_parent() -> None:
    """An invocation whose onset never came still gets a server span; its spans hang from it."""
    events = [
        ev("a", 1, {"type": "spanOpen", "name": "fetch", "spanId": "0000000000000001"}, span="aaaa"),
        ev("a", 2, {"type": "spanOpen", "name": "inner", "spanId": "0000000000000002"},
           span="0000000000000001"),
        ev("a", 3, {"type": "spanOpen", "name": "lost", "spanId": "0000000000000003"}, span="ffff"),
        ev("a", 4, {"type": "log", "level": "log", "message": ["x"]}, span="aaaa"),
    ]
    message = exported(tracetree.build(events))
    assert_well_formed(message)
    spans = {span.name: span for _, span in spans_of(message)}
    server = spans["(onset missing)"]
    assert server.kind == SERVER and attrs(server)["tracetree.onset_missing"] is True
    assert spans["fetch"].parent_span_id == server.span_id
    assert spans["inner"].parent_span_id == spans["fetch"].span_id
    assert spans["lost"].parent_span_id == server.span_id
    assert attrs(spans["lost"])["tracetree.parent_span_id"] == "ffff"
    assert attrs(spans["lost"])["tracetree.unclosed"] is True
    assert [event.name for event in server.events] == ["log"]
    assert attrs(server.events[0])["tracetree.stray"] is True


def test_deeply_nested_values_stay_parseable() -> None:
    """A log field nested past protobuf's recursion limit is sent as JSON text at the cut."""
    deep: Any = "bottom"
    for _ in range(300):
        deep = {"d": deep}
    events = [ev("a", 0, {"type": "onset", "spanId": "aaaa", "info": {"type": "custom"}}),
              ev("a", 1, {"type": "diagnosticChannel", "channel": "c", "message": deep}, span="aaaa")]
    message = exported(tracetree.build(events))
    [(_, server)] = spans_of(message)
    value = attrs(server.events[0])["message"]
    for _ in range(MAX_VALUE_DEPTH):
        value = value["d"]
    assert isinstance(value, str) and value.startswith('{"d":{"d":')


def test_batches_hold_whole_traces() -> None:
    """With a span limit, requests split between traces, and together hold every span once."""
    forest = tracetree.build_file(str(PREDICTABLE))
    whole = spans_of(exported(forest))
    batches = list(iter_requests(forest, batch_spans=20))
    assert len(batches) > 2
    seen: list[Any] = []
    traces_seen: set[bytes] = set()
    for request, count in batches:
        spans = [span for _, span in spans_of(to_message(request))]
        assert len(spans) == count
        traces = {span.trace_id for span in spans}
        assert not traces & traces_seen, "a trace was split across requests"
        traces_seen |= traces
        seen += spans
    assert sorted(span.SerializeToString() for span in seen) == \
        sorted(span.SerializeToString() for _, span in whole)


@pytest.mark.parametrize("naive", [False, True], ids=["evidence", "naive"])
@pytest.mark.parametrize("stream", corpus_streams("train") + corpus_streams("real"))
def test_every_corpus_stream_exports_well_formed(stream: Path, naive: bool) -> None:
    """Every corpus stream (frozen, coarse, grouped, eager…) exports to a valid request, with
    either resolver (the naive one can link invocations in a cycle: it is broken, as in build)."""
    forest = tracetree.build_file(str(stream), options=tracetree.ResolveOptions(naive=naive))
    message = exported(forest)
    assert_well_formed(message)
    assert len(spans_of(message)) == sum(
        len(inv.spans) or 1 for trace in forest.traces for inv in trace.invocations.values())


def test_uncertain_links_point_at_the_other_candidates(corpus: Path) -> None:
    """A heuristic or ambiguous link carries OTLP links to the callers it was weighed against."""
    forest = tracetree.build_file(str(corpus / "train" / "topology-501-d2-f2-ms-arrival-lazy.events.jsonl"))
    by_id, servers = exported_spans(forest)
    linked = 0
    for invocation_id, link in forest.links.items():
        server = servers[invocation_id]
        expected = {(c.invocation_id, c.span_id) for c in link.candidates
                    if not c.excluded and c.invocation_id != link.parent_invocation_id}
        if link.resolution.certain or link.resolution.value == "orphan":
            expected = set()
        found = set()
        for otlp_link in server.links:
            target = by_id[(otlp_link.trace_id, otlp_link.span_id)]
            found.add((attrs(target)["tracetree.invocation_id"], attrs(target)["tracetree.span_id"]))
            assert attrs(otlp_link)["tracetree.link"] == "candidate caller"
        assert found == expected, invocation_id
        assert attrs(server).get("tracetree.flagged", False) == link.resolution.flagged
        linked += bool(found)
    assert linked > 10


def test_timestamps_otlp_cannot_carry_are_no_information() -> None:
    """Stamps before 1970 or past 2262 (uint64 nanoseconds end there) and unreadable ones are
    treated like the epoch: the export stays valid, its times from the stamps that remain."""
    events = _stream()
    events[0]["timestamp"] = "9999-12-31T23:59:59.999Z"
    events[2]["timestamp"] = "1960-01-01T00:00:00.000Z"
    events[3]["timestamp"] = "yesterday"
    message = exported(tracetree.build(events))
    assert_well_formed(message)
    parsed = trace_service_pb2.ExportTraceServiceRequest()
    parsed.ParseFromString(to_protobuf(forest_to_otlp(tracetree.build(events))))
    assert parsed == message
    spans = {span.name: span for _, span in spans_of(message)}
    front = spans["fetch GET https://x/y"]
    assert front.start_time_unix_nano == 1772359200010000000  # the first stamp it can use
    assert attrs(front)["tracetree.timing"] == "inferred"


def test_a_callee_without_any_stamp_starts_where_its_caller_span_does() -> None:
    """In a trace whose clock works, an invocation with no usable stamp is placed at the start of
    the span that dispatched it, not at 1970 nor at the trace's start."""
    events = _stream()
    for event in events:
        if event["invocationId"] == "b":
            event.pop("timestamp")
    events[7]["timestamp"] = "2026-03-01T10:00:00.004Z"  # the session closes later than it opened
    events[1]["timestamp"] = "2026-03-01T10:00:00.002Z"  # and opens after the onset
    message = exported(tracetree.build(events))
    assert_well_formed(message)
    spans = {span.name: span for _, span in spans_of(message)}
    session, back = spans["jsRpcSession"], spans["jsrpc go"]
    assert session.start_time_unix_nano == 1772359200002000000
    assert back.start_time_unix_nano == back.end_time_unix_nano == session.start_time_unix_nano
    assert attrs(back)["tracetree.timing"] == "inferred"
