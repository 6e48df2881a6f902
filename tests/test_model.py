"""The model: events grouped into invocations of nested spans, whatever order they arrive in."""

from __future__ import annotations

import itertools
import random

import pytest
from conftest import DEFAULT_TS, ev, write_jsonl

from tracetree.build import build_file
from tracetree.errors import InputError
from tracetree.model import ModelBuilder, Span, build_traces

TOP = "c0ffee00c0ffee00"


def onset(invocation="a", *, span=None, top=TOP, trace="t1", **extra):
    return ev(invocation, 0, {"type": "onset", "executionModel": "stateless", "spanId": top,
                              "info": {"type": "fetch"}, **extra}, span=span, trace=trace)


def span_open(seq, span_id, parent, name="fetch", invocation="a"):
    return ev(invocation, seq, {"type": "spanOpen", "name": name, "spanId": span_id}, span=parent)


def span_close(seq, span_id, invocation="a", outcome="ok"):
    return ev(invocation, seq, {"type": "spanClose", "outcome": outcome}, span=span_id)


def outcome(seq, invocation="a", top=TOP):
    return ev(invocation, seq, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=top)


def only_invocation(events):
    [trace] = build_traces(events)
    [invocation] = trace.invocations.values()
    return invocation


def shape(span: Span):
    """A span as (name, id, closed, children) all the way down: what a tree view would show."""
    return (span.name, span.span_id, span.closed, tuple(shape(child) for child in span.children))


def test_overlapping_spans_nest_by_named_parent_not_by_stack():
    """Concurrent spans nest under the parent each spanOpen names, not under the latest span still open."""
    invocation = only_invocation([
        onset(),
        span_open(1, "0000000000000001", TOP, "jsRpcSession"),
        span_open(2, "0000000000000002", TOP, "kv_get"),  # opened while 1 is still open
        span_open(3, "0000000000000003", "0000000000000001", "jsRpcCall"),  # 2 is the innermost open span
        span_close(4, "0000000000000002"),
        span_close(5, "0000000000000003"),
        span_close(6, "0000000000000001"),
        outcome(7),
    ])
    assert shape(invocation.top) == ("fetch", TOP, False, (
        ("jsRpcSession", "0000000000000001", True, (("jsRpcCall", "0000000000000003", True, ()),)),
        ("kv_get", "0000000000000002", True, ()),
    ))


def test_attributes_aimed_at_top_level_span_merge_into_it():
    """Attributes events aimed at the top-level span merge into its attributes, later values winning."""
    invocation = only_invocation([
        onset(),
        ev("a", 1, {"type": "attributes", "info": [{"name": "jsrpc.method", "value": "getCounter"},
                                                   {"name": "x", "value": 1}]}, span=TOP),
        ev("a", 2, {"type": "attributes", "info": [{"name": "x", "value": 2},
                                                   {"name": "tags", "value": ["p", "q"]}]}, span=TOP),
        outcome(3),
    ])
    assert invocation.top.attributes == {"jsrpc.method": "getCounter", "x": 2, "tags": ["p", "q"]}


def test_attributes_aimed_at_a_span_stay_on_that_span():
    """Attributes aimed at a child span land on that span, not on the top-level span."""
    invocation = only_invocation([
        onset(),
        span_open(1, "0000000000000001", TOP),
        ev("a", 2, {"type": "attributes", "info": [{"name": "url.full", "value": "http://x/"}]},
           span="0000000000000001"),
    ])
    assert invocation.spans["0000000000000001"].attributes == {"url.full": "http://x/"}
    assert invocation.top.attributes == {}


def test_unclosed_spans_are_kept_and_marked_open():
    """Spans never closed (a cut-off stream) are kept in the tree and report closed == False."""
    invocation = only_invocation([
        onset(),
        span_open(1, "0000000000000001", TOP),
        span_open(2, "0000000000000002", "0000000000000001"),
        span_close(3, "0000000000000002"),
    ])
    inner = invocation.spans["0000000000000002"]
    outer = invocation.spans["0000000000000001"]
    assert (outer.closed, inner.closed, invocation.top.closed) == (False, True, False)
    assert outer.children == [inner]
    assert invocation.outcome is None


def test_span_close_records_its_outcome():
    """A closed span carries the outcome its spanClose reported."""
    invocation = only_invocation([
        onset(),
        span_open(1, "0000000000000001", TOP),
        span_close(2, "0000000000000001", outcome="exception"),
    ])
    assert invocation.spans["0000000000000001"].outcome == "exception"


def test_unknown_event_types_are_kept_on_their_span():
    """An event type newer runtimes may add is kept, as received, on the span it is aimed at."""
    novel = ev("a", 2, {"type": "futureThing", "payload": {"k": [1, 2]}}, span="0000000000000001")
    invocation = only_invocation([onset(), span_open(1, "0000000000000001", TOP), novel, outcome(3)])
    assert invocation.spans["0000000000000001"].events == [novel]
    assert novel in invocation.events


def test_unknown_event_aimed_at_no_known_span_is_kept():
    """An unknown event aimed at a span the invocation never opened is kept, not dropped."""
    novel = ev("a", 1, {"type": "futureThing"}, span="00000000000000ff")
    invocation = only_invocation([onset(), novel])
    assert novel in invocation.stray
    assert novel in invocation.events


def test_logs_and_exceptions_are_kept_on_their_span():
    """A log lands on the span active when it was logged; an exception on the top-level span."""
    log = ev("a", 2, {"type": "log", "level": "info", "message": ["hi"]}, span="0000000000000001")
    exception = ev("a", 3, {"type": "exception", "name": "Error", "message": "boom"}, span=TOP)
    invocation = only_invocation([onset(), span_open(1, "0000000000000001", TOP), log, exception])
    assert invocation.spans["0000000000000001"].events == [log]
    assert invocation.top.events == [exception]


def test_unknown_fields_are_kept_in_the_raw_events():
    """Fields tracetree does not know, in the envelope or the event body, survive in the raw events."""
    first = onset(futureField={"nested": True})
    first["envelopeExtra"] = 42
    second = span_open(1, "0000000000000001", TOP)
    second["event"]["colour"] = "blue"
    invocation = only_invocation([first, second])
    assert invocation.events[0]["envelopeExtra"] == 42
    assert invocation.onset["futureField"] == {"nested": True}
    assert invocation.spans["0000000000000001"].open_event["event"]["colour"] == "blue"


def test_duplicate_events_are_counted_once_and_reported():
    """The same (invocation, sequence) delivered twice is applied once and reported as a duplicate."""
    attrs = ev("a", 2, {"type": "attributes", "info": [{"name": "n", "value": 1}]}, span="0000000000000001")
    builder = ModelBuilder()
    for event in [onset(), span_open(1, "0000000000000001", TOP), attrs, attrs, outcome(3), outcome(3)]:
        builder.add(event)
    [trace] = builder.finish()
    invocation = trace.invocations["a"]
    assert sorted(invocation.duplicates) == [2, 3]
    assert builder.stats.duplicates == 2
    assert invocation.spans["0000000000000001"].events == [attrs]
    assert len(invocation.events) == 4
    assert invocation.events_missing == 0


def test_redeliveries_and_gaps_in_any_arrival_order_give_the_same_invocation():
    """Duplicates before and after a gap, delivered in any order: the first copy of each event
    to arrive is applied, the others counted, as if each invocation's events came in sequence."""
    attrs = ev("a", 2, {"type": "attributes", "info": [{"name": "n", "value": 1}]}, span="0000000000000001")
    later = {**attrs, "event": {"type": "attributes", "info": [{"name": "n", "value": 2}]}}
    events = [onset(), span_open(1, "0000000000000001", TOP), attrs, later, attrs, outcome(4), outcome(4),
              span_close(6, "0000000000000001"), onset()]

    def seen(order):
        builder = ModelBuilder()
        for event in order:
            builder.add(event)
        [trace] = builder.finish()
        invocation = trace.invocations["a"]
        return (invocation.duplicates, builder.stats.duplicates,
                [(sequence, stamp) for sequence, stamp, _ in invocation.stamps],
                [event["sequence"] for event in invocation.events],
                invocation.spans["0000000000000001"].attributes["n"], invocation.events_missing)

    in_order = [(n, DEFAULT_TS) for n in (0, 1, 2, 4, 6)]
    assert seen(events) == ([0, 2, 2, 4], 4, in_order, [0, 1, 2, 4, 6], 1, 2)
    rng = random.Random(3)
    for _ in range(100):
        order = rng.sample(events, len(events))
        in_sequence = sorted(order, key=lambda event: event["sequence"])  # stable: first copies first
        assert seen(order) == seen(in_sequence)
        assert seen(order)[4] == next(e for e in order if e["sequence"] == 2)["event"]["info"][0]["value"]


def test_sequence_gaps_are_reported_as_missing_events():
    """Sequence numbers skipped within an invocation are reported as events missing."""
    invocation = only_invocation([onset(), span_open(2, "0000000000000001", TOP), outcome(5)])
    assert invocation.missing_runs == [(1, 1), (3, 4)]
    assert invocation.events_missing == 3


def test_a_far_out_sequence_is_one_run_of_missing_events():
    """A corrupt sequence number leaves one gap, counted exactly, at no cost in memory."""
    invocation = only_invocation([onset(), outcome(2**63 - 1)])
    assert invocation.missing_runs == [(1, 2**63 - 2)]
    assert invocation.events_missing == 2**63 - 2


def test_stream_diagnostic_counts_as_missing_events():
    """A streamDiagnostic saying events were dropped adds its count to the events missing."""
    diagnostic = ev("a", 2, {"type": "streamDiagnostic",
                             "diagnostic": {"diagnosticsType": "droppedEvents", "count": 7}}, span=TOP)
    invocation = only_invocation([onset(), span_open(1, "0000000000000001", TOP), diagnostic])
    assert invocation.dropped == 7
    assert invocation.events_missing == 7
    assert diagnostic in invocation.events


def test_dropped_events_and_the_gaps_they_leave_count_once():
    """Dropped events use up sequence numbers: two gaps and a streamDiagnostic of 2 are 2 missing."""
    diagnostic = ev("a", 4, {"type": "streamDiagnostic",
                             "diagnostic": {"diagnosticsType": "droppedEvents", "count": 2}}, span=TOP)
    invocation = only_invocation([onset(), span_open(1, "0000000000000001", TOP), diagnostic])
    assert (invocation.missing_runs, invocation.events_missing) == ([(2, 3)], 2)


def test_complete_invocation_has_nothing_missing():
    """An invocation with every sequence number from 0 to its outcome reports no events missing."""
    invocation = only_invocation([onset(), span_open(1, "0000000000000001", TOP),
                                  span_close(2, "0000000000000001"), outcome(3)])
    assert (invocation.missing_runs, invocation.events_missing) == ([], 0)


def _drop(event, *keys):
    """A copy of the event with the nested key removed."""
    event = {**event, "spanContext": dict(event["spanContext"]), "event": dict(event["event"])}
    *path, last = keys
    target = event
    for key in path:
        target = target[key]
    del target[last]
    return event


@pytest.mark.parametrize(("bad", "what"), [
    (_drop(onset(), "invocationId"), "invocationId"),
    (_drop(onset(), "spanContext", "traceId"), "spanContext.traceId"),
    (_drop(onset(), "sequence"), "sequence"),
    (_drop(onset(), "event", "type"), "event.type"),
    (_drop(onset(), "event", "spanId"), "onset event.spanId"),
    (_drop(span_open(1, "0000000000000001", TOP), "spanContext", "spanId"), "spanOpen spanContext.spanId"),
    (_drop(span_open(1, "0000000000000001", TOP), "event", "spanId"), "spanOpen event.spanId"),
], ids=["invocationId", "traceId", "sequence", "type", "onset-spanId", "spanOpen-parent", "spanOpen-spanId"])
def test_missing_required_field_names_file_and_line(tmp_path, bad, what):
    """An event missing a field tracetree needs is an InputError naming the file, the line and the field."""
    path = write_jsonl(tmp_path / "events.jsonl", [onset("z", top="aaaaaaaaaaaaaaaa"), bad])
    with pytest.raises(InputError) as caught:
        build_file(str(path))
    assert (caught.value.path, caught.value.line) == (str(path), 2)
    assert str(caught.value).startswith(f"{path}:2: ")
    assert what in str(caught.value)


def test_lenient_model_skips_events_missing_fields(tmp_path):
    """In lenient mode an event missing a required field is skipped and counted; the rest builds."""
    path = write_jsonl(tmp_path / "events.jsonl", [onset(), _drop(onset("b"), "invocationId"), outcome(1)])
    forest = build_file(str(path), lenient=True)
    assert forest.stats.skipped == 1
    assert list(forest.traces[0].invocations) == ["a"]


def test_invocation_changing_trace_is_an_error(tmp_path):
    """An invocation whose events name two different trace ids is an InputError at the second one."""
    path = write_jsonl(tmp_path / "events.jsonl", [onset(trace="t1"), {**outcome(1), "spanContext": {
        "traceId": "t2", "spanId": TOP}}])
    with pytest.raises(InputError, match=rf"^{path}:2: .*traceId"):
        build_file(str(path))


def _two_invocation_stream():
    callee_top = "beefbeefbeefbeef"
    return [
        onset("a"),
        span_open(1, "0000000000000001", TOP, "jsRpcSession"),
        span_open(2, "0000000000000002", "0000000000000001", "fetch"),
        onset("b", span="0000000000000002", top=callee_top),
        ev("b", 1, {"type": "spanOpen", "name": "kv_get", "spanId": "0000000000000001"}, span=callee_top),
        ev("b", 2, {"type": "log", "level": "log", "message": ["x"]}, span="0000000000000001"),
        ev("b", 3, {"type": "spanClose", "outcome": "ok"}, span="0000000000000001"),
        span_close(3, "0000000000000002"),
        ev("a", 4, {"type": "attributes", "info": [{"name": "k", "value": "v"}]}, span=TOP),
        outcome(4, "b", top=callee_top),
        span_close(5, "0000000000000001"),
        outcome(6),
    ]


def _forest_shape(traces):
    return {
        (trace.trace_id, key): (shape(inv.top), inv.top.attributes, inv.trigger_span_id, inv.events_missing,
                                [event["sequence"] for event in inv.events])
        for trace in traces for key, inv in trace.invocations.items()
    }


def test_any_arrival_order_gives_the_same_shape():
    """Events delivered in any order build the same spans, nesting, attributes and event lists."""
    events = _two_invocation_stream()
    expected = _forest_shape(build_traces(events))
    [session] = build_traces(events)[0].invocations["a"].top.children
    assert [child.name for child in session.children] == ["fetch"]
    rng = random.Random(7)
    orders = [list(reversed(events))] + [rng.sample(events, len(events)) for _ in range(50)]
    for order in orders:
        assert _forest_shape(build_traces(order)) == expected


def test_child_span_opened_before_its_parent_in_arrival_still_nests():
    """A spanOpen arriving before the spanOpen of the parent it names still nests under that parent."""
    events = [onset(), span_open(1, "0000000000000001", TOP),
              span_open(2, "0000000000000002", "0000000000000001")]
    for order in itertools.permutations(events):
        invocation = only_invocation(list(order))
        assert shape(invocation.top) == ("fetch", TOP, False, (
            ("fetch", "0000000000000001", False, (("fetch", "0000000000000002", False, ()),)),))
