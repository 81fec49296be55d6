"""Checks of a run's configuration that need no torch: the answer to a typo comes in a blink.

Importing the method registry imports every method file, and with them torch (seconds). A
usage error such as an unknown method name or a missing input must not wait for that, so
this module reads the registered method names from the method files' source (``ast``: the
``name = "..."`` of each ``@register_method`` class) without importing them. The registry
stays the one source of truth; tests/test_precheck.py checks this index against it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from xai_cli.errors import UsageError, did_you_mean

_METHODS_DIR = Path(__file__).resolve().parent / "methods"


@functools.cache
def method_names() -> frozenset[str]:
    """Every registered method name, for any modality, read from the method files' source."""
    names: set[str] = set()
    for path in sorted(_METHODS_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(_is_register(d) for d in node.decorator_list):
                names.update(_class_name(node))
    return frozenset(names)


def _is_register(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Name) and decorator.id == "register_method") or (
        isinstance(decorator, ast.Attribute) and decorator.attr == "register_method")


def _class_name(node: ast.ClassDef) -> list[str]:
    return [s.value.value for s in node.body
            if isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)
            and any(isinstance(t, ast.Name) and t.id == "name" for t in s.targets)]


def check_method_names(methods: tuple[str, ...]) -> None:
    """Raise the registry's own ``UsageError`` for a name no modality registers (cheap).

    Whether a known method applies to the model's modality is left to the registry, once the
    model is loaded.
    """
    if [m.strip().lower() for m in methods] == ["all"]:
        return
    known = method_names()
    for name in (s.strip() for s in ",".join(methods).split(",")):
        if name and name not in known:
            raise UsageError(f"unknown method {name!r}", did_you_mean(name, known) or "run 'xai methods' to list them")


def precheck(cfg) -> None:
    """The usage errors of ``cfg`` that can be found before torch is imported.

    Raises:
        UsageError: A missing input path, or an unknown method name.
    """
    from xai_cli.inputs.discover import check_paths

    check_paths(list(cfg.inputs))
    check_method_names(cfg.methods)
