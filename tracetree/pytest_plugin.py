"""The pytest plugin: `tracetree_fixture`, to assert that a stream still builds to its accepted tree.

```python
def test_checkout_trace(tracetree_fixture):
    fixture = tracetree_fixture("tests/traces/checkout")        # checkout.events.jsonl → checkout.tree.json
    assert fixture.tree == fixture.expected                      # on failure: the diff, change by change

def test_live_capture(tracetree_fixture, recorded_events):
    fixture = tracetree_fixture("tests/traces/live", events=recorded_events)   # events in memory
    assert fixture.tree == fixture.expected
```

`pytest --tracetree-update` writes a proposal `NAME.tree.json.new` for each fixture that differs
(never the accepted tree; the test still fails), to review with `tracetree review FOLDER`. In CI
(`CI` set) it refuses unless `--tracetree-force` is given too. The folder's `tracetree.toml` (or
`[tool.tracetree]`) options apply, as for `tracetree check`.

Installed with tracetree (entry point `pytest11`); it adds two options and one fixture and
imports tracetree only when a test uses the fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .check import FixtureResult


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracetree")
    group.addoption("--tracetree-update", action="store_true", default=False,
                    help="tracetree_fixture: write NAME.tree.json.new for each fixture whose tree differs "
                    "or is missing (never the accepted tree); review with `tracetree review FOLDER`.")
    group.addoption("--tracetree-force", action="store_true", default=False,
                    help="with --tracetree-update: write even in CI (the CI environment variable set).")


class TreeSide:
    """One side of `fixture.tree == fixture.expected`: equal when the fixture matches, and pytest
    shows the diff when they are not."""

    __slots__ = ("comparison", "role")

    def __init__(self, comparison: FixtureComparison, role: str) -> None:
        self.comparison = comparison
        self.role = role

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeSide) or other.comparison is not self.comparison:
            return NotImplemented
        return self.comparison.matches

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fixture = self.comparison.result.fixture
        path = fixture.tree if self.role == "expected" else (fixture.stream or "events")
        return f"<tracetree {self.role} tree of {fixture.name!r}: {path}>"


class FixtureComparison:
    """A fixture's tree built now, compared with its accepted tree: `tree`, `expected`, `changes`."""

    def __init__(self, result: FixtureResult) -> None:
        self.result = result
        self.tree = TreeSide(self, "actual")
        self.expected = TreeSide(self, "expected")

    @property
    def matches(self) -> bool:
        from .check import Status

        return self.result.status in (Status.PASSED, Status.PENDING)

    @property
    def changes(self) -> list[Any]:
        return list(self.result.changes)

    @property
    def document(self) -> dict[str, Any] | None:
        """The tree document built now (as `tracetree build --format json` writes it)."""
        return self.result.actual

    def explain(self) -> list[str]:
        """The lines pytest shows when `tree == expected` fails: what differs and what to do first
        (pytest shows the first 8 lines unless run with -vv), then every change."""
        from .check import Status
        from .render.check import plain
        from .render.diff import count_line, render_diff_text

        result = self.result
        fixture = result.fixture
        source = str(fixture.stream) if fixture.stream is not None else "the events given"
        if result.status is Status.MISSING:
            lines = [f"no accepted tree {fixture.tree} for {source}"]
        elif result.changes:
            lines = [f"the tree of {source} differs from its accepted tree {fixture.tree}: "
                     f"{count_line(result.changes)}"]
        else:
            lines = [f"the tree of {source} matches {fixture.tree}, but the folder's options are strict: "
                     f"{result.flagged} ambiguous or orphan link(s)"]
        if result.wrote_pending:
            lines.append(f"proposal written to {fixture.pending}: review it with "
                         f"`tracetree review {fixture.folder}`")
        elif result.status is Status.MISSING or result.changes:
            lines.append("run pytest with --tracetree-update to write a proposal, then "
                         f"`tracetree review {fixture.folder}`")
        if result.changes:
            report = plain(render_diff_text(result.changes, expected_name=str(fixture.tree),
                                            actual_name=source))
            # The report's heading and count line say what the first line says already.
            lines += report.rstrip("\n").splitlines()[1:-2]
        return lines

    def assert_matches(self) -> None:
        """Fail the test with every line of the explanation (never cut short), unless it matches."""
        if not self.matches:
            pytest.fail("\n".join(self.explain()), pytrace=False)


def compare_fixture(
    path: str | Path, *, events: Iterable[Any] | None = None, update: bool = False, force: bool = False,
) -> FixtureComparison:
    """Build the fixture at `path` (FOLDER/NAME, suffixes optional) from its stream, or from `events`
    when given, and compare it with FOLDER/NAME.tree.json under the folder's options.

    With `update`, a fixture that differs or is missing gets NAME.tree.json.new (refused in CI
    without `force`). Unreadable input raises InputError.
    """
    from .check import STREAM_SUFFIXES, Fixture, _bare_name, check_fixture, refuse_writes_in_ci
    from .config import load_config

    if update:
        refuse_writes_in_ci("--tracetree-update", force=force)
    target = Path(path)
    folder, name = target.parent, _bare_name(target.name)
    stream = next((folder / f"{name}{suffix}" for suffix in STREAM_SUFFIXES
                   if (folder / f"{name}{suffix}").is_file()), None)
    if stream is None and events is None:
        from .errors import InputError

        raise InputError(str(folder / f"{name}{STREAM_SUFFIXES[1]}"), None,
                         "no such stream (or pass the events: tracetree_fixture(path, events=...))")
    fixture = Fixture(name, folder, stream if events is None else None)
    result = check_fixture(fixture, load_config(folder).options_for(name), update=update, events=events,
                           keep_actual=True)
    if result.error is not None:
        raise result.error
    return FixtureComparison(result)


@pytest.fixture
def tracetree_fixture(request: pytest.FixtureRequest) -> Callable[..., FixtureComparison]:
    """`tracetree_fixture("FOLDER/NAME", events=None)`: the fixture's tree built now and its accepted
    tree, to compare with `assert fixture.tree == fixture.expected`."""
    update = bool(request.config.getoption("tracetree_update"))
    force = bool(request.config.getoption("tracetree_force"))

    def compare(path: str | Path, *, events: Iterable[Any] | None = None) -> FixtureComparison:
        root = Path(str(request.config.rootpath))
        target = Path(path)
        return compare_fixture(target if target.is_absolute() else root / target, events=events,
                               update=update, force=force)

    return compare


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    if op == "==" and isinstance(left, TreeSide) and isinstance(right, TreeSide) \
            and left.comparison is right.comparison:
        return left.comparison.explain()
    return None
