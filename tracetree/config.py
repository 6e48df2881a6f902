"""Per-folder options of a fixture folder: `tracetree.toml`, or `[tool.tracetree]` in pyproject.toml.

```toml
strict = true                  # a link that comes out ambiguous or orphan fails its fixture
level = "full"                 # invocation | span | full: what a difference is
ignore = ["attributes.http.*"] # globs on the field a change is about (as `diff --ignore`)
normalize = ["cf-ray"]         # the tree document's normalization (as `build --normalize`)
keep = []                      # fields not to normalize (as `build --keep`)
raw = false                    # keep ids and timestamps as received (as `build --raw`)
naive = false                  # link by the upstream helper's rule (as `build --naive`)
partial = false                # the capture may lack invocations (as `build --partial`)
lenient = false                # skip malformed lines (as `build --lenient`)
dispatch-table = "spans.json"  # extend the dispatch table (as `build --dispatch-table`)

[fixtures."topology-*"]        # per-fixture overrides: a name, or a glob on names
strict = false
```
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .diff import Level
from .dispatch import DEFAULT_TABLE, DispatchTable, load_dispatch_table
from .document import Normalization
from .errors import InputError
from .jsonio import json_type
from .resolve import ResolveOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_NAME = "tracetree.toml"


class ConfigError(InputError):
    """A configuration file that cannot be used: names the file, the line when known, and the option."""


@dataclass(frozen=True, slots=True)
class FixtureOptions:
    """How one fixture is built and compared: the folder's options with its overrides applied."""

    level: Level = Level.FULL
    ignore: tuple[str, ...] = ()
    normalize: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    raw: bool = False
    strict: bool = False  # flagged links (ambiguous, orphan) fail the fixture
    naive: bool = False
    partial: bool = False
    lenient: bool = False
    dispatch_table: str | None = None  # a path, relative to the working directory
    dispatch: DispatchTable = field(default=DEFAULT_TABLE, compare=False, repr=False)

    @property
    def normalization(self) -> Normalization:
        return Normalization.from_options(self.normalize, self.keep, raw=self.raw)

    @property
    def resolve(self) -> ResolveOptions:
        return ResolveOptions(naive=self.naive, dispatch=self.dispatch, partial=self.partial)


# Option name in the file → (FixtureOptions field, what the value must be).
_OPTIONS: dict[str, tuple[str, str]] = {
    "level": ("level", "level"),
    "ignore": ("ignore", "strings"),
    "normalize": ("normalize", "strings"),
    "keep": ("keep", "strings"),
    "raw": ("raw", "bool"),
    "strict": ("strict", "bool"),
    "naive": ("naive", "bool"),
    "partial": ("partial", "bool"),
    "lenient": ("lenient", "bool"),
    "dispatch-table": ("dispatch_table", "path"),
}


@dataclass(frozen=True, slots=True)
class FolderConfig:
    """The options of a fixture folder, and where they came from (None: defaults, no file)."""

    path: Path | None = None
    base: FixtureOptions = FixtureOptions()
    overrides: tuple[tuple[str, Mapping[str, Any]], ...] = ()  # (name or glob, the fields it sets)

    def options_for(self, name: str) -> FixtureOptions:
        """The folder's options with every override whose name or glob matches `name`, in file order."""
        options = self.base
        for pattern, changes in self.overrides:
            if pattern == name or fnmatch.fnmatchcase(name, pattern):
                options = replace(options, **changes)
        return options

    def unmatched(self, names: list[str]) -> list[str]:
        """Override names or globs that name no fixture (a typo, or a fixture since removed)."""
        return [pattern for pattern, _ in self.overrides
                if not any(pattern == name or fnmatch.fnmatchcase(name, pattern) for name in names)]

    def check_names(self, names: list[str]) -> None:
        """Raise ConfigError, at the override's line, when an override names no fixture of `names`."""
        unmatched = self.unmatched(names)
        if unmatched and self.path is not None:
            text = self.path.read_text(encoding="utf-8", errors="replace")
            in_pyproject = self.path.name == "pyproject.toml"
            section = ("tool", "tracetree", "fixtures") if in_pyproject else ("fixtures",)
            raise ConfigError(str(self.path), line_of(text, section, unmatched[0]),
                              f"fixtures.{unmatched[0]} names no fixture in the folder")


def find_config(folder: Path) -> tuple[Path, tuple[str, ...]] | None:
    """The file holding `folder`'s options and the table in it, or None.

    `tracetree.toml` in the folder wins; else the nearest pyproject.toml in the folder or above
    it (as black and ruff find theirs, stopping at a repository's root), when it has a
    `[tool.tracetree]` table.
    """
    own = folder / CONFIG_NAME
    if own.is_file():
        return own, ()
    for place in (folder.resolve(), *folder.resolve().parents):
        pyproject = place / "pyproject.toml"
        if pyproject.is_file():
            data = _read_toml(pyproject)
            tool = data.get("tool")
            if isinstance(tool, dict) and "tracetree" in tool:
                return pyproject, ("tool", "tracetree")
            return None  # the project's own pyproject: no tracetree options
        if (place / ".git").exists():
            return None
    return None


def load_config(folder: str | Path) -> FolderConfig:
    """The options of a fixture folder: defaults when it has no configuration file.

    Raises ConfigError naming the file (and the line, where the option can be found) for a file
    that is not TOML, an unknown option, or a value of the wrong kind.
    """
    found = find_config(Path(folder))
    if found is None:
        return FolderConfig()
    path, table_path = found
    text = path.read_text(encoding="utf-8", errors="replace")
    table: Any = _read_toml(path)
    for part in table_path:
        table = table[part]
    where = ".".join(table_path)
    if not isinstance(table, dict):
        raise ConfigError(str(path), line_of(text, (), table_path[-1]) if table_path else None,
                          f"[{where}] must be a table, found {json_type(table)}")
    base_dir = path.parent
    overrides = table.get("fixtures", {})
    base_changes = _changes(table, path, text, table_path, base_dir, allow_fixtures=True)
    base = replace(FixtureOptions(), **base_changes)
    if not isinstance(overrides, dict):
        raise ConfigError(str(path), line_of(text, table_path, "fixtures"),
                          f"'fixtures' must be a table of fixture names, found {json_type(overrides)}")
    changes: list[tuple[str, Mapping[str, Any]]] = []
    for pattern, override in overrides.items():
        section = (*table_path, "fixtures", pattern)
        if not isinstance(override, dict):
            raise ConfigError(str(path), line_of(text, (*table_path, "fixtures"), pattern),
                              f"fixtures.{pattern} must be a table of options, found {json_type(override)}")
        changes.append((pattern, _changes(override, path, text, section, base_dir, allow_fixtures=False)))
    for pattern, change in changes:  # each override must make sense on top of the folder's options
        _check_combined(replace(base, **change), path, text, (*table_path, "fixtures", pattern))
    _check_combined(base, path, text, table_path)
    return FolderConfig(path, base, tuple(changes))


def _changes(
    table: dict[str, Any], path: Path, text: str, section: tuple[str, ...], base_dir: Path, *,
    allow_fixtures: bool,
) -> dict[str, Any]:
    """The FixtureOptions fields a table sets, checked."""
    out: dict[str, Any] = {}
    prefix = ".".join(section[2:] if section[:2] == ("tool", "tracetree") else section)
    for key, value in table.items():
        if key == "fixtures" and allow_fixtures:
            continue
        line = line_of(text, section, key)
        name = f"{prefix}.{key}" if prefix else key
        if key not in _OPTIONS:
            known = ", ".join(sorted(_OPTIONS) + (["fixtures"] if allow_fixtures else []))
            raise ConfigError(str(path), line, f"unknown option {name!r} (known: {known})")
        target, kind = _OPTIONS[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(str(path), line, f"{name} must be true or false, found {json_type(value)}")
        elif kind == "strings":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ConfigError(str(path), line, f"{name} must be a list of strings, found "
                                                   f"{json_type(value)}")
            value = tuple(value)
        elif kind == "level":
            levels = [level.value for level in Level]
            if value not in levels:
                shown = repr(value) if isinstance(value, str) else json_type(value)
                raise ConfigError(str(path), line,
                                  f"{name} must be one of {', '.join(levels)}, found {shown}")
            value = Level(value)
        elif kind == "path":
            if not isinstance(value, str) or not value:
                raise ConfigError(str(path), line, f"{name} must be a file name, found {json_type(value)}")
            value = str(base_dir / value)
            out["dispatch"] = load_dispatch_table(value)  # InputError names that file
        out[target] = value
    return out


def _check_combined(options: FixtureOptions, path: Path, text: str, section: tuple[str, ...]) -> None:
    """normalize/keep make sense together (keep only names normalized fields)."""
    try:
        options.normalization  # noqa: B018 - computed for its check
    except ValueError as error:
        line = line_of(text, section, "keep") or line_of(text, section, "normalize")
        message = str(error).replace("--keep", "keep").replace("--normalize", "normalize")
        raise ConfigError(str(path), line, message) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_WHERE.search(message)
        line = int(found.group(1)) if found else None
        detail = _TOML_WHERE.sub("", message).strip() or "invalid TOML"
        raise ConfigError(str(path), line, f"not valid TOML: {detail}") from None


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*=')


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', dotted)
    return tuple(a or b or c for a, b, c in parts)


def line_of(text: str, section: tuple[str, ...], key: str) -> int | None:
    """The line where `key` is set in table `section` (the tables this module reads are plain:
    headers and `key = value` lines), or None when it cannot be found."""
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = _split_key(header.group(1))
            if current == (*section, key):
                return number
            continue
        found = _KEY.match(line)
        if found and current == section and _split_key(found.group(1)) == (key,):
            return number
    return None
