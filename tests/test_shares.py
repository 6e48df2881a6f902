"""Links resolved in shares (`build --format links -j N` on large inputs): each process reads
everything and resolves a share of the traces; together, exactly what one process gives."""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

import pytest
from conftest import CORPUS, DEFAULT_TS, assert_input_error, ev, needs_corpus, runner, write_jsonl
from test_lean import GOOD, ODD

from tracetree import shares
from tracetree.build import Tally, build_file
from tracetree.cli import main
from tracetree.errors import InputError, TracetreeError
from tracetree.render.links import render_links


def _single(paths: list[str], lenient: bool = False) -> tuple[bytes, Tally]:
    forest = build_file(paths, keep_events=False, keep_candidates=False, lenient=lenient)
    return b"".join(render_links(forest)), forest.tally()


def _shared(paths: list[str], jobs: int, lenient: bool = False) -> tuple[bytes, Tally]:
    blocks, tally = shares.link_in_shares(paths, jobs, lenient=lenient)
    return b"".join(blocks), tally


def _facts(tally: Tally) -> tuple:
    stats = tally.stats
    return (tally.traces, tally.invocations, tally.links, tally.events_missing, stats.events,
            stats.duplicates, stats.skipped, [str(error) for error in stats.skipped_examples])


@needs_corpus
def test_shares_give_the_links_and_counts_of_one_process() -> None:
    """Several files merged, many traces: the same lines in the same order, the same summary."""
    paths = [str(CORPUS / "real" / "upstream-tailtest-predictable.events.jsonl"),
             *sorted(str(path) for path in (CORPUS / "train").glob("topology-5*.events.jsonl"))[:3]]
    single, tally = _single(paths)
    for jobs in (2, 3):
        lines, shared = _shared(paths, jobs)
        assert lines == single
        assert _facts(shared) == _facts(tally)
    assert tally.traces > 3


def test_bad_lines_are_met_in_every_share_alike(tmp_path: Path) -> None:
    """Lenient: the same lines skipped once (not once per process), the same first examples;
    strict: the same first error, whichever share the bad line's trace would fall in."""
    lines = [line for odd in ODD for line in (odd, *GOOD)]
    path = tmp_path / "odd.events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    single, tally = _single([str(path)], lenient=True)
    shared, shared_tally = _shared([str(path)], 2, lenient=True)
    assert shared == single and _facts(shared_tally) == _facts(tally)
    assert tally.stats.skipped > 0 and tally.stats.duplicates > 0
    with pytest.raises(InputError) as expected:
        _single([str(path)])
    with pytest.raises(InputError) as caught:
        _shared([str(path)], 2)
    assert str(caught.value) == str(expected.value)


def _trace_in_share(share: int, count: int, avoid: str = "") -> str:
    """A trace id that falls in the given share of `count`."""
    return next(trace for n in range(1000) if (trace := f"{n:032x}") != avoid
                and zlib.crc32(trace.encode()) % count == share)


@pytest.mark.parametrize("lenient", [False, True])
def test_an_invocation_that_changes_trace_across_shares_is_caught(tmp_path: Path, lenient: bool) -> None:
    """The invocation's first trace is in one share, its second in the other: every process
    still sees the change, as one process does."""
    first, second = _trace_in_share(0, 2), _trace_in_share(1, 2)
    onset = {"type": "onset", "spanId": "aaaaaaaaaaaaaaaa", "info": {"type": "fetch"}}
    events = [ev("a" * 32, 0, onset, trace=first), ev("b" * 32, 0, onset, trace=second),
              ev("a" * 32, 1, {"type": "log", "message": ["moved"]}, trace=second, span="aaaaaaaaaaaaaaaa"),
              ev("b" * 32, 1, {"type": "outcome", "outcome": "ok"}, trace=first, ts=DEFAULT_TS)]
    path = tmp_path / "moved.events.jsonl"
    write_jsonl(path, events)
    if lenient:
        single, tally = _single([str(path)], lenient=True)
        shared, shared_tally = _shared([str(path)], 2, lenient=True)
        assert shared == single and _facts(shared_tally) == _facts(tally)
        assert tally.stats.skipped == 2
        return
    with pytest.raises(InputError, match="changes traceId") as expected:
        _single([str(path)])
    with pytest.raises(InputError) as caught:
        _shared([str(path)], 2)
    assert str(caught.value) == str(expected.value)


def test_the_cli_resolves_large_inputs_in_shares(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`-j 2` on a file over the threshold: the output and summary of `-j 1`; stdin and small
    files stay in one process."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "tail-worker-test.events.jsonl"
    assert not shares.can_share([str(path)], 2)  # small: not worth another process
    assert not shares.can_share(["-"], 2)
    monkeypatch.setattr(shares, "MIN_BYTES", 0)
    assert shares.can_share([str(path)], 2) and not shares.can_share([str(path)], 1)
    one = runner().invoke(main, ["build", str(path), "--format", "links", "-j", "1"])
    two = runner().invoke(main, ["build", str(path), "--format", "links", "-j", "2"])
    assert (two.exit_code, two.stdout, two.stderr) == (one.exit_code, one.stdout, one.stderr)
    assert one.exit_code == 0 and one.stdout.count("\n") > 10 and "invocations" in one.stderr
    strict = runner().invoke(main, ["build", str(path), "--format", "links", "-j", "2", "--strict", "-q"])
    assert strict.exit_code == runner().invoke(
        main, ["build", str(path), "--format", "links", "-j", "1", "--strict", "-q"]).exit_code


def test_the_cli_names_a_bad_line_once_with_shares(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shares, "MIN_BYTES", 0)
    path = tmp_path / "bad.events.jsonl"
    path.write_bytes(b"\n".join([*GOOD[:3], b'{"invocationId": "a", oops}', *GOOD[3:]]) + b"\n")
    result = runner().invoke(main, ["build", str(path), "--format", "links", "-j", "2"])
    assert_input_error(result, f"{path}:4:")


class _DiesWhenUnpickled:
    """Falsy here (so: not a runtime's log); in a spawned process, unpickling it ends that
    process at once, as the kernel's out-of-memory killer would."""

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> tuple:
        return (os._exit, (3,))


def test_a_share_process_that_dies_is_one_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "good.events.jsonl"
    path.write_bytes(b"\n".join(GOOD) + b"\n")
    with pytest.raises(TracetreeError, match=r"stopped.*-j 1"):
        shares.link_in_shares([str(path)], 2, from_log=_DiesWhenUnpickled())  # type: ignore[arg-type]


def test_a_large_input_in_a_terminal_shows_progress_and_resolves_in_shares(tmp_path: Path) -> None:
    """Over 16 MiB, on a terminal: the reading bar shows (it starts once the share processes
    are under way), and the links are those of one process."""
    pexpect = pytest.importorskip("pexpect", reason="pexpect drives the terminal (pip install -e '.[test]')")
    path = tmp_path / "large.events.jsonl"
    with path.open("wb") as out:
        for number in range(13_000):  # ~17 MiB: thousands of traces, each the GOOD stream
            group = b"\n".join(GOOD).replace(b'"traceId":"t"', b'"traceId":"%032x"' % number)
            for invocation in (b"a", b"b"):
                group = group.replace(b'"invocationId":"%s"' % invocation, b'"invocationId":"%s%031x"'
                                      % (invocation, number))
            out.write(group + b"\n")
    assert shares.can_share([str(path)], 2)
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    session = pexpect.spawn(sys.executable, ["-m", "tracetree", "build", str(path), "--format", "links",
                                             "-j", "2", "-o", str(tmp_path / "two.jsonl")],
                            env=env, encoding="utf-8", timeout=120, dimensions=(40, 120))
    session.expect("reading")
    session.expect("13000 traces")  # the summary, once done
    session.expect(pexpect.EOF)
    session.close()
    assert session.exitstatus == 0
    one = runner().invoke(main, ["build", str(path), "--format", "links", "-j", "1", "-q"])
    assert (tmp_path / "two.jsonl").read_text() == one.stdout
