"""junit.xml from gate results: one test case per check, so CI systems show them natively.

A failed ``fail`` check is a ``<failure>``; a failed ``warn`` check and a check that could not
be evaluated are ``<skipped>`` (CI shows them apart from passes without failing the job), the
former with a message starting ``warning:``.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree import ElementTree as ET

from xai_cli.audit.gate import CheckResult


def junit_xml(results: Iterable[CheckResult], suite: str = "xai audit") -> str:
    """The junit XML document (a ``<testsuites>`` with one ``<testsuite>``), as text."""
    results = list(results)
    failures = sum(r.passed is False and r.severity == "fail" for r in results)
    skipped = sum(r.passed is None or (r.passed is False and r.severity == "warn") for r in results)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures), errors="0", skipped=str(skipped))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures), errors="0",
                       skipped=str(skipped))
    for r in results:
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{r.method}" if r.method else suite, name=r.name)
        if r.passed is False and r.severity == "fail":
            ET.SubElement(case, "failure", message=r.message, type="gate").text = _detail(r)
        elif r.passed is False:
            ET.SubElement(case, "skipped", message=f"warning: {r.message}")
        elif r.passed is None:
            ET.SubElement(case, "skipped", message=r.message)
        ET.SubElement(case, "system-out").text = r.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _detail(r: CheckResult) -> str:
    value = "n/a" if r.value is None else f"{r.value:.6g}"
    return f"{r.method} {r.metric}: value {value}, limit {r.limit:.6g} ({r.name})"
