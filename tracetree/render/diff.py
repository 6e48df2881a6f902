"""A diff's changes, worded as a reviewer would: for a terminal, JSON, GitHub annotations, Markdown.

Every renderer returns a value and prints nothing; the CLI decides where it goes. All four share
one wording (`describe`), so a change reads the same in a terminal, a workflow log and a pull
request comment. Paths, names and values come from the compared traces, so every piece shown
is made safe (`safe_text`) before any format-specific escaping is applied on top.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Group
from rich.text import Text

from ..diff import Change, ChangeKind
from .text import Line, clip, safe_text

# The `format` of `--format json` output. A string, unlike the tree document's integer, so that
# neither can be mistaken for the other.
DIFF_FORMAT = "tracetree-diff/1"

SEPARATOR = " › "  # between the parts of a path, as diff.path_of writes them
_TRACE = re.compile(r"(?:expected )?trace (\d+)")
_ROOT = re.compile(r"^(trace \d+) \(a root\)$")
_DIGITS = re.compile(r"(\d+)")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")

# Kinds whose path ends in the thing the sentence is about (an invocation, a span): the sentence
# sits under the place that holds it. Other changes sit under the node they changed.
_SUBJECT_KINDS = frozenset({
    ChangeKind.INVOCATION_MOVED, ChangeKind.INVOCATION_ADDED, ChangeKind.INVOCATION_REMOVED,
    ChangeKind.SPAN_ADDED, ChangeKind.SPAN_REMOVED,
})
_KIND_ORDER = {kind: index for index, kind in enumerate(ChangeKind)}

# Roles of the pieces of a sentence, and how a terminal shows them. The verb takes the colour
# of its kind: additions green, removals red, moves magenta, edits yellow.
_VERB_STYLE = {
    ChangeKind.INVOCATION_MOVED: "bold magenta",
    ChangeKind.INVOCATION_ADDED: "bold green",
    ChangeKind.SPAN_ADDED: "bold green",
    ChangeKind.ATTRIBUTE_ADDED: "bold green",
    ChangeKind.EVENT_ADDED: "bold green",
    ChangeKind.INVOCATION_REMOVED: "bold red",
    ChangeKind.SPAN_REMOVED: "bold red",
    ChangeKind.ATTRIBUTE_REMOVED: "bold red",
    ChangeKind.EVENT_REMOVED: "bold red",
}
_ROLE_STYLE = {"subject": "bold", "before": "red", "after": "green", "place": "cyan"}

# Values longer than this are cut with `…`: a 256 KB log line must not flood a report.
VALUE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Described:
    """One change as a sentence, and where it sits: trace, then the path inside that trace."""

    change: Change
    trace: str  # "trace 16"; "" when the path names none
    where: tuple[str, ...]  # the path inside the trace of the node the sentence is about
    parts: tuple[tuple[str, str], ...]  # (text, role): role is verb, subject, before, after, place or ""

    @property
    def sentence(self) -> str:
        return "".join(text for text, _ in self.parts)

    @property
    def place(self) -> str:
        """`trace 16 › custom › jsRpcCall#1`: the trace and the path, as one string."""
        return SEPARATOR.join(part for part in (self.trace, *self.where) if part)


def describe(change: Change) -> Described:
    """A change worded as a reviewer would: `moved: X — was under A, now under B`, and where.

    Every piece is already safe to show (controls escaped) and cut to a readable length.
    """
    pieces = change.path.split(SEPARATOR)
    trace = pieces[0] if _TRACE.fullmatch(pieces[0]) else ""
    rest = pieces[1:] if trace else pieces
    subject = ""
    if change.kind in _SUBJECT_KINDS and rest:
        *rest, subject = rest
    where = tuple(clip(part, VALUE_LIMIT) for part in rest)
    parts = _sentence(change, clip(subject, VALUE_LIMIT), trace)
    return Described(change, safe_text(trace), where, tuple(parts))


def _sentence(change: Change, subject: str, trace: str) -> list[tuple[str, str]]:
    kind, name = change.kind, change.field.split(".", 1)[-1]
    before, after = change.before, change.after
    verb = f"{kind.value.split('-')[-1]}:"  # moved, added, removed, renamed, changed
    if kind is ChangeKind.INVOCATION_MOVED:
        return [("moved:", "verb"), (" ", ""), (subject, "subject"), (" — ", ""),
                *_where(before, trace, "was"), (", ", ""), *_where(after, trace, "now")]
    if kind in (ChangeKind.INVOCATION_ADDED, ChangeKind.INVOCATION_REMOVED):
        value = after if kind is ChangeKind.INVOCATION_ADDED else before
        shown = clip(value, VALUE_LIMIT) if isinstance(value, str) and value else subject
        return [(verb, "verb"), (" invocation ", ""), (shown, "subject")]
    if kind in (ChangeKind.SPAN_ADDED, ChangeKind.SPAN_REMOVED):
        return [(verb, "verb"), (" span ", ""), (subject, "subject")]
    if kind is ChangeKind.SPAN_RENAMED:
        # Same place among its siblings, another name: it reads as a rename, and is one.
        return [("renamed:", "verb"), (" span ", ""), *_before_after(before, after)]
    if kind is ChangeKind.RESOLUTION_CHANGED:
        return [("link resolution changed:", "verb"), (" ", ""), *_before_after(before, after)]
    if kind is ChangeKind.OUTCOME_CHANGED:
        return [("outcome changed:", "verb"), (" ", ""), *_before_after(before, after)]
    if kind is ChangeKind.ONSET_CHANGED:
        return [("onset ", "verb"), (clip(name, VALUE_LIMIT), "subject"), (" changed:", "verb"), (" ", ""),
                *_before_after(before, after)]
    if kind in (ChangeKind.ATTRIBUTE_ADDED, ChangeKind.ATTRIBUTE_REMOVED, ChangeKind.ATTRIBUTE_CHANGED):
        head = [("attribute ", "verb"), (clip(name, VALUE_LIMIT), "subject")]
        if kind is ChangeKind.ATTRIBUTE_ADDED:
            return [*head, (" added:", "verb"), (" ", ""), (value_text(after), "after")]
        if kind is ChangeKind.ATTRIBUTE_REMOVED:
            return [*head, (" removed", "verb"), (" (was ", ""), (value_text(before), "before"), (")", "")]
        return [*head, (" changed:", "verb"), (" ", ""), *_before_after(before, after)]
    if kind in (ChangeKind.EVENT_ADDED, ChangeKind.EVENT_REMOVED, ChangeKind.EVENT_CHANGED):
        # Fields are `logs`, `exceptions` or `events.<type>`; a sentence names one event.
        name = {"logs": "log", "exceptions": "exception"}.get(change.field, name)
        head = [(clip(name, VALUE_LIMIT), "subject"), (f" {verb}", "verb"), (" ", "")]
        if kind is ChangeKind.EVENT_ADDED:
            return [*head, (event_text(name, after), "after")]
        if kind is ChangeKind.EVENT_REMOVED:
            return [*head, (event_text(name, before), "before")]
        old, new = event_text(name, before, limit=None), event_text(name, after, limit=None)
        if old == new:  # they differ where the short form does not look: show everything
            old = value_text(before, force_json=True, limit=None)
            new = value_text(after, force_json=True, limit=None)
        old, new = _contrast(old, new)
        return [*head, (old, "before"), (" → ", ""), (new, "after")]
    # A kind this renderer does not know yet: still every fact, in a neutral form.
    return [(f"{kind.value} {clip(change.field, VALUE_LIMIT)}:", "verb"), (" ", ""),
            *_before_after(before, after)]


def _before_after(before: Any, after: Any) -> list[tuple[str, str]]:
    old, new = _contrast(value_text(before, limit=None), value_text(after, limit=None))
    return [(old, "before"), (" → ", ""), (new, "after")]


def _contrast(old: str, new: str) -> tuple[str, str]:
    """Two values cut alike, from a little before where they first differ: two long log lines
    that differ near their end must not both read `aaaa…`."""
    pairs = enumerate(zip(old, new, strict=False))
    first = next((index for index, (a, b) in pairs if a != b), min(len(old), len(new)))
    start = 0 if first < VALUE_LIMIT // 2 else first - VALUE_LIMIT // 4
    return _window(old, start), _window(new, start)


def _window(text: str, start: int) -> str:
    piece = text[start:]
    if len(piece) > VALUE_LIMIT:
        piece = piece[: VALUE_LIMIT - 1] + "…"
    return "…" + piece if start else piece


def _where(place: Any, trace: str, tense: str) -> list[tuple[str, str]]:
    """`was under custom › jsRpcCall#3`, `now a root`: a place, without its trace when it is this one."""
    text = str(place) if place is not None else "?"
    root = _ROOT.match(text)
    if root:
        other = root.group(1)
        return [(f"{tense} a root" + ("" if other == trace else f" of {safe_text(other)}"), "place")]
    if trace and text.startswith(trace + SEPARATOR):
        text = text[len(trace) + len(SEPARATOR):]
    return [(f"{tense} under ", ""), (clip(text, VALUE_LIMIT * 2), "place")]


def value_text(value: Any, *, force_json: bool = False, limit: int | None = VALUE_LIMIT) -> str:
    """A value as a reviewer reads it: a plain string as itself, anything else as compact JSON.

    A string that would read as something else (empty, padded, `true`, `42`) is quoted, so
    `"42"` and `42` never look alike. Safe to show, and cut to `limit` (None: whole).
    """
    if value is None:
        return "(none)"
    if isinstance(value, str) and not force_json and value and value == value.strip() \
            and value not in ("true", "false", "null", "(none)") and not _NUMBER.fullmatch(value):
        return _shown(value, limit)
    return _shown(_dumps(value), limit)


def event_text(event_type: str, content: Any, *, limit: int | None = VALUE_LIMIT) -> str:
    """A log as its message (`[warn] disk full` when not level `log`), an exception as `Name: message`."""
    if isinstance(content, dict):
        if event_type == "log" and "message" in content:
            message = content["message"]
            words = message if isinstance(message, list) else [message]
            level = content.get("level")
            prefix = "" if level in (None, "log") else f"[{_word(level)}] "
            return _shown(prefix + " ".join(_word(word) for word in words), limit)
        if event_type == "exception" and ("name" in content or "message" in content):
            name, message = content.get("name"), content.get("message")
            return _shown(": ".join(_word(part) for part in (name, message) if part is not None), limit)
    return value_text(content, force_json=True, limit=limit)


def _shown(text: str, limit: int | None) -> str:
    return safe_text(text) if limit is None else clip(text, limit)


def _word(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        pass
    # orjson stops at 255 levels of nesting; a deeply nested log message still shows.
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except RecursionError:
        return "(too deeply nested to show)"


# -- order and counts ------------------------------------------------------------------------------


def ordered(changes: Iterable[Change]) -> list[Described]:
    """Changes described, grouped by trace (trace 2 before trace 10) and by place within it."""
    described = [describe(change) for change in changes]
    return sorted(described, key=_sort_key)


def _sort_key(item: Described) -> tuple[Any, ...]:
    trace = _TRACE.fullmatch(item.change.path.split(SEPARATOR, 1)[0])
    kind = _KIND_ORDER.get(item.change.kind, len(_KIND_ORDER))
    return (int(trace.group(1)) if trace else 0, [_natural(part) for part in item.where], kind,
            _natural(item.change.path), item.change.field)


def _natural(text: str) -> list[Any]:
    """`jsRpcCall#10` after `jsRpcCall#9`: digit runs compare as numbers."""
    return [(0, int(piece)) if piece.isdigit() else (1, piece) for piece in _DIGITS.split(text) if piece]


def counts(changes: Iterable[Change]) -> dict[str, int]:
    """Changes by kind: every kind present, zero when unused, in the vocabulary's order."""
    found = Counter(change.kind for change in changes)
    return {kind.value: found.get(kind, 0) for kind in ChangeKind}


def count_line(changes: Sequence[Change], *, brackets: bool = False) -> str:
    """`3 changes: 2 invocation-moved, 1 attribute-changed` (or `3 changes (2 …, 1 …)`)."""
    used = ", ".join(f"{count} {kind}" for kind, count in counts(changes).items() if count)
    total = f"{len(changes)} change{'' if len(changes) == 1 else 's'}"
    return f"{total} ({used})" if brackets else f"{total}: {used}"


def _names(expected_name: str, actual_name: str) -> tuple[str, str]:
    return _display(expected_name), _display(actual_name)


def _display(name: str) -> str:
    return "stdin" if name == "-" else clip(name, VALUE_LIMIT)


def no_differences(expected_name: str, actual_name: str) -> str:
    expected, actual = _names(expected_name, actual_name)
    return f"no differences between {expected} and {actual}"


# -- text ------------------------------------------------------------------------------------------


def render_diff_text(changes: Sequence[Change], *, expected_name: str, actual_name: str) -> Group:
    """The report for a terminal: a heading, changes grouped by trace and place, a count line.

    ```
    naive.json → default.json

    trace 16
      custom › jsRpcCall#1
        moved: jsrpc nonFunctionProperty (MyService) — was under …, now under custom › jsRpcCall#1

    1 change: 1 invocation-moved
    ```
    Text is never read as markup, and lines wrap rather than being cut: a path is the point.
    """
    if not changes:
        return Group(_wrapping(Line(no_differences(expected_name, actual_name), "green")))
    expected, actual = _names(expected_name, actual_name)
    lines: list[Text] = [_wrapping(Line(expected, "bold").add(" → ").add(actual, "bold"))]
    trace = where = None
    for item in ordered(changes):
        if item.trace != trace:
            trace, where = item.trace, None
            lines += [Text(), _wrapping(Line(item.trace or "(no trace)", "bold"))]
        indent = "  "
        if item.where:
            indent = "    "
            if item.where != where:
                lines.append(_wrapping(Line("  ").add(SEPARATOR.join(item.where), "cyan")))
        where = item.where
        line = Line(indent)
        verb = _VERB_STYLE.get(item.change.kind, "bold yellow")
        for text, role in item.parts:
            line.add(text, verb if role == "verb" else _ROLE_STYLE.get(role, ""))
        lines.append(_wrapping(line))
    lines += [Text(), _wrapping(Line(count_line(changes), "bold"))]
    return Group(*lines)


def _wrapping(line: Line) -> Text:
    # Unlike a tree line, a report line is not cut at the edge: whether it wraps is the console's
    # choice (it wraps on a terminal; `soft_wrap` keeps a line whole in a file or a pipe).
    text = line.text()
    text.no_wrap = None
    text.overflow = None
    return text


# -- JSON ------------------------------------------------------------------------------------------


def render_diff_json(
    changes: Sequence[Change], *, expected_name: str, actual_name: str,
    level: str | None = None, ignore: Sequence[str] = (),
) -> bytes:
    """One JSON object: `format`, the two inputs, what was compared, `counts` by kind, `changes`.

    Each change is `Change.to_json()`; changes come in the same order as the other formats.
    """
    report: dict[str, Any] = {
        "format": DIFF_FORMAT,
        "expected": expected_name,
        "actual": actual_name,
        "level": level,
        "ignore": list(ignore),
        "summary": count_line(changes) if changes else no_differences(expected_name, actual_name),
        "counts": counts(changes),
        "changes": [item.change.to_json() for item in ordered(changes)],
    }
    try:
        return orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONEncodeError:
        # Past orjson's 255 levels of nesting (a deeply nested log message): same layout.
        return json.dumps(report, indent=2, ensure_ascii=False).encode() + b"\n"


# -- GitHub Actions --------------------------------------------------------------------------------


def render_diff_github(changes: Sequence[Change], *, file: str | None = None,
                       title: str = "tracetree diff") -> str:
    """GitHub Actions workflow commands: one `::error title=KIND::PLACE: SENTENCE` line per change
    (with `file=FILE`, the annotation is attached to that file of the pull request).

    Escaped as the Actions runner unescapes them: `%`, CR and LF everywhere, and `:` and `,`
    in properties too. Untrusted text is made safe first: the log viewer obeys ANSI escapes.
    """
    if not changes:
        return f"{title}: no differences\n"
    where = f"file={_github_property(file)}," if file else ""
    lines = []
    for item in ordered(changes):
        heading = _github_property(f"{title}: {item.change.kind.value}")
        message = _github_data(f"{item.place}: {item.sentence}" if item.place else item.sentence)
        lines.append(f"::error {where}title={heading}::{message}\n")
    return "".join(lines)


def github_command(level: str, message: str, *, file: str | None = None, line: int | None = None,
                   title: str | None = None) -> str:
    """One workflow command line, `::error file=F,line=N,title=T::MESSAGE`, escaped as above."""
    properties = [f"{key}={_github_property(str(value))}"
                  for key, value in (("file", file), ("line", line), ("title", title)) if value is not None]
    head = f"{level} {','.join(properties)}" if properties else level
    return f"::{head}::{_github_data(message)}\n"


def _github_data(text: str) -> str:
    return safe_text(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


# -- Markdown --------------------------------------------------------------------------------------


def render_diff_markdown(changes: Sequence[Change], *, expected_name: str, actual_name: str) -> str:
    """A block to paste into a pull request comment: a summary line, then a table of changes.

    Untrusted text is escaped so that it shows as typed: no table cell broken by `|`, no code
    span, emphasis or link started, no HTML tag (`<` and `&` become entities).
    """
    if not changes:
        return f"**tracetree diff**: {_markdown(no_differences(expected_name, actual_name))}\n"
    expected, actual = _names(expected_name, actual_name)
    summary = count_line(changes, brackets=True)
    lines = [
        f"**tracetree diff** {_markdown(expected)} → {_markdown(actual)}: {_markdown(summary)}",
        "",
        "| where | change |",
        "| --- | --- |",
    ]
    for item in ordered(changes):
        sentence = "".join(_bold(text) if role == "verb" else _markdown(text) for text, role in item.parts)
        lines.append(f"| {_markdown(item.place) or '—'} | {sentence} |")
    return "\n".join(lines) + "\n"


def _bold(text: str) -> str:
    # Emphasis cannot open or close next to a space inside it (CommonMark's flanking rules).
    core = text.strip()
    if not core:
        return text
    start = text.index(core)
    return f"{text[:start]}**{_markdown(core)}**{text[start + len(core):]}"


# Characters that start Markdown syntax (emphasis, code spans, links, tables, strikethrough,
# autolinks): each gets a backslash. `<`, `>` and `&` become entities, so no tag or entity forms.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _markdown(text: str) -> str:
    safe = _MARKDOWN_SPECIAL.sub(r"\\\1", safe_text(text))
    return re.sub("[&<>]", lambda match: _ENTITIES[match.group()], safe)
