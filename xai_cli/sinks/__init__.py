"""Sinks consume a run's stream of results: ``open(run)``, ``consume(result)`` per input in
input order (failures and resumed inputs included), ``close(summary)``.

``files.FilesSink`` writes explain's outputs; a new output format or consumer is one more
file here with a ``Sink`` subclass.
"""

from xai_cli.sinks.base import Sink

__all__ = ["Sink"]
