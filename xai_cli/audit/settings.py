"""The audit's knobs, every one with the default of its paper or peer, set with
``--param audit.NAME=VALUE`` (or ``[params.audit]`` in a config file)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from xai_cli.errors import ConfigError, did_you_mean

FAMILIES = ("faithfulness", "localisation", "randomisation", "stability", "completeness", "road")
DEFAULT_FAMILIES = FAMILIES[:-1]  # ROAD is opt-in: one sparse solve per image and percentile


@dataclass(frozen=True)
class AuditSettings:
    """What the audit measures and how.

    Attributes:
        metrics: Comma-separated families to run (default all that apply): faithfulness
            (deletion/insertion, or ERASER comprehensiveness/sufficiency for text),
            localisation (needs masks, boxes or rationales), randomisation, stability,
            completeness (IG's completeness error from its map details); opt-in: road
            (ROAD, images, e.g. ``--param audit.metrics=faithfulness,road``).
        steps: Deletion/insertion steps (RISE: 20).
        baseline: Deletion's fill, a pixel value in [0, 1] (RISE: 0, black).
        blur_kernel, blur_sigma: Insertion's starting blur (RISE: 11, 5).
        fractions: Text AOPC bins, comma-separated (ERASER: 0.1,0.2,0.3,0.4,0.5).
        text_mask: How a text word is hidden: remove (ERASER), mask or pad.
        road_noise: ROAD's imputation noise std, model-input units (pytorch-grad-cam: 0.01).
        pointing_tolerance: Pointing game's tolerance in model-input pixels (Zhang et al.: 15).
        sample: Inputs, chosen by seed from the run's input list, for randomisation and
            stability (16).
        randomisation_seed: Seeds the re-initialisation of the cascade (0).
        radius, stability_samples: Max-sensitivity's noise radius and draws (Captum: 0.02, 10).
        inputs_per_score: Explained inputs scored together (their perturbations share
            forward passes); memory only, never results.
        perturbations_per_eval: Perturbed inputs per forward pass; memory only.
    """

    metrics: str = ",".join(DEFAULT_FAMILIES)
    steps: int = 20
    baseline: float = 0.0
    blur_kernel: int = 11
    blur_sigma: float = 5.0
    fractions: str = "0.1,0.2,0.3,0.4,0.5"
    text_mask: str = "remove"
    pointing_tolerance: float = 15.0
    road_noise: float = 0.01
    sample: int = 16
    randomisation_seed: int = 0
    radius: float = 0.02
    stability_samples: int = 10
    inputs_per_score: int = 64
    perturbations_per_eval: int = 64  # metrics/_forward.py DEFAULT_CHUNK: 64 rows cost less per row than 256

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ConfigError(f"audit.metrics: unknown family {unknown[0]!r}",
                              did_you_mean(unknown[0], FAMILIES) or f"use {', '.join(FAMILIES)}")
        if self.text_mask not in ("remove", "mask", "pad"):
            raise ConfigError(f"audit.text_mask must be remove, mask or pad, not {self.text_mask!r}")
        for name in ("steps", "inputs_per_score", "perturbations_per_eval", "stability_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"audit.{name} must be at least 1, not {getattr(self, name)}")
        if self.sample < 0:
            raise ConfigError(f"audit.sample must be 0 (no sanity/stability checks) or more, not {self.sample}")

    @property
    def families(self) -> list[str]:
        return [f.strip() for f in self.metrics.split(",") if f.strip()]

    def wants(self, family: str) -> bool:
        return family in self.families

    @property
    def fraction_list(self) -> tuple[float, ...]:
        return tuple(float(f) for f in self.fractions.split(","))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, object] | None) -> AuditSettings:
        """From ``{name: value}``, values as given on the command line (strings) or in TOML.

        Raises:
            ConfigError: An unknown name (with near matches) or a value of the wrong type.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for name, value in (params or {}).items():
            if name not in fields:
                raise ConfigError(f"unknown audit parameter {name!r}",
                                  did_you_mean(name, fields) or f"known: {', '.join(fields)}")
            kind = type(fields[name].default)
            try:
                kwargs[name] = ",".join(map(str, value)) if isinstance(value, list) else kind(value)
            except (TypeError, ValueError):
                raise ConfigError(f"audit.{name} must be a {kind.__name__}, not {value!r}") from None
        return cls(**kwargs)
