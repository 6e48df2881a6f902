"""Deep call chains: every stage handles them without a traceback."""

from __future__ import annotations

import io

from conftest import ev
from rich.console import Console

from tracetree.build import build
from tracetree.diff import diff
from tracetree.document import to_document, write_document
from tracetree.render.tree import render_tree


def chain(length: int) -> list[dict]:
    """`length` fetch invocations, each called from the previous one's top-level span."""
    events = []
    for n in range(length):
        parent = f"a{n - 1:015x}" if n else None
        events.append(ev(f"{n:032x}", 0, {"type": "onset", "spanId": f"a{n:015x}",
                                           "info": {"type": "fetch", "url": f"http://x/{n % 3}"}},
                         span=parent))
    return events


def test_a_400_deep_call_chain_builds_renders_documents_and_diffs():
    """A chain of 400 callees is linked, drawn, written and compared with itself as no change."""
    forest = build(chain(400))
    assert forest.counts()["exact"] == 399
    out = io.StringIO()
    Console(file=out, width=100).print(render_tree(forest))
    assert out.getvalue().startswith("trace 1 · 400 invocations")
    written = io.BytesIO()
    write_document(forest, written)
    document = to_document(forest)
    assert diff(document, document) == []


def test_a_removed_link_deep_in_a_chain_is_one_change():
    """Cutting a 300-deep chain in the middle reads as one move of the lower half to a root
    (and its link, once exact, is now a root's)."""
    whole = to_document(build(chain(300)))
    events = chain(300)
    events[150]["spanContext"].pop("spanId")  # invocation 150 becomes a root
    cut = to_document(build(events))
    changes = diff(whole, cut)
    assert sorted(change.kind.value for change in changes) == ["invocation-moved", "resolution-changed"]
