"""Which caller spans dispatch which kinds of invocation: one table, extendable from a file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InputError
from .jsonio import read_json_file

# Trigger type of the callee's onset → names of caller spans that create such an invocation.
# "<top-level>" stands for the caller's own top-level span (hibernation wake-ups restore the
# trace context of the request that accepted the socket). Gathered from workerd's span names
# (src/workerd/api/*.c++) and checked on the real captures in ../shared/corpus/real/.
DEFAULT_DISPATCH: dict[str, frozenset[str]] = {
    "fetch": frozenset({"fetch", "queue_send", "durable_object_subrequest"}),
    "jsrpc": frozenset({"jsRpcCall", "jsRpcSession", "durable_object_subrequest"}),
    "scheduled": frozenset({"scheduled"}),
    "queue": frozenset({"queue", "queue_send"}),
    "alarm": frozenset({"alarm", "durable_object_storage_setAlarm"}),
    "email": frozenset({"email", "send_email"}),
    "connect": frozenset({"connect"}),
    "trace": frozenset({"trace"}),
    "hibernatableWebSocket": frozenset({"<top-level>"}),
    "custom": frozenset({"custom"}),
}

TOP_LEVEL = "<top-level>"


@dataclass(frozen=True, slots=True)
class DispatchTable:
    """Trigger type → caller span names that fit it."""

    table: Mapping[str, frozenset[str]]

    def fits(self, trigger_type: str, span_name: str, top_level: bool) -> bool | None:
        """True: the span is a known dispatcher of this trigger; False: it is not; None: unknown trigger."""
        names = self.table.get(trigger_type)
        if names is None:
            return None
        return (TOP_LEVEL in names) if top_level else (span_name in names)

    def extended(self, extra: Mapping[str, frozenset[str]]) -> DispatchTable:
        merged = {key: set(value) for key, value in self.table.items()}
        for key, value in extra.items():
            merged.setdefault(key, set()).update(value)
        return DispatchTable({key: frozenset(value) for key, value in merged.items()})


DEFAULT_TABLE = DispatchTable(DEFAULT_DISPATCH)


def load_dispatch_table(path: str, base: DispatchTable = DEFAULT_TABLE) -> DispatchTable:
    """Extend the table from a JSON file: {"<trigger type>": ["<span name>", ...], ...}.

    Names add to the built-in ones; "<top-level>" means the caller's own top-level span.
    """
    data = read_json_file(path)
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, list) and all(isinstance(v, str) for v in value)
        for key, value in data.items()
    ):
        raise InputError(path, None, 'expected {"<trigger type>": ["<span name>", ...]}')
    return base.extended({key: frozenset(value) for key, value in data.items()})
