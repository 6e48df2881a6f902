"""Events kept as text (`build --format json`): the same document, a fraction of the memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS, assert_input_error, needs_corpus, runner
from test_lean import GOOD, ODD

from tracetree.build import build_file
from tracetree.cli import main
from tracetree.document import dumps_document, to_document
from tracetree.errors import InputError
from tracetree.model import ModelBuilder, parsed_events

# A number orjson cannot hold, in a field the model never reads: msgspec skips it unparsed.
TOO_LARGE = (b'{"invocationId":"a","spanContext":{"traceId":"t","spanId":"0000000000000001"},"sequence":5,'
             b'"event":{"type":"log","message":[1e400]}}')


def _documents(path: Path, lenient: bool) -> tuple[bytes, bytes]:
    """The document built with events as dicts, and with events as text."""
    kept = to_document(build_file(str(path), lenient=lenient))
    raw = to_document(build_file(str(path), lenient=lenient, raw_events=True))
    return dumps_document(kept), dumps_document(raw)


@pytest.mark.parametrize("odd", range(len(ODD) + 1))
def test_every_odd_line_gives_the_same_document_or_error(tmp_path: Path, odd: int) -> None:
    line = ODD[odd] if odd < len(ODD) else TOO_LARGE
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join([*GOOD[:3], line, *GOOD[3:]]) + b"\n")
    for lenient in (False, True):
        try:
            kept = dumps_document(to_document(build_file(str(path), lenient=lenient)))
        except InputError as error:
            with pytest.raises(InputError) as caught:
                build_file(str(path), lenient=lenient, raw_events=True)
            assert str(caught.value) == str(error)
            continue
        raw = dumps_document(to_document(build_file(str(path), lenient=lenient, raw_events=True)))
        assert raw == kept


def test_a_stream_of_every_odd_line_gives_the_same_document(tmp_path: Path) -> None:
    """Strays, redeliveries, second closes, skipped lines: all where the dict model puts them."""
    lines = [line for odd in ODD for line in (odd, *GOOD)] * 3
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    kept, raw = _documents(path, lenient=True)
    assert raw == kept
    assert b'"stray"' in raw and b'"duplicates"' in raw


@needs_corpus
@pytest.mark.parametrize("name", ["real/upstream-tailtest-predictable",
                                  "train/topology-503-d3-f3-coarse-grouped-lazy"])
def test_the_corpus_documents_are_the_same(name: str) -> None:
    kept, raw = _documents(CORPUS / f"{name}.events.jsonl", lenient=False)
    assert raw == kept


def test_a_number_too_large_is_named_by_line_in_json_output(tmp_path: Path) -> None:
    """Read as text, the event is parsed whole only when written: the reader still checks it
    then, so the error names its line instead of surfacing late or not at all."""
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join([*GOOD[:3], TOO_LARGE]) + b"\n")
    result = runner().invoke(main, ["build", str(path), "--format", "json"])
    assert_input_error(result, f"{path}:4:")
    assert "number" in result.output


def test_parsed_events_gives_dicts_inside_and_text_after(tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_bytes(b"\n".join(GOOD) + b"\n")
    [trace] = build_file(str(path), raw_events=True).traces
    invocation = trace.invocations["a"]
    span = invocation.spans["0000000000000001"]
    assert all(type(event) is bytes for event in invocation.events)
    with pytest.raises(RuntimeError), parsed_events(trace):
        assert all(type(event) is dict for event in invocation.events)
        # One parse per event: the span's events are the very dicts of the invocation's.
        assert span.open_event is invocation.events[1]
        assert span.events[0] is invocation.events[2]
        assert span.events[1]["event"]["message"][0] == "café"
        raise RuntimeError("the block fails: the text is put back all the same")
    assert all(type(event) is bytes for event in invocation.events)
    assert type(span.open_event) is bytes and span.events[0] is invocation.events[2]


def test_parsed_events_leaves_a_model_of_dicts_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_bytes(b"\n".join(GOOD) + b"\n")
    [trace] = build_file(str(path)).traces
    events = trace.invocations["a"].events
    with parsed_events(trace):
        assert trace.invocations["a"].events is events


def test_raw_events_need_kept_events() -> None:
    with pytest.raises(ValueError, match="keep_events"):
        ModelBuilder(keep_events=False, raw_events=True)
