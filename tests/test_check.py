"""`tracetree check`, `review` and `init` end to end, as a user runs them in a fixture folder."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from conftest import assert_input_error, ev, runner, write_jsonl

import tracetree
from tracetree import check as check_module
from tracetree.check import Status, atomic_write, check_folder, in_ci
from tracetree.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
TOP = "f00df00df00df00d"
CALLEE = "b0b0b0b0b0b0b0b0"
WIDE = {"COLUMNS": "250"}


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI runs this suite with CI set; each test says for itself whether it is in CI."""
    monkeypatch.delenv("CI", raising=False)


def cli(*args: Any, input: bytes | str | None = None, env: dict[str, str] | None = None) -> Result:
    return runner().invoke(main, [*map(str, args)], input=input, env={**WIDE, **(env or {})},
                           prog_name="tracetree")


def fetch_stream(message: str = "hello", *, url: str = "http://x/") -> list[dict[str, Any]]:
    """A fetch invocation that logs `message`, and the jsrpc invocation its span called."""
    return [
        ev("a", 0, {"type": "onset", "spanId": TOP, "info": {"type": "fetch", "method": "GET", "url": url}}),
        ev("a", 1, {"type": "spanOpen", "name": "jsRpcCall", "spanId": "0000000000000001"}, span=TOP),
        ev("b", 0, {"type": "onset", "spanId": "b0b0b0b0b0b0b0b0", "entrypoint": "Svc",
                    "info": {"type": "jsrpc"}}, span="0000000000000001"),
        ev("b", 1, {"type": "log", "level": "log", "message": [message]}, span=CALLEE),
        ev("b", 2, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=CALLEE),
        ev("a", 2, {"type": "spanClose", "outcome": "ok"}, span="0000000000000001"),
        ev("a", 3, {"type": "outcome", "outcome": "ok", "cpuTime": 0, "wallTime": 0}, span=TOP),
    ]


def built_bytes(stream: Path) -> bytes:
    """What `tracetree build STREAM --format json` writes."""
    result = runner().invoke(main, ["build", str(stream), "--format", "json", "-q"])
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def files(folder: Path) -> list[str]:
    """Every file below `folder`, hidden ones too, as relative paths."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A fixture folder with two accepted fixtures, `alpha` and `beta`."""
    root = tmp_path / "fixtures"
    root.mkdir()
    for name, message in (("alpha", "hello"), ("beta", "bonjour")):
        stream = write_jsonl(root / f"{name}.events.jsonl", fetch_stream(message))
        (root / f"{name}.tree.json").write_bytes(built_bytes(stream))
    return root


# -- the whole cycle ------------------------------------------------------------------------------


def test_update_cycle_end_to_end(folder: Path) -> None:
    """Change a stream: check fails; --update writes a proposal and still fails, leaving the accepted
    tree alone; review --accept-all promotes it; check passes, on the bytes `build` writes."""
    assert cli("check", folder).exit_code == 0
    accepted = (folder / "alpha.tree.json").read_bytes()

    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("hello, world"))
    failed = cli("check", folder)
    assert failed.exit_code == 1, failed.stderr
    assert "✗ alpha  1 change\n" in failed.stdout
    assert "✓ beta\n" in failed.stdout
    assert "log changed: hello → hello, world" in failed.stdout
    assert not (folder / "alpha.tree.json.new").exists()

    updated = cli("check", folder, "--update")
    assert updated.exit_code == 1, "a run that writes a proposal still fails"
    assert "proposal written to alpha.tree.json.new" in updated.stdout
    assert (folder / "alpha.tree.json").read_bytes() == accepted, "the accepted tree is never written"
    assert (folder / "alpha.tree.json.new").read_bytes() == built_bytes(folder / "alpha.events.jsonl")
    assert not (folder / "beta.tree.json.new").exists()

    again = cli("check", folder)
    assert again.exit_code == 1, "the proposal is not accepted until reviewed"
    assert "alpha.tree.json.new awaits `tracetree review" in again.stdout

    reviewed = cli("review", folder, "--accept-all")
    assert reviewed.exit_code == 0, reviewed.stderr
    assert f"accepted {folder / 'alpha.tree.json'}" in reviewed.stdout
    assert "1 accepted, 0 rejected, 0 skipped" in reviewed.stdout
    assert not (folder / "alpha.tree.json.new").exists()
    assert (folder / "alpha.tree.json").read_bytes() == built_bytes(folder / "alpha.events.jsonl")

    passed = cli("check", folder)
    assert passed.exit_code == 0, passed.stdout
    assert "✓ alpha\n✓ beta\n" in passed.stdout
    assert "ok: 2 fixtures checked" in passed.stdout


def test_reject_all_deletes_proposals_and_keeps_the_accepted_tree(folder: Path) -> None:
    """review --reject-all deletes every proposal; the accepted tree stays, so check still fails."""
    accepted = (folder / "alpha.tree.json").read_bytes()
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    assert cli("check", folder, "--update").exit_code == 1
    result = cli("review", folder, "--reject-all")
    assert result.exit_code == 0
    assert "rejected alpha: alpha.tree.json.new deleted" in result.stdout
    assert files(folder) == ["alpha.events.jsonl", "alpha.tree.json", "beta.events.jsonl", "beta.tree.json"]
    assert (folder / "alpha.tree.json").read_bytes() == accepted
    assert cli("check", folder).exit_code == 1


def test_review_answers_from_stdin_and_end_of_input_quits(folder: Path) -> None:
    """review asks per proposal (a diff, then a question); answers can be piped; end of input
    leaves the rest pending and exits 1."""
    for name in ("alpha", "beta"):
        write_jsonl(folder / f"{name}.events.jsonl", fetch_stream(f"{name} changed"))
    assert cli("check", folder, "--update").exit_code == 1
    result = cli("review", folder, input="s\n")
    assert result.exit_code == 1
    assert "[1/2] alpha" in result.stdout
    assert "log changed: hello → alpha changed" in result.stdout
    assert "skipped alpha" in result.stdout
    assert "0 accepted, 0 rejected, 2 skipped" in result.stdout
    assert (folder / "alpha.tree.json.new").exists() and (folder / "beta.tree.json.new").exists()


def test_review_with_nothing_pending_says_so(folder: Path) -> None:
    result = cli("review", folder)
    assert result.exit_code == 0
    assert result.stdout == f"no proposals to review in {folder}\n"


def test_review_accept_all_and_reject_all_together_is_a_usage_error(folder: Path) -> None:
    assert cli("review", folder, "--accept-all", "--reject-all").exit_code == 2


def test_check_trees_are_exactly_what_build_writes(tmp_path: Path) -> None:
    """A proposal (and so an accepted tree) is byte for byte `tracetree build --format json`."""
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(FIXTURES / "tail-worker-test.events.jsonl", folder / "capture.events.jsonl")
    assert cli("check", folder, "--update").exit_code == 1
    expected = built_bytes(FIXTURES / "tail-worker-test.events.jsonl")
    assert (folder / "capture.tree.json.new").read_bytes() == expected


# -- missing, orphan, pending ------------------------------------------------------------------


def test_a_stream_without_a_tree_fails_and_says_how_to_create_it(folder: Path) -> None:
    write_jsonl(folder / "gamma.events.jsonl", fetch_stream())
    result = cli("check", folder)
    assert result.exit_code == 1
    assert (f"✗ gamma  no expected tree gamma.tree.json · create it with `tracetree check {folder} "
            f"--update -k gamma`, then `tracetree review {folder}`") in result.stdout
    assert "missing" in result.stdout and "FAILED: 1 of 3 fixtures" in result.stdout


def test_several_missing_trees_get_one_hint_at_the_end(folder: Path) -> None:
    (folder / "sub").mkdir()
    write_jsonl(folder / "gamma.events.jsonl", fetch_stream())
    write_jsonl(folder / "sub" / "delta.events.jsonl", fetch_stream())
    result = cli("check", folder)
    assert result.exit_code == 1
    assert "✗ gamma  no expected tree gamma.tree.json\n" in result.stdout
    assert "✗ sub/delta  no expected tree sub/delta.tree.json\n" in result.stdout
    assert (f"FAILED: 2 of 4 fixtures · create the 2 missing trees with `tracetree check {folder} --update`, "
            f"then `tracetree review {folder}`") in result.stdout


def test_a_new_fixture_is_reviewed_against_nothing(folder: Path) -> None:
    """A proposal for a new fixture shows what it holds, as invocations added to an empty tree."""
    write_jsonl(folder / "gamma.events.jsonl", fetch_stream())
    assert cli("check", folder, "--update", "-k", "gamma").exit_code == 1
    result = cli("review", folder, input="a\n")
    assert result.exit_code == 0, result.stdout
    assert "[1/1] gamma  new fixture: no accepted tree yet" in result.stdout
    assert "(nothing) → " in result.stdout
    assert "added: invocation fetch GET / (and 1 invocation below it)" in result.stdout
    assert (folder / "gamma.tree.json").exists()
    assert cli("check", folder).exit_code == 0


def test_an_orphan_is_reported_and_pruned_only_on_a_full_run(folder: Path) -> None:
    """A tree without a stream is reported (not failed); --prune removes it, its proposal too, and
    refuses to run with -k."""
    (folder / "beta.events.jsonl").unlink()
    (folder / "beta.tree.json.new").write_bytes((folder / "beta.tree.json").read_bytes())
    result = cli("check", folder)
    assert result.exit_code == 0, result.stdout
    assert (f"! beta  orphan: beta.tree.json has no stream (`tracetree check {folder} --prune` removes it)"
            in result.stdout)
    assert "orphan" in result.stdout and "1 orphan reported" in result.stdout

    refused = cli("check", folder, "--prune", "-k", "beta")
    assert_input_error(refused, "--prune removes orphans only on a full run")
    assert (folder / "beta.tree.json").exists()

    pruned = cli("check", folder, "--prune")
    assert pruned.exit_code == 0
    assert "- beta  orphan removed (--prune)" in pruned.stdout
    assert files(folder) == ["alpha.events.jsonl", "alpha.tree.json"]


def test_a_stale_proposal_fails_a_matching_fixture_until_update_removes_it(folder: Path) -> None:
    (folder / "alpha.tree.json.new").write_bytes(b"{}")
    result = cli("check", folder)
    assert result.exit_code == 1
    assert "✗ alpha  matches, but a proposal awaits review" in result.stdout
    updated = cli("check", folder, "--update")
    assert updated.exit_code == 0, updated.stdout
    assert "stale alpha.tree.json.new removed" in updated.stdout
    assert not (folder / "alpha.tree.json.new").exists()


def test_a_proposal_the_stream_has_moved_past_is_called_out_of_date(folder: Path) -> None:
    """A proposal written for an older version of the stream is flagged, so nobody accepts it."""
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("first change"))
    assert cli("check", folder, "--update").exit_code == 1
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("second change"))
    result = cli("check", folder)
    assert result.exit_code == 1
    assert (f"✗ alpha  1 change · alpha.tree.json.new is out of date (the stream changed since): write it "
            f"again with `tracetree check {folder} --update -k alpha`") in result.stdout
    assert cli("check", folder, "--update").exit_code == 1
    assert "alpha.tree.json.new awaits" in cli("check", folder).stdout


def test_review_of_a_proposal_that_is_not_a_document_is_one_error_line(folder: Path) -> None:
    (folder / "alpha.tree.json.new").write_text("[1, 2]")
    assert_input_error(cli("review", folder, "--accept-all"), str(folder / "alpha.tree.json.new"),
                       "not a tracetree document")
    assert (folder / "alpha.tree.json.new").exists()


def test_review_shows_only_numbers_from_a_hand_edited_summary(folder: Path) -> None:
    document = orjson.loads((folder / "alpha.tree.json").read_bytes())
    document["summary"] = {"traces": "\x1b[2Jmany", "invocations": 2, "links": {"root\x1b[31m": 1, "x": "y"}}
    (folder / "alpha.tree.json.new").write_bytes(orjson.dumps(document))
    result = cli("review", folder, input="s\n")
    assert result.exit_code == 1
    assert "proposed tree: 2 invocations · links: 1 root\\x1b[31m\n" in result.stdout
    assert "\x1b" not in result.stdout


# -- CI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_update_refuses_in_ci_unless_forced(folder: Path, value: str) -> None:
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    refused = cli("check", folder, "--update", env={"CI": value})
    assert_input_error(refused, "--update refuses to write in CI", "--force")
    assert not (folder / "alpha.tree.json.new").exists()
    forced = cli("check", folder, "--update", "--force", env={"CI": value})
    assert forced.exit_code == 1
    assert (folder / "alpha.tree.json.new").exists()


def test_prune_refuses_in_ci_unless_forced(folder: Path) -> None:
    (folder / "beta.events.jsonl").unlink()
    assert_input_error(cli("check", folder, "--prune", env={"CI": "true"}), "--prune refuses to write in CI")
    assert (folder / "beta.tree.json").exists()
    assert cli("check", folder, "--prune", "--force", env={"CI": "true"}).exit_code == 0
    assert not (folder / "beta.tree.json").exists()


def test_ci_values_that_mean_not_ci() -> None:
    assert not in_ci({})
    assert not in_ci({"CI": ""}) and not in_ci({"CI": "false"}) and not in_ci({"CI": "0"})
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"})


def test_check_without_update_runs_in_ci(folder: Path) -> None:
    assert cli("check", folder, env={"CI": "true"}).exit_code == 0


# -- atomic writes -------------------------------------------------------------------------------


def test_an_interrupted_write_leaves_the_old_file_and_no_half_file(tmp_path: Path) -> None:
    """A write that fails halfway (the process interrupted between chunks) leaves the old file whole
    and no temporary file behind."""
    target = tmp_path / "case.tree.json.new"
    target.write_bytes(b"old proposal\n")

    def chunks() -> Iterator[bytes]:
        yield b"first half of the new "
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, chunks())
    assert target.read_bytes() == b"old proposal\n"
    assert files(tmp_path) == ["case.tree.json.new"]

    absent = tmp_path / "new.tree.json.new"
    with pytest.raises(KeyboardInterrupt):
        atomic_write(absent, chunks())
    assert not absent.exists()
    assert files(tmp_path) == ["case.tree.json.new"]


def test_a_full_disk_during_update_is_one_error_line_and_no_half_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename never happens when the disk fills: the old proposal stays, nothing half-written
    is left, and check exits 2 naming the file."""
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    (folder / "alpha.tree.json.new").write_bytes(b"an older proposal\n")
    before = files(folder)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(check_module.os, "fsync", full)
    result = cli("check", folder, "--update")
    assert_input_error(result, f"{folder / 'alpha.tree.json.new'}: cannot write: No space left on device")
    assert files(folder) == before
    assert (folder / "alpha.tree.json.new").read_bytes() == b"an older proposal\n"


def test_ctrl_c_is_one_line_and_exit_130(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(check_module, "build_actual", interrupted)
    result = cli("check", folder, "--update")
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted: files already written are whole; nothing is half written\n"
    assert files(folder) == ["alpha.events.jsonl", "alpha.tree.json", "beta.events.jsonl", "beta.tree.json"]


def test_written_files_get_ordinary_permissions(folder: Path) -> None:
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    assert cli("check", folder, "--update").exit_code == 1
    mode = (folder / "alpha.tree.json.new").stat().st_mode & 0o777
    assert mode == (folder / "alpha.events.jsonl").stat().st_mode & 0o777


# -- reports ------------------------------------------------------------------------------------


def test_junit_report_parses_with_a_testcase_per_fixture(folder: Path) -> None:
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    write_jsonl(folder / "gamma.events.jsonl", fetch_stream())
    (folder / "broken.events.jsonl").write_text('{"invocationId": \n')
    (folder / "delta.tree.json").write_bytes((folder / "beta.tree.json").read_bytes())
    report = folder.parent / "report.xml"
    result = cli("check", folder, "--junit", report)
    assert result.exit_code == 2, "an unreadable stream is bad input"

    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert {key: suite.get(key) for key in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "5", "failures": "2", "errors": "1", "skipped": "1"}
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert sorted(cases) == ["alpha", "beta", "broken", "delta", "gamma"]
    failure = cases["alpha"].find("failure")
    assert failure is not None and failure.get("message") == "1 change"
    assert "log changed: hello → changed" in (failure.text or "")
    assert list(cases["beta"]) == []
    assert cases["gamma"].find("failure").get("type") == "missing"  # type: ignore[union-attr]
    error = cases["broken"].find("error")
    assert error is not None and f"{folder / 'broken.events.jsonl'}:1:" in (error.text or "")
    assert cases["delta"].find("skipped") is not None
    assert cases["alpha"].get("file") == str(folder / "alpha.events.jsonl")


def test_an_unreadable_stream_is_reported_with_the_others_and_exits_2(folder: Path) -> None:
    (folder / "broken.events.jsonl").write_text("not json\n")
    result = cli("check", folder)
    assert result.exit_code == 2
    assert "✓ alpha" in result.stdout and "✓ beta" in result.stdout
    assert f"✗ broken  error: {folder / 'broken.events.jsonl'}:1:" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {folder / 'broken.events.jsonl'}:1:")


def test_an_accepted_tree_that_is_not_a_document_is_bad_input(folder: Path) -> None:
    (folder / "alpha.tree.json").write_text('{"format": 1, "traces": [\n')
    result = cli("check", folder)
    assert result.exit_code == 2
    assert f"error: {folder / 'alpha.tree.json'}:2: malformed JSON" in result.stderr


def test_github_format_annotates_the_files_of_failing_fixtures(folder: Path) -> None:
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    write_jsonl(folder / "gamma.events.jsonl", fetch_stream())
    result = cli("check", folder, "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"::error file={folder / 'alpha.tree.json'},title=tracetree check alpha%3A "
                               "event-changed::")
    assert lines[0].endswith("log changed: hello → changed")
    assert lines[1].startswith(f"::error file={folder / 'gamma.events.jsonl'},title=tracetree check gamma::"
                               "no expected tree gamma.tree.json")
    assert lines[-1] == "FAILED: 2 of 3 fixtures"


def test_github_format_points_at_the_line_of_bad_input_and_warns_of_orphans(folder: Path) -> None:
    (folder / "broken.events.jsonl").write_text('{"invocationId": "a"}\n{oops\n')
    (folder / "beta.events.jsonl").unlink()
    result = cli("check", folder, "--format", "github")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"::warning file={folder / 'beta.tree.json'},title=tracetree check beta::"
                               "orphan: beta.tree.json has no stream")
    assert lines[1].startswith(f"::error file={folder / 'broken.events.jsonl'},line=2,"
                               "title=tracetree check broken::malformed JSON")
    assert lines[-1] == "FAILED: 1 of 3 fixtures"


def test_names_from_the_file_system_are_shown_safely(tmp_path: Path) -> None:
    """A fixture named with terminal escapes (a pull request can name a file anything) is shown
    escaped in every output, and the JUnit XML stays well formed."""
    folder = tmp_path / "f"
    folder.mkdir()
    write_jsonl(folder / "evil\x1b]0;owned\x07[red].events.jsonl", fetch_stream())
    report = tmp_path / "r.xml"
    for fmt in ("text", "github"):
        result = cli("check", folder, "--format", fmt, "--junit", report)
        assert result.exit_code == 1
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "evil\\x1b]0;owned\\x07[red]" in result.stdout
    name = ET.parse(report).getroot().find("testsuite/testcase").get("name")  # type: ignore[union-attr]
    assert name == "evil\\x1b]0;owned\\x07[red]"


def test_k_selects_by_part_of_a_name_or_a_glob(folder: Path) -> None:
    assert [r.name for r in check_folder(folder, select=["lph"]).results] == ["alpha"]
    assert [r.name for r in check_folder(folder, select=["*ta"]).results] == ["beta"]
    assert [r.name for r in check_folder(folder, select=["alpha", "beta"]).results] == ["alpha", "beta"]
    result = cli("check", folder, "-k", "nothing")
    assert result.exit_code == 2  # a typo in CI must not pass
    assert "no fixture name matches -k nothing" in result.stdout
    assert "FAILED: no fixture checked" in result.stdout


def test_an_empty_folder_checks_nothing_and_fails(tmp_path: Path) -> None:
    """A folder with no fixture (a wrong path in a CI job) exits 2 and says what a fixture is."""
    result = cli("check", tmp_path)
    assert result.exit_code == 2
    assert "no fixtures in" in result.stdout and "NAME.events.jsonl beside NAME.tree.json" in result.stdout


def test_fixtures_in_subfolders_and_gzip_streams(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    data = b"".join(orjson.dumps(event) + b"\n" for event in fetch_stream())
    (folder / "sub" / "zipped.events.jsonl.gz").write_bytes(gzip.compress(data))
    assert cli("check", folder, "--update").exit_code == 1
    assert (folder / "sub" / "zipped.tree.json.new").exists()
    assert cli("review", folder, "--accept-all").exit_code == 0
    result = cli("check", folder)
    assert result.exit_code == 0 and "✓ sub/zipped" in result.stdout


def test_two_streams_for_one_name_is_bad_input(folder: Path) -> None:
    shutil.copy(folder / "alpha.events.jsonl", folder / "alpha.events.jsonl.gz")
    assert_input_error(cli("check", folder), str(folder / "alpha.events.jsonl"), "two streams")


def test_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    assert_input_error(cli("check", tmp_path / "nope"), str(tmp_path / "nope"), "no such folder")
    assert_input_error(cli("review", tmp_path / "nope"), str(tmp_path / "nope"), "no such folder")


def test_library_report(folder: Path) -> None:
    """tracetree.check_folder returns a CheckReport: results by fixture, counts, the exit code."""
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    report = tracetree.check_folder(folder)
    assert isinstance(report, tracetree.CheckReport)
    assert [(r.name, r.status) for r in report.results] == [("alpha", Status.FAILED), ("beta", Status.PASSED)]
    assert [change.kind.value for change in report.results[0].changes] == ["event-changed"]
    assert report.exit_code == 1 and not report.ok
    assert report.counts()[Status.FAILED] == 1


# -- configuration -------------------------------------------------------------------------------


def test_folder_options_decide_what_counts(folder: Path) -> None:
    """`ignore` in tracetree.toml hides log changes; a per-fixture override brings them back."""
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    write_jsonl(folder / "beta.events.jsonl", fetch_stream("changed too"))
    (folder / "tracetree.toml").write_text('ignore = ["logs"]\n\n[fixtures.beta]\nignore = []\n')
    report = check_folder(folder)
    assert [(r.name, r.status, len(r.changes)) for r in report.results] == \
        [("alpha", Status.PASSED, 0), ("beta", Status.FAILED, 1)]


def test_options_from_pyproject(tmp_path: Path, folder: Path) -> None:
    """Without tracetree.toml, [tool.tracetree] of the nearest pyproject.toml applies; globs name fixtures."""
    write_jsonl(folder / "alpha.events.jsonl", fetch_stream("changed"))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.tracetree]\nlevel = "span"\n\n'
                                             '[tool.tracetree.fixtures."b*"]\nstrict = true\n')
    report = check_folder(folder)
    assert report.config.path == tmp_path / "pyproject.toml"
    assert report.results[0].status is Status.PASSED
    assert report.config.options_for("beta").strict and not report.config.options_for("alpha").strict


def test_strict_fails_a_fixture_with_ambiguous_links(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(FIXTURES / "topology-501-d2-f2.events.jsonl", folder / "topo.events.jsonl")
    shutil.copy(FIXTURES / "topology-501-d2-f2.tree.json", folder / "topo.tree.json")
    assert cli("check", folder).exit_code == 0
    (folder / "tracetree.toml").write_text("strict = true\n")
    result = cli("check", folder)
    assert result.exit_code == 1
    assert "✗ topo  2 ambiguous or orphan links (strict)" in result.stdout


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("strict = 3\n", "tracetree.toml:1:", "strict must be true or false, found a number"),
        ("stritc = true\n", "tracetree.toml:1:", "unknown option 'stritc' (known: dispatch-table"),
        ('# options\nlevel = "spans"\n', "tracetree.toml:2:", "level must be one of invocation, span, full"),
        ('ignore = "logs"\n', "tracetree.toml:1:", "ignore must be a list of strings, found a string"),
        ("strict = [\n", "tracetree.toml", "not valid TOML"),
        ("a = 1\na = 2\n", "tracetree.toml:2:", "not valid TOML"),
        ('keep = ["nothing"]\n', "tracetree.toml:1:", "keep 'nothing': not a normalized field"),
        ("[fixtures.nosuch]\nstrict = true\n", "tracetree.toml:1:", "fixtures.nosuch names no fixture"),
        ("[fixtures.alpha]\nfixtures = 1\n", "tracetree.toml:2:", "unknown option 'fixtures.alpha.fixtures'"),
        ("fixtures = 1\n", "tracetree.toml:1:", "'fixtures' must be a table"),
        ('dispatch-table = "nope.json"\n', "", "nope.json: cannot read"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_file(
    folder: Path, text: str, where: str, fragment: str
) -> None:
    (folder / "tracetree.toml").write_text(text)
    result = cli("check", folder)
    line = assert_input_error(result, str(folder / where) if where else "")
    assert fragment in line
    assert files(folder) == ["alpha.events.jsonl", "alpha.tree.json", "beta.events.jsonl", "beta.tree.json",
                             "tracetree.toml"]


def test_bad_pyproject_section_names_the_file(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.tracetree]\nlevel = 3\n')
    assert_input_error(cli("check", folder), f"{tmp_path / 'pyproject.toml'}:2:", "level must be one of")


def test_a_dispatch_table_is_found_beside_the_config(folder: Path) -> None:
    (folder / "spans.json").write_text('{"jsrpc": ["myRpc"]}')
    (folder / "tracetree.toml").write_text('dispatch-table = "spans.json"\n')
    report = check_folder(folder)
    assert report.ok
    assert "myRpc" in report.config.base.dispatch.table["jsrpc"]


# -- init ----------------------------------------------------------------------------------------


def test_init_starts_a_fixture_that_check_passes(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "capture.jsonl", fetch_stream())
    folder = tmp_path / "fixtures"
    result = cli("init", folder / "new-case", source)
    assert result.exit_code == 0, result.stderr
    stream, tree = folder / "new-case.events.jsonl", folder / "new-case.tree.json"
    assert result.stdout == f"created {stream} and {tree}\n"
    assert "2 invocations" in result.stderr
    assert (folder / "new-case.events.jsonl").read_bytes() == source.read_bytes()
    assert (folder / "new-case.tree.json").read_bytes() == built_bytes(source)
    assert cli("check", folder).exit_code == 0


def test_init_refuses_to_replace_a_fixture_without_force(folder: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "other.events.jsonl", fetch_stream("other"))
    before = (folder / "alpha.tree.json").read_bytes()
    assert_input_error(cli("init", folder / "alpha", source), str(folder / "alpha.events.jsonl"),
                       "already exists", "--force")
    assert (folder / "alpha.tree.json").read_bytes() == before
    assert cli("init", folder / "alpha", source, "--force").exit_code == 0
    assert (folder / "alpha.tree.json").read_bytes() == built_bytes(source)


def test_init_into_a_folder_names_the_fixture_after_its_stream_and_keeps_gzip(
    folder: Path, tmp_path: Path
) -> None:
    data = b"".join(orjson.dumps(event) + b"\n" for event in fetch_stream())
    source = tmp_path / "from-prod.events.jsonl.gz"
    source.write_bytes(gzip.compress(data))
    assert cli("init", folder, source).exit_code == 0
    assert (folder / "from-prod.events.jsonl.gz").read_bytes() == source.read_bytes()
    assert (folder / "from-prod.tree.json").exists()


def test_init_from_stdin(folder: Path) -> None:
    data = b"".join(orjson.dumps(event) + b"\n" for event in fetch_stream())
    assert cli("init", folder / "piped", "-", input=data).exit_code == 0
    assert (folder / "piped.events.jsonl").read_bytes() == data
    assert cli("check", folder).exit_code == 0


def test_init_of_a_bad_stream_writes_nothing(folder: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.events.jsonl"
    source.write_text('{"invocationId": "a"}\n{oops\n')
    result = cli("init", folder / "bad", source)
    assert_input_error(result, f"{source}:")
    assert not list(folder.glob("bad*")) and not list(folder.glob(".*"))
    piped = cli("init", folder / "bad", "-", input=b"{oops\n")
    assert_input_error(piped, "-:1:")


# -- the repository's own fixtures -------------------------------------------------------------


def test_the_shipped_fixture_folder_passes() -> None:
    """fixtures/ is a real fixture folder: every stream has its accepted tree, and all match."""
    report = check_folder(FIXTURES)
    assert [(r.name, r.status) for r in report.results if r.status is not Status.PASSED] == []
    names = [r.name for r in report.results]
    assert "tail-worker-test" in names and "tail-worker-test-random-ids" in names
    assert any(name.startswith("replay-") for name in names) and any(n.startswith("topology-") for n in names)
