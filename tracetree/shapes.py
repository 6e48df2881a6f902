"""Workerd-style shapes: trees of invocations named by key, and how a real stream's invocations get keys.

workerd's tail-worker-test asserts the trees it sees as nested `{key, children}` nodes, where a key
names an invocation of the test ("jsrpcGetCounter"). A shape has no spans, ids or onsets, so a
comparison against one looks only at how invocations hang together (Tree.has_spans is False),
and the invocations of a real document are matched to shape nodes by key. Key rules say which
invocation a key names:

- a rules file, `{"jsrpcGetCounter": {"info.type": "jsrpc", "attributes.jsrpc.method": "getCounter"}}`:
  every field of a rule must match (Facts says what a field name means, Condition how a value matches);
- a fixtures-style file, `{key: [events of that invocation, onset first]}` (the `invocations` of
  workerd-tail-fixtures.json), from which rules that tell the keys apart are derived;
- none: an invocation's key is its label ("jsrpc getCounter (MyService)"), which is what
  `to_shape` writes by default, so that `build --format shape` output names what a stream holds.

Accepted shape forms (is_shape, tree_from_shape): a JSON array of nodes, or a JSON object naming
such arrays, as the fixtures' `trees` do (`{"expected": [...]}`); a node is an object with a
string `key` and, optionally, `children` (an array of nodes; absent means none) and nothing else.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .diff import InvocationNode, SpanNode, Tree, finish_tree, tree_from_document
from .errors import InputError
from .fields import VOLATILE_FIELDS
from .jsonio import json_type, read_json_file

_NODE_MEMBERS = frozenset({"key", "children"})
_ABSENT = object()  # a field the invocation does not have


# -- reading shapes ------------------------------------------------------------------------------


def is_shape(data: Any) -> bool:
    """Whether a parsed JSON value looks like a shape (its top-level nodes are checked, not deeper).

    An empty array is not taken for a shape: it reads as well as an empty event stream, and both
    mean an empty tree.

    >>> is_shape([{"key": "httpTest", "children": [{"key": "fetchRayId", "children": []}]}])
    True
    >>> is_shape({"expected": [{"key": "alarm", "children": []}]})
    True
    >>> is_shape({"format": 1, "traces": []})
    False
    """
    if isinstance(data, list):
        return bool(data) and all(_looks_like_node(node) for node in data)
    if isinstance(data, dict) and data:
        lists = list(data.values())
        return (all(isinstance(nodes, list) and all(_looks_like_node(node) for node in nodes)
                    for nodes in lists)
                and any(lists))
    return False


def _looks_like_node(node: Any) -> bool:
    return (isinstance(node, dict) and isinstance(node.get("key"), str) and set(node) <= _NODE_MEMBERS
            and isinstance(node.get("children", []), list))


def _select(data: Any, name: str | None, where: str) -> tuple[str, list[Any]]:
    """(where the nodes are, for messages: "" or the shape's name; the root nodes)."""
    if isinstance(data, list):
        if name is not None:
            raise InputError(where, None, f"shape {name!r} asked for, but the file holds one unnamed shape")
        return "", data
    if not isinstance(data, dict) or not data:
        found = "an empty object" if data == {} else json_type(data)
        raise InputError(where, None, f"not a shape: expected an array of {{key, children}} nodes or an "
                                      f"object naming such arrays, found {found}")
    for member, nodes in data.items():
        if not isinstance(nodes, list):
            raise InputError(where, None, f"not a shape: member {member!r} is {json_type(nodes)}, "
                                          "not an array of {key, children} nodes")
    names = ", ".join(data)
    if name is None:
        if len(data) > 1:
            raise InputError(where, None, f"holds several shapes ({names}): name the one to use "
                                          "(tracetree diff --shape NAME)")
        name = next(iter(data))
    if name not in data:
        raise InputError(where, None, f"no shape named {name!r} (the file has: {names})")
    return name, data[name]


def tree_from_shape(data: Any, source: str = "", name: str | None = None) -> Tree:
    """The comparable tree of a shape (either form; `name` picks one of several).

    Each node becomes an InvocationNode with `key` and `label` the node's key and kind
    ("shape", key, "", ""); each root is a trace of its own. A shape has no spans, but a callee
    hangs under a span in a Tree, so every invocation gets one synthetic top-level span named
    after its key, holding its children as callees in the shape's order. The tree's has_spans is
    False: compared with anything, only how invocations hang together counts.
    InputError (naming `source`) for a malformed shape, saying where in it.
    """
    where = source or "<shape>"
    prefix, nodes = _select(data, name, where)
    invocations: list[InvocationNode] = []
    for number, root in enumerate(nodes, start=1):
        _read_node(root, number, None, invocations, where, f"{prefix}[{number - 1}]")
    return finish_tree(Tree(invocations, has_spans=False, source=source))


def _read_node(
    node: Any, trace: int, caller: SpanNode | None, out: list[InvocationNode],
    source: str, where: str,
) -> None:
    if not isinstance(node, dict):
        raise InputError(source, None, f"shape node {where} must be an object, found {json_type(node)}")
    key = node.get("key")
    if not isinstance(key, str) or not key:
        found = "none" if "key" not in node else "an empty string" if key == "" else json_type(key)
        raise InputError(source, None, f'shape node {where} needs a non-empty string "key", found {found}')
    extra = sorted(set(node) - _NODE_MEMBERS)
    if extra:
        raise InputError(source, None, f"shape node {where} ({key}) has unexpected member "
                                       f"{', '.join(map(repr, extra))}: a node is {{key, children}}")
    children = node.get("children", [])
    if not isinstance(children, list):
        raise InputError(source, None, f'shape node {where} ({key}): "children" must be an array, '
                                       f"found {json_type(children)}")
    invocation = InvocationNode(
        kind=("shape", key, "", ""), label=key, onset={}, outcome=None, resolution=None, top=None,
        trace=trace, caller=caller, key=key,
    )
    invocation.top = SpanNode(key, {}, None, [], owner=invocation, label=key, synthetic=True)
    out.append(invocation)
    for index, child in enumerate(children):
        before = len(out)
        _read_node(child, trace, invocation.top, out, source, f"{where}.children[{index}]")
        invocation.top.callees.append(out[before])


def load_shape(path: str | Path, name: str | None = None) -> Tree:
    """The tree of a shape file (`name` picks one of several); InputError names the file and what is wrong."""
    return tree_from_shape(read_json_file(path), str(path), name)


# -- key rules -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What a key rule can ask about one invocation.

    A field name is read as: `attributes.NAME`, the top-level span's attribute NAME (NAME may
    hold dots: `attributes.jsrpc.method`), else the onset's own `attributes` pair of that name;
    `spans`, the names of the spans the invocation opened; anything else, a dotted path into the
    onset (`info.type`, `info.url`, `entrypoint`, `info.info.type`). In a document, normalized
    fields hold labels and placeholders, so rules on ids or clock readings match nothing useful.
    """

    onset: Mapping[str, Any]
    attributes: Mapping[str, Any]
    spans: frozenset[str]

    def get(self, field: str) -> Any:
        """The value of a field, or _ABSENT."""
        if field == "spans":
            return self.spans
        if field.startswith("attributes."):
            name = field[len("attributes."):]
            if name in self.attributes:
                return self.attributes[name]
            for pair in self.onset.get("attributes") or ():
                if isinstance(pair, dict) and pair.get("name") == name:
                    return pair.get("value")
            return _ABSENT
        value: Any = self.onset
        for part in field.split("."):
            if not isinstance(value, dict) or part not in value:
                return _ABSENT
            value = value[part]
        return value


@dataclass(frozen=True, slots=True)
class Condition:
    """One field of a rule and the value it must have.

    Null matches a field that is absent (or null); a string holding `*` is a pattern when `glob`
    (`*` matches any run of characters, nothing else is special); for `spans`, the value is one
    name or a list of names that must all be among the invocation's span names; any other value
    must equal the field's (arrays and objects compare whole).
    """

    field: str
    value: Any
    glob: bool = False

    def matches(self, facts: Facts) -> bool:
        actual = facts.get(self.field)
        if self.field == "spans":
            wanted = [self.value] if isinstance(self.value, str) else self.value
            return all(any(self._equal(name, have) for have in actual) for name in wanted)
        if self.value is None:
            return actual is _ABSENT or actual is None
        return actual is not _ABSENT and self._equal(self.value, actual)

    def _equal(self, wanted: Any, actual: Any) -> bool:
        if self.glob and isinstance(wanted, str) and "*" in wanted:
            return isinstance(actual, str) and _pattern(wanted).fullmatch(actual) is not None
        if isinstance(wanted, bool) or isinstance(actual, bool):
            return wanted is actual  # a bool is an int in Python: keep `true` from equalling `1`
        return bool(wanted == actual)

    @property
    def is_pattern(self) -> bool:
        return self.glob and isinstance(self.value, str) and "*" in self.value


@functools.lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


@dataclass(frozen=True, slots=True)
class KeyRule:
    """A key and the conditions an invocation meets to be named by it."""

    key: str
    conditions: tuple[Condition, ...]

    def matches(self, facts: Facts) -> bool:
        return all(condition.matches(facts) for condition in self.conditions)

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Which of several matching rules wins: more conditions, then more exact ones, then the
        longer literal text of patterns (`* * * * 30` over `* * * * *`)."""
        patterns = [c.value.replace("*", "") for c in self.conditions if c.is_pattern]
        return (len(self.conditions), len(self.conditions) - len(patterns), sum(map(len, patterns)))


def parse_key_rules(data: Any, source: str = "") -> list[KeyRule]:
    """Rules from a parsed rules file `{key: {field: value, ...}, ...}`, in file order."""
    where = source or "<key rules>"
    if not isinstance(data, dict) or not data:
        raise InputError(where, None, f"key rules must be a non-empty object {{key: {{field: value}}}}, "
                                      f"found {json_type(data) if data != {} else 'an empty object'}")
    rules: list[KeyRule] = []
    for key, fields in data.items():
        if not key:
            raise InputError(where, None, "key rules: a key must not be empty")
        if not isinstance(fields, dict) or not fields:
            found = "an empty object" if fields == {} else json_type(fields)
            raise InputError(where, None, f"key {key!r}: the rule must be an object of field → value "
                                          f"with at least one field, found {found}")
        conditions: list[Condition] = []
        for field, value in fields.items():
            if not field or field.startswith(".") or field.endswith(".") or ".." in field:
                raise InputError(where, None, f"key {key!r}: {field!r} is not a dotted field name")
            if field == "spans" and not (isinstance(value, str) or (
                    isinstance(value, list) and all(isinstance(name, str) for name in value))):
                raise InputError(where, None, f'key {key!r}: "spans" must be a span name or an array of '
                                              f"names, found {json_type(value)}")
            conditions.append(Condition(field, value, glob=True))
        rules.append(KeyRule(key, tuple(conditions)))
    return rules


def rules_from_fixture_invocations(
    invocations: Mapping[str, Sequence[Any]], source: str = "",
) -> list[KeyRule]:
    """Rules that tell the keys of fixture invocations apart (`{key: [events, onset first]}`).

    Each key's rule starts with its trigger (`info.type`) and adds, in a fixed order (entrypoint,
    script, execution model, `attributes.jsrpc.method`, method, URL, other trigger fields, the
    rest of the onset, top-level span attributes, and last the span names), each field on which
    it differs from a key it still matches, until it matches no other. Ids and clock readings are
    never used. Keys whose invocations nothing tells apart get equal rules (ambiguous_keys lists
    them), and assign_keys hands them out in turn. The fixtures keep no span ids, so top-level
    attributes are the `attributes` events sent while no span is open: where a revision sends
    `jsrpc.method` inside a `jsRpcCall` span of the callee (30c444dec, 477f106ab), its JSRPC keys
    are told apart less well.
    """
    where = source or "<fixture invocations>"
    if not isinstance(invocations, Mapping) or not invocations:
        raise InputError(where, None, "fixture invocations must be a non-empty object {key: [events]}")
    facts = {key: _fixture_facts(key, events, where) for key, events in invocations.items()}
    fields = {key: set(_candidate_fields(fact)) for key, fact in facts.items()}
    rules: list[KeyRule] = []
    for key, fact in facts.items():
        conditions = [Condition("info.type", _value(fact, "info.type"))]
        rivals = [other for other in facts if other != key and conditions[0].matches(facts[other])]
        order = sorted({name for other in [key, *rivals] for name in fields[other]}, key=_field_rank)
        for name in order:
            if not rivals:
                break
            condition = Condition(name, _value(fact, name))
            left = [other for other in rivals if condition.matches(facts[other])]
            if len(left) < len(rivals):
                conditions.append(condition)
                rivals = left
        rules.append(KeyRule(key, tuple(conditions)))
    return rules


# Onset members a derived rule never asks about: the event type, the span id, and the attribute
# pairs (asked about as `attributes.NAME`).
_NOT_ONSET_FIELDS = frozenset({"type", "spanId", "attributes"})
_FIELD_ORDER = ("info.type", "entrypoint", "scriptName", "executionModel", "attributes.jsrpc.method",
                "info.method", "info.url", "info.info.type", "info.cron", "info.queueName")


def _field_rank(name: str) -> tuple[int, str]:
    if name in _FIELD_ORDER:
        return (_FIELD_ORDER.index(name), "")
    if name == "spans":
        return (len(_FIELD_ORDER) + 3, "")
    return (len(_FIELD_ORDER) + (2 if name.startswith("attributes.") else 1), name)


def _value(facts: Facts, field: str) -> Any:
    value = facts.get(field)
    if field == "spans":
        return sorted(value)
    return None if value is _ABSENT else value


def _candidate_fields(facts: Facts) -> Iterator[str]:
    """Every field a derived rule may use: onset leaves and top-level attributes, ids and clocks left out."""
    def leaves(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                yield from leaves(item, f"{path}.{name}" if path else name)
        elif path:
            yield path

    onset = {name: value for name, value in facts.onset.items() if name not in _NOT_ONSET_FIELDS}
    for path in leaves(onset, ""):
        if not _volatile(path):
            yield path
    for name in facts.attributes:
        if not _volatile(name):
            yield f"attributes.{name}"
    yield "spans"


def _volatile(path: str) -> bool:
    parts = path.split(".")
    return (path in VOLATILE_FIELDS or parts[-1] in VOLATILE_FIELDS
            or ".".join(parts[-2:]) in VOLATILE_FIELDS)


def _fixture_facts(key: str, events: Any, source: str) -> Facts:
    if not isinstance(events, (list, tuple)) or not events or not all(isinstance(e, dict) for e in events):
        raise InputError(source, None, f"fixture invocation {key!r} must be a non-empty array of events")
    if events[0].get("type") != "onset":
        raise InputError(source, None, f"fixture invocation {key!r}: the first event must be an onset, "
                                       f"found {str(events[0].get('type'))!r}")
    onset = {name: value for name, value in events[0].items() if name not in ("type", "spanId")}
    attributes: dict[str, Any] = {}
    spans: set[str] = set()
    depth = 0  # the fixtures keep no span ids: an `attributes` sent while no span is open is the top's
    for event in events[1:]:
        kind = event.get("type")
        if kind == "spanOpen":
            depth += 1
            if isinstance(event.get("name"), str):
                spans.add(event["name"])
        elif kind == "spanClose":
            depth = max(depth - 1, 0)
        elif kind == "attributes" and depth == 0 and isinstance(event.get("info"), list):
            for pair in event["info"]:
                if isinstance(pair, dict) and isinstance(pair.get("name"), str):
                    attributes[pair["name"]] = pair.get("value")
    return Facts(onset, attributes, frozenset(spans))


def load_key_rules(path: str | Path) -> list[KeyRule]:
    """Rules from a file: a rules file `{key: {field: value}}`, or fixtures-style `{key: [events]}`
    (rules derived as rules_from_fixture_invocations does). InputError names the file."""
    name = str(path)
    data = read_json_file(path)
    if isinstance(data, dict) and data and all(isinstance(value, list) for value in data.values()):
        return rules_from_fixture_invocations(data, name)
    if isinstance(data, dict) and any(isinstance(value, list) for value in data.values()):
        raise InputError(name, None, "key rules mix rules (objects) and fixture invocations (arrays): "
                                     "use one form")
    return parse_key_rules(data, name)


def ambiguous_keys(rules: Sequence[KeyRule]) -> list[tuple[str, ...]]:
    """Keys whose rules are the same, so that nothing tells their invocations apart (in rule order):
    assign_keys hands them out in turn, which a user may want to be warned about."""
    groups: dict[bytes, list[str]] = {}
    for rule in rules:
        # Values may be arrays (unhashable): conditions compare as canonical JSON, in any order.
        conditions = sorted([c.field, c.value, c.glob] for c in rule.conditions)
        keys = groups.setdefault(orjson.dumps(conditions, option=orjson.OPT_SORT_KEYS), [])
        if rule.key not in keys:
            keys.append(rule.key)
    return [tuple(keys) for keys in groups.values() if len(keys) > 1]


def facts_of(node: InvocationNode) -> Facts:
    """What rules can ask about an invocation of a document tree."""
    top = node.top
    spans = frozenset(span.name for span in _spans_below(top)) if top is not None else frozenset()
    return Facts(node.onset, top.attributes if top is not None else {}, spans)


def _spans_below(span: SpanNode) -> Iterator[SpanNode]:
    for child in span.spans:
        yield child
        yield from _spans_below(child)


def keys_for(tree: Tree, rules: Sequence[KeyRule] | None = None) -> dict[int, str | None]:
    """id(invocation) → its key under `rules` (None: no rule matches); with no rules, its label.

    The most specific matching rule wins (KeyRule.specificity). When several equally specific
    rules of different keys match, the keys are handed out in turn to the invocations so
    matched, in document order (the last key goes to any extra); workerd's fixtures name
    look-alike calls that way (jsrpcExceptionIV, jsrpcExceptionV).
    """
    if rules is None:
        return {id(node): node.label for node in tree.invocations}
    keys: dict[int, str | None] = {}
    turns: Counter[tuple[str, ...]] = Counter()
    for node in document_order(tree):
        facts = facts_of(node)
        matching = [rule for rule in rules if rule.matches(facts)]
        if not matching:
            keys[id(node)] = None
            continue
        best = max(rule.specificity for rule in matching)
        tied = tuple(dict.fromkeys(rule.key for rule in matching if rule.specificity == best))
        keys[id(node)] = tied[min(turns[tied], len(tied) - 1)]
        turns[tied] += 1
    return keys


def assign_keys(tree: Tree, rules: Sequence[KeyRule] | None = None) -> None:
    """Set `key` on every invocation of a document tree (see keys_for); a shape's keep theirs."""
    if not tree.has_spans:
        return
    keys = keys_for(tree, rules)
    for node in tree.invocations:
        node.key = keys[id(node)]


def document_order(tree: Tree) -> Iterator[InvocationNode]:
    """Every invocation in the order a document's text shows it: roots in order, then depth first,
    a span's callees before those of its child spans."""
    for node in tree.invocations:
        if node.caller is None:
            yield from _subtree(node)


def _subtree(node: InvocationNode) -> Iterator[InvocationNode]:
    yield node
    if node.top is not None:
        for callee in _direct_callees(node.top):
            yield from _subtree(callee)


def _direct_callees(span: SpanNode) -> Iterator[InvocationNode]:
    """The invocations a span or any span below it called (not their own callees), in document order."""
    yield from span.callees
    for child in span.spans:
        yield from _direct_callees(child)


# -- writing shapes ------------------------------------------------------------------------------


def to_shape(document_or_tree: dict[str, Any] | Tree, rules: Sequence[KeyRule] | None = None
             ) -> list[dict[str, Any]]:
    """The `{key, children}` form of a document (or Tree): what `build --format shape` writes.

    Keys come from `rules` (an invocation no rule matches is named by its label), or with no
    rules from labels; a shape tree keeps its own keys. Roots and children are in document order
    (a span's callees before those of its child spans), so a shape read with tree_from_shape
    comes back equal, except that a leaf written without `children` gains `children: []`.
    The tree is not modified.
    """
    tree = document_or_tree if isinstance(document_or_tree, Tree) else \
        tree_from_document(document_or_tree)
    keys = keys_for(tree, rules) if tree.has_spans else {id(node): node.key for node in tree.invocations}

    def node_of(node: InvocationNode) -> dict[str, Any]:
        children = list(_direct_callees(node.top)) if node.top is not None else []
        return {"key": keys.get(id(node)) or node.label, "children": [node_of(child) for child in children]}

    return [node_of(node) for node in tree.invocations if node.caller is None]


def dumps_shape(shape: list[dict[str, Any]]) -> bytes:
    """A shape as written to a file: two-space indent, `key` before `children`, one trailing newline."""
    try:
        return orjson.dumps(shape, option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONEncodeError:
        # orjson stops at 255 levels of nesting; a deeper shape is written alike by json.
        return json.dumps(shape, indent=2, ensure_ascii=False).encode() + b"\n"


# -- files ---------------------------------------------------------------------------------------
