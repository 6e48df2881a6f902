"""Workerd-style shapes: read, keyed against real streams, written back, diffed across upstream revisions."""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import CORPUS, CORPUS_MISSING

from tracetree.build import build_file
from tracetree.diff import Change, ChangeKind, Tree, diff_trees, tree_from_document
from tracetree.document import to_document
from tracetree.errors import InputError
from tracetree.resolve import ResolveOptions
from tracetree.shapes import (
    ambiguous_keys,
    assign_keys,
    dumps_shape,
    is_shape,
    keys_for,
    load_key_rules,
    load_shape,
    parse_key_rules,
    rules_from_fixture_invocations,
    to_shape,
    tree_from_shape,
)

FIXTURES = CORPUS / "workerd-tail-fixtures.json"
STREAM = Path(__file__).resolve().parents[1] / "fixtures" / "tail-worker-test.events.jsonl"

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_file(), reason=CORPUS_MISSING)

# The revisions of workerd's main branch in the order they landed there (each an ancestor of the
# next: `git merge-base --is-ancestor` on cloudflare/workerd). The fixtures' `date` is the author
# date, which does not give this order: by date, c89c2e3f6 (authored 2026-06-22, landed 07-28)
# would come before f696ef049 and 30c444dec (authored 07-08, landed 08-14) before ffd9d5087, and
# the diffs would show tests being added, removed and added again.
MAIN_BRANCH = ("0221517f0", "dc25e3756", "258bbb947", "1cd07a5ca", "88d17cf3f", "f696ef049", "ffd9d5087",
               "9f409c4e4", "a362acf55", "c89c2e3f6", "5943cd9ff", "30c444dec", "477f106ab", "641862732")
PR_BRANCH = ("e279c6d14", "866ae2863")  # PR #6734, never on main
NEWEST = MAIN_BRANCH[-1]


@cache
def revisions() -> dict[str, dict[str, Any]]:
    """The fixtures' revisions by short commit (9 digits, as git shows them)."""
    data = orjson.loads(FIXTURES.read_bytes())
    return {commit[:9]: entry for commit, entry in data["revisions"].items()}


def expected_shape(commit: str, name: str = "expected") -> list[Any]:
    """A revision's asserted tree. Before 88d17cf3f removed the autogate, the test asserted two
    (with and without span-context propagation); `expected` then is the propagating one."""
    trees = revisions()[commit]["trees"]
    if name == "expected" and name not in trees:
        name = "expectedWithPropagation"
    return trees[name]


def revision_diff(old: str, new: str, name: str = "expected") -> list[Change]:
    return diff_trees(tree_from_shape(expected_shape(old, name)), tree_from_shape(expected_shape(new, name)))


# -- reading a change as a reviewer does: which key, under which key ------------------------------


def _key(path: str) -> str:
    return path.split(" › ")[-1]


def _under(path: str) -> str | None:
    """The key a node hangs under (None for a root), from its path."""
    parts = path.split(" › ")
    return None if len(parts) < 3 else parts[-2]


def _place(place: str) -> str | None:
    """The key named by a move's before/after place (None for a root)."""
    return None if place.endswith("(a root)") else _key(place)


def summary(change: Change) -> tuple[Any, ...]:
    if change.kind is ChangeKind.INVOCATION_MOVED:
        return ("moved", _key(change.path), _place(change.before), _place(change.after))
    if change.kind is ChangeKind.INVOCATION_ADDED:
        return ("added", _under(change.path), change.after)
    if change.kind is ChangeKind.INVOCATION_REMOVED:
        return ("removed", _under(change.path), change.before)
    return (change.kind.value, change.path, change.before, change.after)


# -- the real stream -----------------------------------------------------------------------------


@cache
def real_document(naive: bool = False) -> dict[str, Any]:
    """The real capture of workerd's tail-worker-test, linked by tracetree (naive: by the upstream rule)."""
    return to_document(build_file(str(STREAM), options=ResolveOptions(naive=naive)))


def real_tree(naive: bool = False) -> Tree:
    return tree_from_document(real_document(naive))  # a fresh tree: assign_keys changes it


def keyed_real_tree(commit: str = NEWEST, naive: bool = False) -> Tree:
    tree = real_tree(naive)
    assign_keys(tree, rules_from_fixture_invocations(revisions()[commit]["invocations"]))
    return tree


# -- upstream revisions --------------------------------------------------------------------------


@needs_fixtures
def test_main_branch_order_lists_every_main_revision_once() -> None:
    """The landing order used here covers every main-branch revision of the fixtures, once, and no PR one."""
    assert sorted(MAIN_BRANCH + PR_BRANCH) == sorted(revisions())
    assert len(set(MAIN_BRANCH)) == len(MAIN_BRANCH)


@needs_fixtures
def test_477f106ab_moved_jsrpcExceptionIII_under_jsrpcTestDispose() -> None:
    """477f106ab moved jsrpcExceptionIII from jsrpcDisposal to under jsrpcTestDispose, and myActorJsrpc
    back from jsrpcGetCounter to jsrpcDoSubrequest: two moves and nothing else."""
    assert sorted(map(summary, revision_diff("30c444dec", "477f106ab"))) == [
        ("moved", "jsrpcExceptionIII", "jsrpcDisposal", "jsrpcTestDispose"),
        ("moved", "myActorJsrpc", "jsrpcGetCounter", "jsrpcDoSubrequest"),
    ]


@needs_fixtures
def test_each_upstream_commit_reads_as_the_change_it_made() -> None:
    """Diffing each main-branch revision's expected shape with the previous one reports exactly the tests
    that commit added and the invocations it moved; commits that left the tree alone report nothing."""
    made = {
        "dc25e3756": [],
        "258bbb947": [("added", None, "localAddressViaServiceBinding")],
        "1cd07a5ca": [("moved", "wsClose", None, "wsHibernation"),
                      ("moved", "wsMessage", None, "wsHibernation")],
        "88d17cf3f": [],
        "f696ef049": [],
        "ffd9d5087": [("added", None, "jsrpcDisposal (and 3 invocations below it)"),
                      ("added", None, "jsrpcNamedServiceBinding (and 1 invocation below it)"),
                      ("added", None, "jsrpcPortAbortCall (and 2 invocations below it)")],
        "9f409c4e4": [("added", None, "traceThrow")] * 4 + [("added", None, "wsThrow")],
        "a362acf55": [("added", "httpTest", "scheduledException")],
        "c89c2e3f6": [],
        "5943cd9ff": [],
        "30c444dec": [("moved", "jsrpcNonFunction", "jsrpcDoSubrequest", "jsrpcGetCounter"),
                      ("moved", "myActorJsrpc", "jsrpcDoSubrequest", "jsrpcGetCounter")],
        "477f106ab": [("moved", "jsrpcExceptionIII", "jsrpcDisposal", "jsrpcTestDispose"),
                      ("moved", "myActorJsrpc", "jsrpcGetCounter", "jsrpcDoSubrequest")],
        "641862732": [("moved", "jsrpcExceptionIII", "jsrpcTestDispose", "jsrpcDisposal"),
                      ("moved", "jsrpcNonFunction", "jsrpcGetCounter", "jsrpcDoSubrequest")],
    }
    reported = {new: sorted(map(summary, revision_diff(old, new)), key=repr)
                for old, new in itertools.pairwise(MAIN_BRANCH)}
    assert reported == {commit: sorted(changes, key=repr) for commit, changes in made.items()}


@needs_fixtures
def test_propagation_across_hibernation_changed_only_the_propagating_tree() -> None:
    """1cd07a5ca hung the hibernation wake-ups under wsHibernation with propagation, not in the flat tree."""
    assert revision_diff("258bbb947", "1cd07a5ca", "expectedFlat") == []
    assert len(revision_diff("258bbb947", "1cd07a5ca", "expectedWithPropagation")) == 2


@needs_fixtures
@pytest.mark.parametrize("commit", MAIN_BRANCH + PR_BRANCH)
def test_a_shape_compared_with_itself_has_no_changes(commit: str) -> None:
    """Every shape the upstream test asserted, compared with itself, reports no change."""
    for name, shape in revisions()[commit]["trees"].items():
        assert diff_trees(tree_from_shape(shape), tree_from_shape(shape)) == [], name


@needs_fixtures
def test_diffing_in_reverse_reports_the_move_back() -> None:
    """Swapping the sides of a revision diff reports the same moves, from and to swapped."""
    forward = sorted(map(summary, revision_diff("30c444dec", "477f106ab")))
    backward = sorted(map(summary, diff_trees(tree_from_shape(expected_shape("477f106ab")),
                                              tree_from_shape(expected_shape("30c444dec")))))
    assert backward == sorted((kind, key, after, before) for kind, key, before, after in forward)


# -- keying a real stream ------------------------------------------------------------------------


@needs_fixtures
def test_rules_derived_from_fixtures_name_an_invocation_as_a_workerd_developer_would() -> None:
    """A rule derived from the newest fixtures names jsrpcGetCounter by trigger, entrypoint and method."""
    rules = {rule.key: rule for rule in rules_from_fixture_invocations(revisions()[NEWEST]["invocations"])}
    assert {c.field: c.value for c in rules["jsrpcGetCounter"].conditions} == {
        "info.type": "jsrpc", "entrypoint": "MyService", "attributes.jsrpc.method": "getCounter"}
    assert {c.field: c.value for c in rules["scheduledCron"].conditions} == {
        "info.type": "scheduled", "info.cron": "* * * * 30"}


@needs_fixtures
def test_only_look_alike_calls_are_left_ambiguous_by_the_newest_fixtures() -> None:
    """In the newest fixtures only jsrpcExceptionIV and jsrpcExceptionV (one call made twice) share a rule."""
    rules = rules_from_fixture_invocations(revisions()[NEWEST]["invocations"])
    assert ambiguous_keys(rules) == [("jsrpcExceptionIV", "jsrpcExceptionV")]


@needs_fixtures
def test_every_real_invocation_of_a_fixture_key_gets_it() -> None:
    """Keyed with the newest fixtures' rules, the real capture names every invocation the test knows,
    hands the twin keys out in turn, and leaves the two oversized-log requests unnamed."""
    tree = keyed_real_tree()
    keys = [node.key for node in tree.invocations]
    unnamed = sorted(node.label for node in tree.invocations if node.key is None)
    assert unnamed == ["fetch GET /big-attribute", "fetch GET /big-log"]
    assert set(keys) - {None} == set(revisions()[NEWEST]["invocations"])
    assert keys.count("jsrpcExceptionIV") == keys.count("jsrpcExceptionV") == 1


@needs_fixtures
def test_real_stream_against_the_newest_expected_shape() -> None:
    """The real capture, as tracetree links it, differs from the newest asserted tree only by the two
    requests the test leaves out of it."""
    changes = diff_trees(tree_from_shape(expected_shape(NEWEST)), keyed_real_tree())
    assert sorted(map(summary, changes)) == [
        ("added", None, "fetch GET /big-attribute"), ("added", None, "fetch GET /big-log")]


@needs_fixtures
def test_upstream_links_reproduce_the_tree_477f106ab_asserted() -> None:
    """Linked by the upstream rule, the real capture matches the tree 477f106ab asserted; linked by
    tracetree, it differs exactly at the two span-id collisions, reported as moves."""
    shape = tree_from_shape(expected_shape("477f106ab"))
    extra = [("added", None, "fetch GET /big-attribute"), ("added", None, "fetch GET /big-log")]
    upstream = diff_trees(shape, keyed_real_tree(naive=True))
    assert sorted(map(summary, upstream)) == extra
    ours = diff_trees(shape, keyed_real_tree())
    moves = sorted((_place(c.before), _key(c.path)) for c in ours if c.kind is ChangeKind.INVOCATION_MOVED)
    assert moves == [("jsrpcGetCounter", "jsrpc nonFunctionProperty (MyService)"),
                     ("jsrpcTestDispose", "jsrpc testDispose (MyService)")]
    assert len(ours) == 4


def test_a_rules_file_with_patterns_most_specific_rule_wins(tmp_path: Path) -> None:
    """In a hand-written rules file, `*` patterns match, the rule with more fields wins, and an
    invocation no rule matches keeps no key."""
    rules_file = tmp_path / "keys.json"
    rules_file.write_bytes(orjson.dumps({
        "anyFetch": {"info.type": "fetch"},
        "queueMessage": {"info.type": "fetch", "info.url": "https://fake-host/*"},
        "durableObject": {"entrypoint": "DurableObject*"},
        "getCounter": {"info.type": "jsrpc", "attributes.jsrpc.method": "getCounter"},
    }))
    tree = real_tree()
    keys = keys_for(tree, load_key_rules(rules_file))
    by_label: dict[str, set[str | None]] = {}
    for node in tree.invocations:
        by_label.setdefault(node.label, set()).add(keys[id(node)])
    assert by_label["fetch POST /message"] == {"queueMessage"}
    assert by_label["fetch GET /ray-id"] == {"anyFetch"}
    assert by_label["fetch GET /test (DurableObjectExample)"] == {"anyFetch"}  # two fields beat one
    assert by_label["alarm (DurableObjectExample)"] == {"durableObject"}
    assert by_label["jsrpc getCounter (MyService)"] == {"getCounter"}
    assert by_label["queue test-queue"] == {None}


@needs_fixtures
def test_a_fixtures_style_file_gives_the_derived_rules(tmp_path: Path) -> None:
    """A `{key: [events]}` file loads as the rules derived from those invocations."""
    invocations = revisions()[NEWEST]["invocations"]
    path = tmp_path / "invocations.json"
    path.write_bytes(orjson.dumps(invocations))
    assert load_key_rules(path) == rules_from_fixture_invocations(invocations)


def test_without_rules_an_invocation_is_keyed_by_its_label() -> None:
    """With no rules, every invocation's key is its label."""
    tree = real_tree()
    assign_keys(tree)
    assert [node.key for node in tree.invocations] == [node.label for node in tree.invocations]


# -- writing shapes ------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("commit", MAIN_BRANCH + PR_BRANCH)
def test_a_shape_written_back_equals_the_shape_read(commit: str) -> None:
    """A shape read and written back is the same JSON, nodes in the same order."""
    for shape in revisions()[commit]["trees"].values():
        assert to_shape(tree_from_shape(shape)) == shape


def test_a_leaf_written_without_children_comes_back_with_none() -> None:
    """A node written without `children` reads as a leaf and is written back with `children: []`."""
    assert to_shape(tree_from_shape([{"key": "a", "children": [{"key": "b"}]}])) == [
        {"key": "a", "children": [{"key": "b", "children": []}]}]


def test_a_built_stream_is_written_as_labels() -> None:
    """Without rules, `build --format shape` names each invocation by its label, callees in document order."""
    shape = to_shape(real_document())
    assert shape[0] == {"key": "custom", "children": [
        {"key": "fetch POST /body-length", "children": []},
        {"key": "fetch POST /body-length", "children": []},
        {"key": "fetch GET /ray-id", "children": []},
        {"key": "scheduled", "children": []},
        {"key": "scheduled * * * * 30", "children": []},
        {"key": "scheduled * * * * *", "children": []}]}
    assert len(shape) == 27


def test_a_shape_file_writes_key_before_children() -> None:
    """A written shape file reads back as the same shape, each node's key on the line before its children."""
    shape = [{"key": "httpTest", "children": [{"key": "fetchRayId", "children": []}]}]
    text = dumps_shape(shape)
    assert orjson.loads(text) == shape
    assert text.decode().splitlines()[2:4] == ['    "key": "httpTest",', '    "children": [']
    assert text.endswith(b"]\n")


# diff.py pairs invocations of one key by _similarity, which looks at span names and contexts of
# kinds; against a shape those never agree, so the three roots keyed `custom` pair arbitrarily and
# their callees read as moved. Pairing them by the keys around them (see the report) fixes this.
def test_a_built_stream_written_as_a_shape_compares_clean_with_itself() -> None:
    """`build --format shape` output compared with the stream it came from reports no change."""
    document = real_document()
    tree = tree_from_document(document)
    assign_keys(tree)
    assert diff_trees(tree_from_shape(to_shape(document)), tree) == []


@needs_fixtures
def test_a_shape_written_with_rules_uses_their_keys() -> None:
    """Written with the newest fixtures' rules, the real capture's shape uses the test's keys, else labels."""
    rules = rules_from_fixture_invocations(revisions()[NEWEST]["invocations"])
    shape = to_shape(real_document(), rules)
    roots = [node["key"] for node in shape]
    assert roots[:4] == ["httpTest", "cacheMode", "fetchNotFound", "fetchWebSocket"]
    assert "fetch GET /big-log" in roots
    disposal = next(node for node in shape if node["key"] == "jsrpcDisposal")
    assert sorted(child["key"] for child in disposal["children"]) == [
        "jsrpcExceptionII", "jsrpcExceptionIII", "jsrpcTestDispose"]


# -- recognizing and reading shapes --------------------------------------------------------------


@pytest.mark.parametrize(("value", "shape"), [
    ([{"key": "httpTest", "children": [{"key": "fetchRayId", "children": []}]}], True),
    ({"expected": [{"key": "alarm", "children": []}]}, True),
    ([{"key": "alarm"}], True),
    ([], False),  # as well an empty event stream
    ({"format": 1, "traces": []}, False),
    ([{"invocationId": "x", "event": {"type": "onset"}}], False),
    ({"alarm": [{"type": "onset", "info": {"type": "alarm"}}]}, False),  # fixture invocations
    ([{"key": "a", "children": [], "note": "x"}], False),
])
def test_is_shape_tells_shapes_from_other_json(value: Any, shape: bool) -> None:
    """A list of {key, children} nodes, or an object naming such lists, is a shape; documents,
    event streams and fixture invocations are not."""
    assert is_shape(value) is shape


@needs_fixtures
def test_a_file_of_several_shapes_needs_a_name(tmp_path: Path) -> None:
    """A file holding several named shapes reads the one named, and says which names it has otherwise."""
    path = tmp_path / "trees.json"
    path.write_bytes(orjson.dumps(revisions()["0221517f0"]["trees"]))
    with pytest.raises(InputError) as error:
        load_shape(path)
    assert str(error.value) == f"{path}: holds several shapes (expectedWithPropagation, expectedFlat): " \
                               "name the one to use (tracetree diff --shape NAME)"
    assert to_shape(load_shape(path, "expectedFlat")) == revisions()["0221517f0"]["trees"]["expectedFlat"]


@pytest.mark.parametrize(("content", "detail"), [
    (b'[{"key": "a", "children": [}]', "malformed JSON"),
    (b'{"format": 1, "traces": []}', "not a shape: member 'format' is a number"),
    (b'[{"key": "a", "children": [{"children": []}]}]',
     'shape node [0].children[0] needs a non-empty string "key", found none'),
    (b'[{"key": "a", "chidren": []}]', "shape node [0] (a) has unexpected member 'chidren'"),
    (b'{"expected": [{"key": "a", "children": {}}]}',
     'shape node expected[0] (a): "children" must be an array, found an object'),
    (b'"a"', "not a shape"),
])
def test_a_malformed_shape_file_is_named_in_the_error(tmp_path: Path, content: bytes, detail: str) -> None:
    """A malformed shape file raises InputError naming the file and what is wrong, on one line."""
    assert_one_line_error(load_shape, tmp_path / "shape.json", content, detail)


def assert_one_line_error(load: Any, path: Path, content: bytes, detail: str) -> None:
    """Loading `content` from `path` raises one line of InputError naming the file and `detail`."""
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load(path)
    assert str(error.value).startswith(f"{path}")
    assert detail in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("content", "detail"), [
    (b'{"a": {"info.type": "jsrpc",\n}}', "malformed JSON"),
    (b"[]", "key rules must be a non-empty object"),
    (b"{}", "found an empty object"),
    (b'{"a": {}}', "key 'a': the rule must be an object of field → value with at least one field"),
    (b'{"a": "jsrpc"}', "key 'a': the rule must be an object"),
    (b'{"a": {"info..type": "jsrpc"}}', "key 'a': 'info..type' is not a dotted field name"),
    (b'{"a": {"spans": 3}}', 'key \'a\': "spans" must be a span name or an array of names, found a number'),
    (b'{"a": {"info.type": "jsrpc"}, "b": [{"type": "onset"}]}',
     "mix rules (objects) and fixture invocations"),
    (b'{"a": [{"type": "spanOpen", "name": "x"}]}',
     "fixture invocation 'a': the first event must be an onset, found 'spanOpen'"),
    (b'{"a": []}', "fixture invocation 'a' must be a non-empty array of events"),
])
def test_a_malformed_rules_file_is_named_in_the_error(tmp_path: Path, content: bytes, detail: str) -> None:
    """A malformed key-rules file raises InputError naming the file and what is wrong, on one line."""
    assert_one_line_error(load_key_rules, tmp_path / "keys.json", content, detail)


def test_malformed_json_errors_give_the_line(tmp_path: Path) -> None:
    """Malformed JSON in a rules file is reported at its line."""
    path = tmp_path / "keys.json"
    path.write_bytes(b'{\n  "a": {"info.type": "jsrpc"}\n  "b": {"info.type": "fetch"}\n}')  # no comma
    with pytest.raises(InputError) as error:
        load_key_rules(path)
    assert error.value.line == 3


def test_an_unreadable_rules_file_says_so(tmp_path: Path) -> None:
    """A rules file that cannot be read raises InputError naming it."""
    with pytest.raises(InputError) as error:
        load_key_rules(tmp_path / "missing.json")
    assert str(error.value).startswith(f"{tmp_path / 'missing.json'}: cannot read")


def test_a_rule_value_of_null_asks_for_an_absent_field() -> None:
    """A rule field set to null matches invocations without that field, and no others."""
    rules = parse_key_rules({"plain": {"info.type": "fetch", "entrypoint": None}})
    tree = real_tree()
    keys = keys_for(tree, rules)
    named = {node.label for node in tree.invocations if keys[id(node)] == "plain"}
    assert "fetch GET /ray-id" in named
    assert not any("DurableObjectExample" in label for label in named)
