"""The `--explain` view: for every link that is not exact or root, the evidence behind it.

Traces and callees come in the order `assemble` gives, with the tree's trace numbers and
short ids, so each block can be found in the tree.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from ..assemble import InvocationNode, SpanNode, TraceNode, assemble
from ..build import Forest
from ..links import Candidate, Evidence, Link, Resolution
from ..model import Trace
from .text import Line, clip, short_id
from .tree import describe, label_line

SELF_EVIDENT = frozenset({Resolution.ROOT, Resolution.EXACT})


def _invocations(node: TraceNode) -> Iterator[InvocationNode]:
    """Every invocation node of a trace, depth first, in assemble's order (no recursion)."""
    stack: list[InvocationNode | SpanNode] = list(reversed(node.roots))
    while stack:
        item = stack.pop()
        if isinstance(item, InvocationNode):
            yield item
            stack.extend(reversed(item.loose))
            if item.top is not None:
                stack.append(item.top)
        else:
            stack.extend(reversed(item.callees))
            stack.extend(reversed(item.spans))


def _evidence_line(item: Evidence) -> Text:
    if item.excludes:
        line = Line("excludes ", "bold red")
    elif item.weight > 0:
        line = Line(f"+{item.weight:g}".ljust(9), "green")
    elif item.weight < 0:
        line = Line(f"-{-item.weight:g}".ljust(9), "red")
    else:
        line = Line("±0".ljust(9), "dim")
    return line.add(clip(item.detail, 200)).text()


class _Explainer:
    """Builds the blocks of one forest; describes each invocation once, however often it is a candidate."""

    def __init__(self, forest: Forest) -> None:
        self.forest = forest
        self.described: dict[str, Line] = {}

    def describe(self, trace: Trace, invocation_id: str) -> Line:
        line = self.described.get(invocation_id)
        if line is None:
            invocation = trace.invocations.get(invocation_id)
            line = describe(invocation) if invocation is not None else Line("(not in the trace)", "red")
            line.add("  ").add(short_id(invocation_id), "dim")
            self.described[invocation_id] = line
        return Line().extend(line)  # a copy: callers append to it

    def candidate(self, trace: Trace, link: Link, candidate: Candidate) -> Text:
        if (candidate.invocation_id, candidate.span_id) == (link.parent_invocation_id, link.parent_span_id):
            line = Line("▶ chosen   ", "bold green")
        elif candidate.excluded:
            line = Line("✗ EXCLUDED ", "bold red")
        else:
            line = Line("  possible ", "dim")
        line.extend(self.describe(trace, candidate.invocation_id))
        line.add("  span ").add(clip(candidate.span_id, 20))
        line.add(" ").add(clip(candidate.span_name, 60) if candidate.span_name else "(top-level)", "bold")
        score = candidate.score
        style = "green" if score > 0 else "red" if score < 0 else ""
        return line.add("  score ").add(f"{score:+g}", style).text()

    def block(self, parent: Tree, trace: Trace, node: InvocationNode) -> None:
        """Add one callee's block under `parent`: the callee, why, then each candidate's evidence."""
        link = node.link
        label = self.describe(trace, node.invocation.invocation_id).add("  ").extend(label_line(link))
        block = parent.add(label.text())
        # Reasons can be long, and are tracetree's own words: they may wrap.
        block.add(Text("why: ", "dim").append(clip(link.reason or "(no reason given)", 300)))
        if link.parent is None:
            caller = node.invocation.trigger_span_id or "(none)"
            where = Line("shown as a root; its onset names caller span ", "dim").add(clip(caller, 20))
            block.add(where.text())
        if not link.candidates and not link.later_owners:
            block.add(Text("candidates: none", "dim"))
        for candidate in link.candidates:
            branch = block.add(self.candidate(trace, link, candidate))
            for item in candidate.evidence:
                branch.add(_evidence_line(item))
            if not candidate.evidence:
                branch.add(Text("no evidence either way", "dim"))
        if link.later_owners:
            more = link.later_owners
            block.add(Text(f"✗ {more} more owner{'s' if more != 1 else ''} of the span id, created after "
                           "the callee: ruled out by creation order", "dim"))

    def lacks(self, trace: Trace) -> Text:
        evidence = self.forest.evidence.get(trace.trace_id)
        if evidence is None:
            return Text("ordering evidence: unknown", "dim")
        lacking = evidence.lacks()
        if not lacking:
            return Text("ordering evidence: nothing lacking", "dim")
        return Text("ordering evidence lacking: ", "yellow").append("; ".join(lacking))


def render_explain(forest: Forest) -> RenderableType:
    """One block per non-exact, non-root link, grouped by trace; one line if there are none."""
    explainer = _Explainer(forest)
    blocks: list[RenderableType] = []
    for number, node in enumerate(assemble(forest), start=1):
        unclear = [item for item in _invocations(node) if item.link.resolution not in SELF_EVIDENT]
        if not unclear:
            continue
        count = len(unclear)
        title = Line(f"trace {number}", "bold").add("  ").add(short_id(node.trace.trace_id), "dim")
        title.add(f" · {count} link{'s' if count != 1 else ''} to explain")
        tree = Tree(title.text(), guide_style="dim")
        tree.add(explainer.lacks(node.trace))
        for item in unclear:
            explainer.block(tree, node.trace, item)
        blocks.append(tree)
    if not blocks:
        return Text("every link is exact or root: nothing to explain")
    return Group(*blocks)
