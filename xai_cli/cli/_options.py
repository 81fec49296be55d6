"""Option types shared by commands, so a flag has the same name and help everywhere."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info lines; warnings and errors still go to stderr.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug lines and tracebacks on stderr.")]
Format = Annotated[OutputFormat, typer.Option("--format", help="What goes to stdout: a text line, or the run summary as JSON.")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="A TOML run config (see configs/); flags override its keys.", exists=False)]
