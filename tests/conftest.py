"""Shared helpers: where the corpus lives, and a builder for small hand-written TailEvents."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

# Hypothesis imports libcst to report a failing example; that import raises a DeprecationWarning
# (mypy_extensions.TypedDict), which `filterwarnings = error` turns into an INTERNALERROR hiding the
# failure itself. Importing it once here, quietly, keeps failures readable.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import libcst.metadata  # noqa: F401

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

CORPUS_MISSING = f"the shared corpus is not at {CORPUS} (it lives beside the checkout, in shared/corpus)"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=CORPUS_MISSING)

DEFAULT_TS = "2026-01-01T00:00:00.000Z"


def ev(
    invocation: str,
    seq: int,
    body: dict[str, Any],
    *,
    trace: str = "t1",
    span: str | None = None,
    ts: str | None = DEFAULT_TS,
) -> dict[str, Any]:
    """One TailEvent as workerd serializes it; `span` is spanContext.spanId (left out when None)."""
    context: dict[str, Any] = {"traceId": trace}
    if span is not None:
        context["spanId"] = span
    event: dict[str, Any] = {"invocationId": invocation, "spanContext": context, "sequence": seq,
                             "event": body}
    if ts is not None:
        event["timestamp"] = ts
    return event


def write_jsonl(path: Path, events: Iterable[Any]) -> Path:
    """Write events one per line and return the path."""
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


def corpus_streams(subdir: str) -> list[Any]:
    """pytest params for every `*.events.jsonl` of a corpus folder, or one skipped param when absent."""
    folder = CORPUS / subdir
    streams = sorted(folder.glob("*.events.jsonl")) if folder.is_dir() else []
    if not streams:
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=CORPUS_MISSING))]
    return [pytest.param(path, id=path.name.removesuffix(".events.jsonl")) for path in streams]


def truth_of(stream: Path) -> dict[str, dict[str, Any]]:
    """The `*.truth.json` beside a stream: invocation id → {parentInvocationId, parentSpanId, …}."""
    return orjson.loads(stream.with_name(stream.name.replace(".events.jsonl", ".truth.json")).read_bytes())


@pytest.fixture
def corpus() -> Path:
    """The shared corpus folder; the test is skipped with a clear reason when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(CORPUS_MISSING)
    return CORPUS


def runner() -> CliRunner:
    """A runner that keeps stderr apart from stdout (click 8.1 needs asking; 8.2+ always does)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def assert_input_error(result: Any, where: str, *fragments: str) -> str:
    """Exit 2, nothing on stdout, and exactly one line on stderr: `error: WHERE…`, no traceback,
    and no terminal control character (a click.testing Result)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {where}"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "\x1b" not in result.stderr
    return lines[0]
