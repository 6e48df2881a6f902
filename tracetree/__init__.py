"""tracetree: rebuild, resolve and compare Cloudflare Workers streaming-tail traces.

>>> import tracetree
>>> forest = tracetree.build([])
>>> forest.counts()["root"]
0
"""

from .build import Forest, build, build_file
from .check import CheckReport, FixtureResult, Status, check_folder
from .diff import Change, ChangeKind, Level, diff  # `tracetree.diff(...)` is the function
from .dispatch import DEFAULT_TABLE, DispatchTable, load_dispatch_table
from .errors import InputError, TracetreeError
from .links import Candidate, Evidence, Link, Resolution
from .model import Invocation, Span, Trace
from .resolve import ResolveOptions, TraceEvidence, resolve_trace

__all__ = [
    "DEFAULT_TABLE",
    "Candidate",
    "Change",
    "ChangeKind",
    "CheckReport",
    "DispatchTable",
    "Evidence",
    "FixtureResult",
    "Forest",
    "InputError",
    "Invocation",
    "Level",
    "Link",
    "Resolution",
    "ResolveOptions",
    "Span",
    "Status",
    "Trace",
    "TraceEvidence",
    "TracetreeError",
    "build",
    "build_file",
    "check_folder",
    "diff",
    "load_dispatch_table",
    "resolve_trace",
]
