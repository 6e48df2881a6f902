"""The stderr summary: what was built and what the input was missing, in one or two lines."""

from __future__ import annotations

from ..build import Forest
from .text import clip


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_summary(forest: Forest, *, skipped_note: bool = True) -> str:
    """Plain text (no markup, no colour) for stderr.

    The first line counts traces, invocations and links by label (labels in use only), then
    duplicates, skipped lines and invocations with events missing. With `skipped_note`, and
    lines were skipped, a second line quotes the first of them, so a user can find it.
    """
    invocations = [inv for trace in forest.traces for inv in trace.invocations.values()]
    counts = forest.counts()
    labels = ", ".join(f"{count} {label}" for label, count in counts.items() if count) or "none"
    stats = forest.stats
    missing = sum(1 for inv in invocations if inv.events_missing)
    first = (
        f"{_plural(len(forest.traces), 'trace')}, {_plural(len(invocations), 'invocation')}"
        f" · links: {labels}"
        f" · {_plural(stats.duplicates, 'duplicate')}"
        f" · {_plural(stats.skipped, 'line')} skipped"
        f" · {missing} with events missing"
    )
    if not (skipped_note and stats.skipped and stats.skipped_examples):
        return first
    # An InputError names file and line; its detail may quote the input, so it is made safe.
    example = clip(str(stats.skipped_examples[0]), 200)
    more = stats.skipped - 1
    note = f"skipped: {example}" + (f" (and {_plural(more, 'more line')})" if more else "")
    return f"{first}\n{note}"
