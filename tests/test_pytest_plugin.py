"""The pytest plugin, run inside pytest (pytester) as a user's test suite runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import write_jsonl
from test_check import FIXTURES, built_bytes, fetch_stream

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


TEST_FILE = """
def test_alpha(tracetree_fixture):
    fixture = tracetree_fixture("traces/alpha")
    assert fixture.tree == fixture.expected
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Path:
    """A user's project: traces/alpha.events.jsonl with its accepted tree, and a test asserting it."""
    traces = pytester.path / "traces"
    traces.mkdir()
    stream = write_jsonl(traces / "alpha.events.jsonl", fetch_stream("hello"))
    (traces / "alpha.tree.json").write_bytes(built_bytes(stream))
    pytester.makepyfile(test_traces=TEST_FILE)
    return traces


def test_the_plugin_is_registered_by_its_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*tracetree:*", "*--tracetree-update*", "*--tracetree-force*"])


def test_a_matching_fixture_passes(pytester: pytest.Pytester, suite: Path) -> None:
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_a_changed_stream_fails_with_the_diff(pytester: pytest.Pytester, suite: Path) -> None:
    """The failure reads like `assert a == b` in pytest, with the changes a reviewer reads."""
    write_jsonl(suite / "alpha.events.jsonl", fetch_stream("hello, world"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"E       *assert the tree of {suite / 'alpha.events.jsonl'} differs from its "
        f"accepted tree {suite / 'alpha.tree.json'}: 1 change: 1 event-changed",
        f"E         run pytest with --tracetree-update to write a proposal, then `tracetree review {suite}`",
        "E         ",
        "E         trace 1",
        "E           fetch GET / › jsRpcCall › jsrpc (Svc)",
        "E             log changed: hello → hello, world",
    ])
    assert not (suite / "alpha.tree.json.new").exists()


def test_update_writes_a_proposal_and_the_test_still_fails(pytester: pytest.Pytester, suite: Path) -> None:
    accepted = (suite / "alpha.tree.json").read_bytes()
    write_jsonl(suite / "alpha.events.jsonl", fetch_stream("hello, world"))
    result = pytester.runpytest("--tracetree-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*proposal written to {suite / 'alpha.tree.json.new'}*"])
    assert (suite / "alpha.tree.json").read_bytes() == accepted
    assert (suite / "alpha.tree.json.new").read_bytes() == built_bytes(suite / "alpha.events.jsonl")


def test_update_refuses_in_ci_unless_forced(
    pytester: pytest.Pytester, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_jsonl(suite / "alpha.events.jsonl", fetch_stream("hello, world"))
    monkeypatch.setenv("CI", "true")
    refused = pytester.runpytest("--tracetree-update")
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["*--tracetree-update refuses to write in CI*"])
    assert not (suite / "alpha.tree.json.new").exists()
    forced = pytester.runpytest("--tracetree-update", "--tracetree-force")
    forced.assert_outcomes(failed=1)
    assert (suite / "alpha.tree.json.new").exists()


def test_a_missing_tree_fails_and_update_proposes_one(pytester: pytest.Pytester, suite: Path) -> None:
    (suite / "alpha.tree.json").unlink()
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E       *no accepted tree {suite / 'alpha.tree.json'} for *"])
    pytester.runpytest("--tracetree-update").assert_outcomes(failed=1)
    assert (suite / "alpha.tree.json.new").exists()
    assert not (suite / "alpha.tree.json").exists()


def test_events_in_memory_are_compared_with_the_accepted_tree(pytester: pytest.Pytester, suite: Path) -> None:
    """A test can build from events it recorded itself, and the folder's options apply to them."""
    (suite / "alpha.events.jsonl").rename(suite / "recorded.jsonl")
    pytester.makepyfile(test_traces="""
        import json, pathlib

        def events(path):
            return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines()]

        def test_same(tracetree_fixture):
            fixture = tracetree_fixture("traces/alpha", events=events("traces/recorded.jsonl"))
            assert fixture.tree == fixture.expected
            assert fixture.changes == []
            assert fixture.document["format"] == 1

        def test_changed(tracetree_fixture):
            recorded = events("traces/recorded.jsonl")
            recorded[3]["event"]["message"] = ["other"]
            fixture = tracetree_fixture("traces/alpha", events=recorded)
            assert fixture.tree == fixture.expected
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the tree of the events given differs*", "*log changed: hello → other"])
    (suite / "tracetree.toml").write_text('ignore = ["logs"]\n')
    pytester.runpytest().assert_outcomes(passed=2)


def test_assert_matches_fails_with_every_change(pytester: pytest.Pytester, suite: Path) -> None:
    """fixture.assert_matches() fails with the whole report, however long, and no traceback noise."""
    shutil.copy(FIXTURES / "tail-worker-test.events.jsonl", suite / "alpha.events.jsonl")  # 27 traces
    pytester.makepyfile(test_traces="""
        def test_alpha(tracetree_fixture):
            tracetree_fixture("traces/alpha").assert_matches()
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*differs from its accepted tree*", "trace 27", "  added: invocation *"])
    assert sum(line.startswith("  added: invocation") for line in result.stdout.lines) == 27
    result.stdout.no_fnmatch_line("*Full output truncated*")


def test_a_missing_stream_is_an_error_naming_it(pytester: pytest.Pytester, suite: Path) -> None:
    (suite / "alpha.events.jsonl").unlink()
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*InputError: {suite / 'alpha.events.jsonl'}: no such stream*"])
