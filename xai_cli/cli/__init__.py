"""The ``xai`` command. Typer only: each command parses options and calls a plain function."""

from __future__ import annotations

from typing import Annotated

import typer

from xai_cli import __version__
from xai_cli.cli import catalogue
from xai_cli.cli.audit import HELP_EPILOG as AUDIT_EPILOG
from xai_cli.cli.audit import audit
from xai_cli.cli._errors import EXIT_CODES_HELP
from xai_cli.cli.compare import HELP_EPILOG as COMPARE_EPILOG, compare
from xai_cli.cli.explain import HELP_EPILOG, explain
from xai_cli.cli.merge import HELP_EPILOG as MERGE_EPILOG, merge
from xai_cli.cli.report import HELP_EPILOG as REPORT_EPILOG, report

app = typer.Typer(
    name="xai",
    help="Explain deep-learning models' predictions in batch (Grad-CAM, IG, SHAP, LIME, attention).",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.command("explain", epilog=HELP_EPILOG)(explain)
app.command("audit", epilog=AUDIT_EPILOG)(audit)
app.command("report", epilog=REPORT_EPILOG)(report)
app.command("compare", epilog=COMPARE_EPILOG)(compare)
app.command("merge", epilog=MERGE_EPILOG)(merge)
app.command("methods")(catalogue.methods)
app.command("models")(catalogue.models)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xai {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Explain deep-learning models' predictions in batch."""


def main() -> None:
    app()
