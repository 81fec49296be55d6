"""``xai compare``: explanation drift between two models (or two methods), input by input.

    from xai_cli.compare import compare
    from xai_cli.config import RunConfig

    cfg = RunConfig(model="demo-digits", methods=("gradcam",), inputs=(Path("sample_images/marked"),),
                    out=Path("cmp"))
    report = compare(cfg, "demo-digits-shortcut", regions="sample_images/marked_masks",
                     gate="configs/gate-compare-demo.toml")
    report.aggregates["region_share_increase"]["mean"], report.exit_code
"""

from xai_cli.compare.report import MEASURES, CompareReport
from xai_cli.compare.run import compare, config_b

__all__ = ["MEASURES", "CompareReport", "compare", "config_b"]
