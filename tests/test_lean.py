"""Lean reading (`--format links`): the model and every error exactly as the full reader gives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS, needs_corpus

from tracetree.build import build_file
from tracetree.errors import InputError
from tracetree.events import read_events, read_lean_events
from tracetree.model import ModelBuilder, Trace
from tracetree.render.links import render_links

GOOD = [
    b'{"invocationId":"a","spanContext":{"traceId":"t"},"sequence":0,"timestamp":"2026-01-01T00:00:00.001Z",'
    b'"event":{"type":"onset","spanId":"aaaaaaaaaaaaaaaa","info":{"type":"fetch","url":"https://x/"}}}',
    b'{"invocationId":"a","spanContext":{"traceId":"t","spanId":"aaaaaaaaaaaaaaaa"},"sequence":1,'
    b'"event":{"type":"spanOpen","spanId":"0000000000000001","name":"fetch"}}',
    b'{"invocationId":"a","spanContext":{"traceId":"t","spanId":"0000000000000001"},"sequence":2,'
    b'"event":{"type":"attributes","info":[{"name":"url.full","value":"https://y/"}]}}',
    b'{"invocationId":"b","spanContext":{"traceId":"t","spanId":"0000000000000001"},"sequence":0,'
    b'"event":{"type":"onset","spanId":"bbbbbbbbbbbbbbbb","info":{"type":"fetch","url":"https://y/"}}}',
    b'{"invocationId":"a","spanContext":{"traceId":"t","spanId":"0000000000000001"},"sequence":3,'
    b'"event":{"type":"log","level":"info","message":["caf\xc3\xa9", 1e300, {"deep": [[1]]}]}}',
    b'{"invocationId":"a","spanContext":{"traceId":"t","spanId":"0000000000000001"},"sequence":4,'
    b'"event":{"type":"spanClose","outcome":"ok"}}',
    b'{"invocationId":"a","spanContext":{"traceId":"t","spanId":"aaaaaaaaaaaaaaaa"},"sequence":3,'
    b'"event":{"type":"log","message":["a redelivery"]}}',
]

# Lines the typed decoder refuses or that are not events: each must read as on the full path.
ODD = [
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":true,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":1.0,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":-1,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":18446744073709551615,"event":{"type":"x"}}',
    b'{"invocationId":5,"spanContext":{"traceId":"t"},"sequence":0,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t","spanId":7},"sequence":0,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":2,"timestamp":5,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":3,"event":{"type":"spanOpen","spanId":"1"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t","spanId":"a"},"sequence":3,'
    b'"event":{"type":"spanOpen","spanId":"5","name":12}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":4,"event":{"type":"spanClose"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t","spanId":"1"},"sequence":5,'
    b'"event":{"type":"attributes","info":{}}}',
    b'{"invocationId":"a","spanContext":{"traceId":"u"},"sequence":9,"event":{"type":"log"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":6,"event":{"type":"log","x":"\xff"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":7,"event":{"type":"log","x":"\\ud800"}}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":8,"event":{"type":"log","x":NaN}}',
    b'[1, 2]',
    b'1, 2',
    b'{"invocationId":"c","spanContext":{"traceId":"t"},"sequence":9,"event":{"type":"log"}}, {"a": 1}',
    b'{"invocationId":"c","spanContext":{"traceId":"t"}',
]


def _full(path: Path, lenient: bool) -> ModelBuilder:
    builder = ModelBuilder(keep_events=False, lenient=lenient)
    builder.add_all(read_events([str(path)], lenient=lenient, stats=builder.stats))
    return builder


def _lean(path: Path, lenient: bool) -> ModelBuilder:
    builder = ModelBuilder(keep_events=False, lenient=lenient)
    builder.add_lean(read_lean_events([str(path)], lenient=lenient, stats=builder.stats))
    return builder


def _stats(builder: ModelBuilder) -> tuple:
    stats = builder.stats
    return (stats.events, stats.duplicates, stats.skipped, [str(error) for error in stats.skipped_examples])


def _model(traces: list[Trace]) -> list:
    """Everything a model without events holds, as plain values."""
    return [
        (trace.trace_id, [
            (inv.invocation_id, inv.position, inv.onset, inv.onset_position, inv.onset_time,
             inv.trigger_span_id, inv.top_span_id, inv.outcome, inv.stamps, inv.last_position,
             inv.duplicates, inv.dropped,
             [(s.span_id, s.name, s.parent_span_id, s.open_sequence, s.open_time, s.open_position,
               s.close_sequence, s.close_time, s.close_position, s.outcome, s.attributes,
               [c.span_id for c in s.children]) for s in inv.spans.values()])
            for inv in trace.invocations.values()
        ])
        for trace in traces
    ]


@pytest.mark.parametrize("odd", range(len(ODD)))
def test_each_odd_line_is_reported_or_read_as_on_the_full_path(tmp_path: Path, odd: int) -> None:
    """The same error (file, line, column, words) or the same model, strict and lenient."""
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join([*GOOD[:3], ODD[odd], *GOOD[3:]]) + b"\n")
    for lenient in (False, True):
        try:
            full = _full(path, lenient)
        except InputError as error:
            with pytest.raises(InputError) as caught:
                _lean(path, lenient)
            assert str(caught.value) == str(error)
            continue
        lean = _lean(path, lenient)
        assert _model(lean.finish()) == _model(full.finish())
        assert _stats(lean) == _stats(full)


def test_a_stream_of_every_odd_line_counts_the_same_skips(tmp_path: Path) -> None:
    """Lenient: the same lines skipped, the same first examples quoted, the same model."""
    lines = [line for odd in ODD for line in (odd, *GOOD)] * 20  # odd lines in every 64-line array
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n   \n")
    full, lean = _full(path, True), _lean(path, True)
    assert _stats(lean) == _stats(full) and lean.stats.skipped > 0
    assert _model(lean.finish()) == _model(full.finish())


@needs_corpus
@pytest.mark.parametrize("name", ["real/upstream-tailtest-predictable",
                                  "train/topology-503-d3-f3-coarse-grouped-lazy"])
def test_lean_reading_builds_the_model_the_full_reader_builds(name: str) -> None:
    path = CORPUS / f"{name}.events.jsonl"
    assert _model(_lean(path, False).finish()) == _model(_full(path, False).finish())


def test_links_of_a_json_array_file_read_lean(tmp_path: Path) -> None:
    """A file holding one JSON array of events is read whole, lean or not."""
    path = tmp_path / "events.json"
    path.write_bytes(b"[" + b",".join(GOOD) + b"]")
    lean = b"".join(render_links(build_file(str(path), keep_events=False)))
    assert lean == b"".join(render_links(build_file(str(path))))
    assert b'"parentInvocationId":"a"' in lean


def test_lean_events_need_a_builder_without_events() -> None:
    with pytest.raises(ValueError, match="keep_events"):
        ModelBuilder().add_lean([])
