"""Reading TailEvents: JSON Lines or one JSON array, from files, .gz files or stdin."""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import msgspec
import orjson

from .errors import InputError
from .markers import log_lines, looks_like_log

# Lines are read in batches of a few MB and parsed a few dozen at a time, joined into one JSON
# array. A batch that fails is re-parsed line by line, so the error still names its line.
_BATCH_BYTES = 4 * 1024 * 1024
_ARRAY = 64

ProgressCallback = Callable[[int], None]


@dataclass(slots=True)
class ReadStats:
    """What reading and building saw: events taken, redeliveries, and the bad lines or events
    skipped in lenient mode (the first few kept, to quote). One object, shared by the reader
    and the model builder."""

    events: int = 0
    duplicates: int = 0
    skipped: int = 0
    skipped_examples: list[InputError] = field(default_factory=list)

    def skip(self, error: InputError) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(error)


def _open(path: str) -> tuple[IO[bytes], IO[bytes]]:
    """The input as a byte stream (gunzipped when it starts with gzip's magic number), and the
    underlying file, whose position tells progress. `-` is stdin."""
    try:
        raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if not isinstance(raw, io.BufferedReader):
        raw = io.BufferedReader(raw)  # type: ignore[arg-type]
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    head = raw.peek(1)[:1]
    if path.endswith(".gz") and head and head not in b"{[ \t\r\n\xef":
        # Named .gz, neither gzip nor JSON text (bzip2, zstd…): say so rather than "bad UTF-8".
        raw.close()
        raise InputError(path, None, "not a gzip file (it does not start with gzip's magic number)")
    return raw, raw


def _describe_json_error(exc: orjson.JSONDecodeError) -> str:
    message = str(exc).split(":", 1)[0]
    return f"malformed JSON: {message}"


def loads_line(raw: bytes, path: str, line: int) -> Any:
    """One line's JSON value; InputError (naming file, line and column) when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(path, line, _describe_json_error(exc), column=exc.colno) from None


def _parse_array(path: str, data: bytes) -> list[tuple[Any, int]]:
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
    return list(zip(items, range(1, len(items) + 1), strict=True))


def _parse_batch(
    path: str, first: int, batch: list[bytes], stats: ReadStats, lenient: bool
) -> list[tuple[Any, int]]:
    """The JSON values of consecutive lines, with their line numbers, the first being `first`."""
    numbered = [(n, raw) for n, raw in enumerate(batch, start=first) if not raw.isspace()]
    values: list[tuple[Any, int]] = []
    # Small arrays: one orjson call per _ARRAY lines, measured faster than one per line and
    # than one per whole batch (a huge array's allocations fall out of cache).
    for start in range(0, len(numbered), _ARRAY):
        chunk = numbered[start:start + _ARRAY]
        try:
            parsed = orjson.loads(b"[" + b",".join([raw for _, raw in chunk]) + b"]")
        except orjson.JSONDecodeError:
            break
        if len(parsed) != len(chunk):
            break
        values.extend(zip(parsed, [n for n, _ in chunk], strict=True))
    else:
        return values
    values = []
    # A bad line, or a line holding two values separated by a comma: parse one by one.
    for n, raw in numbered:
        _take_line(values, raw, path, n, stats, lenient)
    return values


def _take_line(values: list[tuple[Any, int]], raw: bytes, path: str, line: int, stats: ReadStats,
               lenient: bool) -> None:
    """Append one line's JSON value; malformed JSON raises, or is counted when `lenient`."""
    try:
        values.append((loads_line(raw, path, line), line))
    except InputError as error:
        if not lenient:
            raise
        stats.skip(error)


def _parse_log_batch(
    path: str, first: int, batch: list[bytes], stats: ReadStats, lenient: bool
) -> list[tuple[Any, int]]:
    """The events of a batch of a runtime's log: its marker lines, the rest ignored.

    A cut or malformed marker line, and an event the tail worker reported it could not
    serialize, are errors naming their line in the log (skipped and counted when `lenient`).
    """
    worker_errors: list[InputError] = []
    kept = log_lines(path, first, batch, worker_errors)
    known = len(stats.skipped_examples)
    try:
        values = _parse_batch(path, first, kept, stats, lenient)
    except InputError as error:
        worker_errors.append(_in_marker_line(error))
        raise min(worker_errors, key=lambda e: e.line or 0) from None
    if worker_errors and not lenient:
        raise worker_errors[0]
    for error in worker_errors:
        stats.skip(error)
    # Quoted in the order of the log, and saying that the JSON is a marker line's.
    examples = [_in_marker_line(e) for e in stats.skipped_examples[known:]]
    stats.skipped_examples[known:] = sorted(examples, key=lambda e: e.line or 0)
    return values


def _in_marker_line(error: InputError) -> InputError:
    if not error.detail.startswith("malformed JSON"):
        return error
    return InputError(error.path, error.line, f"marker line cut short or malformed: {error.detail}",
                      column=error.column)


def _with_log_hint(error: InputError, first_batch: list[bytes] | None) -> InputError:
    """A JSON error on an input that reads as plain text: say what was looked for, since such an
    input is most often a runtime's log without the tail worker's lines."""
    head = next((raw.lstrip() for raw in first_batch or () if not raw.isspace()), b"{")
    if head[:1] in (b"{", b"["):
        return error
    detail = (f"{error.detail} (neither JSON Lines nor a log with tracetree-event: lines near its "
              f"start; is the tail worker attached? --from-log reads any file as a log)")
    return InputError(error.path, error.line, detail, column=error.column)


def _read_file(
    path: str,
    stats: ReadStats,
    lenient: bool,
    progress: ProgressCallback | None,
    from_log: bool | None = None,
    parse_batch: Callable[[str, int, list[bytes], ReadStats, bool], list[tuple[Any, int]]] = _parse_batch,
) -> Iterator[list[tuple[Any, int]]]:
    stream, raw = _open(path)
    done = 0
    try:
        first = True
        line = 1
        while True:
            # Lines come in batches of a few MB, so memory holds one batch of raw text, not the
            # whole file, and each batch is one orjson call.
            batch = stream.readlines(_BATCH_BYTES)
            if not batch:
                break
            if first:
                first = False
                if batch[0].startswith(b"\xef\xbb\xbf"):
                    batch[0] = batch[0][3:]
                if from_log is None:
                    from_log = looks_like_log(batch)
                head = b"".join(batch[:64]).lstrip()
                if head[:1] == b"[" and not from_log:
                    yield _parse_array(path, b"".join(batch) + stream.read())
                    return
            if from_log:
                yield _parse_log_batch(path, line, batch, stats, lenient)
            else:
                try:
                    yield parse_batch(path, line, batch, stats, lenient)
                except InputError as error:
                    raise _with_log_hint(error, batch if line == 1 else None) from None
            line += len(batch)
            if progress is not None and raw is not sys.stdin.buffer:
                position = raw.tell()
                progress(position - done)
                done = position
    except (OSError, EOFError, zlib.error) as exc:
        if stream is not raw:
            raise InputError(path, None, f"not a readable gzip file: {exc}") from None
        raise InputError(path, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def read_events(
    paths: Iterable[str],
    *,
    lenient: bool = False,
    stats: ReadStats | None = None,
    progress: ProgressCallback | None = None,
    from_log: bool | None = None,
) -> Iterator[tuple[Any, str, int]]:
    """Yield every parsed value with its file and 1-based line, file after file, in file order.

    Values are not validated here (the model does that, and knows which fields it needs);
    malformed JSON raises InputError, or is counted in `stats` when `lenient`.

    A file may also be a runtime's log holding the tail worker's marker lines (see
    markers.py): `from_log` True reads every file so, False never, None (the default) when
    the start of a file shows it.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write(b'{"a": 1}\\n\\n{"a": 2}\\n')
    >>> [(value["a"], line) for value, _path, line in read_events([f.name])]
    [(1, 1), (2, 3)]
    >>> os.unlink(f.name)
    """
    stats = stats if stats is not None else ReadStats()
    for path in paths:
        for batch in _read_file(path, stats, lenient, progress, from_log):
            for item, line in batch:
                yield item, path, line


# -- lean reading: what the model reads when it keeps no events (`--format links`) ---------------
#
# msgspec decodes each line into a few typed fields and skips the rest in C, about three times
# faster than building every event as dicts; it still checks every line is JSON. A line that does
# not fit these types (a wrong type, a missing field, not an object, not JSON) is parsed again
# with orjson and handed on as a dict, so the model reports it exactly as on the full path.


class _LeanContext(msgspec.Struct, gc=False):
    traceId: str
    spanId: str | None = None


class _LeanBody(msgspec.Struct, gc=False):
    type: str
    spanId: str | None = None
    name: str | None = None
    outcome: str | None = None
    info: msgspec.Raw = msgspec.Raw()  # attributes: parsed by orjson when read


class LeanEvent(msgspec.Struct, gc=False):
    """The fields of a TailEvent the model reads when it keeps no events; types checked."""

    invocationId: str
    spanContext: _LeanContext
    # orjson reads integers up to 2**64 - 1; msgspec bounds stop at int64: larger ones take
    # the orjson path, which takes them as before.
    sequence: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    event: _LeanBody
    timestamp: str | None = None


# A lean line: the event, and the line's bytes for fields it lacks (parsed again on demand).
LeanItem = tuple[LeanEvent, bytes]

_LEAN_ONE = msgspec.json.Decoder(LeanEvent)
_LEAN_ARRAY = msgspec.json.Decoder(list[LeanEvent])


def _decode_lean(data: bytes, decoder: msgspec.json.Decoder) -> Any:
    """Decoded, or None where the full path must decide. msgspec does not check the UTF-8 of
    the strings it skips, and orjson refuses bad UTF-8 anywhere: such text goes the full path."""
    try:
        if not data.isascii():
            data.decode()
        return decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None


def _is_json(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _parse_batch_lean(
    path: str, first: int, batch: list[bytes], stats: ReadStats, lenient: bool, *, kept: bool = False
) -> list[tuple[Any, int]]:
    """As _parse_batch, but each well-typed line's value is a LeanItem; other lines' values are
    orjson's, and malformed JSON is reported (or skipped) on the same line as there.

    With `kept`, the line's bytes will be parsed again by orjson later (the model keeps them as
    its event): orjson must take them now too, where a bad line can still be named (msgspec
    lets through what orjson refuses, such as a number too large for a double)."""
    numbered = [(n, raw) for n, raw in enumerate(batch, start=first) if not raw.isspace()]
    values: list[tuple[Any, int]] = []
    for start in range(0, len(numbered), _ARRAY):
        chunk = numbered[start:start + _ARRAY]
        raws = [raw for _, raw in chunk]
        joined = b"[" + b",".join(raws) + b"]"
        parsed = _decode_lean(joined, _LEAN_ARRAY)
        if parsed is not None and len(parsed) == len(chunk) and (not kept or _is_json(joined)):
            values.extend(zip(zip(parsed, raws, strict=True), [n for n, _ in chunk], strict=True))
            continue
        # Some line is not a lean event (or holds two values): decide line by line.
        for n, raw in chunk:
            event = _decode_lean(raw, _LEAN_ONE)
            if event is not None and (not kept or _is_json(raw)):
                values.append(((event, raw), n))
            else:
                _take_line(values, raw, path, n, stats, lenient)
    return values


def _parse_batch_kept(
    path: str, first: int, batch: list[bytes], stats: ReadStats, lenient: bool
) -> list[tuple[Any, int]]:
    return _parse_batch_lean(path, first, batch, stats, lenient, kept=True)


def read_lean_events(
    paths: Iterable[str],
    *,
    lenient: bool = False,
    stats: ReadStats | None = None,
    progress: ProgressCallback | None = None,
    from_log: bool | None = None,
    kept: bool = False,
) -> Iterator[tuple[str, list[tuple[Any, int]]]]:
    """Batches of (value, line) per file, as read_events reads them, where a value is a
    LeanItem when the line fits LeanEvent's types, else the parsed JSON value (a file holding
    one JSON array, or a runtime's log, gives parsed values only). With `kept`, a LeanItem's
    bytes are also checked to be JSON as orjson reads it: for a model that keeps them."""
    stats = stats if stats is not None else ReadStats()
    parse_batch = _parse_batch_kept if kept else _parse_batch_lean
    for path in paths:
        for batch in _read_file(path, stats, lenient, progress, from_log, parse_batch):
            yield path, batch


def input_size(paths: Iterable[str]) -> int:
    """Bytes on disk of the named files (stdin counts as 0): decides whether to show progress."""
    total = 0
    for path in paths:
        if path != "-":
            with contextlib.suppress(OSError):
                total += Path(path).stat().st_size
    return total
