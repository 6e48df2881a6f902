"""`tracetree diff` end to end, as a user runs it: exit codes, the report in each format, errors."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from conftest import assert_input_error, ev, runner, write_jsonl

from tracetree.cli import main
from tracetree.diff import Change, ChangeKind, Level
from tracetree.render.diff import render_diff_github, render_diff_markdown

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "tail-worker-test.events.jsonl"
TOP = "f00df00df00df00d"
WIDE = {"COLUMNS": "250"}
SGR = re.compile("\x1b\\[[0-9;]*m")
# The two links the upstream helper's rule gets wrong in the fixture, as the report words them.
MOVED_NON_FUNCTION = (
    "moved: jsrpc nonFunctionProperty (MyService) — was under custom › jsRpcCall#3 › "
    "jsrpc getCounter (MyService) › jsRpcCall#2, now under custom › jsRpcCall#1"
)
MOVED_TEST_DISPOSE = (
    "moved: jsrpc testDispose (MyService) — was under custom (disposal) › jsRpcCall#4 › "
    "jsrpc leak (MyService) › jsRpcCall#2, now under custom (disposal) › jsRpcCall#1"
)


def cli(command: str, *args: Any, input: bytes | None = None, env: dict[str, str] | None = None,
        color: bool = False) -> Result:
    """`tracetree COMMAND ARGS...` through click, stdin from `input`."""
    return runner().invoke(main, [command, *map(str, args)], input=input, env={**WIDE, **(env or {})},
                           color=color, prog_name="tracetree")


def diff_cli(*args: Any, **kwargs: Any) -> Result:
    return cli("diff", *args, **kwargs)


def build_document(target: Path, *args: Any) -> Path:
    """`tracetree build ARGS --format json -o TARGET`: a tree document written by the CLI."""
    result = cli("build", *args, "--format", "json", "-q", "-o", target)
    assert result.exit_code == 0, result.stderr
    return target


def fetch_trace(*events: dict[str, Any]) -> list[dict[str, Any]]:
    """One fetch invocation `a` whose top-level span holds `events` (numbered from sequence 1)."""
    onset = ev("a", 0, {"type": "onset", "spanId": TOP,
                        "info": {"type": "fetch", "method": "GET", "url": "http://x/"}})
    body = [ev("a", seq, event, span=TOP) for seq, event in enumerate(events, start=1)]
    closing = ev("a", len(events) + 1, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0},
                 span=TOP)
    return [onset, *body, closing]


def attribute(name: str, value: Any) -> dict[str, Any]:
    return {"type": "attributes", "info": [{"name": name, "value": value}]}


def log(message: str) -> dict[str, Any]:
    return {"type": "log", "level": "info", "message": [message]}


def document_of(tmp: Path, name: str, events: list[dict[str, Any]]) -> Path:
    """The tree document of `events`, built by the CLI into tmp/NAME.json."""
    return build_document(tmp / f"{name}.json", write_jsonl(tmp / f"{name}.jsonl", events))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so files are named as a user types them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def fixture_docs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(naive, default): the fixture built by the upstream helper's rule and by tracetree's."""
    folder = tmp_path_factory.mktemp("docs")
    naive = build_document(folder / "naive.json", FIXTURE, "--naive")
    default = build_document(folder / "default.json", FIXTURE)
    return naive, default


@pytest.fixture
def naive_and_default(fixture_docs: tuple[Path, Path], in_tmp: Path) -> tuple[str, str]:
    """The two fixture documents, copied into the working folder and named as a user types them."""
    for path in fixture_docs:
        (in_tmp / path.name).write_bytes(path.read_bytes())
    return "naive.json", "default.json"


def json_report(result: Result) -> dict[str, Any]:
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    report: dict[str, Any] = orjson.loads(result.stdout_bytes)
    return report


# -- exit codes and what is compared ------------------------------------------------------------


def test_identical_documents_exit_0_with_one_line(naive_and_default: tuple[str, str]) -> None:
    """Two identical documents exit 0, and the report is one line saying so."""
    result = diff_cli("default.json", "default.json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "no differences between default.json and default.json\n"


def test_naive_against_default_is_two_moves(naive_and_default: tuple[str, str]) -> None:
    """The upstream rule's two wrong links in the fixture are reported as two moves, and nothing else."""
    result = diff_cli(*naive_and_default, "--format", "json")
    assert result.exit_code == 1, result.stderr
    report = json_report(result)
    kinds = [change["kind"] for change in report["changes"]]
    assert kinds == ["invocation-moved", "invocation-moved"]
    paths = [change["path"] for change in report["changes"]]
    assert paths[0].endswith("› jsrpc nonFunctionProperty (MyService)"), paths
    assert paths[1].endswith("› jsrpc testDispose (MyService)"), paths
    assert report["counts"]["invocation-moved"] == 2
    assert sum(report["counts"].values()) == 2


def test_a_raw_event_stream_is_built_first(naive_and_default: tuple[str, str]) -> None:
    """A .jsonl side is built as `build` builds it: it equals its own document, and differs from naive."""
    assert diff_cli("default.json", FIXTURE).exit_code == 0
    result = diff_cli("naive.json", FIXTURE, "--format", "json", "-q")
    assert [change["kind"] for change in json_report(result)["changes"]] == ["invocation-moved"] * 2


def test_stdin_and_gzip_sides(naive_and_default: tuple[str, str], in_tmp: Path) -> None:
    """`-` reads a side from stdin, and a gzipped document is read like a plain one."""
    result = diff_cli("default.json", "-", input=FIXTURE.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "no differences between default.json and stdin\n"
    (in_tmp / "default.json.gz").write_bytes(gzip.compress((in_tmp / "default.json").read_bytes()))
    assert diff_cli("default.json.gz", FIXTURE).exit_code == 0


def test_document_on_stdin(naive_and_default: tuple[str, str], in_tmp: Path) -> None:
    """A tree document piped on stdin is read as a document, not as events."""
    result = diff_cli("-", "default.json", "--format", "json", input=(in_tmp / "naive.json").read_bytes())
    assert [change["kind"] for change in json_report(result)["changes"]] == ["invocation-moved"] * 2


def test_level_invocation_hides_attribute_changes(in_tmp: Path) -> None:
    """An attribute change counts at the default level, and not at `--level invocation`."""
    old = document_of(in_tmp, "old", fetch_trace(attribute("http.x", "old")))
    new = document_of(in_tmp, "new", fetch_trace(attribute("http.x", "new")))
    full = diff_cli(old, new)
    assert full.exit_code == 1
    assert "    attribute http.x changed: old → new" in full.stdout.splitlines()
    narrow = diff_cli(old, new, "--level", "invocation")
    assert narrow.exit_code == 0, narrow.stdout
    assert narrow.stdout.startswith("no differences")


def test_ignore_glob_hides_attribute_changes(in_tmp: Path) -> None:
    """`--ignore 'attributes.*'` drops attribute changes, and only them."""
    old = document_of(in_tmp, "old", fetch_trace(attribute("http.x", "old"), log("a")))
    new = document_of(in_tmp, "new", fetch_trace(attribute("http.x", "new"), log("b")))
    result = diff_cli(old, new, "--ignore", "attributes.*", "--format", "json")
    assert result.exit_code == 1
    changes = json_report(result)["changes"]
    assert [(change["kind"], change["field"]) for change in changes] == [("event-changed", "logs")]
    both = diff_cli(old, new, "--ignore", "attributes.*", "--ignore", "logs")
    assert both.exit_code == 0, both.stdout


def test_different_resolvers_are_noted(naive_and_default: tuple[str, str]) -> None:
    """When the sides were linked by different resolvers, stderr says resolutions were not compared."""
    result = diff_cli(*naive_and_default)
    assert ("note: naive.json was linked by the naive resolver and default.json by the evidence one: "
            "link resolutions not compared") in result.stderr.splitlines()
    assert diff_cli(*naive_and_default, "-q").stderr == ""


# -- formats ------------------------------------------------------------------------------------


def test_text_report_groups_by_trace_and_place(naive_and_default: tuple[str, str]) -> None:
    """The text report names both files, groups each move under its trace and place, and counts."""
    result = diff_cli(*naive_and_default, "-q")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "naive.json → default.json",
        "",
        "trace 16",
        "  custom › jsRpcCall#1",
        f"    {MOVED_NON_FUNCTION}",
        "",
        "trace 17",
        "  custom (disposal) › jsRpcCall#1",
        f"    {MOVED_TEST_DISPOSE}",
        "",
        "2 changes: 2 invocation-moved",
    ]
    assert "\x1b" not in result.stdout


def test_text_lines_are_not_cut_in_a_pipe(naive_and_default: tuple[str, str]) -> None:
    """Off a terminal, a long line is written whole, however narrow the console thinks it is."""
    result = diff_cli(*naive_and_default, "-q", env={"COLUMNS": "40"})
    assert f"    {MOVED_NON_FUNCTION}" in result.stdout.splitlines()


def test_text_report_says_what_changed(in_tmp: Path) -> None:
    """Attributes read `old → new`, a removed one says what it was, a log change shows both messages."""
    old = document_of(in_tmp, "old", fetch_trace(attribute("http.x", "old"), attribute("gone", 42),
                                                 log("hello")))
    new = document_of(in_tmp, "new", fetch_trace(attribute("http.x", "new"), attribute("http.y", ""),
                                                 log("bye")))
    lines = diff_cli(old, new, "-q").stdout.splitlines()
    assert lines[2:] == [
        "trace 1",
        "  fetch GET /",
        '    attribute http.y added: ""',
        "    attribute gone removed (was 42)",
        "    attribute http.x changed: old → new",
        "    log changed: [info] hello → [info] bye",
        "",
        "4 changes: 1 attribute-added, 1 attribute-removed, 1 attribute-changed, 1 event-changed",
    ]


def test_long_values_are_cut_where_they_differ(in_tmp: Path) -> None:
    """Two long log lines that differ at their end are both cut to show the end, not an equal start."""
    old = document_of(in_tmp, "old", fetch_trace(log("x" * 5000 + " END-OLD")))
    new = document_of(in_tmp, "new", fetch_trace(log("x" * 5000 + " END-NEW")))
    lines = [line for line in diff_cli(old, new, "-q").stdout.splitlines() if "log changed" in line]
    assert len(lines) == 1
    before, after = lines[0].split("log changed: ")[1].split(" → ")
    assert before.startswith("…x") and before.endswith("x END-OLD")
    assert after.startswith("…x") and after.endswith("x END-NEW")
    assert len(lines[0]) < 500


def test_json_report_shape(naive_and_default: tuple[str, str]) -> None:
    """--format json is one object: format, both names, level, ignore, summary, counts, changes."""
    report = json_report(diff_cli(*naive_and_default, "--format", "json", "--ignore", "outcome"))
    assert list(report) == ["format", "expected", "actual", "level", "ignore", "summary", "counts", "changes"]
    assert report["format"] == "tracetree-diff/1"
    assert (report["expected"], report["actual"]) == naive_and_default
    assert (report["level"], report["ignore"]) == ("full", ["outcome"])
    assert report["summary"] == "2 changes: 2 invocation-moved"
    assert list(report["counts"]) == [kind.value for kind in ChangeKind]
    assert report["changes"][0] == {
        "kind": "invocation-moved",
        "path": "trace 16 › custom › jsRpcCall#1 › jsrpc nonFunctionProperty (MyService)",
        "field": "invocation",
        "before": "trace 16 › custom › jsRpcCall#3 › jsrpc getCounter (MyService) › jsRpcCall#2",
        "after": "trace 16 › custom › jsRpcCall#1",
    }


def test_github_format_is_one_error_per_change(naive_and_default: tuple[str, str]) -> None:
    """--format github writes one `::error title=…::…` command per change, `:` escaped in the title."""
    result = diff_cli(*naive_and_default, "--format", "github", "-q")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::error title=tracetree diff%3A invocation-moved::trace 16 › custom › jsRpcCall#1: "
        f"{MOVED_NON_FUNCTION}",
        "::error title=tracetree diff%3A invocation-moved::trace 17 › custom (disposal) › jsRpcCall#1: "
        f"{MOVED_TEST_DISPOSE}",
    ]


def test_github_escapes_percent_newlines_colons_and_commas() -> None:
    """GitHub's escapes: `%`, CR and LF in the message; also `:` and `,` in properties."""
    change = Change("trace 1 › fetch GET /", ChangeKind.ATTRIBUTE_CHANGED, "attributes.a:b,c", "50%", "x\ny")
    line = render_diff_github([change])
    assert line.count("\n") == 1 and line.endswith("\n")
    assert line == ("::error title=tracetree diff%3A attribute-changed::trace 1 › fetch GET /: "
                    "attribute a:b,c changed: 50%25 → x\\ny\n")
    odd = Change("trace 1 › x", ChangeKind.SPAN_RENAMED, "span", "a\rb", "c%d")
    assert render_diff_github([odd]) == (
        "::error title=tracetree diff%3A span-renamed::trace 1 › x: renamed: span a\\rb → c%25d\n")


def test_markdown_format_has_a_summary_and_a_table(naive_and_default: tuple[str, str]) -> None:
    """--format markdown writes a summary line, then a table with one row per change."""
    result = diff_cli(*naive_and_default, "--format", "markdown", "-q")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "**tracetree diff** naive.json → default.json: 2 changes (2 invocation-moved)"
    assert lines[2:4] == ["| where | change |", "| --- | --- |"]
    moved = MOVED_NON_FUNCTION.removeprefix("moved: ")
    assert lines[4] == f"| trace 16 › custom › jsRpcCall#1 | **moved:** {moved} |"
    assert len(lines) == 6


def test_markdown_escapes_pipes_backticks_and_tags() -> None:
    """Untrusted text cannot break the table, open a code span or emphasis, or form an HTML tag."""
    change = Change("trace 1 › a|b", ChangeKind.OUTCOME_CHANGED, "outcome", "`ok`", "<img src=x> *x* \\|")
    text = render_diff_markdown([change], expected_name="e|`.json", actual_name="<b>.json")
    assert text.splitlines()[0].startswith("**tracetree diff** e\\|\\`.json → &lt;b&gt;.json: 1 change")
    assert text.splitlines()[-1] == (
        "| trace 1 › a\\|b | **outcome changed:** \\`ok\\` → &lt;img src=x&gt; \\*x\\* \\\\\\| |")


@pytest.mark.parametrize(("fmt", "expected"), [
    ("text", "no differences between default.json and default.json\n"),
    ("github", "tracetree diff: no differences\n"),
    ("markdown", "**tracetree diff**: no differences between default.json and default.json\n"),
])
def test_no_differences_is_one_line_in_each_format(naive_and_default: tuple[str, str], fmt: str,
                                                   expected: str) -> None:
    """With nothing to report, each format says so in one line."""
    result = diff_cli("default.json", "default.json", "--format", fmt, "-q")
    assert result.exit_code == 0
    assert result.stdout == expected


def test_no_differences_in_json(naive_and_default: tuple[str, str]) -> None:
    """With nothing to report, the JSON report has no changes, zero counts and a one-line summary."""
    report = json_report(diff_cli("default.json", "default.json", "--format", "json"))
    assert report["changes"] == []
    assert set(report["counts"].values()) == {0}
    assert report["summary"] == "no differences between default.json and default.json"


def test_output_option_writes_the_file(naive_and_default: tuple[str, str], in_tmp: Path) -> None:
    """`-o FILE` writes the report there (plain text, even with colour forced), the count to stderr."""
    expected = diff_cli(*naive_and_default, "-q").stdout
    result = diff_cli(*naive_and_default, "-o", "report.txt", env={"FORCE_COLOR": "1"})
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "2 changes: 2 invocation-moved"
    assert (in_tmp / "report.txt").read_text(encoding="utf-8") == expected
    json_out = diff_cli(*naive_and_default, "--format", "json", "-o", "report.json", "-q")
    assert json_out.stdout == ""
    assert orjson.loads((in_tmp / "report.json").read_bytes())["counts"]["invocation-moved"] == 2


# -- untrusted text -----------------------------------------------------------------------------

HOSTILE = "\x1b[31mALERT\x1b[0m \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ over\rwrite [bold]x[/]"


@pytest.mark.parametrize(("env", "color"), [({}, False), ({"FORCE_COLOR": "1"}, True)],
                         ids=["plain", "FORCE_COLOR"])
def test_hostile_log_change_is_shown_escaped(in_tmp: Path, env: dict[str, str], color: bool) -> None:
    """A changed log holding ESC sequences and rich markup is shown as visible escapes and literal text."""
    old = document_of(in_tmp, "old", fetch_trace(log("hello")))
    new = document_of(in_tmp, "new", fetch_trace(log(HOSTILE)))
    result = diff_cli(old, new, env=env, color=color)
    assert result.exit_code == 1
    out = SGR.sub("", result.stdout)  # rich's own styling, on a forced terminal
    assert ("log changed: [info] hello → [info] \\x1b[31mALERT\\x1b[0m "
            "\\x1b]8;;http://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\ over\\rwrite [bold]x[/]") in out
    assert "\x1b" not in out
    assert "\r" not in result.stdout
    for fmt in ("github", "markdown", "json"):
        assert "\x1b" not in diff_cli(old, new, "--format", fmt).stdout


# -- bad input ----------------------------------------------------------------------------------


def test_missing_file_is_one_line(naive_and_default: tuple[str, str]) -> None:
    """An unreadable side exits 2 with one line naming it."""
    assert_input_error(diff_cli("default.json", "nope.json"), "nope.json: cannot read")


def test_wrong_document_version_is_one_line(naive_and_default: tuple[str, str], in_tmp: Path) -> None:
    """A document of another format version exits 2 with one line saying which versions."""
    text = (in_tmp / "default.json").read_text(encoding="utf-8").replace('"format": 1', '"format": 9', 1)
    (in_tmp / "v9.json").write_text(text, encoding="utf-8")
    assert_input_error(diff_cli("v9.json", "default.json"), "v9.json: document format 9 is not supported")


def test_document_without_format_is_one_line(in_tmp: Path) -> None:
    """An object with `traces` but no `format` is refused as a document, not misread as events."""
    (in_tmp / "old.json").write_bytes(orjson.dumps({"traces": []}))
    assert_input_error(diff_cli("old.json", "old.json"), 'old.json: not a tracetree document: no "format"')


def test_truncated_json_names_where_it_breaks(naive_and_default: tuple[str, str], in_tmp: Path) -> None:
    """A document cut short exits 2 with the line where the JSON ends, not `line 1`."""
    lines = (in_tmp / "default.json").read_text(encoding="utf-8").splitlines()[:30]
    (in_tmp / "cut.json").write_text("\n".join(lines), encoding="utf-8")
    assert_input_error(diff_cli("default.json", "cut.json"), "cut.json:30: malformed JSON")


def test_malformed_event_line_is_one_line(naive_and_default: tuple[str, str], in_tmp: Path) -> None:
    """A bad line in an event stream exits 2 naming file and line, as build does."""
    (in_tmp / "bad.jsonl").write_bytes(FIXTURE.read_bytes().splitlines()[0] + b"\n{nope\n")
    assert_input_error(diff_cli("default.json", "bad.jsonl"), "bad.jsonl:2:", "malformed JSON")


def test_malformed_stdin_names_stdin(naive_and_default: tuple[str, str]) -> None:
    """A bad line on stdin is reported against `-`, not a temporary file."""
    assert_input_error(diff_cli("default.json", "-", input=b'{"a": 1}\n{nope\n'), "-:2:", "malformed JSON")


def test_a_report_into_a_missing_folder_is_one_line(naive_and_default: tuple[str, str]) -> None:
    """`-o` into a folder that does not exist: exit 2 before comparing, one line, no traceback."""
    naive, default = naive_and_default
    assert_input_error(diff_cli(naive, default, "-o", "no/such/report.txt"), "no/such/report.txt:",
                       "cannot write: no folder")


def test_both_sides_on_stdin_is_a_usage_error() -> None:
    """Only one side can come from stdin."""
    result = diff_cli("-", "-")
    assert result.exit_code == 2
    assert "cannot both be stdin" in result.stderr


# -- shapes -------------------------------------------------------------------------------------


def test_shape_side_compares_by_key(in_tmp: Path) -> None:
    """A `{key, children}` shape compares with a document by key (the invocation's label by default)."""
    doc = document_of(in_tmp, "doc", fetch_trace())
    (in_tmp / "same.json").write_bytes(orjson.dumps([{"key": "fetch GET /", "children": []}]))
    assert diff_cli("same.json", doc).exit_code == 0
    (in_tmp / "more.json").write_bytes(orjson.dumps([{"key": "fetch GET /", "children": [
        {"key": "jsrpc getCounter", "children": []}]}]))
    result = diff_cli("more.json", doc, "--format", "json")
    assert [change["kind"] for change in json_report(result)["changes"]] == ["invocation-removed"]


def test_shape_picks_one_of_several_named_shapes(in_tmp: Path) -> None:
    """`--shape NAME` compares the named shape of a file holding several; without it, exit 2 says
    which names there are and how to pick one."""
    doc = document_of(in_tmp, "doc", fetch_trace())
    (in_tmp / "shapes.json").write_bytes(orjson.dumps({
        "flat": [{"key": "fetch GET /", "children": []}],
        "nested": [{"key": "fetch GET /", "children": [{"key": "jsrpc getCounter", "children": []}]}]}))
    assert diff_cli("shapes.json", doc, "--shape", "flat").exit_code == 0
    result = diff_cli("shapes.json", doc, "--shape", "nested", "--format", "json")
    assert [change["kind"] for change in json_report(result)["changes"]] == ["invocation-removed"]
    assert_input_error(diff_cli("shapes.json", doc), "shapes.json:", "holds several shapes (flat, nested): "
                       "name the one to use (tracetree diff --shape NAME)")
    assert_input_error(diff_cli("shapes.json", doc, "--shape", "deep"), "shapes.json:",
                       "no shape named 'deep' (the file has: flat, nested)")


def test_keys_without_a_shape_is_noted(in_tmp: Path) -> None:
    """`--keys` with no shape on either side changes nothing, and stderr says it was ignored."""
    doc = document_of(in_tmp, "doc", fetch_trace())
    (in_tmp / "keys.json").write_bytes(orjson.dumps({"x": {"info.type": "fetch"}}))
    result = diff_cli(doc, doc, "--keys", "keys.json")
    assert result.exit_code == 0
    assert "note: --keys is used only when a side is a shape: ignored" in result.stderr


# -- help ---------------------------------------------------------------------------------------


def test_help_teaches_kinds_levels_and_exit_codes() -> None:
    """`diff --help` shows examples, every change kind, every level and the exit codes."""
    result = runner().invoke(main, ["diff", "--help"], env={"COLUMNS": "200"}, prog_name="tracetree")
    assert result.exit_code == 0
    text = result.stdout
    assert "tracetree diff expected.json events.jsonl" in text
    for kind in ChangeKind:
        assert re.search(rf"^\s+{re.escape(kind.value)}\s", text, re.MULTILINE), kind
    assert f"[{'|'.join(level.value for level in Level)}]" in text
    assert "Exit codes: 0 no differences; 1 differences; 2 bad input." in text


def test_keys_name_the_documents_invocations_for_a_shape(in_tmp: Path) -> None:
    """With `--keys`, a shape's key names the invocation its rule recognises; without, labels are used."""
    doc = document_of(in_tmp, "doc", fetch_trace())
    (in_tmp / "shape.json").write_bytes(orjson.dumps([{"key": "entry", "children": []}]))
    (in_tmp / "keys.json").write_bytes(orjson.dumps({"entry": {"info.type": "fetch"}}))
    assert diff_cli("shape.json", doc, "--keys", "keys.json").exit_code == 0
    assert diff_cli("shape.json", doc).exit_code == 1
