"""Reading a runtime's log: marker lines taken, everything else ignored, bad marker lines named."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from conftest import assert_input_error, ev, needs_corpus, runner

from tracetree.build import build_file
from tracetree.cli import main
from tracetree.markers import find_marker, looks_like_log

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tail-worker-test.events.jsonl"


def marked(event: dict) -> bytes:
    return b"tracetree-event: " + orjson.dumps(event) + b"\n"


STREAM = [
    ev("a", 0, {"type": "onset", "executionModel": "stateless", "spanId": "1111111111111111",
                "info": {"type": "fetch", "method": "GET", "url": "http://x/"}}),
    ev("a", 1, {"type": "log", "level": "log", "message": ["tracetree-event: not a marker"]},
       span="1111111111111111"),
    ev("a", 2, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span="1111111111111111"),
]


def workerd_log(events: list[dict]) -> bytes:
    """What `workerd test 2>&1` prints around the tail worker's lines."""
    return (
        b"workerd/server/server/run.rs:642: debug: [ TEST ] gateway\n"
        b"[wrangler:info] Ready on http://localhost:8787\n"
        + b"".join(marked(event) + b"a worker's own console.log line\n" for event in events)
        + b"workerd/server/server/run.rs:649: debug: [ PASS ] gateway (3ms)\n"
    )


def test_a_log_builds_the_same_forest_as_its_events(tmp_path: Path) -> None:
    """A workerd log is detected, and builds what the bare JSON Lines of its events build."""
    log = tmp_path / "workerd.log"
    log.write_bytes(workerd_log(STREAM))
    plain = tmp_path / "events.jsonl"
    plain.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in STREAM))
    from_log, from_jsonl = build_file(str(log)), build_file(str(plain))
    assert from_log.stats.events == from_jsonl.stats.events == 3
    assert [inv.events for trace in from_log.traces for inv in trace.invocations.values()] == \
        [inv.events for trace in from_jsonl.traces for inv in trace.invocations.values()]


@needs_corpus
def test_the_shipped_capture_reads_the_same_as_a_log(tmp_path: Path) -> None:
    """Every event of a real capture, wrapped in marker lines with prefixes and colour codes,
    comes back the same: build's JSON output is byte for byte the one of the plain file."""
    lines = FIXTURE.read_bytes().splitlines()
    log = tmp_path / "capture.log"
    log.write_bytes(b"".join(b"12:00:01 worker | tracetree-event: " + line + b"\x1b[0m\r\nnoise\n"
                             for line in lines))
    for fmt in ("json", "links"):  # links read lean, in parallel: logs take that path too
        a = runner().invoke(main, ["build", str(FIXTURE), "--format", fmt, "-q"])
        b = runner().invoke(main, ["build", str(log), "--format", fmt, "-q"])
        assert a.exit_code == b.exit_code == 0
        assert a.stdout == b.stdout


def test_a_wrangler_log_starting_with_a_prefixed_marker_line_is_a_log(tmp_path: Path) -> None:
    """wrangler prints `[tracetree-tail] tracetree-event: …`: a first line starting with `[` is
    still a log line, not the start of a JSON array."""
    log = tmp_path / "wrangler.log"
    log.write_bytes(b"".join(b"[tracetree-tail] " + marked(event) for event in STREAM))
    assert build_file(str(log)).stats.events == 3


def test_stdin_and_gzip_logs_are_detected(tmp_path: Path) -> None:
    """`workerd test … 2>&1 | tracetree build -` and a gzipped log both work."""
    data = workerd_log(STREAM)
    piped = runner().invoke(main, ["build", "-", "--format", "links", "-q"], input=data)
    assert piped.exit_code == 0, piped.stderr
    assert len(piped.stdout.splitlines()) == 1
    packed = tmp_path / "workerd.log.gz"
    packed.write_bytes(gzip.compress(data))
    assert build_file(str(packed)).stats.events == 3


def test_a_cut_marker_line_is_an_error_naming_its_line(tmp_path: Path) -> None:
    """A marker line cut short stops the build with the log's line and column."""
    data = workerd_log(STREAM).splitlines(keepends=True)
    data[4] = data[4][:60] + b"\n"  # the second event's marker line, cut
    log = tmp_path / "cut.log"
    log.write_bytes(b"".join(data))
    result = runner().invoke(main, ["build", str(log)])
    line = assert_input_error(result, f"{log}:5:", "marker line cut short or malformed: malformed JSON")
    column = int(line.split(":")[3])
    assert 17 < column <= 61  # the column in the log line, past the marker


def test_lenient_skips_and_counts_bad_marker_lines(tmp_path: Path) -> None:
    """--lenient skips a cut marker line and an empty one, counts both, quotes the first."""
    data = workerd_log(STREAM).splitlines(keepends=True)
    data[4] = b"tracetree-event: \n"
    data.insert(2, b'tracetree-event: {"cut": \n')
    log = tmp_path / "bad.log"
    log.write_bytes(b"".join(data))
    result = runner().invoke(main, ["build", str(log), "--lenient", "--format", "links"])
    assert result.exit_code == 0, result.stderr
    assert "2 lines skipped" in result.stderr
    assert f"skipped: {log}:3:" in result.stderr
    assert "marker line cut short or malformed: malformed JSON" in result.stderr


def test_a_worker_error_line_is_an_error_and_lenient_counts_it(tmp_path: Path) -> None:
    """The tail worker's `tracetree-error:` line (an event it could not serialize) stops the
    build, saying which event is missing; --lenient skips and counts it."""
    report = {"error": "TypeError: Converting circular structure to JSON", "invocationId": "a",
              "traceId": "t1", "sequence": 1, "type": "diagnosticChannel"}
    data = workerd_log([STREAM[0], STREAM[2]]).splitlines(keepends=True)
    data.insert(4, b"tracetree-error: " + orjson.dumps(report) + b"\n")
    log = tmp_path / "error.log"
    log.write_bytes(b"".join(data))
    result = runner().invoke(main, ["build", str(log)])
    assert_input_error(result, f"{log}:5: the tail worker could not serialize an event (type "
                       "diagnosticChannel, invocation a, sequence 1): TypeError: Converting circular")
    lenient = runner().invoke(main, ["build", str(log), "--lenient", "--format", "links"])
    assert lenient.exit_code == 0
    assert "1 line skipped · 1 with events missing" in lenient.stderr


def test_warning_lines_are_not_events(tmp_path: Path) -> None:
    """A `tracetree-warning:` line (a batch logged instead of posted) is passed over."""
    data = b'tracetree-warning: {"warning": "the collector answered 500"}\n' + workerd_log(STREAM)
    log = tmp_path / "warned.log"
    log.write_bytes(data)
    assert build_file(str(log)).stats.events == 3


def test_a_log_that_starts_like_json_is_still_detected(tmp_path: Path) -> None:
    """A log whose first line is JSON of something else is a log all the same: only its marker
    lines count."""
    log = tmp_path / "structured.log"
    log.write_bytes(b'{"level": "info", "msg": "starting"}\n' + b"".join(marked(event) for event in STREAM))
    result = runner().invoke(main, ["build", str(log), "--format", "links", "-q"])
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["invocationId"] == "a"


def test_from_log_reads_a_log_without_markers_as_empty(tmp_path: Path) -> None:
    """--from-log says the input is a log: one without marker lines holds no events (a runtime
    with the tail worker not attached), which the summary shows, instead of a JSON error."""
    log = tmp_path / "quiet.log"
    log.write_bytes(b"[ TEST ] gateway\n[ PASS ] gateway\n")
    assert_input_error(runner().invoke(main, ["build", str(log)]), f"{log}:1:", "malformed JSON")
    result = runner().invoke(main, ["build", str(log), "--from-log", "--format", "links"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("0 traces, 0 invocations")


def test_json_lines_quoting_a_marker_stay_json_lines(tmp_path: Path) -> None:
    """Events whose log messages quote a marker are still read as JSON Lines, not as a log."""
    plain = tmp_path / "events.jsonl"
    plain.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in STREAM))
    forest = build_file(str(plain))
    assert forest.stats.events == 3


def test_diff_takes_logs_on_either_side(tmp_path: Path) -> None:
    """`tracetree diff` reads a workerd log as it reads an event stream."""
    log = tmp_path / "workerd.log"
    log.write_bytes(workerd_log(STREAM))
    plain = tmp_path / "events.jsonl"
    plain.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in STREAM))
    result = runner().invoke(main, ["diff", str(plain), str(log)])
    assert result.exit_code == 0, result.stderr
    forced = runner().invoke(main, ["diff", str(log), str(log), "--from-log"])
    assert forced.exit_code == 0, forced.stderr


@pytest.mark.parametrize(
    ("line", "payload"),
    [
        (b'tracetree-event: {"a":1}\n', b'{"a":1}'),
        (b'2026-11-25T04:00:00Z app[web.1]: tracetree-event: {"a":1}\r\n', b'{"a":1}'),
        (b'\x1b[2mtracetree-event: {"a":1}\x1b[0m\n', b'{"a":1}'),
        (b'tracetree-eventual tracetree-event: {"a":1}', b'{"a":1}'),
    ],
)
def test_find_marker_takes_the_json_after_the_marker(line: bytes, payload: bytes) -> None:
    """The marker may follow any prefix; line ends and trailing colour codes are not the JSON's."""
    found = find_marker(line)
    assert found is not None and found.kind == "event" and found.payload == payload


def test_looks_like_log_needs_a_marker_line_that_is_not_json() -> None:
    assert looks_like_log([b"[ TEST ] x\n", b'tracetree-event: {"a": 1}\n'])
    assert looks_like_log([b'[tracetree-tail] tracetree-event: {"a": 1}\n'])  # wrangler's prefix
    assert not looks_like_log([b'["tracetree-event: {}"]\n'])
    assert not looks_like_log([b'{"m": "tracetree-event: {}"}\n'])
    assert not looks_like_log([b"just text\n"])
