"""``xai methods`` and ``xai models``: what the registries hold."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from xai_cli import console
from xai_cli.cli._errors import handle_errors
from xai_cli.cli._options import Format, OutputFormat


@handle_errors
def methods(fmt: Format = OutputFormat.text) -> None:
    """List the explanation methods, what they apply to, and every parameter (--param METHOD.NAME=VALUE)."""
    from dataclasses import asdict

    from xai_cli.methods.registry import method_cards

    cards = method_cards()
    if fmt == OutputFormat.json:
        console.result(json.dumps([asdict(c) for c in cards], indent=2, default=str))
        return
    console.result("\n".join(method_lines(cards)))


def method_lines(cards) -> list[str]:
    """Plain lines, never cut: one block per method, one line per parameter."""
    lines = []
    for c in cards:
        lines += [f"{c.name}  [{', '.join(c.modalities)}]", f"    {c.summary}", f"    paper: {c.paper}",
                  f"    under --precision bf16: {c.bf16}"]
        for p in c.params:
            kind = f"one of {'|'.join(map(str, p.choices))}" if p.choices else p.type
            lines.append(f"    --param {c.name}.{p.name}=VALUE  ({kind}; default {p.default!r}): {p.doc}")
        if not c.params:
            lines.append("    (no parameters)")
        lines.append("")
    return lines


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
