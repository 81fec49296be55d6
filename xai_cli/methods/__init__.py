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

# LIME's bf16 policy (see Method.bf16), declared here only while methods/lime.py is rewritten on
# another branch: it belongs in the Lime class.
all_methods("image")["lime"].bf16 = "bf16"
all_methods("image")["lime"].bf16_fidelity = "maps r 0.9999 of fp32 on the bench's resnet18 224², 1.9x the fp32 speed"

__all__ = ["Explanation", "Method", "Normalization", "all_methods", "build_params", "get_method", "parse_method_list"]
