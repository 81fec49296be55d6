"""``xai methods`` and ``xai models``: what the registries hold."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from xai_cli import console
from xai_cli.cli._errors import handle_errors
from xai_cli.cli._options import Format, OutputFormat


@handle_errors
def methods(fmt: Format = OutputFormat.text) -> None:
    """List the explanation methods, what they apply to, and their parameters."""
    from xai_cli.methods.registry import method_cards

    cards = method_cards()
    if fmt == OutputFormat.json:
        console.result(json.dumps([c.__dict__ for c in cards], indent=2, default=str))
        return
    table = Table("method", "applies to", "what it shows", "parameters (--param METHOD.NAME=VALUE)", "paper")
    for c in cards:
        table.add_row(c.name, ",".join(c.modalities), c.summary, ", ".join(f"{k}={v}" for k, v in c.params.items()) or "-", c.paper)
    _print_table(table)


@handle_errors
def models(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. 'res*' or '*vit*'.")] = "*",
    fmt: Format = OutputFormat.text,
) -> None:
    """List the model names xai can load (torchvision, embedded); also accepts hf:ORG/NAME and folders."""
    from xai_cli.models.registry import list_models

    rows = list_models(pattern)
    if fmt == OutputFormat.json:
        console.result(json.dumps([{"name": n, "source": s} for n, s in rows], indent=2))
        return
    for name, source in rows:
        console.result(f"{name}\t{source}")
    if not rows:
        console.warn(f"no model matches {pattern!r}; try 'xai models' for all")


def _print_table(table: Table) -> None:
    from rich.console import Console

    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200).print(table)
