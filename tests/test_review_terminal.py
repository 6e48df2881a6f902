"""`tracetree review` in a real terminal (a pseudo-terminal driven by pexpect), as a person uses it:
each proposal shown as a diff, then one question; accept, reject and skip."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl
from test_check import built_bytes, cli, fetch_stream

pexpect = pytest.importorskip("pexpect", reason="pexpect drives the terminal (pip install -e '.[test]')")

# Rich styles parts of a line on a terminal: text is matched with colour codes allowed anywhere in it.
_SGR = r"(?:\x1b\[[0-9;]*m)*"


def shown(text: str) -> str:
    """A pattern matching `text` as a terminal receives it, colour codes and all."""
    return _SGR.join(re.escape(char) for char in text)


PROMPT = shown("accept, reject, skip or quit? [a/r/s/q]: ")


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def proposals(tmp_path: Path) -> Path:
    """A folder whose three fixtures each have a proposal: their streams changed since accepted."""
    folder = tmp_path / "fixtures"
    folder.mkdir()
    for name in ("one", "three", "two"):
        stream = write_jsonl(folder / f"{name}.events.jsonl", fetch_stream("before"))
        (folder / f"{name}.tree.json").write_bytes(built_bytes(stream))
        write_jsonl(stream, fetch_stream(f"after {name}"))
    assert cli("check", folder, "--update").exit_code == 1
    return folder


def spawn(*args: str) -> pexpect.spawn:
    env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color"}
    env.pop("CI", None)
    return pexpect.spawn(sys.executable, ["-m", "tracetree", *args], env=env, encoding="utf-8",
                         timeout=30, dimensions=(50, 200))


def test_accept_reject_and_skip_in_a_terminal(proposals: Path) -> None:
    """Accepting promotes the proposal, rejecting deletes it, skipping leaves it; the exit code
    says a proposal is left."""
    accepted = (proposals / "one.tree.json").read_bytes()
    session = spawn("review", str(proposals))
    session.expect(shown("[1/3] one"))
    session.expect(shown("log changed: before → after one"))
    session.expect(PROMPT)
    session.sendline("a")
    session.expect(shown("accepted ") + r".*one\.tree\.json")

    session.expect(shown("[2/3] three"))
    session.expect(shown("log changed: before → after three"))
    session.expect(PROMPT)
    session.sendline("r")
    session.expect(shown("rejected three: three.tree.json.new deleted"))

    session.expect(shown("[3/3] two"))
    session.expect(PROMPT)
    session.sendline("s")
    session.expect(shown("skipped two"))
    session.expect(shown("1 accepted, 1 rejected, 1 skipped"))
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 1

    assert (proposals / "one.tree.json").read_bytes() != accepted
    assert (proposals / "one.tree.json").read_bytes() == built_bytes(proposals / "one.events.jsonl")
    assert not (proposals / "one.tree.json.new").exists()
    assert not (proposals / "three.tree.json.new").exists()
    assert (proposals / "three.tree.json").read_bytes() == accepted
    assert (proposals / "two.tree.json.new").exists()
    assert (proposals / "two.tree.json").read_bytes() == accepted


def test_an_unknown_answer_asks_again_and_quit_leaves_the_rest(proposals: Path) -> None:
    session = spawn("review", str(proposals), "-k", "t")
    session.expect(shown("[1/2] three"))
    session.expect(PROMPT)
    session.sendline("maybe")
    session.expect(shown("Error: 'maybe' is not one of"))
    session.expect(PROMPT)
    session.sendline("q")
    session.expect(shown("0 accepted, 0 rejected, 2 skipped"))
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 1
    assert (proposals / "three.tree.json.new").exists() and (proposals / "two.tree.json.new").exists()


def test_a_large_folder_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    """From 20 fixtures on, check shows a progress bar on a terminal (on stderr, gone at the end);
    a pipe or a CI log gets none. A fixture name is shown as typed, never as markup."""
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(21):
        stream = write_jsonl(folder / f"case-{number:02}.events.jsonl", fetch_stream(f"log {number}"))
        (folder / f"case-{number:02}.tree.json").write_bytes(built_bytes(stream))
    write_jsonl(folder / "[bold]x[red].events.jsonl", fetch_stream())
    session = spawn("check", str(folder))
    session.expect(shown("checking"))
    session.expect(shown("[bold]x[red]"))
    session.expect(shown("✓ case-20"))
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 1
    piped = cli("check", folder)
    assert piped.exit_code == 1
    assert "checking" not in piped.stderr and "checking" not in piped.stdout
