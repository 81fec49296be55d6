"""Startup: help and usage errors answer without importing torch (issue 14, goal 5).

A subprocess runs the CLI through a tiny wrapper that, at exit, prints which heavy modules
were imported; the check is on ``sys.modules``, not on wall time (the box may be loaded).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.reliability.cli import env
from xai_cli.errors import UsageError
from xai_cli.precheck import check_method_names, method_names

HEAVY = ("torch", "torchvision", "numpy", "PIL", "transformers", "captum")

WRAPPER = """
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("\\nMODULES " + json.dumps(sorted(
    m for m in %r if m in sys.modules)) + "\\n"))
sys.argv = ["xai", *sys.argv[1:]]
from xai_cli.cli import main
main()
""" % (HEAVY,)


def _heavy_imported(*args: str) -> tuple[int, list[str], str]:
    p = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, timeout=120, env=env())
    line = [x for x in p.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, p.stderr
    return p.returncode, json.loads(line[-1][len("MODULES "):]), p.stdout + p.stderr


@pytest.mark.parametrize("args, code, text", [
    (("explain", "--help"), 0, "Examples"),
    (("explain", "--model", "demo-digits", "--method", "gradcm", "sample_images"), 2, "did you mean 'gradcam'"),
    (("explain", "--model", "demo-digits", "--method", "gradcam", "no/such/folder"), 2, "input not found"),
])
def test_help_and_usage_errors_do_not_import_torch(args, code, text):
    rc, heavy, output = _heavy_imported(*args)
    assert rc == code, output
    assert text in output
    assert heavy == [], f"{args} imported {heavy}"


def test_a_valid_command_line_goes_on_to_the_model():
    # The wrapper sees the imports: a known method and existing inputs must get past the precheck
    # (a weights file that does not exist then fails the model load, exit 3, after torch is imported).
    rc, heavy, output = _heavy_imported("explain", "--model", "resnet18", "--weights", "no-such.pt",
                                        "--method", "gradcam", "sample_images")
    assert rc == 3, output
    assert "torch" in heavy


def test_name_index_matches_the_registry():
    from xai_cli.methods.registry import _all_names

    assert method_names() == frozenset(_all_names())


def test_unknown_names_are_the_registrys_error():
    check_method_names(("gradcam", " ig"))
    check_method_names(("all",))
    with pytest.raises(UsageError, match="unknown method 'igg'") as e:
        check_method_names(("gradcam,igg",))
    assert "ig" in e.value.hint
