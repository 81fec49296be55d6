"""Explanation methods. Each file registers one method; importing this package loads them all,
so adding a method means adding a file — nothing central is edited."""

import importlib
import pkgutil

from xai_cli.methods.base import Explanation, Method, Normalization
from xai_cli.methods.registry import all_methods, build_params, get_method, parse_method_list

_INTERNAL = {"base", "registry", "targets"}
for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _INTERNAL and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Explanation", "Method", "Normalization", "all_methods", "build_params", "get_method", "parse_method_list"]
