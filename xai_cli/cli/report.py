"""``xai report``: parse options, call ``build_report``, print the page's path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xai_cli import console
from xai_cli.cli._errors import handle_errors
from xai_cli.cli._options import Quiet, Verbose

EXAMPLES = """\b
Examples:

  xai report xai-out

  xai report xai-out --out /srv/www/run-42 --page-size 120
"""


@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="The --out folder of an explain, audit or compare run.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the report. [default: RUN_DIR/report]")] = None,
    thumbnails: Annotated[bool, typer.Option("--thumbnails/--no-thumbnails", help="Make card thumbnails and input previews (reused on a rerun).")] = True,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="Processes reading records and making thumbnails. [default: CPU count, ≤ 8]")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, help="Cards per page.")] = 60,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a static HTML report of a run: RUN_DIR/report/index.html.

    Opens from file:// with no server and no network request: a grid of every input with its
    heatmaps, sort and filter, a detail view per input, and the gate verdict of audit and compare runs.
    """
    console.configure(quiet=quiet, verbose=verbose)
    from xai_cli.report import build_report
    from xai_cli.report._read import iter_manifest

    manifest = Path(run_dir) / "manifest.jsonl"
    total = sum(1 for _ in iter_manifest(Path(run_dir))) if manifest.is_file() else 0
    with console.progress(total, "reporting") as bar:
        index = build_report(run_dir, out=out, thumbnails=thumbnails, workers=workers, page_size=page_size, progress=bar)
    console.result(str(index))


HELP_EPILOG = EXAMPLES
