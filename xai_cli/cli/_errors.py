"""The CLI's one place that turns exceptions into a message and an exit code."""

from __future__ import annotations

import functools
import json
import traceback

import typer

from xai_cli import console
from xai_cli.errors import ExitCode, XaiError, words

EXIT_CODES_HELP = (
    "Exit codes: 0 every input explained; 1 some inputs failed (each recorded in manifest.jsonl); "
    "2 usage or configuration error; 3 the model could not be loaded; 130 interrupted (rerun to resume)."
)


def handle_errors(fn):
    """Run a command; map ``XaiError`` to one line on stderr and its exit code.

    A command run with ``--format json`` (its ``fmt`` parameter) also prints the error to
    stdout as one JSON object, ``{"error": {"code", "type", "message", "hint"}}``, so a script
    reading stdout always gets JSON: the summary on success, this on exit 2 or 3.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XaiError as e:
            console.debug(traceback.format_exc())
            console.error(e.render(flags=True))
            if getattr(kwargs.get("fmt"), "value", kwargs.get("fmt")) == "json":
                console.result(json.dumps(error_object(e)))
            raise typer.Exit(int(e.exit_code)) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper


def error_object(e: XaiError) -> dict:
    """The JSON form of an error (options worded as flags)."""
    return {"error": {"code": int(e.exit_code), "type": type(e).__name__, "message": words(e.message, flags=True),
                      "hint": words(e.hint, flags=True) if e.hint else None}}
