"""The CLI's one place that turns exceptions into a message and an exit code."""

from __future__ import annotations

import functools
import traceback

import typer

from xai_cli import console
from xai_cli.errors import ExitCode, XaiError

EXIT_CODES_HELP = (
    "Exit codes: 0 every input explained; 1 some inputs failed (each recorded in manifest.jsonl); "
    "2 usage or configuration error; 3 the model could not be loaded; 130 interrupted (rerun to resume)."
)


def handle_errors(fn):
    """Run a command; map ``XaiError`` to one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XaiError as e:
            console.debug(traceback.format_exc())
            console.error(e.render(flags=True))
            raise typer.Exit(int(e.exit_code)) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper
