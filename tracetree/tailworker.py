"""The streaming tail worker tracetree ships, and the config lines that attach it to workers."""

from __future__ import annotations

from importlib.resources import files

# The name the snippets give the tail worker's service and module file.
SERVICE = "tracetree-tail"
MODULE_FILE = "tracetree-tail.js"
COLLECTOR_SERVICE = "tracetree-collector"
COMPATIBILITY_DATE = "2025-01-01"
SNIPPET_KINDS = ("workerd", "wrangler")


def worker_source() -> str:
    """The tail worker: a JavaScript module exporting `tailStream` (tracetree/worker/tail.js)."""
    return (files("tracetree") / "worker" / "tail.js").read_text(encoding="utf-8")


def snippet(kind: str, *, collect: str | None = None) -> str:
    """The lines to add to a workerd (capnp) or wrangler (TOML) config to attach the tail worker.

    Without `collect` the worker logs its events (read them with `tracetree build` or `record`);
    with `collect` (a `tracetree collect` address, `HOST:PORT`) it POSTs them there.

    >>> "streamingTails" in snippet("workerd")
    True
    """
    if kind == "workerd":
        return _workerd(collect)
    if kind == "wrangler":
        return _wrangler(collect)
    raise ValueError(f"unknown snippet kind {kind!r}: expected one of {', '.join(SNIPPET_KINDS)}")


def _host_port(collect: str) -> str:
    address = collect.removeprefix("http://").rstrip("/")
    if not address or "/" in address or ":" not in address:
        raise ValueError(f"--collect takes HOST:PORT (as `tracetree collect --listen` prints it), "
                         f"not {collect!r}")
    return address


def _workerd(collect: str | None) -> str:
    bindings = ""
    collector = ""
    how = (
        "# The worker logs each event as a `tracetree-event: {...}` line. Read them with\n"
        "#   workerd test --predictable config.capnp 2>&1 | tracetree build -\n"
        "#   tracetree record -o events.jsonl -- workerd serve config.capnp\n"
    )
    if collect is not None:
        address = _host_port(collect)
        bindings = f'\n      bindings = [(name = "TRACETREE_COLLECTOR", service = "{COLLECTOR_SERVICE}")],'
        collector = (
            f"\n    # where `tracetree collect --listen {address} -o events.jsonl` listens:\n"
            f'    (name = "{COLLECTOR_SERVICE}", external = (address = "{address}", http = ())),'
        )
        how = (
            f"# The worker POSTs its events to the collector at {address}; start it first:\n"
            f"#   tracetree collect --listen {address} -o events.jsonl\n"
            "# A batch the collector refuses is logged instead, as `tracetree-event:` lines.\n"
        )
    return (
        f"# tracetree's streaming tail worker. Write it beside your config:\n"
        f"#   tracetree tail-worker -o {MODULE_FILE}\n"
        f"{how}"
        f"#\n"
        f"# 1. Add to `services = [ ... ]`:\n"
        f'    (name = "{SERVICE}", worker = (\n'
        f'      modules = [(name = "{MODULE_FILE}", esModule = embed "{MODULE_FILE}")],\n'
        f'      compatibilityDate = "{COMPATIBILITY_DATE}",{bindings}\n'
        f"    )),{collector}\n"
        f"#\n"
        f"# 2. Add to every worker you want traced (not to {SERVICE} itself):\n"
        f'      streamingTails = ["{SERVICE}"],\n'
    )


def _wrangler(collect: str | None) -> str:
    variables = ""
    how = (
        "# The worker logs each event as a `tracetree-event: {...}` line; keep them with\n"
        "#   tracetree record -o events.jsonl --\n"
        f"#       npx wrangler dev -c wrangler.toml -c {SERVICE}/wrangler.toml\n"
    )
    if collect is not None:
        address = _host_port(collect)
        variables = f'\n[vars]\nTRACETREE_COLLECT_URL = "http://{address}/"\n'
        how = (
            f"# The worker POSTs its events to the collector at {address}; start it first:\n"
            f"#   tracetree collect --listen {address} -o events.jsonl\n"
            f"#   npx wrangler dev -c wrangler.toml -c {SERVICE}/wrangler.toml\n"
        )
    return (
        f"# tracetree's streaming tail worker, as a worker of its own:\n"
        f"#   mkdir {SERVICE} && tracetree tail-worker -o {SERVICE}/{MODULE_FILE}\n"
        f"{how}"
        f"#\n"
        f"# 1. {SERVICE}/wrangler.toml:\n"
        f'name = "{SERVICE}"\n'
        f'main = "{MODULE_FILE}"\n'
        f'compatibility_date = "{COMPATIBILITY_DATE}"\n'
        f"{variables}"
        f"#\n"
        f"# 2. The wrangler.toml of every worker you want traced (top level, before any [section]):\n"
        f'streaming_tail_consumers = [{{ service = "{SERVICE}" }}]\n'
    )
