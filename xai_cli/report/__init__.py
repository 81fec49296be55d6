"""``xai report``: a static HTML page to browse a run folder (explain, audit or compare).

    from xai_cli.report import build_report
    build_report("xai-out")          # -> Path("xai-out/report/index.html")
"""

from xai_cli.report._build import build_report

__all__ = ["build_report"]
