"""Room for deep trees: call chains nest, and the code that walks documents follows the nesting."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import TracetreeError

# Python frames no longer live on the C stack (3.11), so a higher limit is safe; a tree deeper
# than this is taken as malformed input.
DEEP_LIMIT = 20_000


@contextmanager
def deep_trees(what: str) -> Iterator[None]:
    """Raise the recursion limit for the block; past it, a TracetreeError saying `what` failed."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, DEEP_LIMIT))
    try:
        yield
    except RecursionError:
        raise TracetreeError(
            f"{what}: the trees nest too deeply (a call chain of thousands of invocations or "
            "spans)") from None
    finally:
        sys.setrecursionlimit(limit)
