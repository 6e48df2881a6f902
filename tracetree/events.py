"""Reading TailEvents: JSON Lines or one JSON array, from files, .gz files or stdin."""

from __future__ import annotations

import contextlib
import gzip
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .errors import InputError

# Lines are parsed in batches joined into one JSON array: one orjson call per batch instead of
# one per line roughly halves the parse cost. A batch that fails is re-parsed line by line, so
# the error still names its line.
_BATCH = 4096

ProgressCallback = Callable[[int], None]


@dataclass(slots=True)
class ReadStats:
    """What reading saw: lines read, and the bad lines skipped in lenient mode."""

    events: int = 0
    skipped: int = 0
    skipped_examples: list[InputError] | None = None

    def skip(self, error: InputError) -> None:
        self.skipped += 1
        if self.skipped_examples is None:
            self.skipped_examples = []
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(error)


def _open_bytes(path: str) -> bytes:
    """The whole input as bytes; `-` is stdin; gzip is recognised by its magic number."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(path, None, f"not a readable gzip file: {exc}") from None
    return data


def _describe_json_error(exc: orjson.JSONDecodeError) -> str:
    message = str(exc).split(":", 1)[0]
    return f"malformed JSON: {message}"


def _parse_array(path: str, data: bytes, stats: ReadStats, lenient: bool) -> Iterator[tuple[Any, int]]:
    """A file holding one JSON array of TailEvents. Line numbers are those of each element start."""
    try:
        items = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data.count(b"\n", 0, exc.pos) + 1
        raise InputError(path, line, _describe_json_error(exc)) from None
    if not isinstance(items, list):
        raise InputError(path, 1, "expected a JSON array of events")
    # orjson does not report element offsets; the element index stands in for a line number
    # (1-based), which is exact for the common one-event-per-line pretty form.
    for index, item in enumerate(items, start=1):
        yield item, index


def _parse_lines(
    path: str, data: bytes, stats: ReadStats, lenient: bool, progress: ProgressCallback | None
) -> Iterator[tuple[Any, int]]:
    lines = data.split(b"\n")
    start = 0
    total = len(lines)
    while start < total:
        stop = min(start + _BATCH, total)
        batch = lines[start:stop]
        numbered = [(n, raw) for n, raw in enumerate(batch, start=start + 1) if raw.strip()]
        try:
            parsed = orjson.loads(b"[" + b",".join(raw for _, raw in numbered) + b"]")
        except orjson.JSONDecodeError:
            parsed = None
        if parsed is not None and len(parsed) == len(numbered):
            for (n, _), item in zip(numbered, parsed, strict=True):
                yield item, n
        else:
            # A bad line, or a line holding two values separated by a comma: parse one by one.
            for n, raw in numbered:
                try:
                    item = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    error = InputError(path, n, _describe_json_error(exc), column=exc.colno)
                    if not lenient:
                        raise error from None
                    stats.skip(error)
                    continue
                yield item, n
        if progress is not None:
            progress(sum(len(raw) + 1 for raw in batch))
        start = stop


def read_events(
    paths: Iterable[str],
    *,
    lenient: bool = False,
    stats: ReadStats | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[tuple[Any, str, int]]:
    """Yield every parsed value with its file and 1-based line, file after file, in file order.

    Values are not validated here (the model does that, and knows which fields it needs);
    malformed JSON raises InputError, or is counted in `stats` when `lenient`.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write(b'{"a": 1}\\n\\n{"a": 2}\\n')
    >>> [(value["a"], line) for value, _path, line in read_events([f.name])]
    [(1, 1), (2, 3)]
    >>> os.unlink(f.name)
    """
    stats = stats if stats is not None else ReadStats()
    for path in paths:
        data = _open_bytes(path)
        if data[:3] == b"\xef\xbb\xbf":
            data = data[3:]
        if data.lstrip()[:1] == b"[":
            items = _parse_array(path, data, stats, lenient)
            if progress is not None:
                progress(len(data))
        else:
            items = _parse_lines(path, data, stats, lenient, progress)
        for item, line in items:
            stats.events += 1
            yield item, path, line


def input_size(paths: Iterable[str]) -> int:
    """Bytes on disk of the named files (stdin counts as 0): decides whether to show progress."""
    total = 0
    for path in paths:
        if path != "-":
            with contextlib.suppress(OSError):
                total += Path(path).stat().st_size
    return total
