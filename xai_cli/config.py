"""The run configuration: one frozen object built from a config file and CLI flags.

Precedence: CLI flag > config file (``--config run.toml``) > default. The keys of a config
file are the field names below; per-method parameters go in ``[params.<method>]`` tables.
See configs/README.md for the documented keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from xai_cli.errors import ConfigError, did_you_mean

OVERLAYS = ("side-by-side", "blend")  # render.heatmap.OVERLAYS
DECODES = ("cpu", "device")  # where JPEGs are decoded (modalities/image/device_decode.py)
CMAPS = ("turbo", "viridis", "inferno", "gray")  # render.colormap.SEQUENTIAL
SCALES = ("input", "run")
MAX_TOP_K = 50  # more targets per input is clamped (with a warning): 50 pictures per method per input


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run does.

    Attributes are documented in configs/README.md; ``output_key()`` hashes the ones that
    change outputs, which resume uses to tell a finished input from a stale one.
    """

    model: str | None = None
    weights: str | None = None
    labels: Path | None = None
    methods: tuple[str, ...] = ()  # empty: the modality's default (gradcam for images, ig for text)
    params: dict[str, dict[str, object]] = field(default_factory=dict)
    inputs: tuple[Path, ...] = ()
    out: Path = Path("xai-out")
    target: str | None = None
    top_k: int = 1
    batch_size: int = 32
    device: str = "auto"
    precision: str = "fp32"  # the model's forward/backward: fp32, or bf16 autocast as each method's policy allows (maps and statistics stay fp32)
    workers: int | None = None  # None: one per spare core (at most 8)
    decode: str = "cpu"  # "device": JPEGs decoded on the run's device (nvJPEG on a GPU), the rest on the CPU
    writer_threads: int | None = None  # None: half the cores, at least 1
    seed: int = 0
    save_raw: bool = False
    render_max_side: int = 512  # longest side of the input as drawn: side by side, a picture is at most ~1.2k x 0.6k px
    overlay: str = "side-by-side"  # the input next to the map over its grey copy; "blend": the map only
    cmap: str = "turbo"  # colour map of non-negative maps (signed ones: red for, blue against)
    scale: str = "input"  # "run": one colour scale per method for the whole run (see sinks/files/scale.py)
    max_pixels: int | None = None  # decompression-bomb guard; None: PIL's default (~89 Mpx)
    trust_checkpoint: bool = False
    trust_remote_code: bool = False
    allow_untrained_head: bool = False
    force: bool = False  # redo inputs whose outputs are complete (default: resume, skip them)
    max_failures: int | None = None  # stop once more inputs than this have failed (0: at the first)
    shard: str | None = None  # "K/N" or "auto" (from Slurm, Kubernetes, torchrun): this job's part of the inputs
    backend: str = "local"  # "local" (this process, one engine process per device) or "ray"
    ray_address: str | None = None  # the Ray cluster to join (None: RAY_ADDRESS, else a local instance)

    def __post_init__(self) -> None:
        # Python callers may pass strings for paths: the run relies on Path everywhere.
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        if self.labels is not None:
            object.__setattr__(self, "labels", Path(self.labels))
        _check_types(self)
        if not self.model:
            raise ConfigError("no model given", "name one with {opt:model} (see 'xai models'), e.g. demo-digits")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}", f"use {' or '.join(PRECISIONS)}")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, not {self.top_k}")
        for key, choices in (("overlay", OVERLAYS), ("cmap", CMAPS), ("scale", SCALES), ("decode", DECODES)):
            if getattr(self, key) not in choices:
                raise ConfigError(f"bad {{opt:{key}}} {getattr(self, key)!r}", f"use one of: {', '.join(choices)}")
        if self.render_max_side < 64:
            raise ConfigError(f"render_max_side must be at least 64, not {self.render_max_side}")
        if self.target is not None and self.top_k != 1:
            raise ConfigError("{opt:target} and {opt:top_k} cannot be used together", "explain one fixed class, or the top k")
        if self.shard is not None:
            from xai_cli.core.shard import check_spec

            check_spec(self.shard)
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"unknown {{opt:backend}} {self.backend!r}", "use local or ray")
        if self.ray_address is not None and self.backend != "ray":
            raise ConfigError("{opt:ray_address} needs {opt:backend} ray")

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = [str(x) if isinstance(x, Path) else x for x in v]
            out[f.name] = v
        return out

    def output_key(self) -> str:
        """A hash of the settings that change an input's outputs (not paths, batch or device)."""
        keep = ("model", "weights", "labels", "methods", "params", "target", "top_k", "seed", "save_raw", "render_max_side",
                "overlay", "cmap", "scale", "precision", "decode")
        d = {k: v for k, v in self.to_dict().items() if k in keep}
        for key, default in (("precision", "fp32"), ("decode", "cpu")):
            if d[key] == default:
                del d[key]  # the default leaves the keys of earlier runs unchanged (they resume)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_types(cfg: RunConfig) -> None:
    """Every field of the type it is declared with (a config file's ``top_k = "3"`` is an error
    naming the key and the type, not a comparison error later)."""
    hints = typing.get_type_hints(RunConfig)
    for f in dataclasses.fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        if not _is(value, hint):
            raise ConfigError(f"{f.name} = {value!r} is not {_type_name(hint)}",
                              f"give {f.name} as {_type_name(hint)}; configs/README.md lists the keys")


def _is(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_is(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is Path:
        return isinstance(value, (str, Path))
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, (tuple, list)) and all(_is(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}s"
    if origin is dict:
        return "a table"
    return {int: "an integer", str: "a string", bool: "true or false", Path: "a path", float: "a number",
            type(None): "left out"}.get(hint, str(hint))


PRECISIONS = ("fp32", "bf16")  # as xai_cli.core.precision, which imports torch
FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
_PATHS = {"labels", "out"}


def load_config_file(path: Path) -> dict:
    """Read a TOML run config into RunConfig keyword arguments (paths resolved from the file's folder).

    Raises:
        ConfigError: Unreadable file, bad TOML, or unknown keys (with suggestions).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {path} is not valid TOML: {e}") from e
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {path}", did_you_mean(unknown[0], FIELDS) or "see configs/README.md")
    base = path.parent
    out = dict(data)
    for k in _PATHS & out.keys():
        out[k] = (base / out[k]) if not Path(out[k]).is_absolute() else Path(out[k])
    if "inputs" in out:
        out["inputs"] = tuple(base / p for p in out["inputs"])
    if "methods" in out:
        m = out["methods"]
        out["methods"] = tuple(m.split(",") if isinstance(m, str) else m)
    if "params" in out and not all(isinstance(v, dict) for v in out["params"].values()):
        raise ConfigError(f"[params] in {path} must hold tables, like [params.gradcam]")
    return out


def build_config(file: Path | None, overrides: dict) -> RunConfig:
    """Merge a config file with the CLI's explicitly given flags (``None`` = not given)."""
    values = load_config_file(file) if file else {}
    params = {k: dict(v) for k, v in values.get("params", {}).items()}
    for method, kv in (overrides.pop("params", None) or {}).items():
        params.setdefault(method, {}).update(kv)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["params"] = params
    try:
        return RunConfig(**values)
    except TypeError as e:
        raise ConfigError(f"bad configuration: {e}") from e


def parse_param(items: list[str]) -> dict[str, dict[str, str]]:
    """``["gradcam.layer=layer3", "ig.steps=64"]`` -> ``{"gradcam": {"layer": "layer3"}, "ig": {"steps": "64"}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not method or not name:
            raise ConfigError(f"bad --param {item!r}", "write METHOD.NAME=VALUE, e.g. --param ig.steps=64")
        out.setdefault(method.strip(), {})[name.strip()] = value.strip()
    return out


