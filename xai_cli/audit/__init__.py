"""The audit's gate and reports: checks on aggregated metrics, junit.xml, summary.md."""
