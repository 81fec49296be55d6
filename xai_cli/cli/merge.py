"""``xai merge OUT``: write the merged manifest.jsonl and run.json of a run split into shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from xai_cli import console
from xai_cli.cli import _options as o
from xai_cli.cli._errors import handle_errors

HELP_EPILOG = """\b
Examples:

  xai merge res          (after the shards of: xai explain --shard K/N ... --out res)

The last shard to finish merges by itself; run this after a shard was rerun alone, or to check.
Exit codes: 0 merged, every input explained; 1 merged, some inputs failed; 2 a shard has not finished."""


@handle_errors
def merge(
    out: Annotated[Path, typer.Argument(help="The output folder the shards wrote into.")],
    fmt: o.Format = o.OutputFormat.text,
    quiet: o.Quiet = False,
    verbose: o.Verbose = False,
) -> None:
    """Merge the shards' manifests and run.json parts under OUT into manifest.jsonl and run.json."""
    console.configure(quiet=quiet, verbose=verbose)
    from xai_cli.sinks.files.merge import merge as merge_parts

    merged = merge_parts(out)
    if fmt == o.OutputFormat.json:
        console.result(json.dumps({"out": str(out), "shards": merged.shards, "inputs": merged.inputs,
                                   "failed": merged.failed, "exit_code": merged.exit_code}, indent=2))
    else:
        console.result(f"merged {merged.shards} shards: {merged.inputs} inputs, {merged.failed} failed -> {out}/manifest.jsonl")
    raise typer.Exit(merged.exit_code)
