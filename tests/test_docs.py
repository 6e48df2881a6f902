"""The documentation a user reads agrees with the tool: help texts, README commands, changelog."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from conftest import runner

from tracetree.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Shell words that end one command and start the next.
SEPARATORS = frozenset({"|", "||", "&&", ";", "&"})
REDIRECTS = frozenset({">", ">>", "<", "2>", "&>"})


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(text)]


def shell_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line: split at pipes and `&&`, comments and redirections dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    tokens = list(lexer)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in SEPARATORS:
            commands.append([])
        elif token in REDIRECTS:
            index += 1  # the redirection's target
        else:
            commands[-1].append(token)
        index += 1
    return [command for command in commands if command]


def readme_tracetree_commands() -> list[str]:
    """Every shell line in README's non-Python fenced blocks that runs `tracetree`, `$ ` prompt removed."""
    found: list[str] = []
    for language, body in fenced_blocks(README.read_text(encoding="utf-8")):
        if language not in ("", "sh", "bash", "shell", "console"):
            continue
        for raw in body.splitlines():
            line = raw.removeprefix("$ ").strip()
            if re.search(r"(^|&&|\||;)\s*tracetree(\s|$)", line):
                found.append(line)
    return found


def tracetree_args(line: str) -> list[list[str]]:
    """The arguments after `tracetree` of each tracetree command on a shell line."""
    return [command[1:] for command in shell_commands(line) if command[0] == "tracetree"]


def all_commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command reachable from `group`, with the words that invoke it."""
    found = [(path, group)]
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            found += all_commands(command, (*path, name))
    return found


def help_of(path: tuple[str, ...]) -> str:
    result = runner().invoke(main, [*path, "--help"], prog_name="tracetree", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


# -- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "command"),
    [pytest.param(path, command, id=" ".join(("tracetree", *path))) for path, command in all_commands(main)],
)
def test_every_option_is_in_help(path: tuple[str, ...], command: click.Command) -> None:
    """Every option and subcommand of each click command is listed in that command's `--help`."""
    text = help_of(path)
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            for name in (*param.opts, *param.secondary_opts):
                assert re.search(rf"(^|[\s,/]){re.escape(name)}([\s,/=]|$)", text, re.MULTILINE), name
            assert param.help, f"{name} has no help text"
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                assert re.search(rf"^\s+{re.escape(name)}\s+\S", text, re.MULTILINE), name


def test_main_help_starts_with_build() -> None:
    """`tracetree --help` shows how to start: the build command on the shipped fixture."""
    text = help_of(())
    assert "tracetree build fixtures/tail-worker-test.events.jsonl" in text
    assert (ROOT / "fixtures" / "tail-worker-test.events.jsonl").is_file()
    assert "--version" in text


# -- README -------------------------------------------------------------------------------------


def test_readme_opens_with_install_and_test_commands() -> None:
    """README's first fenced block is two commands: install and build a shipped fixture, then exactly CI's."""
    text = README.read_text(encoding="utf-8")
    blocks = FENCE.search(text)
    assert blocks is not None
    assert "\n## " not in text[: blocks.start()], "the first fenced block comes after a section heading"
    lines = [line for line in blocks.group(2).splitlines() if line.strip()]
    assert len(lines) == 2, lines

    first = shell_commands(lines[0])
    assert any(command[:4] == ["python", "-m", "pip", "install"] for command in first), lines[0]
    builds = [command for command in first if command[:2] == ["tracetree", "build"]]
    assert len(builds) == 1, lines[0]
    inputs = [arg for arg in builds[0][2:] if not arg.startswith("-")]
    assert inputs, lines[0]
    for name in inputs:
        assert name.startswith("fixtures/"), name
        assert (ROOT / name).is_file(), name

    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert lines[1].strip() in ci, "CI runs exactly README's test command"


README_COMMANDS = readme_tracetree_commands()


def test_readme_has_tracetree_commands() -> None:
    """README shows tracetree commands in its fenced blocks (so the test below checks something)."""
    assert len(README_COMMANDS) >= 8, README_COMMANDS


@pytest.mark.parametrize("line", README_COMMANDS, ids=[cmd.split("#")[0].strip() for cmd in README_COMMANDS])
def test_readme_command_parses(line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `tracetree …` line in README is accepted by the CLI; run for real when its files exist."""
    monkeypatch.chdir(tmp_path)  # outputs such as `-o tree.json` land here, not in the checkout
    for args in tracetree_args(line):
        assert args, line
        command = main.get_command(click.Context(main), args[0])
        assert command is not None, f"unknown command {args[0]!r} in: {line}"
        rest = args[1:]
        while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
            # A group's subcommand (`export otlp`): its own options are the ones to check.
            sub = command.get_command(click.Context(command), rest[0])
            assert sub is not None, f"unknown subcommand {rest[0]!r} in: {line}"
            command, rest = sub, rest[1:]
        if "--help" in rest or "-h" in rest:
            result = runner().invoke(main, args, prog_name="tracetree")
            assert result.exit_code == 0, (line, result.stderr)
            continue
        # Parsing alone checks every option name and value is known to the command.
        try:
            ctx = command.make_context(command.name or args[0], list(rest))
        except click.UsageError as error:
            pytest.fail(f"{line}: {error.format_message()}")
        inputs = list(ctx.params.get("inputs", ()))
        if not inputs or not all(name == "-" or (ROOT / name).is_file() for name in inputs):
            continue
        stdin = None
        if "-" in inputs:
            piped = [cmd for cmd in shell_commands(line) if cmd[0] == "cat"]
            if not piped or not all((ROOT / name).is_file() for name in piped[0][1:]):
                continue
            stdin = b"".join((ROOT / name).read_bytes() for name in piped[0][1:])
        real = [str(ROOT / arg) if arg in inputs and arg != "-" else arg for arg in args]
        result = runner().invoke(main, real, input=stdin, prog_name="tracetree")
        assert result.exit_code == 0, (line, result.stderr)
        assert "error" not in result.stderr.lower(), (line, result.stderr)


# -- changelog ----------------------------------------------------------------------------------


def test_changelog_has_an_unreleased_section() -> None:
    """CHANGELOG.md has an `## [Unreleased]` section with at least one entry."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    match = re.search(r"^## \[Unreleased\]\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, "no `## [Unreleased]` heading"
    assert re.search(r"^- \S", match.group(1), re.MULTILINE), "the Unreleased section lists no change"


def test_ci_checks_the_fixture_folder_after_the_tests() -> None:
    """`.ci/run` runs `tracetree check fixtures/` after the README's test command."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    tests = ci.index("python -m pip install -e '.[test]' && python -m pytest")
    assert "python -m tracetree check fixtures/" in ci[tests + 1:]
