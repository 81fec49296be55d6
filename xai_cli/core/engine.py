"""What every engine shares: the run's fixed parts, and the failure policy around one batch.

A batch that runs out of GPU memory is halved and retried, down to single inputs; an input
that fails alone is recorded as failed; any other error fails that batch's inputs only.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch

from xai_cli.config import RunConfig
from xai_cli.errors import XaiError
from xai_cli.inputs.discover import InputFile
from xai_cli.methods.base import Method
from xai_cli.models.registry import LoadedModel
from xai_cli.outputs.items import write_failure
from xai_cli.outputs.layout import Layout

PREDICTION_TOP = 5  # classes listed in each record's prediction
Job = Callable[[], dict]


@dataclass
class Engine(ABC):
    """Everything fixed for the run; ``explain(items)`` is called once per loader batch.

    Subclasses implement ``_explain(items) -> {input index: writer job}`` for their modality.
    """

    cfg: RunConfig
    loaded: LoadedModel
    methods: list[Method]
    files: list[InputFile]
    layout: Layout
    device: torch.device
    fixed_target: int | None
    oom_splits: int = 0  # how often a batch was halved after running out of memory
    stats: dict = field(default_factory=lambda: {"predict_s": 0.0, "methods_s": {}})  # seconds by stage

    def explain(self, items: list) -> dict[int, Job]:
        """Writer jobs for ``items``, keyed by input index; never raises for one input's failure."""
        try:
            return self._explain(items)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(items) == 1:
                return {items[0].index: self._failure(items[0], "out of GPU memory even alone: try --device cpu or a smaller model")}
            self.oom_splits += 1
            half = len(items) // 2
            return {**self.explain(items[:half]), **self.explain(items[half:])}
        except XaiError:
            raise  # a configuration problem (e.g. no layer for Grad-CAM): every input would fail alike
        except Exception as e:  # one batch failing must not end the run: record its inputs
            reason = f"{type(e).__name__}: {str(e)[:200]}"
            return {it.index: self._failure(it, reason) for it in items}

    @abstractmethod
    def _explain(self, items: list) -> dict[int, Job]:
        """Predict and explain ``items``; ImageEngine and TextEngine implement it."""

    def _failure(self, it, reason: str) -> Job:
        src = self.files[it.index]
        return partial(write_failure, src.rel, str(src.path), reason, it.sha256, self.loaded.identity(), self.layout)

    def add_seconds(self, method: str, seconds: float) -> None:
        self.stats["methods_s"][method] = self.stats["methods_s"].get(method, 0.0) + seconds


def item_seed(seed: int, sha256: str) -> int:
    """A per-input seed from the run seed and the input's content: independent of input order."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sha256}".encode()).digest()[:4], "little")
