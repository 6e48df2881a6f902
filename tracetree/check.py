"""Fixture folders: recorded streams beside their accepted trees, checked, updated and reviewed safely.

A fixture is `NAME.events.jsonl` (or `.events.jsonl.gz`) beside `NAME.tree.json`, the accepted
tree: the canonical document `tracetree build --format json` writes. A proposal for a new
accepted tree is `NAME.tree.json.new`; only `review` (accept) turns it into the accepted one.

The rules that make the workflow safe live here, not in the command line, so that the pytest
plugin follows them too: checking never writes an accepted tree; a run that writes a proposal
still fails; in CI (`CI` set) nothing is written unless forced; orphans are pruned only on a
full run; every write is atomic (a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import contextlib
import enum
import fnmatch
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .build import Forest, build, build_file
from .config import FixtureOptions, FolderConfig, load_config
from .diff import Change, diff
from .document import DOCUMENT_FORMAT, checked_document, dumps_document, to_document
from .errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, InputError, TracetreeError

STREAM_SUFFIXES = (".events.jsonl.gz", ".events.jsonl")  # the longer first: it ends like the other
TREE_SUFFIX = ".tree.json"
PENDING_SUFFIX = ".tree.json.new"

# An empty tree document: what a proposal for a new fixture is compared with.
EMPTY_DOCUMENT: dict[str, Any] = {"format": DOCUMENT_FORMAT, "traces": []}


class Refused(TracetreeError):
    """An action the safety rules forbid: writing in CI without --force, pruning a filtered run,
    replacing an existing fixture without --force."""


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `CI` is set (to anything but an empty string, 0, false or no), as CI services set it."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


def refuse_writes_in_ci(action: str, *, force: bool, environ: Mapping[str, str] | None = None) -> None:
    """Raise Refused when `action` would write in CI and `force` was not given: files written on a
    CI runner are lost with it, and an update there would hide the failure it should report."""
    if in_ci(environ) and not force:
        raise Refused(f"{action} refuses to write in CI (the CI environment variable is set): its "
                      f"files would be lost with the runner; pass --force to write them anyway")


# -- the folder ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fixture:
    """One fixture of a folder: its name (the path below the folder, without suffix) and stream."""

    name: str
    folder: Path
    stream: Path | None  # None: an orphan, an expected tree (or proposal) without a stream

    @property
    def tree(self) -> Path:
        """The accepted expected tree (it may not exist yet)."""
        return self.folder / f"{self.name}{TREE_SUFFIX}"

    @property
    def pending(self) -> Path:
        """The proposal awaiting review (it may not exist)."""
        return self.folder / f"{self.name}{PENDING_SUFFIX}"


def fixture_name(path: Path, folder: Path) -> tuple[str, str] | None:
    """(name, role) of a file of a fixture folder, role `stream`, `tree` or `pending`; None for others."""
    relative = path.relative_to(folder).as_posix()
    for suffix in STREAM_SUFFIXES:
        if relative.endswith(suffix):
            return relative[: -len(suffix)], "stream"
    if relative.endswith(TREE_SUFFIX):
        return relative[: -len(TREE_SUFFIX)], "tree"
    if relative.endswith(PENDING_SUFFIX):
        return relative[: -len(PENDING_SUFFIX)], "pending"
    return None


def discover(folder: str | Path) -> list[Fixture]:
    """Every fixture in `folder` and the folders below it, by name (hidden files and folders,
    such as the temporary files of an interrupted write, are not fixtures).

    Raises InputError when one name has two streams (`.jsonl` and `.jsonl.gz`).
    """
    root = Path(folder)
    streams: dict[str, Path] = {}
    names: set[str] = set()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
        for file in sorted(files):
            if file.startswith("."):
                continue
            path = Path(directory) / file
            found = fixture_name(path, root)
            if found is None or not found[0] or found[0].endswith("/"):
                continue
            name, role = found
            names.add(name)
            if role == "stream":
                if name in streams:
                    raise InputError(str(path), None, f"fixture {name!r} has two streams: "
                                                      f"{streams[name].name} and {path.name}; keep one")
                streams[name] = path
    return [Fixture(name, root, streams.get(name)) for name in sorted(names)]


def selected(name: str, patterns: Sequence[str]) -> bool:
    """Whether `-k` patterns pick a fixture: a pattern with `*`, `?` or `[` is a glob on the whole
    name, any other a part of it. No pattern picks every fixture."""
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(name, pattern) if any(c in pattern for c in "*?[") else pattern in name
               for pattern in patterns)


# -- writing ------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write `data` to `path` so that a reader (or a crash) sees the old file or the new, never half.

    The bytes go to a hidden temporary file in the same folder (so the rename stays on one file
    system), flushed to disk, then renamed over `path`. If anything fails or interrupts the
    write, the temporary file is removed and `path` is left as it was.
    """
    mode = _mode_for(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in [data] if isinstance(data, bytes) else data:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _mode_for(path: Path) -> int:
    """The permissions the written file gets: the old file's, or what a plain open() would give
    (mkstemp makes its files private to the owner)."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o7777
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write(path: Path, data: bytes) -> None:
    """atomic_write, with an OSError turned into an InputError naming the file."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise InputError(str(path), None, f"cannot write: {exc.strerror or exc}") from None


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise InputError(str(path), None, f"cannot remove: {exc.strerror or exc}") from None
    return True


# -- checking one fixture -----------------------------------------------------------------------


class Status(str, enum.Enum):
    """What checking a fixture found; the value is its name in reports."""

    PASSED = "passed"  # the stream builds to its expected tree
    FAILED = "failed"  # it differs from its expected tree, or (strict) has ambiguous/orphan links
    MISSING = "missing"  # a stream without an expected tree
    PENDING = "pending"  # it matches, but a proposal awaits review
    ORPHAN = "orphan"  # an expected tree (or a proposal) without a stream
    PRUNED = "pruned"  # an orphan that --prune removed
    ERROR = "error"  # the stream or the expected tree cannot be read

    def __str__(self) -> str:
        return self.value

    @property
    def fails(self) -> bool:
        """Whether this status makes a check fail (exit 1); errors make it exit 2."""
        return self in (Status.FAILED, Status.MISSING, Status.PENDING)


@dataclass(slots=True)
class FixtureResult:
    """The outcome for one fixture, with everything a report shows."""

    fixture: Fixture
    status: Status
    changes: list[Change] = field(default_factory=list)
    flagged: int = 0  # ambiguous and orphan links in the tree built now
    strict: bool = False  # whether flagged links fail it (the folder's `strict`)
    error: InputError | None = None
    pending: bool = False  # a proposal exists after this run
    stale_pending: bool = False  # it is not what the stream builds to now: accepting it would be wrong
    wrote_pending: bool = False  # this run wrote it
    removed_pending: bool = False  # this run removed a proposal the tree no longer needs
    seconds: float = 0.0
    actual: dict[str, Any] | None = field(default=None, repr=False)  # the tree built now, when kept

    @property
    def name(self) -> str:
        return self.fixture.name


def build_actual(
    stream: Path | None, options: FixtureOptions, events: Iterable[Any] | None = None
) -> tuple[Forest, dict[str, Any], bytes]:
    """The forest, document and document bytes of a stream (or of events in memory), built with
    the fixture's options: exactly what `tracetree build --format json` writes for it."""
    if events is not None:
        forest = build(events, options=options.resolve, lenient=options.lenient)
    else:
        assert stream is not None
        forest = build_file(str(stream), options=options.resolve, lenient=options.lenient)
    document = to_document(forest, normalization=options.normalization)
    return forest, document, dumps_document(document)


def load_expected(path: Path) -> tuple[dict[str, Any], bytes]:
    """An accepted tree (or a proposal): its document and bytes; InputError names the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line = data.count(b"\n", 0, exc.pos) + 1
        raise InputError(str(path), line, f"malformed JSON: {str(exc).split(':', 1)[0]}") from None
    return checked_document(value, str(path)), data


def check_fixture(
    fixture: Fixture,
    options: FixtureOptions,
    *,
    update: bool = False,
    events: Iterable[Any] | None = None,
    keep_actual: bool = False,
) -> FixtureResult:
    """Build one fixture's stream (or `events`) and compare it with its accepted tree.

    With `update`, a fixture that differs (or has no accepted tree) gets a proposal,
    `NAME.tree.json.new`, and still fails; a proposal the tree no longer needs is removed.
    The accepted tree is never written. Unreadable input gives status ERROR, never an exception;
    a proposal that cannot be written raises InputError.
    """
    started = time.perf_counter()
    result = FixtureResult(fixture, Status.PASSED, strict=options.strict)
    if fixture.stream is None and events is None:
        result.status = Status.ORPHAN
        result.pending = fixture.pending.exists()
        return result
    try:
        forest, actual, actual_bytes = build_actual(fixture.stream, options, events)
        result.flagged = len(forest.flagged())
        del forest
        if keep_actual:
            result.actual = actual
        if fixture.tree.exists():
            expected, expected_bytes = load_expected(fixture.tree)
            if expected_bytes != actual_bytes:
                result.changes = diff(expected, actual, level=options.level, ignore=options.ignore)
            needs_proposal = bool(result.changes)
            if result.changes or (options.strict and result.flagged):
                result.status = Status.FAILED
        else:
            result.status = Status.MISSING
            needs_proposal = True
    except TracetreeError as error:
        if not isinstance(error, InputError):  # a tree nested too deeply to build or compare
            error = InputError(str(fixture.stream or fixture.tree), None, str(error))
        result.status, result.error = Status.ERROR, error
        result.pending = fixture.pending.exists()
        result.seconds = time.perf_counter() - started
        return result
    if update:
        if needs_proposal:
            if not _same_bytes(fixture.pending, actual_bytes):
                _write(fixture.pending, actual_bytes)
                result.wrote_pending = True
        else:
            result.removed_pending = _remove(fixture.pending)
    result.pending = fixture.pending.exists()
    if result.pending and needs_proposal:
        result.stale_pending = not _same_bytes(fixture.pending, actual_bytes)
    if result.status is Status.PASSED and result.pending:
        result.status = Status.PENDING
    result.seconds = time.perf_counter() - started
    return result


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


# -- checking a folder --------------------------------------------------------------------------


@dataclass(slots=True)
class CheckReport:
    """What `check_folder` found, fixture by fixture, and the exit code it stands for."""

    folder: Path
    config: FolderConfig
    results: list[FixtureResult]
    select: tuple[str, ...] = ()
    update: bool = False
    prune: bool = False

    def count(self, status: Status) -> int:
        return sum(1 for result in self.results if result.status is status)

    def counts(self) -> dict[Status, int]:
        """Fixtures by status, every status present (zero when unused)."""
        return {status: self.count(status) for status in Status}

    @property
    def written(self) -> list[FixtureResult]:
        return [result for result in self.results if result.wrote_pending]

    @property
    def exit_code(self) -> int:
        """2 when a stream or tree could not be read, else 1 when any fixture failed, is missing
        or has a proposal awaiting review, else 0. Orphans are reported, not failed. Nothing to
        check (an empty folder, a -k that matches nothing) is 2: a typo must not pass in CI."""
        if all(result.status is Status.ORPHAN for result in self.results):
            return EXIT_INPUT
        if any(result.status is Status.ERROR for result in self.results):
            return EXIT_INPUT
        if any(result.status.fails for result in self.results):
            return EXIT_FINDINGS
        return EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK


ProgressCallback = Callable[[int, int, FixtureResult | None], None]  # (done, total, the result just made)


def check_folder(
    path: str | Path,
    *,
    select: Sequence[str] = (),
    update: bool = False,
    prune: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    environ: Mapping[str, str] | None = None,
) -> CheckReport:
    """Check every fixture of a folder: build its stream, compare it with its accepted tree.

    `select`: `-k` patterns (a part of the name, or a glob). `update`: write proposals
    (`NAME.tree.json.new`) for fixtures that differ or have no accepted tree. `prune`: remove
    orphans (accepted trees and proposals without a stream); only on a full run, with no
    `select`. In CI (`CI` set in `environ`, default os.environ) `update` and `prune` raise
    Refused unless `force`.

    Raises InputError (ConfigError) for a folder that does not exist or a bad configuration;
    a stream or tree that cannot be read is reported as that fixture's ERROR, and the others
    are still checked.

    >>> report = check_folder("fixtures", select=["tail-worker-test"])  # doctest: +SKIP
    >>> report.exit_code, [r.status.value for r in report.results]  # doctest: +SKIP
    (0, ['passed', 'passed'])
    """
    folder = Path(path)
    if prune and select:
        raise Refused("--prune removes orphans only on a full run: drop -k, or remove the files by hand")
    if update:
        refuse_writes_in_ci("--update", force=force, environ=environ)
    if prune:
        refuse_writes_in_ci("--prune", force=force, environ=environ)
    if not folder.is_dir():
        detail = "not a folder" if folder.exists() else "no such folder"
        raise InputError(str(path), None, f"{detail}: check takes the folder that holds the fixtures")
    config = load_config(folder)
    fixtures = discover(folder)
    config.check_names([fixture.name for fixture in fixtures])
    chosen = [fixture for fixture in fixtures if selected(fixture.name, select)]
    results: list[FixtureResult] = []
    for fixture in chosen:
        result = check_fixture(fixture, config.options_for(fixture.name), update=update)
        if prune and result.status is Status.ORPHAN:
            _remove(fixture.tree)
            _remove(fixture.pending)
            result.status, result.pending = Status.PRUNED, False
        results.append(result)
        if progress is not None:
            progress(len(results), len(chosen), result)
    return CheckReport(folder, config, results, tuple(select), update, prune)


# -- review -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Proposal:
    """A proposal awaiting review, and how it differs from the accepted tree."""

    fixture: Fixture
    changes: list[Change]
    new: bool  # no accepted tree yet: changes are from an empty tree
    summary: dict[str, Any]  # the proposal's document summary (traces, invocations, links)
    identical: bool = False  # byte for byte the accepted tree

    @property
    def name(self) -> str:
        return self.fixture.name


def proposals(path: str | Path, *, select: Sequence[str] = ()) -> list[Proposal]:
    """Every proposal (`NAME.tree.json.new`) of a folder, compared with its accepted tree (or,
    for a new fixture, with an empty tree) under the folder's options.

    Raises InputError naming a proposal or accepted tree that is not a tree document.
    """
    folder = Path(path)
    if not folder.is_dir():
        detail = "not a folder" if folder.exists() else "no such folder"
        raise InputError(str(path), None, f"{detail}: review takes the folder that holds the fixtures")
    config = load_config(folder)
    found: list[Proposal] = []
    for fixture in discover(folder):
        if not selected(fixture.name, select) or not fixture.pending.is_file():
            continue
        options = config.options_for(fixture.name)
        proposed, proposed_bytes = load_expected(fixture.pending)
        if fixture.tree.exists():
            accepted, accepted_bytes = load_expected(fixture.tree)
            identical = accepted_bytes == proposed_bytes
            changes = [] if identical else diff(accepted, proposed, level=options.level,
                                                ignore=options.ignore)
            found.append(Proposal(fixture, changes, False, proposed.get("summary") or {}, identical))
        else:
            changes = diff(EMPTY_DOCUMENT, proposed, level=options.level, ignore=options.ignore)
            found.append(Proposal(fixture, changes, True, proposed.get("summary") or {}))
    return found


def accept(proposal: Proposal) -> None:
    """Make the proposal the accepted tree: one rename, so the accepted tree is whole at every moment."""
    pending, tree = proposal.fixture.pending, proposal.fixture.tree
    try:
        os.replace(pending, tree)
    except OSError as exc:
        raise InputError(str(pending), None, f"cannot accept: {exc.strerror or exc}") from None


def reject(proposal: Proposal) -> None:
    """Delete the proposal; the accepted tree stays as it is."""
    _remove(proposal.fixture.pending)


# -- init ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Created:
    """A fixture `init` made: its files and the forest its tree was written from."""

    fixture: Fixture
    forest: Forest


def init_fixture(dest: str | Path, stream: str, *, force: bool = False) -> Created:
    """Start a fixture from a stream: copy it to DEST.events.jsonl (`.gz` kept as `.gz`) and write
    its tree as DEST.tree.json, built with the folder's options, so `check` passes at once.

    DEST is `FOLDER/NAME` (suffixes optional), or an existing folder: the name is then the
    stream's, less its suffixes. `stream` `-` is stdin. Nothing is written when the stream does
    not build (InputError names it); an existing fixture of that name is replaced only with
    `force` (else Refused).
    """
    data = _read_stream(stream)
    target = Path(dest)
    if target.is_dir() or str(dest).endswith(("/", os.sep)):
        folder = target
        name = _bare_name(Path(stream).name if stream != "-" else "")
        if not name:
            raise Refused("name the fixture: tracetree init FOLDER/NAME STREAM (stdin has no name)")
    else:
        folder, name = target.parent, _bare_name(target.name)
    if not name:
        raise Refused(f"{dest}: not a fixture name")
    gzipped = data[:2] == b"\x1f\x8b"
    fixture = Fixture(name, folder, folder / f"{name}{STREAM_SUFFIXES[0 if gzipped else 1]}")
    existing = [path for path in (*(folder / f"{name}{suffix}" for suffix in STREAM_SUFFIXES),
                                  fixture.tree, fixture.pending) if path.exists()]
    if existing and not force:
        raise Refused(f"{existing[0]} already exists: pass --force to replace the fixture {name!r}")
    options = load_config(folder).options_for(name)  # a folder not made yet has its parents' pyproject
    with _as_path(stream, data) as source:
        forest, _, tree_bytes = build_actual(Path(source), options)
    folder.mkdir(parents=True, exist_ok=True)
    assert fixture.stream is not None
    _write(fixture.stream, data)
    _write(fixture.tree, tree_bytes)
    for path in existing:  # a stream of the other suffix, a stale proposal
        if path not in (fixture.stream, fixture.tree):
            _remove(path)
    return Created(fixture, forest)


def _bare_name(name: str) -> str:
    for suffix in (*STREAM_SUFFIXES, PENDING_SUFFIX, TREE_SUFFIX, ".jsonl.gz", ".jsonl", ".json", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_stream(stream: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if stream == "-" else Path(stream).read_bytes()
    except OSError as exc:
        raise InputError(stream, None, f"cannot read: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _as_path(stream: str, data: bytes) -> Any:
    """A path to read the stream from: the file itself, or a temporary copy of stdin."""
    if stream != "-":
        yield stream
        return
    with tempfile.TemporaryDirectory(prefix="tracetree-") as folder:
        copy = Path(folder) / "stdin"
        copy.write_bytes(data)
        try:
            yield str(copy)
        except InputError as error:
            if error.path != str(copy):
                raise
            raise InputError("-", error.line, error.detail, error.column) from None

