"""Comparing two trace trees semantically: what moved, appeared, disappeared or changed.

Both sides are canonical tree documents (document.py), or anything that becomes one (an event
stream is built first; a workerd-style shape is read by shapes.py). Invocations are matched by
what they are, never by ids or timestamps: first every invocation whose whole context and
subtree is identical on both sides, then, per kind of invocation, the rest by best overall fit
(an assignment). Each difference is then reported once, where it happened, worded as a
reviewer would: a moved subtree is one move, an added subtree one addition.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .depth import deep_trees
from .fields import CLOCK_FIELDS


class ChangeKind(str, enum.Enum):
    """What kind of difference a change is; the value is its stable name in JSON output."""

    INVOCATION_MOVED = "invocation-moved"  # hangs under another caller or span than expected
    INVOCATION_ADDED = "invocation-added"  # only in actual (with everything below it)
    INVOCATION_REMOVED = "invocation-removed"  # only in expected (with everything below it)
    RESOLUTION_CHANGED = "resolution-changed"  # how sure the link is: exact → ambiguous
    ONSET_CHANGED = "onset-changed"  # a field of the onset (trigger, entrypoint, …)
    OUTCOME_CHANGED = "outcome-changed"  # an invocation's or a span's outcome
    SPAN_ADDED = "span-added"
    SPAN_REMOVED = "span-removed"
    SPAN_RENAMED = "span-renamed"  # same place, other name: reads as a rename
    ATTRIBUTE_ADDED = "attribute-added"
    ATTRIBUTE_REMOVED = "attribute-removed"
    ATTRIBUTE_CHANGED = "attribute-changed"
    EVENT_ADDED = "event-added"  # a log, exception or other event aimed at a span
    EVENT_REMOVED = "event-removed"
    EVENT_CHANGED = "event-changed"

    def __str__(self) -> str:
        return self.value


class Level(str, enum.Enum):
    """How much a comparison looks at."""

    INVOCATION = "invocation"  # only how invocations hang together
    SPAN = "span"  # and the spans inside them
    FULL = "full"  # and attributes, outcomes, logs, exceptions, link resolutions

    def __str__(self) -> str:
        return self.value


_INVOCATION_LEVEL = frozenset({
    ChangeKind.INVOCATION_MOVED, ChangeKind.INVOCATION_ADDED, ChangeKind.INVOCATION_REMOVED,
})
_SPAN_LEVEL = _INVOCATION_LEVEL | {ChangeKind.SPAN_ADDED, ChangeKind.SPAN_REMOVED, ChangeKind.SPAN_RENAMED}

# Swapping the sides of a comparison turns each change into its mirror.
_MIRROR = {
    ChangeKind.INVOCATION_ADDED: ChangeKind.INVOCATION_REMOVED,
    ChangeKind.INVOCATION_REMOVED: ChangeKind.INVOCATION_ADDED,
    ChangeKind.SPAN_ADDED: ChangeKind.SPAN_REMOVED,
    ChangeKind.SPAN_REMOVED: ChangeKind.SPAN_ADDED,
    ChangeKind.ATTRIBUTE_ADDED: ChangeKind.ATTRIBUTE_REMOVED,
    ChangeKind.ATTRIBUTE_REMOVED: ChangeKind.ATTRIBUTE_ADDED,
    ChangeKind.EVENT_ADDED: ChangeKind.EVENT_REMOVED,
    ChangeKind.EVENT_REMOVED: ChangeKind.EVENT_ADDED,
}


@dataclass(frozen=True, slots=True, order=True)
class Change:
    """One difference: its kind, where it is (a readable path), and the value before and after.

    `field` names what changed as a dotted path (`attributes.http.request.method`, `outcome`,
    `logs`, `exceptions`, `events.diagnosticChannel`, `resolution`, `onset.entrypoint`, or
    `invocation` / `span` for structure); `--ignore GLOB` matches it.
    """

    path: str
    kind: ChangeKind
    field: str
    before: Any = field(default=None, compare=False)
    after: Any = field(default=None, compare=False)
    # Where the same thing is named from the other side (in its own trace numbers): what the
    # path becomes when the sides are swapped.
    other_path: str | None = field(default=None, compare=False)

    def mirrored(self) -> Change:
        """The same change seen from the other side (actual as expected and back)."""
        path = self.path if self.other_path is None else self.other_path
        return Change(path, _MIRROR.get(self.kind, self.kind), self.field, self.after, self.before,
                      other_path=self.path)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "path": self.path, "field": self.field,
                "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class DiffOptions:
    """What counts as a difference."""

    level: Level = Level.FULL
    ignore: tuple[str, ...] = ()  # globs on Change.field

    def counts(self, change: Change) -> bool:
        if self.level is Level.INVOCATION and change.kind not in _INVOCATION_LEVEL:
            return False
        if self.level is Level.SPAN and change.kind not in _SPAN_LEVEL:
            return False
        return not any(fnmatch.fnmatchcase(change.field, pattern) or
                       fnmatch.fnmatchcase(change.field.split(".", 1)[0], pattern)
                       for pattern in self.ignore)


# -- the trees compared ------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class SpanNode:
    name: str
    attributes: dict[str, Any]
    outcome: Any
    events: list[tuple[str, str]]  # (event type, its content as canonical JSON)
    spans: list[SpanNode] = field(default_factory=list)
    callees: list[InvocationNode] = field(default_factory=list)
    owner: InvocationNode | None = None
    parent: SpanNode | None = None
    label: str = ""  # name, with #k when the invocation has several spans of that name
    synthetic: bool = False  # stands in for spans a shape does not have: left out of paths
    signature: str = ""  # a digest of everything in and below it
    content: Counter[str] = field(default_factory=Counter)  # what it and the spans below hold


@dataclass(eq=False, slots=True)
class InvocationNode:
    kind: tuple[str, ...]  # what it is: trigger type, entrypoint, script, method, target…
    label: str  # how a reviewer names it: "fetch GET /api", "jsrpc getCounter"
    onset: dict[str, Any]
    outcome: Any
    resolution: str | None
    top: SpanNode | None
    trace: int  # 1-based trace number on its side
    caller: SpanNode | None = None  # the span it hangs under; None for a root
    signature: str = ""  # everything below it, for the exact-match pass
    context: str = ""  # the chain of callers and spans above it
    key: str | None = None  # its name in a workerd-style shape, where one side is a shape


@dataclass(slots=True)
class Tree:
    """One side of a comparison: its invocations, and whether it has spans at all (shapes don't)."""

    invocations: list[InvocationNode]
    has_spans: bool = True
    source: str = ""
    resolver: str | None = None  # which resolver linked it ("evidence", "naive"), if known
    # Fields whose values were normalized to labels: they name other nodes, so their values
    # follow numbering, not behaviour, and are compared by presence only.
    labelled: frozenset[str] = frozenset()


def tree_from_document(document: dict[str, Any], source: str = "") -> Tree:
    """The comparable tree of a canonical tree document."""
    invocations: list[InvocationNode] = []
    labelled = frozenset(document.get("normalized") or ()) - CLOCK_FIELDS
    with deep_trees(f"cannot read {source or 'the document'}"):
        for number, trace in enumerate(document.get("traces", []), start=1):
            for root in trace.get("roots", []):
                _read_invocation(root, number, None, invocations, labelled)
    resolver = (document.get("summary") or {}).get("resolver")
    return finish_tree(Tree(invocations, True, source, resolver, labelled))


def _read_invocation(
    data: dict[str, Any], trace: int, caller: SpanNode | None, out: list[InvocationNode],
    labelled: frozenset[str],
) -> InvocationNode:
    onset = _unlabel(data.get("onset") or {}, labelled)
    top_data = data.get("span")
    node = InvocationNode(
        kind=invocation_kind(onset, (top_data or {}).get("attributes") or {}),
        label="",
        onset=onset,
        outcome=(data.get("outcome") or {}).get("outcome"),
        resolution=(data.get("link") or {}).get("resolution"),
        top=None,
        trace=trace,
        caller=caller,
    )
    node.label = invocation_label(node.kind)
    out.append(node)
    if top_data is not None:
        node.top = _read_span(top_data, node, None, trace, out, labelled)
        for loose in data.get("unattached") or []:
            node.top.spans.append(_read_span(loose, node, node.top, trace, out, labelled))
    _number_spans(node)
    return node


def _read_span(
    data: dict[str, Any], owner: InvocationNode, parent: SpanNode | None, trace: int,
    out: list[InvocationNode], labelled: frozenset[str],
) -> SpanNode:
    events = [
        (str((item.get("event") or {}).get("type")), _canonical(_event_content(item)))
        for item in data.get("events") or []
        if (item.get("event") or {}).get("type") not in ("attributes", "outcome")
    ]
    span = SpanNode(str(data.get("name", "")), _unlabel(data.get("attributes") or {}, labelled),
                    data.get("outcome"), events, owner=owner, parent=parent)
    for child in data.get("spans") or []:
        span.spans.append(_read_span(child, owner, span, trace, out, labelled))
    for callee in data.get("callees") or []:
        span.callees.append(_read_invocation(callee, trace, span, out, labelled))
    return span


# What a labelled value is compared as: it is there, whatever node it names.
LABEL = "<label>"


def _unlabel(mapping: dict[str, Any], labelled: frozenset[str]) -> dict[str, Any]:
    return {key: (LABEL if key in labelled and value is not None else value)
            for key, value in mapping.items()}


def _event_content(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in (item.get("event") or {}).items() if key != "type"}


def _number_spans(node: InvocationNode) -> None:
    """Give each span a label unique within its invocation: its name, #k among namesakes."""
    spans = list(_walk_spans(node.top)) if node.top else []
    totals = Counter(span.name for span in spans)
    seen: Counter[str] = Counter()
    for span in spans:
        seen[span.name] += 1
        span.label = f"{span.name}#{seen[span.name]}" if totals[span.name] > 1 else span.name


def _walk_spans(span: SpanNode) -> Iterator[SpanNode]:
    """The span and every span below it, parents before children, siblings in order."""
    stack = [span]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.spans))


def invocation_kind(onset: dict[str, Any], top_attributes: dict[str, Any]) -> tuple[str, ...]:
    """What an invocation is, from its onset: stable across runs, ids and clocks."""
    info = onset.get("info") if isinstance(onset.get("info"), dict) else {}
    trigger = str(info.get("type", "unknown"))
    target = ""
    if trigger == "fetch":
        target = f"{info.get('method', '')} {_url_path(str(info.get('url', '')))}".strip()
    elif trigger == "jsrpc":
        target = str(top_attributes.get("jsrpc.method") or "")
    elif trigger == "scheduled":
        target = str(info.get("cron") or "")
    elif trigger == "queue":
        target = str(info.get("queueName") or "")
    elif trigger == "hibernatableWebSocket":
        target = str((info.get("info") or {}).get("type") or "")
    elif trigger == "email":
        target = str(info.get("mailFrom") or "")
    return (trigger, target, str(onset.get("entrypoint") or ""), str(onset.get("scriptName") or ""))


def _url_path(url: str) -> str:
    """The URL without scheme and host when it has them: `http://x/api?q` → `/api?q`."""
    if "://" in url:
        rest = url.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return url


def invocation_label(kind: tuple[str, ...]) -> str:
    trigger, target, entrypoint, script = kind
    words = [trigger] + [part for part in (target,) if part]
    if entrypoint:
        words.append(f"({entrypoint})")
    elif script:
        words.append(f"({script})")
    return " ".join(words)


def _canonical(value: Any) -> str:
    """Canonical JSON text of a value, however deeply nested (a log message can be)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:  # orjson stops at 255 levels
        try:
            return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
        except RecursionError:
            return repr(value)


def _digest(value: Any) -> str:
    """A fixed-size stand-in for a subtree: nesting callee signatures verbatim would grow them
    with every level of calls (and re-escape them at each)."""
    return hashlib.blake2b(_canonical(value).encode(), digest_size=16).hexdigest()


def finish_tree(tree: Tree) -> Tree:
    """Signatures (what is below) and contexts (what is above) of every invocation: call it on
    a Tree built by hand (shapes.py does) before comparing it."""
    for node in reversed(tree.invocations):  # callees come after their callers: bottom-up
        node.signature = _digest([node.kind, node.onset, node.outcome, node.resolution,
                                  _span_signature(node.top)])
    for node in tree.invocations:  # top-down: a caller's context is known before its callees'
        caller = node.caller
        if caller is None or caller.owner is None:
            node.context = ""
        else:
            node.context = _digest([caller.owner.context, caller.owner.kind, caller.label])
    return tree


def _span_signature(span: SpanNode | None) -> Any:
    if span is None:
        return None
    # Iterative: spans can nest deeper than Python's recursion allows.
    for current in reversed(list(_walk_spans(span))):
        current.signature = _digest([
            current.name, current.attributes, current.outcome, current.events,
            [child.signature for child in current.spans],
            sorted(callee.signature for callee in current.callees),
        ])
        current.content = Counter(
            [current.name, f"outcome={current.outcome}",
             *(f"{key}={_canonical(value)}" for key, value in current.attributes.items()),
             *(f"{kind}:{content}" for kind, content in current.events),
             *(f"calls {'/'.join(callee.kind)}" for callee in current.callees)])
        for child in current.spans:
            current.content.update(child.content)
    return span.signature


# -- matching ------------------------------------------------------------------------------------


def match_trees(expected: Tree, actual: Tree) -> tuple[dict[int, InvocationNode], dict[int, SpanNode]]:
    """Pair the invocations of two trees (id(expected node) → actual node), and the spans of
    every pair (id(expected span) → actual span; none against a shape, which has no spans).

    In passes, each followed by pairing what hangs below new pairs (callees of one kind under
    paired spans, by best fit), so that a subtree is matched from its top:
    1. invocations identical in kind, context and everything below them (the bulk of two
       similar trees, in linear time);
    2. roots of one kind;
    3. subtrees identical below their top but hung elsewhere (moves);
    4. the rest, kind by kind, by the best total similarity (an assignment), so that one extra
       sibling among look-alikes reads as one addition, not as a cascade of changes.
    """
    matcher = _Matcher(expected, actual)
    return matcher.run(), matcher.span_pairs


class _Matcher:
    def __init__(self, expected: Tree, actual: Tree) -> None:
        self.expected, self.actual = expected, actual
        self.pairs: dict[int, InvocationNode] = {}
        self.span_pairs: dict[int, SpanNode] = {}
        self.taken: set[int] = set()
        self.by_key = not expected.has_spans or not actual.has_spans
        self._censuses: dict[int, Counter[tuple[str, ...]]] = {}
        self._index = {id(node): node for node in expected.invocations}
        self._traces: dict[int, int] | None = None  # expected trace → actual, by paired roots

    def run(self) -> dict[int, InvocationNode]:
        # Identical root subtrees first, each preferring the root of the same trace number;
        # everything below a pair is then paired from the top, never across look-alike parents.
        exact: dict[str, list[InvocationNode]] = defaultdict(list)
        for node in self._free(self.actual, root=True):
            exact[node.signature].append(node)
        for same_trace in (True, False):  # within a trace number first, then across
            for node in self._free(self.expected, root=True):
                bucket = [other for other in exact.get(node.signature, ())
                          if id(other) not in self.taken and (other.trace == node.trace or not same_trace)]
                if bucket:
                    self._pair(node, bucket[0])
                    self._descend([(node, bucket[0])])
        roots = [(self._free(self.expected, root=True), self._free(self.actual, root=True))]
        self._descend(self._assign_by_kind(*roots[0]))
        self._descend(self._moved_subtrees())
        for _ in range(2):  # a second round lets callees follow callers paired in the first
            # Against a shape a key is an identity: pair whatever shares one.
            threshold = 0.0 if self.by_key else _LEFTOVER_SIMILARITY
            self._descend(self._assign_by_kind(self._free(self.expected), self._free(self.actual),
                                               threshold=threshold, leftover=True))
        return self.pairs

    def _pair(self, a: InvocationNode, b: InvocationNode) -> None:
        self.pairs[id(a)] = b
        self.taken.add(id(b))

    def _free(self, tree: Tree, *, root: bool = False) -> list[InvocationNode]:
        mine = tree is self.expected
        return [node for node in tree.invocations
                if (id(node) not in self.pairs if mine else id(node) not in self.taken)
                and (not root or node.caller is None)]

    def _kind(self, node: InvocationNode, mine: Tree) -> tuple[str, ...]:
        theirs = self.actual if mine is self.expected else self.expected
        return _match_kind(node, mine, theirs)

    def _descend(self, queue: Iterable[tuple[InvocationNode, InvocationNode]]) -> None:
        """Pair the callees of paired invocations, top-down: same kind, under paired spans."""
        work = list(queue)
        while work:
            a, b = work.pop()
            if a.top is None or b.top is None:
                continue
            # Spans pair as the comparison pairs them (by name, then by fit), so a renamed or
            # removed span does not shift which callees its namesakes' callees meet.
            if not self.by_key:
                _pair_spans(a.top, b.top, self.span_pairs)
            left = self._callees(a, self.expected, lambda n: id(n) not in self.pairs, self.span_pairs)
            right = self._callees(b, self.actual, lambda n: id(n) not in self.taken)
            for group, lefts in left.items():
                rights = right.get(group)
                if rights:
                    work.extend(self._assign(lefts, rights))

    def _callees(
        self, node: InvocationNode, tree: Tree, free: Callable[[InvocationNode], bool],
        span_pairs: dict[int, SpanNode] | None = None,
    ) -> dict[tuple[Any, ...], list[InvocationNode]]:
        """Free callees of a node, grouped by the span they hang under (on the expected side, the
        actual span it pairs with; a shape has one span) and their kind."""
        groups: dict[tuple[Any, ...], list[InvocationNode]] = defaultdict(list)
        assert node.top is not None
        for span in _walk_spans(node.top):
            if self.by_key:
                where = 0
            else:
                place = span_pairs.get(id(span)) if span_pairs is not None else span
                if place is None:
                    continue  # under a span with no partner: left to the later passes
                where = id(place)
            for callee in span.callees:
                if free(callee):
                    groups[(where, *self._kind(callee, tree))].append(callee)
        return groups

    def _assign_by_kind(self, lefts: list[InvocationNode], rights: list[InvocationNode],
                        threshold: float = 0.0, leftover: bool = False
                        ) -> list[tuple[InvocationNode, InvocationNode]]:
        by_left: dict[tuple[str, ...], list[InvocationNode]] = defaultdict(list)
        by_right: dict[tuple[str, ...], list[InvocationNode]] = defaultdict(list)
        for node in lefts:
            by_left[self._kind(node, self.expected)].append(node)
        for node in rights:
            by_right[self._kind(node, self.actual)].append(node)
        new: list[tuple[InvocationNode, InvocationNode]] = []
        for kind, group in by_left.items():
            if by_right.get(kind):
                # A kind found once in each whole tree is the same invocation, however changed.
                unique = self._census(self.expected).get(kind) == 1 == self._census(self.actual).get(kind)
                new.extend(self._assign(group, by_right[kind], 0.0 if unique else threshold, leftover))
        return new

    def _census(self, tree: Tree) -> Counter[tuple[str, ...]]:
        """How many invocations of each kind a tree holds."""
        census = self._censuses.get(id(tree))
        if census is None:
            census = self._censuses[id(tree)] = Counter(self._kind(node, tree) for node in tree.invocations)
        return census

    def _assign(
        self, lefts: list[InvocationNode], rights: list[InvocationNode],
        threshold: float = 0.0, leftover: bool = False,
    ) -> list[tuple[InvocationNode, InvocationNode]]:
        """Best total similarity between two groups of one kind (an assignment); pairs below
        the threshold, and (for leftovers) unlike pairs across traces, are left apart."""
        if len(lefts) == 1 and len(rights) == 1 and threshold <= 0 and not leftover:
            pairs = [(lefts[0], rights[0])]
        else:
            similarity = _key_similarity if self.by_key else _similarity
            scores = [[similarity(a, b, self.pairs) for b in rights] for a in lefts]
            rows, columns = _solve(scores)
            pairs = [(lefts[row], rights[column]) for row, column in zip(rows, columns, strict=True)
                     if scores[row][column] >= threshold
                     and (not leftover or self._may_cross(lefts[row], rights[column]))]
        for a, b in pairs:
            self._pair(a, b)
        return pairs

    def _may_cross(self, a: InvocationNode, b: InvocationNode) -> bool:
        """Whether two leftovers may pair: within one trace (as the paired roots map traces),
        or across traces only when the same thing below or the same chain of callers above
        says they are one invocation that moved. Keys (a shape) are identities: always."""
        if self.by_key:
            return True
        if self._traces is None:
            self._traces = {a.trace: b.trace for key, b in self.pairs.items()
                            for a in [self._index[key]] if a.caller is None and b.caller is None}
        return self._traces.get(a.trace) == b.trace or a.signature == b.signature or a.context == b.context

    def _moved_subtrees(self) -> list[tuple[InvocationNode, InvocationNode]]:
        """Unpaired invocations whose whole subtree is identical on both sides: the same thing,
        hung elsewhere. Largest subtrees first, so a moved subtree pairs from its top, and a
        look-alike of a part of it cannot take that part away."""
        by_signature: dict[str, list[InvocationNode]] = defaultdict(list)
        for node in self._free(self.actual):
            by_signature[node.signature].append(node)
        new = []
        # Only tops whose caller is settled: below an unpaired caller, identical twins would
        # pair by chance here, before that caller (paired later) takes its own callees along.
        free = [node for node in self._free(self.expected)
                if node.caller is None or node.caller.owner is None or id(node.caller.owner) in self.pairs]
        sizes = _subtree_sizes(free)
        for node in sorted(free, key=lambda n: -sizes[id(n)]):  # stable: tree order among equals
            bucket = by_signature.get(node.signature)
            while bucket and id(bucket[0]) in self.taken:
                bucket.pop(0)
            if bucket and id(node) not in self.pairs:
                partner = bucket.pop(0)
                self._pair(node, partner)
                new.append((node, partner))
                self._descend([(node, partner)])
        return new


# Far below any real difference in similarity (sums of halves and overlaps), yet above float noise.
_ORDER_TIE_BREAK = 1e-9


def _solve(scores: list[list[float]]) -> tuple[Any, Any]:
    """The best total assignment of rows to columns (scipy's, compiled; imported on first use,
    so that `import tracetree` and `--help` stay quick). Among equally good assignments, the
    one that keeps tree order: twins that nothing else tells apart pair first with first, so a
    change between them reads the same whichever side is expected."""
    from scipy.optimize import linear_sum_assignment

    weights = [[score - _ORDER_TIE_BREAK * abs(i - j) for j, score in enumerate(row)]
               for i, row in enumerate(scores)]
    return linear_sum_assignment(weights, maximize=True)


def _subtree_sizes(nodes: list[InvocationNode]) -> dict[int, int]:
    """Invocations in each node's subtree (itself included), for nodes given in tree order."""
    sizes: dict[int, int] = {}
    for node in reversed(nodes):  # callees come after their callers
        sizes[id(node)] = 1 + sum(sizes.get(id(callee), _count_below(callee) + 1)
                                  for span in (_walk_spans(node.top) if node.top else ())
                                  for callee in span.callees)
    return sizes


def _match_kind(node: InvocationNode, mine: Tree, theirs: Tree) -> tuple[str, ...]:
    # A shape knows invocations only by key: against one, invocations match on their keys
    # (an invocation no key rule recognizes matches nothing, and reads as added or removed).
    if not mine.has_spans or not theirs.has_spans:
        return ("key", node.key) if node.key is not None else ("unkeyed", str(id(node)))
    return node.kind


def _similarity(a: InvocationNode, b: InvocationNode, pairs: dict[int, InvocationNode]) -> float:
    """How alike two invocations of one kind are: context above, content below, in (0, 19]."""
    score = 1.0
    if a.signature == b.signature:
        score += 6.0  # everything below is the same
    if a.trace == b.trace:
        score += 0.5
    if a.context == b.context:
        score += 4.0
    elif a.caller is not None and b.caller is not None and a.caller.label == b.caller.label:
        score += 1.0
    parent_a = a.caller.owner if a.caller else None
    parent_b = b.caller.owner if b.caller else None
    if parent_a is not None and parent_b is not None and pairs.get(id(parent_a)) is parent_b:
        score += 2.0
    if a.outcome == b.outcome:
        score += 0.5
    if a.onset == b.onset:
        score += 1.0  # look-alikes that differ only in their trigger's details stay apart
    score += 2.5 * _overlap(_span_names(a), _span_names(b))
    # Look-alikes (twin roots, say) are told apart by which callees hang where: the one whose
    # callees sit under the same spans pairs, so a move between twins reads as one move.
    score += 2.0 * _overlap(_placed_callees(a), _placed_callees(b))
    return score


# The last pass pairs leftovers of one kind anywhere in the trees: below this much similarity
# (no shared context or caller, little shared content) two of them are one removal and one
# addition, not one invocation that moved and changed.
_LEFTOVER_SIMILARITY = 4.0


def _key_similarity(a: InvocationNode, b: InvocationNode, pairs: dict[int, InvocationNode]) -> float:
    """Like _similarity, where one side is a shape: only keys can agree, so the chain of
    callers' keys above and the keys of the callees below stand for context and content."""
    score = 1.0
    if a.signature == b.signature:
        score += 6.0
    if _key_chain(a) == _key_chain(b):
        score += 4.0
    parent_a = a.caller.owner if a.caller else None
    parent_b = b.caller.owner if b.caller else None
    if parent_a is not None and parent_b is not None and pairs.get(id(parent_a)) is parent_b:
        score += 2.0
    score += 2.5 * _overlap(_callee_keys(a), _callee_keys(b))
    return score


def _key_chain(node: InvocationNode) -> list[str | None]:
    chain = []
    caller = node.caller
    while caller is not None and caller.owner is not None:
        chain.append(caller.owner.key)
        caller = caller.owner.caller
    return chain


def _callee_keys(node: InvocationNode) -> Counter[str]:
    if node.top is None:
        return Counter()
    return Counter(str(callee.key) for span in _walk_spans(node.top) for callee in span.callees)


def _placed_callees(node: InvocationNode) -> Counter[str]:
    """Each callee, by what it is and the span it hangs under."""
    if node.top is None:
        return Counter()
    return Counter(f"{span.label}>{callee.signature}"
                   for span in _walk_spans(node.top) for callee in span.callees)


def _span_names(node: InvocationNode) -> Counter[str]:
    return Counter(span.name for span in _walk_spans(node.top)) if node.top else Counter()


def _overlap(a: Counter[str], b: Counter[str]) -> float:
    total = sum((a | b).values())
    return sum((a & b).values()) / total if total else 1.0


# -- comparing -----------------------------------------------------------------------------------


def diff_trees(expected: Tree, actual: Tree, options: DiffOptions = DiffOptions()) -> list[Change]:
    """Every difference between two trees that the options count, in path order."""
    pairs, span_pairs = match_trees(expected, actual)
    reverse = {id(b) for b in pairs.values()}
    # Labels of two resolvers (the upstream rule's and tracetree's) say different things.
    same_resolver = expected.resolver == actual.resolver or None in (expected.resolver, actual.resolver)
    changes: list[Change] = []
    compare_spans = expected.has_spans and actual.has_spans
    # Paths read in the actual tree's trace numbers; a trace only expected says so.
    numbers = {a.trace: b.trace for a in expected.invocations if a.caller is None
               for b in [pairs.get(id(a))] if b is not None and b.caller is None}

    unnumbers = {b: a for a, b in numbers.items()}

    def before(node: InvocationNode, span: SpanNode | None = None) -> str:
        return path_of(node, span, lambda n: f"trace {numbers[n]}" if n in numbers
                       else f"expected trace {n}")

    def after_seen_from_expected(node: InvocationNode) -> str:
        # How the other direction of the comparison names this node: in expected's numbers.
        return path_of(node, None, lambda n: f"trace {unnumbers[n]}" if n in unnumbers
                       else f"expected trace {n}")

    for a in expected.invocations:
        b = pairs.get(id(a))
        if b is None:
            if a.caller is None or id(a.caller.owner) in pairs:
                changes.append(Change(before(a), ChangeKind.INVOCATION_REMOVED, "invocation",
                                      _subtree_summary(a), None, other_path=path_of(a)))
            continue
        if _moved(a, b, pairs, span_pairs, compare_spans):
            where = f"trace {numbers.get(a.trace, a.trace)} (a root)" if a.caller is None else \
                before(a.caller.owner, a.caller) if a.caller.owner else "?"
            changes.append(Change(path_of(b), ChangeKind.INVOCATION_MOVED, "invocation", where, _place(b),
                                  other_path=path_of(a)))
        if compare_spans:
            changes.extend(_compare_invocation(a, b, span_pairs, same_resolver))
    for b in actual.invocations:
        if id(b) in reverse:
            continue
        if b.caller is None or id(b.caller.owner) in reverse:
            changes.append(Change(path_of(b), ChangeKind.INVOCATION_ADDED, "invocation", None,
                                  _subtree_summary(b), other_path=after_seen_from_expected(b)))
    return sorted((change for change in changes if options.counts(change)), key=_reading_order)


def _reading_order(change: Change) -> tuple[Any, ...]:
    """Trace 2 before trace 10: paths sorted with their trace numbers as numbers."""
    head, _, rest = change.path.partition(" › ")
    words = head.split()
    number = int(words[-1]) if words and words[-1].isdigit() else 0
    return (head.startswith("expected"), number, rest, change.kind.value, change.field)


def _moved(
    a: InvocationNode, b: InvocationNode, pairs: dict[int, InvocationNode],
    span_pairs: dict[int, SpanNode], compare_spans: bool,
) -> bool:
    """Whether b hangs somewhere else than a: under another caller, or another span of it."""
    if a.caller is None and b.caller is None:
        return False
    if a.caller is not None and b.caller is not None:
        same_owner = pairs.get(id(a.caller.owner)) is b.caller.owner
        same_span = not compare_spans or span_pairs.get(id(a.caller)) is b.caller
        if same_owner and same_span:
            return False
    return True


SEPARATOR = " › "
def _place(node: InvocationNode) -> str:
    if node.caller is None:
        return f"trace {node.trace} (a root)"
    return path_of(node.caller.owner, node.caller) if node.caller.owner else "?"


def path_of(
    node: InvocationNode | None, span: SpanNode | None = None,
    trace_name: Callable[[int], str] = lambda number: f"trace {number}",
) -> str:
    """`trace 2 › fetch GET /api › jsRpcCall#3 › jsrpc getCounter`: callers and dispatch spans."""
    parts: list[str] = []
    if span is not None and not span.synthetic:
        parts.append(span.label)
    current = node
    while current is not None:
        parts.append(current.label)
        if current.caller is None or current.caller.owner is None:
            parts.append(trace_name(current.trace))
            break
        if not current.caller.synthetic:
            parts.append(current.caller.label)
        current = current.caller.owner
    return " › ".join(reversed(parts))


def _subtree_summary(node: InvocationNode) -> str:
    below = _count_below(node)
    return node.label + (f" (and {below} invocation{'s' if below != 1 else ''} below it)" if below else "")


def _count_below(node: InvocationNode) -> int:
    if node.top is None:
        return 0
    return sum(1 + _count_below(callee) for span in _walk_spans(node.top) for callee in span.callees)


def _pair_spans(a: SpanNode, b: SpanNode, pairs: dict[int, SpanNode]) -> None:
    """Pair two spans and, recursively, their child spans: by name, then by best fit."""
    pairs[id(a)] = b
    children_a, children_b = a.spans, b.spans
    if not children_a or not children_b:
        return
    if [c.name for c in children_a] == [c.name for c in children_b]:
        for x, y in zip(children_a, children_b, strict=True):
            _pair_spans(x, y, pairs)
        return
    # Namesakes first, by best fit (six jsRpcCall spans and one more: one addition) ...
    scores = [[_span_similarity(x, y) if x.name == y.name else -1e6 for y in children_b] for x in children_a]
    rows, columns = _solve(scores)
    paired_a, paired_b = set(), set()
    for row, column in zip(rows, columns, strict=True):
        if scores[row][column] > -1e6:
            _pair_spans(children_a[row], children_b[column], pairs)
            paired_a.add(row)
            paired_b.add(column)
    # ... then what is left reads as renamed where it sits at the same place: all of it, in
    # order, when as many spans are left on both sides, else those at the same position.
    left_a = [i for i in range(len(children_a)) if i not in paired_a]
    left_b = [i for i in range(len(children_b)) if i not in paired_b]
    if len(left_a) == len(left_b):
        renamed = list(zip(left_a, left_b, strict=True))
    else:
        renamed = [(i, i) for i in left_a if i in set(left_b)]
    for i, j in renamed:
        _pair_spans(children_a[i], children_b[j], pairs)


def _span_similarity(a: SpanNode, b: SpanNode) -> float:
    """How alike two spans of one name are: identical below (+8), else what they and the spans
    below them hold (names, attributes, the kinds they call) in common."""
    score = 10.0 if a.name == b.name else 0.0
    if a.signature and a.signature == b.signature:
        score += 8.0
    score += 4.0 * _overlap(a.content, b.content)
    return score


def _compare_invocation(
    a: InvocationNode, b: InvocationNode, span_pairs: dict[int, SpanNode], same_resolver: bool
) -> list[Change]:
    changes: list[Change] = []
    here, there = path_of(b), path_of(a)
    if same_resolver and a.resolution != b.resolution and None not in (a.resolution, b.resolution):
        changes.append(Change(here, ChangeKind.RESOLUTION_CHANGED, "resolution", a.resolution, b.resolution,
                              other_path=there))
    if a.outcome != b.outcome:
        changes.append(Change(here, ChangeKind.OUTCOME_CHANGED, "outcome", a.outcome, b.outcome,
                              other_path=there))
    for key in sorted(set(a.onset) | set(b.onset)):
        if key.startswith("__"):
            continue
        if a.onset.get(key) != b.onset.get(key):
            changes.append(Change(here, ChangeKind.ONSET_CHANGED, f"onset.{key}",
                                  a.onset.get(key), b.onset.get(key), other_path=there))
    if a.top is not None and b.top is not None:
        changes.extend(_compare_span(a.top, b.top, a, b, span_pairs, top=True))
    return changes


def _compare_span(
    a: SpanNode, b: SpanNode, owner_a: InvocationNode, owner_b: InvocationNode,
    span_pairs: dict[int, SpanNode], *, top: bool = False,
) -> list[Change]:
    changes: list[Change] = []
    here = path_of(owner_b) if top else path_of(owner_b, b)
    there = path_of(owner_a) if top else path_of(owner_a, a)
    if not top and a.name != b.name:
        # Named by where it sits (its invocation, or its parent span): its own label is what
        # changed, and would name it differently from either side.
        parent_b = b.parent if b.parent is not None and b.parent is not owner_b.top else None
        parent_a = a.parent if a.parent is not None and a.parent is not owner_a.top else None
        changes.append(Change(path_of(owner_b, parent_b), ChangeKind.SPAN_RENAMED, "span", a.name, b.name,
                              other_path=path_of(owner_a, parent_a)))
    for key in sorted(set(a.attributes) | set(b.attributes)):
        before, after = a.attributes.get(key, _MISSING), b.attributes.get(key, _MISSING)
        if before == after:
            continue
        kind = (ChangeKind.ATTRIBUTE_ADDED if before is _MISSING else
                ChangeKind.ATTRIBUTE_REMOVED if after is _MISSING else ChangeKind.ATTRIBUTE_CHANGED)
        changes.append(Change(here, kind, f"attributes.{key}",
                              None if before is _MISSING else before, None if after is _MISSING else after,
                              other_path=there))
    if not top and a.outcome != b.outcome:
        changes.append(Change(here, ChangeKind.OUTCOME_CHANGED, "outcome", a.outcome, b.outcome,
                              other_path=there))
    changes.extend(_compare_events(a.events, b.events, here, there))
    paired_b = set()
    for child in a.spans:
        partner = span_pairs.get(id(child))
        if partner is None:
            # Named where its invocation is now (it may have moved), by its expected label.
            removed_at = f"{path_of(owner_b)} › {child.label}"
            changes.append(Change(removed_at, ChangeKind.SPAN_REMOVED, "span", child.name, None,
                                  other_path=path_of(owner_a, child)))
            continue
        paired_b.add(id(partner))
        changes.extend(_compare_span(child, partner, owner_a, owner_b, span_pairs))
    for child in b.spans:
        if id(child) not in paired_b:
            changes.append(Change(path_of(owner_b, child), ChangeKind.SPAN_ADDED, "span", None, child.name,
                                  other_path=f"{path_of(owner_a)} › {child.label}"))
    return changes


_MISSING = object()


def _compare_events(
    before: list[tuple[str, str]], after: list[tuple[str, str]], here: str, there: str
) -> list[Change]:
    """Logs, exceptions and other events of a span, compared as multisets: a changed one is an
    event of the same type at the same rank among its type that reads differently."""
    common = Counter(before) & Counter(after)
    removed = list((Counter(before) - common).elements())
    added = list((Counter(after) - common).elements())
    changes: list[Change] = []
    for kind in sorted({k for k, _ in removed} | {k for k, _ in added}):
        old = [content for k, content in removed if k == kind]
        new = [content for k, content in added if k == kind]
        name = event_field(kind)
        for x, y in zip(old, new, strict=False):
            changes.append(Change(here, ChangeKind.EVENT_CHANGED, name, _load(x), _load(y), other_path=there))
        for x in old[len(new):]:
            changes.append(Change(here, ChangeKind.EVENT_REMOVED, name, _load(x), None, other_path=there))
        for y in new[len(old):]:
            changes.append(Change(here, ChangeKind.EVENT_ADDED, name, None, _load(y), other_path=there))
    return changes


def event_field(event_type: str) -> str:
    """The field name of an event kind, as `--ignore` takes it: `logs`, `exceptions`, `events.X`."""
    return {"log": "logs", "exception": "exceptions"}.get(event_type, f"events.{event_type}")


def _load(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text


# -- the public entry point -------------------------------------------------------------------------


def diff(
    expected: dict[str, Any] | Tree,
    actual: dict[str, Any] | Tree,
    *,
    level: Level | str = Level.FULL,
    ignore: Sequence[str] | Iterable[str] = (),
    rules: Any = None,
) -> list[Change]:
    """The changes from `expected` to `actual`: each a frozen Change (kind, path, before, after).

    Either side is a canonical tree document (a dict, as `load_document` returns) or a Tree
    (shapes.tree_from_shape gives one for a workerd-style shape; `rules` then say which
    invocation of the other side is which key).

    >>> document = {"format": 1, "traces": [{"roots": [{"onset": {"info": {"type": "fetch",
    ...     "method": "GET", "url": "http://x/api"}}, "span": {"name": "fetch"}}]}]}
    >>> diff(document, document)
    []
    """
    with deep_trees("cannot compare"):
        left = expected if isinstance(expected, Tree) else tree_from_document(expected)
        right = actual if isinstance(actual, Tree) else tree_from_document(actual)
        if left.has_spans != right.has_spans:
            # Against a shape, invocations are known by key: name the other side's invocations by
            # the key rules (shapes.load_key_rules), or by their labels when none are given.
            from .shapes import assign_keys

            assign_keys(left if left.has_spans else right, rules)
        return diff_trees(left, right, DiffOptions(Level(level), tuple(ignore)))
