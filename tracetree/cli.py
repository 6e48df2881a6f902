"""The command line: click only. Each command parses options and makes one library call."""

from __future__ import annotations

import sys

import click

from .build import build_file
from .errors import EXIT_INPUT, InputError
from .render.links import render_links
from .resolve import ResolveOptions


@click.group()
def main() -> None:
    """tracetree: rebuild and compare Cloudflare Workers streaming-tail traces."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["tree", "json", "links"]), default=None)
@click.option("--naive", is_flag=True)
def build(inputs: tuple[str, ...], fmt: str | None, naive: bool) -> None:
    """Rebuild every trace."""
    try:
        forest = build_file(list(inputs), options=ResolveOptions(naive=naive), keep_events=False)
    except InputError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_INPUT)
    out = sys.stdout.buffer
    for line in render_links(forest):
        out.write(line)
