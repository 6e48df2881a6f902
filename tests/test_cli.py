"""`tracetree build` end to end, as a user runs it: exit codes, stdout, stderr and files written."""

from __future__ import annotations

import bz2
import gzip
import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from conftest import assert_input_error, ev, runner, write_jsonl

import tracetree
from tracetree.cli import main
from tracetree.links import Resolution

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "tail-worker-test.events.jsonl"
SPAN = "0000000000000001"
TOP = "f00df00df00df00d"
# Wide enough that no line a test looks at is cut at the edge with `…`.
WIDE = {"COLUMNS": "250"}
# Rich's own styling (SGR sequences) on a forced terminal: the only escapes allowed to reach it.
SGR = re.compile("\x1b\\[[0-9;]*m")


def build_cli(*args: Any, input: bytes | None = None, env: dict[str, str] | None = None,
              color: bool = False) -> Result:
    """`tracetree build ARGS...` through click, stdin from `input`."""
    return runner().invoke(
        main, ["build", *map(str, args)], input=input, env={**WIDE, **(env or {})}, color=color,
        prog_name="tracetree",
    )


def python_m(*args: Any, input: bytes | None = None, env: dict[str, str] | None = None,
             cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    """`python -m tracetree ARGS...` in a real process: real pipes, no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "tracetree", *map(str, args)], input=input, capture_output=True,
        env={**os.environ, **WIDE, **(env or {})}, cwd=cwd, timeout=120, check=False,
    )


def fixture_events() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in FIXTURE.read_bytes().splitlines() if line.strip()]


def links_of(stdout: str) -> dict[str, dict[str, Any]]:
    """`--format links` output by invocation id."""
    records = [orjson.loads(line) for line in stdout.splitlines()]
    return {record["invocationId"]: record for record in records}


def invocation_by_method() -> dict[str, str]:
    """Fixture invocation ids by their top-level span's `jsrpc.method` attribute."""
    forest = tracetree.build_file(str(FIXTURE))
    found: dict[str, str] = {}
    for trace in forest.traces:
        for invocation in trace.invocations.values():
            top = invocation.top
            method = top.attributes.get("jsrpc.method") if top is not None else None
            if isinstance(method, str):
                found.setdefault(method, invocation.invocation_id)
    return found


def fetch_onset(inv: str, top: str, *, trigger: str | None = None, trace: str = "t1") -> dict[str, Any]:
    body = {"type": "onset", "spanId": top, "info": {"type": "fetch", "method": "GET", "url": "http://x/"}}
    return ev(inv, 0, body, span=trigger, trace=trace)


def outcome(inv: str, seq: int, top: str, *, trace: str = "t1") -> dict[str, Any]:
    body = {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}
    return ev(inv, seq, body, span=top, trace=trace)


def dispatch_trace(span_name: str) -> list[dict[str, Any]]:
    """A custom invocation opens span 1 named `span_name`; a fetch invocation names span 1 as its caller."""
    return [
        ev("a", 0, {"type": "onset", "spanId": "aaaaaaaaaaaaaaaa", "info": {"type": "custom"}}),
        fetch_onset("b", "bbbbbbbbbbbbbbbb", trigger=SPAN),
        ev("a", 1, {"type": "spanOpen", "name": span_name, "spanId": SPAN}, span="aaaaaaaaaaaaaaaa"),
        outcome("b", 1, "bbbbbbbbbbbbbbbb"),
        ev("a", 2, {"type": "spanClose", "outcome": "ok"}, span=SPAN),
        outcome("a", 3, "aaaaaaaaaaaaaaaa"),
    ]


def orphan_trace() -> list[dict[str, Any]]:
    """A fetch invocation whose onset names a span no invocation of the trace owns."""
    return [
        fetch_onset("a", TOP),
        outcome("a", 1, TOP),
        fetch_onset("b", "bbbbbbbbbbbbbbbb", trigger="00000000000000ff"),
        outcome("b", 1, "bbbbbbbbbbbbbbbb"),
    ]


def logging_trace(message: Any, **extra: Any) -> list[dict[str, Any]]:
    """One fetch invocation that logs `message` from its top-level span."""
    return [
        fetch_onset("a", TOP),
        ev("a", 1, {"type": "log", "level": "info", "message": message, **extra}, span=TOP),
        outcome("a", 2, TOP),
    ]


HOSTILE = (
    "\x1b[31mALERT\x1b[0m "  # recolour the terminal
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ "  # an OSC-8 hyperlink
    "over\rwrite "  # carriage return: overwrite what came before
    "[bold]x[/]"  # rich markup
)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so files are named as a user types them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- formats ------------------------------------------------------------------------------------


def test_tree_format_draws_every_trace() -> None:
    """`--format tree` draws each trace with its invocations, callees under their caller span."""
    result = build_cli(FIXTURE, "--format", "tree")
    assert result.exit_code == 0, result.stderr
    assert "trace 16 · 4 invocations  …2a2a2a4c" in result.stdout
    assert "jsrpc nonFunctionProperty · MyService  ok" in result.stdout
    assert "[causal]  …2a2a2a40" in result.stdout
    assert "trace 27 ·" in result.stdout
    assert "\x1b" not in result.stdout


def test_json_format_is_the_tree_document() -> None:
    """`--format json` writes the canonical document: format 1, every invocation and link counted."""
    result = build_cli(FIXTURE, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = orjson.loads(result.stdout_bytes)
    assert document["format"] == 1
    assert document["summary"]["invocations"] == 50
    assert document["summary"]["traces"] == 27
    assert document["summary"]["links"] == {
        "ambiguous": 0, "causal": 2, "exact": 21, "heuristic": 0, "orphan": 0, "root": 27,
    }
    assert len(document["traces"]) == 27


def test_links_format_has_one_line_per_invocation() -> None:
    """`--format links` writes one JSON line per invocation saying how it was linked."""
    result = build_cli(FIXTURE, "--format", "links")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 50
    methods = invocation_by_method()
    record = links_of(result.stdout)[methods["nonFunctionProperty"]]
    assert set(record) == {"invocationId", "traceId", "parentInvocationId", "parentSpanId", "resolution",
                           "candidates", "reason"}
    assert record["resolution"] == "causal"
    assert record["parentSpanId"] == "0000000000000002"
    assert record["parentInvocationId"] != methods["getCounter"]


def test_links_are_the_same_in_one_process_or_several(monkeypatch: pytest.MonkeyPatch) -> None:
    """`-j N` changes how many processes resolve traces, never the links or the summary."""
    monkeypatch.setattr(importlib.import_module("tracetree.build"), "_PARALLEL_MIN_INVOCATIONS", 0)
    one = build_cli(FIXTURE, "--format", "links", "-j", "1")
    assert one.exit_code == 0, one.stderr
    for jobs in ("2", "3"):
        several = build_cli(FIXTURE, "--format", "links", "--jobs", jobs)
        assert (several.exit_code, several.stdout, several.stderr) == (0, one.stdout, one.stderr)
    assert build_cli(FIXTURE, "--format", "links").stdout == one.stdout
    refused = build_cli(FIXTURE, "--format", "links", "-j", "0")
    assert refused.exit_code == 2 and "-j" in refused.stderr


def test_default_format_is_json_when_stdout_is_not_a_terminal() -> None:
    """Without --format, output to a pipe is the json document."""
    result = build_cli(FIXTURE)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == build_cli(FIXTURE, "--format", "json").stdout_bytes
    assert result.stdout.startswith("{")


def test_default_format_is_json_on_a_real_pipe() -> None:
    """`python -m tracetree build FILE | …` writes the json document and the summary to stderr."""
    proc = python_m("build", FIXTURE)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["format"] == 1
    assert proc.stderr.decode().startswith("27 traces, 50 invocations · links: 27 root, 21 exact, 2 causal")
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt", ["json", "links"])
def test_reader_leaving_early_is_not_an_error(fmt: str) -> None:
    """`tracetree build FILE | head -c 100`: the build exits 0 without a traceback when the reader leaves."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracetree", "build", str(FIXTURE), "--format", fmt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(100)
    proc.stdout.close()
    errors = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0, errors
    assert len(head) == 100
    assert b"Traceback" not in errors
    assert b"BrokenPipe" not in errors


def test_output_option_writes_the_file(in_tmp: Path) -> None:
    """`-o FILE` writes the output to FILE and nothing to stdout."""
    expected = build_cli(FIXTURE, "--format", "json").stdout_bytes
    result = build_cli(FIXTURE, "--format", "json", "-o", "tree.json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert (in_tmp / "tree.json").read_bytes() == expected


@pytest.mark.parametrize("fmt", ["json", "links", "tree", "html"])
def test_an_output_in_a_missing_folder_is_one_line_before_any_work(in_tmp: Path, fmt: str) -> None:
    """`-o` into a folder that does not exist: exit 2, one line naming the file, no traceback."""
    result = build_cli(FIXTURE, "--format", fmt, "-o", "no/such/folder/out")
    assert_input_error(result, "no/such/folder/out:", "cannot write: no folder")


def test_output_option_writes_a_plain_tree(in_tmp: Path) -> None:
    """`--format tree -o FILE` writes the tree as plain text, without terminal escapes."""
    result = build_cli(FIXTURE, "--format", "tree", "--output", "tree.txt", env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    text = (in_tmp / "tree.txt").read_text(encoding="utf-8")
    assert "trace 16 · 4 invocations  …2a2a2a4c" in text
    assert "\x1b" not in text


# -- inputs -------------------------------------------------------------------------------------


def test_dash_reads_stdin() -> None:
    """`-` reads the events from stdin."""
    expected = build_cli(FIXTURE, "--format", "links").stdout
    result = build_cli("-", "--format", "links", input=FIXTURE.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


def test_dash_reads_a_real_stdin() -> None:
    """`cat FILE | python -m tracetree build -` gives the same document as naming the file."""
    piped = python_m("build", "-", "-q", input=FIXTURE.read_bytes())
    named = python_m("build", FIXTURE, "-q")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b""
    assert piped.stdout == named.stdout


def test_gzip_input_is_read_transparently(in_tmp: Path) -> None:
    """A `.jsonl.gz` file builds the same document as the plain file."""
    (in_tmp / "events.jsonl.gz").write_bytes(gzip.compress(FIXTURE.read_bytes()))
    result = build_cli("events.jsonl.gz")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == build_cli(FIXTURE).stdout_bytes


def test_gzip_on_stdin_is_read_transparently() -> None:
    """Gzipped events on stdin are recognised and read."""
    result = build_cli("-", "--format", "links", input=gzip.compress(FIXTURE.read_bytes()))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == build_cli(FIXTURE, "--format", "links").stdout


def test_two_files_merge_in_order(in_tmp: Path) -> None:
    """A capture split in two files (one gzipped) builds the same document as the whole."""
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    (in_tmp / "a.jsonl").write_bytes(b"".join(lines[:173]))
    (in_tmp / "b.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[173:])))
    result = build_cli("a.jsonl", "b.jsonl.gz")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == build_cli(FIXTURE).stdout_bytes
    assert result.stderr.startswith("27 traces, 50 invocations")


@pytest.mark.parametrize("indent", [False, True], ids=["one-line", "pretty"])
def test_json_array_file(in_tmp: Path, indent: bool) -> None:
    """A file holding one JSON array of events builds the same document as the JSON Lines file."""
    option = orjson.OPT_INDENT_2 if indent else 0
    (in_tmp / "events.json").write_bytes(orjson.dumps(fixture_events(), option=option))
    result = build_cli("events.json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == build_cli(FIXTURE).stdout_bytes


# -- resolution options -------------------------------------------------------------------------


def test_naive_reproduces_the_upstream_mislinks() -> None:
    """`--naive` puts nonFunctionProperty under getCounter and testDispose under leak, as upstream did."""
    methods = invocation_by_method()
    naive = build_cli(FIXTURE, "--format", "links", "--naive")
    assert naive.exit_code == 0, naive.stderr
    links = links_of(naive.stdout)
    assert links[methods["nonFunctionProperty"]]["parentInvocationId"] == methods["getCounter"]
    assert links[methods["testDispose"]]["parentInvocationId"] == methods["leak"]
    assert "upstream rule" in links[methods["testDispose"]]["reason"]

    resolved = links_of(build_cli(FIXTURE, "--format", "links").stdout)
    assert resolved[methods["nonFunctionProperty"]]["parentInvocationId"] != methods["getCounter"]
    assert resolved[methods["testDispose"]]["parentInvocationId"] != methods["leak"]


def test_strict_exits_0_when_every_link_is_sure() -> None:
    """`--strict` exits 0 on the fixture, where no link is ambiguous or orphan."""
    result = build_cli(FIXTURE, "--strict", "--format", "links")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 50


def test_strict_exits_1_on_an_orphan(in_tmp: Path) -> None:
    """`--strict` exits 1 when a callee's caller span is owned by nobody, after writing the output."""
    write_jsonl(in_tmp / "orphan.jsonl", orphan_trace())
    result = build_cli("orphan.jsonl", "--strict", "--format", "links")
    assert result.exit_code == 1, result.stderr
    assert links_of(result.stdout)["b"]["resolution"] == "orphan"
    assert "1 orphan" in result.stderr
    assert build_cli("orphan.jsonl", "--format", "links").exit_code == 0


def test_strict_exits_1_on_an_ambiguous_link(in_tmp: Path) -> None:
    """`--strict` exits 1 when a link is ambiguous (a single owner whose span does not fit the trigger)."""
    write_jsonl(in_tmp / "events.jsonl", dispatch_trace("my_dispatch"))
    result = build_cli("events.jsonl", "--strict", "--format", "links")
    assert result.exit_code == 1, result.stderr
    assert links_of(result.stdout)["b"]["resolution"] == "ambiguous"
    assert "1 ambiguous" in result.stderr


def test_explain_beside_links_goes_to_stderr() -> None:
    """`--format links --explain -q` keeps stdout machine-readable and explains each causal link on stderr."""
    result = build_cli(FIXTURE, "--format", "links", "--explain", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(links_of(result.stdout)) == 50
    err = result.stderr
    assert "trace 16  …2a2a2a4c · 1 link to explain" in err
    assert "jsrpc nonFunctionProperty · MyService  …2a2a2a40  [causal]" in err
    assert "why: one candidate left: 1 ruled out by hard constraints" in err
    assert "▶ chosen   custom  …2a2a2a4d  span 0000000000000002 jsRpcCall  score +6" in err
    assert "RPC method matches (nonFunctionProperty)" in err
    # The namesake the upstream rule picks is shown as ruled out, and why.
    assert re.search(r"✗ .*created after the callee", err), err
    assert "27 traces" not in err


def test_explain_with_a_tree_goes_to_stdout() -> None:
    """`--format tree --explain` prints the explanation after the tree, on stdout."""
    result = build_cli(FIXTURE, "--format", "tree", "--explain")
    assert result.exit_code == 0, result.stderr
    assert "trace 17  …2a2a2a59 · 1 link to explain" in result.stdout
    assert "RPC method matches (testDispose)" in result.stdout
    assert result.stdout.index("trace 27 ·") < result.stdout.index("1 link to explain")


def test_dispatch_table_makes_a_custom_span_fit(in_tmp: Path) -> None:
    """`--dispatch-table FILE` teaches a span name: the single owner's link goes from ambiguous to exact."""
    write_jsonl(in_tmp / "events.jsonl", dispatch_trace("my_dispatch"))
    (in_tmp / "table.json").write_text('{"fetch": ["my_dispatch"]}', encoding="utf-8")
    before = build_cli("events.jsonl", "--format", "links")
    after = build_cli("events.jsonl", "--format", "links", "--dispatch-table", "table.json", "--strict")
    assert links_of(before.stdout)["b"]["resolution"] == "ambiguous"
    assert after.exit_code == 0, after.stderr
    link = links_of(after.stdout)["b"]
    assert link["resolution"] == "exact"
    assert (link["parentInvocationId"], link["parentSpanId"]) == ("a", SPAN)


@pytest.mark.parametrize(
    ("content", "where", "fragment"),
    [
        ('{"fetch": [', "table.json:1: ", "malformed JSON"),
        ('{"fetch": "my_dispatch"}', "table.json: ", 'expected {"<trigger type>": ["<span name>", ...]}'),
        ('["fetch"]', "table.json: ", 'expected {"<trigger type>": ["<span name>", ...]}'),
    ],
    ids=["bad-json", "names-not-a-list", "not-an-object"],
)
def test_malformed_dispatch_table_is_a_clear_error(
    in_tmp: Path, content: str, where: str, fragment: str
) -> None:
    """A malformed dispatch table file stops the build with one line naming the file (exit 2)."""
    write_jsonl(in_tmp / "events.jsonl", dispatch_trace("my_dispatch"))
    (in_tmp / "table.json").write_text(content, encoding="utf-8")
    result = build_cli("events.jsonl", "--dispatch-table", "table.json")
    assert_input_error(result, where, fragment)


def test_missing_dispatch_table_is_a_usage_error(in_tmp: Path) -> None:
    """A dispatch table file that does not exist is a usage error naming the option (exit 2)."""
    write_jsonl(in_tmp / "events.jsonl", dispatch_trace("my_dispatch"))
    result = build_cli("events.jsonl", "--dispatch-table", "nope.json")
    assert result.exit_code == 2
    assert "Invalid value for '--dispatch-table': File 'nope.json' does not exist." in result.stderr


# -- summary ------------------------------------------------------------------------------------


def test_summary_on_stderr() -> None:
    """The summary line goes to stderr: traces, invocations and links by label."""
    result = build_cli(FIXTURE, "--format", "links")
    assert result.stderr == (
        "27 traces, 50 invocations · links: 27 root, 21 exact, 2 causal · 0 duplicates"
        " · 0 lines skipped · 0 with events missing\n"
    )
    assert "27 traces" not in result.stdout


def test_quiet_silences_the_summary() -> None:
    """`-q` leaves stderr empty."""
    for flag in ("-q", "--quiet"):
        result = build_cli(FIXTURE, "--format", "links", flag)
        assert result.exit_code == 0
        assert result.stderr == ""
        assert len(result.stdout.splitlines()) == 50


# -- bad input ----------------------------------------------------------------------------------


def good_lines(count: int = 2) -> bytes:
    return b"".join(FIXTURE.read_bytes().splitlines(keepends=True)[:count])


def test_malformed_json_line(in_tmp: Path) -> None:
    """A malformed JSON line stops the build: exit 2, one line naming file and line."""
    (in_tmp / "bad.jsonl").write_bytes(good_lines() + b'{"invocationId": \n' + good_lines(1))
    assert_input_error(build_cli("bad.jsonl"), "bad.jsonl:3:", "malformed JSON")


def test_truncated_last_line(in_tmp: Path) -> None:
    """A last line cut off mid-event (a capture still being written) names its line."""
    third = FIXTURE.read_bytes().splitlines()[2]
    (in_tmp / "cut.jsonl").write_bytes(good_lines() + third[:50])
    assert_input_error(build_cli("cut.jsonl"), "cut.jsonl:3:", "malformed JSON")


def test_line_that_is_a_number(in_tmp: Path) -> None:
    """A line holding a JSON number, not an event object, is named with what was found, in JSON's words."""
    (in_tmp / "num.jsonl").write_bytes(good_lines() + b"42\n")
    assert_input_error(build_cli("num.jsonl"), "num.jsonl:3: expected a TailEvent object, found a number")


def test_event_missing_invocation_id(in_tmp: Path) -> None:
    """An event without invocationId names the line and the field."""
    event = {"spanContext": {"traceId": "t"}, "sequence": 0, "event": {"type": "log"}}
    (in_tmp / "noinv.jsonl").write_bytes(good_lines() + orjson.dumps(event) + b"\n")
    assert_input_error(build_cli("noinv.jsonl"), "noinv.jsonl:3: invocationId must be a string",
                       "missing")


def test_sequence_of_the_wrong_type(in_tmp: Path) -> None:
    """A `sequence` that is a string names the line, the field and the value found."""
    event = {"invocationId": "x", "spanContext": {"traceId": "t"}, "sequence": "3", "event": {"type": "log"}}
    (in_tmp / "seq.jsonl").write_bytes(good_lines() + orjson.dumps(event) + b"\n")
    assert_input_error(build_cli("seq.jsonl"), "seq.jsonl:3: sequence must be a non-negative integer, found",
                       "3")


def test_span_open_without_parent(in_tmp: Path) -> None:
    """A spanOpen with no spanContext.spanId (its parent span) names the line and what is missing."""
    event = ev("x", 1, {"type": "spanOpen", "name": "fetch", "spanId": SPAN})
    (in_tmp / "open.jsonl").write_bytes(good_lines() + orjson.dumps(event) + b"\n")
    assert_input_error(build_cli("open.jsonl"), "open.jsonl:3: spanOpen spanContext.spanId (the parent span)",
                       "missing")


def test_missing_file(in_tmp: Path) -> None:
    """A file that does not exist is named, with the reason."""
    assert_input_error(build_cli("nope.jsonl"), "nope.jsonl: cannot read: No such file or directory")


def test_file_name_with_an_escape_is_escaped(in_tmp: Path) -> None:
    """A missing file whose name holds ESC is named in the error with `\\x1b`, never a raw escape."""
    line = assert_input_error(build_cli("\x1b[2Jnope.jsonl"), "\\x1b[2Jnope.jsonl: cannot read")
    assert "No such file or directory" in line


def test_missing_file_among_several(in_tmp: Path) -> None:
    """When one of several inputs is missing, the error names that one."""
    result = build_cli(FIXTURE, "nope.jsonl")
    assert_input_error(result, "nope.jsonl: cannot read")


def damaged_gzip(how: str) -> bytes:
    data = bytearray(gzip.compress(FIXTURE.read_bytes()))
    if how == "truncated":
        return bytes(data[:200])
    if how == "garbage-after-magic":
        return b"\x1f\x8bgarbage after the magic number"
    if how == "flipped-bytes":
        for index in range(100, 400):
            data[index] ^= 0x55
        return bytes(data)
    data[-6] ^= 0xFF  # bad-crc
    return bytes(data)


@pytest.mark.parametrize("how", ["truncated", "garbage-after-magic", "flipped-bytes", "bad-crc"])
def test_damaged_gzip(in_tmp: Path, how: str) -> None:
    """A `.gz` that starts like gzip but cannot be decompressed is one error line saying the gzip is bad."""
    (in_tmp / "events.jsonl.gz").write_bytes(damaged_gzip(how))
    line = assert_input_error(build_cli("events.jsonl.gz", "--format", "links"), "events.jsonl.gz")
    assert "gzip" in line, line


def test_non_gzip_gz(in_tmp: Path) -> None:
    """A `.gz` holding something else (bzip2 here) is an input error saying it is not gzip."""
    (in_tmp / "events.jsonl.gz").write_bytes(bz2.compress(FIXTURE.read_bytes()))
    assert_input_error(build_cli("events.jsonl.gz"), "events.jsonl.gz: not a gzip file")


def test_unknown_keep_field_is_a_usage_error() -> None:
    """`--keep` of a field that is not normalized is a usage error (exit 2) listing the normalized fields."""
    result = build_cli(FIXTURE, "--keep", "nosuchfield")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error: --keep 'nosuchfield': not a normalized field (normalized: " in result.stderr
    assert "timestamp" in result.stderr
    assert "Traceback" not in result.stderr


def test_keep_a_normalized_field() -> None:
    """`--keep timestamp` leaves the timestamps as received in the json document."""
    result = build_cli(FIXTURE, "--keep", "timestamp")
    assert result.exit_code == 0, result.stderr
    assert "2026-11-25T00:46:26.409Z" in result.stdout
    assert "2026-11-25T00:46:26.409Z" not in build_cli(FIXTURE).stdout


def test_error_quoting_an_escape_is_escaped(in_tmp: Path) -> None:
    """An error quoting an id that holds ESC shows it as `\\x1b`, so the message cannot drive the terminal."""
    evil = "evil\x1b]0;pwned\x07\x1b[2J"
    write_jsonl(in_tmp / "evil.jsonl", [
        ev(evil, 0, {"type": "onset", "spanId": TOP, "info": {"type": "custom"}}, trace="t1"),
        ev(evil, 1, {"type": "log", "level": "info", "message": ["hi"]}, span=TOP, trace="t2"),
    ])
    line = assert_input_error(build_cli("evil.jsonl"), "evil.jsonl:2: invocation ")
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J changes traceId from t1 to t2" in line


def test_lenient_skips_bad_lines(in_tmp: Path) -> None:
    """`--lenient` skips bad lines, exits 0, and the summary counts them and quotes the first."""
    noinv = {"spanContext": {"traceId": "t"}, "sequence": 0, "event": {"type": "log"}}
    (in_tmp / "bad.jsonl").write_bytes(
        FIXTURE.read_bytes() + b'{"invocationId": \n' + b"42\n" + orjson.dumps(noinv) + b"\n"
    )
    result = build_cli("bad.jsonl", "--lenient")
    assert result.exit_code == 0, result.stderr
    first, note = result.stderr.splitlines()
    assert "27 traces, 50 invocations" in first
    assert "3 lines skipped" in first
    assert note.startswith("skipped: bad.jsonl:347:")
    assert note.endswith("(and 2 more lines)")
    assert orjson.loads(result.stdout_bytes)["summary"]["skipped"] == 3


def test_lenient_one_skipped_line(in_tmp: Path) -> None:
    """With one bad line, `--lenient` says `1 line skipped` and quotes it."""
    (in_tmp / "bad.jsonl").write_bytes(good_lines() + b'{"invocationId": \n')
    result = build_cli("bad.jsonl", "--lenient", "--format", "links")
    assert result.exit_code == 0, result.stderr
    assert "· 1 line skipped ·" in result.stderr
    assert "skipped: bad.jsonl:3:" in result.stderr
    assert "malformed JSON" in result.stderr


def test_error_in_a_real_process_is_one_line() -> None:
    """In a real process a malformed line gives exit 2 and exactly one stderr line, no traceback."""
    proc = python_m("build", "-", input=good_lines() + b"{oops\n")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [proc.stderr.decode().strip()]
    assert proc.stderr.startswith(b"error: -:3:")
    assert b"malformed JSON" in proc.stderr


# -- what events hold ---------------------------------------------------------------------------


def test_unknown_event_types_are_carried_to_json(in_tmp: Path) -> None:
    """An event type tracetree does not know, and its fields, appear in the json document."""
    events = logging_trace(["hello"])
    events.insert(2, ev("a", 2, {"type": "futureThing", "payload": {"zz": 41}}, span=TOP))
    events[-1] = outcome("a", 3, TOP)
    write_jsonl(in_tmp / "events.jsonl", events)
    result = build_cli("events.jsonl", "--format", "json")
    assert result.exit_code == 0, result.stderr
    span_events = orjson.loads(result.stdout_bytes)["traces"][0]["roots"][0]["span"]["events"]
    assert {"type": "futureThing", "payload": {"zz": 41}} in [item["event"] for item in span_events]
    tree = build_cli("events.jsonl", "--format", "tree")
    assert "futureThing" in tree.stdout


@pytest.mark.parametrize(
    ("env", "color"),
    [({}, False), ({}, True), ({"FORCE_COLOR": "1"}, True), ({"TTY_COMPATIBLE": "1"}, False),
     ({"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}, True)],
    ids=["plain", "click-color", "FORCE_COLOR", "TTY_COMPATIBLE", "both"],
)
def test_hostile_log_is_shown_escaped(in_tmp: Path, env: dict[str, str], color: bool) -> None:
    """A log holding ESC sequences, an OSC-8 link, `\\r` and rich markup is shown as text, escaped."""
    write_jsonl(in_tmp / "events.jsonl", logging_trace([HOSTILE]))
    result = build_cli("events.jsonl", "--format", "tree", env=env, color=color)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\\x1b[31mALERT\\x1b[0m" in out
    assert "\\x1b]8;;http://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\" in out
    assert "over\\rwrite" in out
    assert "[bold]x[/]" in out
    assert "\r" not in out
    assert "\x1b]" not in out
    assert "\x1b[31mALERT" not in out
    # Rich may style the tree on a forced terminal; nothing else may be an escape.
    assert "\x1b" not in SGR.sub("", out)
    if not env:
        assert "\x1b" not in out


def test_hostile_log_in_a_real_process_with_forced_colour(tmp_path: Path) -> None:
    """With FORCE_COLOR=1 in a real process, a hostile log still reaches stdout only as visible escapes."""
    write_jsonl(tmp_path / "events.jsonl", logging_trace(HOSTILE, truncated=True))
    proc = python_m("build", tmp_path / "events.jsonl", "--format", "tree", "-q",
                    env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert "\\x1b[31mALERT" in out
    assert "[bold]x[/]" in out
    assert "\r" not in out
    assert "\x1b" not in SGR.sub("", out)


def test_huge_log_line(in_tmp: Path) -> None:
    """A 300 KB log message is read whole into the document and clipped to one line in the tree."""
    message = "ab" * 150_000
    write_jsonl(in_tmp / "big.jsonl", logging_trace(message, truncated=True))
    assert (in_tmp / "big.jsonl").stat().st_size > 300_000
    result = build_cli("big.jsonl", "--format", "json")
    assert result.exit_code == 0, result.stderr
    span_events = orjson.loads(result.stdout_bytes)["traces"][0]["roots"][0]["span"]["events"]
    assert [item["event"]["message"] for item in span_events if item["event"]["type"] == "log"] == [message]
    tree = build_cli("big.jsonl", "--format", "tree")
    assert tree.exit_code == 0, tree.stderr
    assert len(tree.stdout) < 5_000
    (log_line,) = [line for line in tree.stdout.splitlines() if "abab" in line]
    assert "info" in log_line
    assert log_line.endswith("…")


# -- help and version ---------------------------------------------------------------------------


def test_build_help_shows_examples_and_every_label() -> None:
    """`build --help` shows the examples and every resolution label with its meaning."""
    result = runner().invoke(main, ["build", "--help"], prog_name="tracetree", env=WIDE)
    assert result.exit_code == 0
    out = result.stdout
    assert "Examples:" in out
    assert "tracetree build fixtures/tail-worker-test.events.jsonl" in out
    assert "tracetree build events.jsonl --format links" in out
    assert "Every link carries a resolution label:" in out
    for label in Resolution:
        assert re.search(rf"^\s+{label.value}\s+\S", out, re.MULTILINE), label.value
    assert "Exit codes: 0 built; 1 --strict" in out


def test_short_help_flag() -> None:
    """`-h` is the same as `--help`."""
    long = runner().invoke(main, ["build", "--help"], prog_name="tracetree", env=WIDE)
    short = runner().invoke(main, ["build", "-h"], prog_name="tracetree", env=WIDE)
    assert short.exit_code == 0
    assert short.stdout == long.stdout


def test_version() -> None:
    """`tracetree --version` prints the installed version."""
    result = runner().invoke(main, ["--version"], prog_name="tracetree")
    assert result.exit_code == 0
    assert result.stdout == f"tracetree, version {importlib.metadata.version('tracetree')}\n"


def test_version_in_a_real_process() -> None:
    """`python -m tracetree --version` prints the version and exits 0."""
    proc = python_m("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip().endswith(f"version {importlib.metadata.version('tracetree')}")


def test_build_without_inputs_is_a_usage_error() -> None:
    """`tracetree build` with no input is a usage error (exit 2) naming the missing argument."""
    result = runner().invoke(main, ["build"], prog_name="tracetree")
    assert result.exit_code == 2
    assert "Missing argument 'INPUTS...'" in result.stderr


def test_partial_capture_caps_sequential_links() -> None:
    """`--partial` labels no link through a sequential span id exact or causal; random ids stay exact."""
    default = [orjson.loads(line)
               for line in build_cli(FIXTURE, "--format", "links", "-q").stdout.splitlines()]
    partial = [orjson.loads(line) for line in
               build_cli(FIXTURE, "--format", "links", "-q", "--partial").stdout.splitlines()]
    sequential = {row["invocationId"] for row in default
                  if row["parentSpanId"] and row["parentSpanId"].startswith("00000000")}
    assert {row["resolution"] for row in default if row["invocationId"] in sequential} == {"exact", "causal"}
    assert {row["resolution"] for row in partial if row["invocationId"] in sequential} == {"heuristic"}
    assert [row["parentInvocationId"] for row in partial] == [row["parentInvocationId"] for row in default]
    hibernation = [row for row in partial if row["parentSpanId"] and row["invocationId"] not in sequential]
    assert hibernation and {row["resolution"] for row in hibernation} == {"exact"}


def test_shape_format_round_trips_through_diff(tmp_path: Path) -> None:
    """`build --format shape` writes {key, children} that `diff` finds equal to the stream it came from."""
    shape = tmp_path / "shape.json"
    result = build_cli(FIXTURE, "--format", "shape", "-q", "-o", str(shape))
    assert result.exit_code == 0, result.stderr
    written = orjson.loads(shape.read_bytes())
    assert written[0]["key"] == "custom" and written[0]["children"][0]["key"] == "fetch POST /body-length"
    compared = CliRunner().invoke(main, ["diff", str(shape), str(FIXTURE), "-q"])
    assert compared.exit_code == 0, compared.output


def test_keys_without_shape_format_is_a_usage_error() -> None:
    """`--keys` only names invocations of a shape: with another format it is a usage error (exit 2)."""
    result = build_cli(FIXTURE, "--format", "links", "--keys", "keys.json")
    assert result.exit_code == 2
    assert "--keys names invocations in a shape" in result.stderr
