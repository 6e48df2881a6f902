"""Reading TailEvents from files: JSON Lines, gzip, JSON arrays, stdin, and what goes wrong."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import orjson
import pytest
from conftest import ev, write_jsonl

from tracetree.build import build_file
from tracetree.errors import InputError
from tracetree.events import ReadStats, read_events


def values(paths, **kwargs):
    return [(value, Path(path).name if path != "-" else path, line)
            for value, path, line in read_events([str(p) for p in paths], **kwargs)]


def onset(invocation: str, seq: int = 0, **kwargs):
    """An onset whose top-level span id is the invocation id repeated (a random-looking 64-bit id)."""
    return ev(invocation, seq, {"type": "onset", "spanId": (invocation * 16)[:16], "info": {"type": "fetch"}},
              **kwargs)


def test_jsonl_yields_each_line_with_its_number(tmp_path):
    """Each line of a JSON Lines file is one value, reported with its file and 1-based line."""
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    assert values([path]) == [({"n": 1}, "a.jsonl", 1), ({"n": 2}, "a.jsonl", 2), ({"n": 3}, "a.jsonl", 3)]


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    """Blank and whitespace-only lines are skipped without shifting the line numbers of later values."""
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\n{"n": 1}\n   \n\r\n{"n": 2}\n\n')
    assert values([path]) == [({"n": 1}, "a.jsonl", 2), ({"n": 2}, "a.jsonl", 5)]


def test_gzip_file_reads_like_plain(tmp_path):
    """A `.jsonl.gz` file gives the same values as the uncompressed file."""
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b'{"n": 1}\n{"n": 2}\n')
    packed = tmp_path / "a.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert [(v, line) for v, _, line in values([packed])] == [(v, line) for v, _, line in values([plain])]
    assert [v for v, _, _ in values([packed])] == [{"n": 1}, {"n": 2}]


def test_gzip_stream_builds_the_same_forest(tmp_path):
    """Building from a gzipped stream gives the same invocations and links as the plain stream."""
    events = [onset("a"), onset("b", span="aaaaaaaaaaaaaaaa")]
    plain = write_jsonl(tmp_path / "s.jsonl", events)
    packed = tmp_path / "s.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = build_file(str(plain)), build_file(str(packed))
    assert {k: (link.parent_invocation_id, str(link.resolution)) for k, link in a.links.items()} == {
        k: (link.parent_invocation_id, str(link.resolution)) for k, link in b.links.items()
    } == {"a": (None, "root"), "b": ("a", "exact")}


def test_json_array_file_yields_its_elements(tmp_path):
    """A file holding one JSON array yields its elements in order, numbered from 1."""
    path = tmp_path / "a.json"
    path.write_bytes(b'[\n{"n": 1},\n{"n": 2}\n]\n')
    assert [(v, line) for v, _, line in values([path])] == [({"n": 1}, 1), ({"n": 2}, 2)]


def test_json_array_of_events_builds_a_forest(tmp_path):
    """A JSON-array file of TailEvents builds the same links as the same events as JSON Lines."""
    path = tmp_path / "a.json"
    path.write_bytes(orjson.dumps([onset("a"), onset("b", span="aaaaaaaaaaaaaaaa")]))
    links = build_file(str(path)).links
    assert (links["b"].parent_invocation_id, str(links["b"].resolution)) == ("a", "exact")


def test_truncated_json_array_is_an_error_naming_the_file(tmp_path):
    """A JSON-array file cut off before its closing bracket is an InputError naming the file and line."""
    path = tmp_path / "a.json"
    path.write_bytes(b'[1, 2')
    with pytest.raises(InputError) as caught:
        list(read_events([str(path)]))
    assert str(caught.value).startswith(f"{path}:1")


def test_several_files_are_read_in_the_order_given(tmp_path):
    """Several files are read one after the other, in the order given, each line naming its own file."""
    first = tmp_path / "b.jsonl"
    first.write_bytes(b'{"n": 1}\n{"n": 2}\n')
    second = tmp_path / "a.jsonl"
    second.write_bytes(b'{"n": 3}\n')
    assert values([first, second]) == [({"n": 1}, "b.jsonl", 1), ({"n": 2}, "b.jsonl", 2),
                                       ({"n": 3}, "a.jsonl", 1)]


def test_events_split_across_files_join_into_one_trace(tmp_path):
    """An invocation's events split across two files join into one invocation of one trace."""
    one = write_jsonl(tmp_path / "1.jsonl", [onset("a")])
    two = write_jsonl(tmp_path / "2.jsonl", [
        ev("a", 1, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
           span="aaaaaaaaaaaaaaaa"),
    ])
    forest = build_file([str(one), str(two)])
    [trace] = forest.traces
    assert trace.invocations["a"].outcome == {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_dash_reads_stdin(monkeypatch):
    """The path `-` reads the events from standard input and names it `-` in results."""
    monkeypatch.setattr(sys, "stdin", _Stdin(b'{"n": 1}\n\n{"n": 2}\n'))
    assert values(["-"]) == [({"n": 1}, "-", 1), ({"n": 2}, "-", 3)]


def test_dash_reads_gzip_from_stdin(monkeypatch):
    """Gzipped data piped to `-` is recognised and decompressed."""
    monkeypatch.setattr(sys, "stdin", _Stdin(gzip.compress(b'{"n": 1}\n')))
    assert values(["-"]) == [({"n": 1}, "-", 1)]


def test_malformed_line_names_file_line_and_column(tmp_path):
    """A malformed line raises InputError whose message names the file, the line and the column."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": ]\n{"n": 4}\n')
    with pytest.raises(InputError) as caught:
        list(read_events([str(path)]))
    error = caught.value
    assert (error.path, error.line) == (str(path), 3)
    assert isinstance(error.column, int) and error.column >= 1
    assert str(error).startswith(f"{path}:3:{error.column}: ")
    assert "malformed JSON" in str(error)


def test_malformed_line_in_a_large_file_names_the_right_line(tmp_path):
    """In a file of thousands of lines, a malformed line is still reported at its own line."""
    path = tmp_path / "big.jsonl"
    lines = [b'{"n": %d}' % n for n in range(10_000)]
    lines[6_543] = b'{"n": 6543'
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(InputError) as caught:
        list(read_events([str(path)]))
    assert caught.value.line == 6_544


def test_malformed_line_in_build_file_names_file_and_line(tmp_path):
    """build_file reports a malformed line with the file and line, not a traceback from the parser."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(orjson.dumps(onset("a")) + b"\nnot json\n")
    with pytest.raises(InputError, match=rf"^{path}:2:\d+: malformed JSON"):
        build_file(str(path))


def test_lenient_mode_skips_and_counts_bad_lines(tmp_path):
    """In lenient mode malformed lines are skipped, counted, and the good lines around them still read."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"n": 1}\n{oops\n{"n": 3}\n[1,\n{"n": 5}\n')
    stats = ReadStats()
    assert [(v, line) for v, _, line in values([path], lenient=True, stats=stats)] == [
        ({"n": 1}, 1), ({"n": 3}, 3), ({"n": 5}, 5)]
    assert stats.skipped == 2
    assert [error.line for error in stats.skipped_examples or []] == [2, 4]


def test_lenient_build_file_reports_skipped_lines(tmp_path):
    """build_file in lenient mode builds from the good lines and reports how many were skipped."""
    path = tmp_path / "bad.jsonl"
    callee = onset("b", span="aaaaaaaaaaaaaaaa")
    path.write_bytes(orjson.dumps(onset("a")) + b"\n{broken\n" + orjson.dumps(callee))
    forest = build_file(str(path), lenient=True)
    assert forest.stats.skipped == 1
    assert forest.links["b"].parent_invocation_id == "a"


def test_byte_order_mark_is_ignored(tmp_path):
    """A UTF-8 byte order mark at the start of a file is ignored, for JSON Lines and JSON arrays."""
    lines = tmp_path / "bom.jsonl"
    lines.write_bytes(b'\xef\xbb\xbf{"n": 1}\n{"n": 2}\n')
    array = tmp_path / "bom.json"
    array.write_bytes(b'\xef\xbb\xbf[{"n": 1}]')
    assert [(v, line) for v, _, line in values([lines])] == [({"n": 1}, 1), ({"n": 2}, 2)]
    assert [v for v, _, _ in values([array])] == [{"n": 1}]


def test_truncated_last_line_is_an_error_naming_it(tmp_path):
    """A last line cut off mid-event (a capture stopped while writing) is an error naming that line."""
    path = tmp_path / "cut.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3, "event": {"ty')
    with pytest.raises(InputError) as caught:
        list(read_events([str(path)]))
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3:")


def test_truncated_last_line_is_skipped_in_lenient_mode(tmp_path):
    """In lenient mode a truncated last line is skipped and counted; every complete line is kept."""
    path = tmp_path / "cut.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3, "event": {"ty')
    stats = ReadStats()
    assert [v for v, _, _ in values([path], lenient=True, stats=stats)] == [{"n": 1}, {"n": 2}]
    assert stats.skipped == 1


def test_missing_file_is_an_input_error_naming_it(tmp_path):
    """A file that does not exist is an InputError naming the file, not an OSError traceback."""
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(InputError, match=rf"^{path}: cannot read"):
        list(read_events([str(path)]))
