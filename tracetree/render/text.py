"""Untrusted strings made safe to show in a terminal, and cut to fit one line.

Everything a renderer shows from an event (log messages, URLs, names, attribute values, ids)
comes from code tracetree does not control. A raw ESC could recolour or clear the terminal,
move the cursor, set the window title or smuggle an OSC-8 link; `\\r` could overwrite what came
before it; bidi overrides could make a line read differently from what it holds. `safe_text`
turns every such character into a visible escape, so what the user sees is what the event holds.
Rich markup is the other half: renderers build `rich.text.Text` from these strings and never
pass them through markup, so `[bold]` in a log is shown as typed.
"""

from __future__ import annotations

import re

from rich.text import Span, Text

# C0 controls and DEL, C1 controls, the Unicode line and paragraph separators (line breaks
# to some terminals), every bidi embedding/override/isolate/mark, and lone surrogates (which
# cannot be encoded at all and would abort the write).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# The same, minus newline and tab: for renderers that show multi-line text (stack traces).
_UNSAFE_MULTILINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(s: str, *, multiline: bool = False) -> str:
    """`s` with terminal control characters and bidi controls replaced by visible escapes.

    ESC becomes `\\x1b`, CR `\\r`, newline `\\n` (kept as a line break when `multiline`),
    U+202E `\\u202e`. Backslashes are left alone: an escape shown is either a control character
    or the same text typed, which a reader can tell from context; doubling every backslash
    would mangle every Windows path and regex in a log.

    >>> safe_text("red \\x1b[31malert\\x1b[0m\\r\\n")
    'red \\\\x1b[31malert\\\\x1b[0m\\\\r\\\\n'
    """
    if s.isprintable():
        # Every character escaped here is non-printable (Cc, Cf, Zl, Zp or Cs), so this
        # C-speed check lets nearly every string through untouched.
        return s
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE
    return pattern.sub(_escape, s)


def clip(s: str, limit: int = 160) -> str:
    """`s` made safe and cut to at most `limit` characters, ending in `…` when cut.

    Only a prefix is sanitised, so a 256 KB log line costs no more than a short one.
    """
    shown = safe_text(s[: limit + 1])
    if len(shown) > limit or len(s) > limit:
        return shown[: max(limit - 1, 0)] + "…"
    return shown


def short_id(value: str, width: int = 8) -> str:
    """The tail of an id, safe to show: `…2a2a2a2b`.

    The tail rather than the head, because predictable-mode ids differ only near the end of
    each 64-bit half (`2a2a…2a2b`, `2a2a…2a2e`), while random ids are unique at either end.
    """
    text = safe_text(value)
    return text if len(text) <= width + 1 else "…" + text[-width:]


class Line:
    """One line of styled pieces, made into a `rich.text.Text` once, at the end.

    Every piece goes through `safe_text` as it is added, so no caller can forget; and
    building the Text in one go costs one pass instead of one per `Text.append`, which
    matters for trees of tens of thousands of nodes. The Text never wraps: it is cut at the
    terminal's edge with `…`.
    """

    __slots__ = ("parts",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.parts: list[tuple[str, str]] = []
        if text:
            self.add(text, style)

    def add(self, text: str, style: str = "") -> Line:
        if text:
            self.parts.append((safe_text(text), style))
        return self

    def extend(self, other: Line) -> Line:
        self.parts.extend(other.parts)
        return self

    def __bool__(self) -> bool:
        return bool(self.parts)

    @property
    def plain(self) -> str:
        return "".join([text for text, _ in self.parts])

    def text(self) -> Text:
        spans: list[Span] = []
        start = 0
        for piece, style in self.parts:
            end = start + len(piece)
            if style:
                spans.append(Span(start, end, style))
            start = end
        return Text(self.plain, spans=spans, no_wrap=True, overflow="ellipsis")
