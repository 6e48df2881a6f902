"""The stderr summary: what was built and what the input was missing, in one or two lines."""

from __future__ import annotations

from ..build import Forest, Tally
from .text import clip


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_summary(built: Forest | Tally, *, skipped_note: bool = True) -> str:
    """Plain text (no markup, no colour) for stderr.

    The first line counts traces, invocations and links by label (labels in use only), then
    duplicates, skipped lines and invocations with events missing. With `skipped_note`, and
    lines were skipped, a second line quotes the first of them, so a user can find it.
    """
    tally = built.tally() if isinstance(built, Forest) else built
    labels = ", ".join(f"{count} {label}" for label, count in tally.links.items() if count) or "none"
    stats = tally.stats
    first = (
        f"{_plural(tally.traces, 'trace')}, {_plural(tally.invocations, 'invocation')}"
        f" · links: {labels}"
        f" · {_plural(stats.duplicates, 'duplicate')}"
        f" · {_plural(stats.skipped, 'line')} skipped"
        f" · {tally.events_missing} with events missing"
    )
    if not (skipped_note and stats.skipped and stats.skipped_examples):
        return first
    # An InputError names file and line; its detail may quote the input, so it is made safe.
    example = clip(str(stats.skipped_examples[0]), 200)
    more = stats.skipped - 1
    note = f"skipped: {example}" + (f" (and {_plural(more, 'more line')})" if more else "")
    return f"{first}\n{note}"
