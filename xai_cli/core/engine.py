"""One engine for every modality: a batch of decoded inputs in, one ``ItemResult`` per input out.

The engine predicts, chooses the targets, runs every method, and turns the maps into CPU
results through the modality. It never writes, prints or knows a path. A batch that runs out
of GPU memory is halved and retried, down to single inputs; an input that fails alone is a
failed result; any other error fails that batch's inputs only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from xai_cli.core.precision import arithmetic, autocast_model, prepare_inputs
from xai_cli.core.results import PREDICTION_TOP, TIE, ItemResult, MapResult, Prediction, Target
from xai_cli.core.targets import choose_targets, tied_with_top
from xai_cli import cancel
from xai_cli.cancel import Cancelled
from xai_cli.errors import XaiError
from xai_cli.inputs.discover import InputFile
from xai_cli.inputs.read import Failure
from xai_cli.methods.base import Method, Predicted
from xai_cli.models.registry import LoadedModel

if TYPE_CHECKING:  # the engine only calls the modality it is given: core never imports a modality
    from xai_cli.modalities.base import Modality


@dataclass
class Engine:
    """Everything fixed for the run; ``explain(items)`` is called once per loader batch.

    Attributes:
        oom_splits: How often a batch was halved after running out of memory.
        seconds: Device seconds by stage: ``predict`` and one entry per method.
        warnings: Lines the methods returned since the caller last emptied the list.
        on_method: Called ``(method, i, of, inputs)`` as each method finishes on a batch, so
            progress advances within a batch (the engine itself never prints).
        arithmetic: Each method's arithmetic under ``precision`` (its bf16 policy, see
            core/precision.py); the prediction runs at the run's, plain ``bf16`` under bf16.
    """

    modality: Modality
    loaded: LoadedModel
    methods: list[Method]
    files: list[InputFile]
    device: torch.device
    fixed_target: int | None
    top_k: int
    seed: int
    precision: str = "fp32"  # asked for the run: fp32, or bf16 where each method's policy allows (core/precision.py)
    oom_splits: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"predict": 0.0})
    warnings: list[str] = field(default_factory=list)
    on_method: Callable[[str, int, int, int], None] | None = None
    arithmetic: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.arithmetic = {m.name: arithmetic(self.precision, m.bf16_policy()[0]) for m in self.methods}
        self.predict_arithmetic = arithmetic(self.precision, "bf16")

    def explain(self, items: list) -> list[ItemResult]:
        """One result per item, in the items' order; never raises for one input's failure."""
        items = self.modality.finish(items, self.loaded, self.device)  # e.g. JPEGs decoded on the device
        if any(isinstance(it, Failure) for it in items):
            ok = [it for it in items if not isinstance(it, Failure)]
            done = {r.index: r for r in (self.explain(ok) if ok else [])}  # a stop drops the batch: none
            done.update({f.index: self.failure(f.index, f.reason, f.sha256) for f in items if isinstance(f, Failure)})
            return [done[it.index] for it in items if it.index in done]
        try:
            return self._explain(items)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if cancel.requested():
                return []
            if len(items) == 1:
                return [self.failure(items[0].index, "out of GPU memory even alone: run it on the CPU or use a smaller model",
                                     items[0].sha256)]
            self.oom_splits += 1
            half = len(items) // 2
            return self.explain(items[:half]) + self.explain(items[half:])
        except Cancelled:
            return []  # a stop was asked for: these inputs are not done (resume redoes them), not failed
        except XaiError:
            raise  # a configuration problem (e.g. no layer for Grad-CAM): every input would fail alike
        except Exception as e:  # one batch failing must not end the run: record its inputs
            reason = f"{type(e).__name__}: {str(e)[:200]}"
            return [self.failure(it.index, reason, it.sha256) for it in items]

    def failure(self, index: int, reason: str, sha256: str | None = None) -> ItemResult:
        return ItemResult(index, self.files[index], self.modality.name, "error", sha256=sha256, reason=reason)

    def _explain(self, items: list) -> list[ItemResult]:
        x = self.modality.collate(items, self.loaded, self.device)
        views: dict[bool, object] = {}  # the batch as each arithmetic takes it (bf16: channels_last)
        seeds = [item_seed(self.seed, it.sha256) for it in items]
        t = time.perf_counter()
        first = self._predicted(x, views, seeds)
        probs, targets = first.probs, first.targets  # (N, C), (N, K)
        self.seconds["predict"] += first.predict_seconds
        order = torch.sort(probs, dim=1, descending=True, stable=True)
        top_idx = order.indices[:, :PREDICTION_TOP].cpu().tolist()
        top_p = order.values[:, :PREDICTION_TOP].cpu().tolist()
        target_p = probs.gather(1, targets).cpu().tolist()
        tied = tied_with_top(probs, TIE).cpu().tolist()  # (N,) classes tied with the top
        n, k_count = len(items), targets.shape[1]
        per_item: list[list[MapResult]] = [[] for _ in range(n)]
        for method in self.methods:
            cancel.check()
            if method is self.methods[0]:
                expls, shared = first.explanations, first.predict_seconds
            else:
                t, shared = time.perf_counter(), 0.0
                with self._at(self.arithmetic[method.name], x, views) as xa:
                    expls = method.explain_targets(xa, targets, seeds)
            rows = [self.modality.map_results(e.maps.float(), items, method) for e in expls]  # waits for the device
            seconds = time.perf_counter() - t - shared
            self.seconds[method.name] = self.seconds.get(method.name, 0.0) + seconds
            if self.on_method is not None:
                self.on_method(method.name, self.methods.index(method) + 1, len(self.methods), n)
            for k, expl in enumerate(expls):
                self.warnings += expl.warnings
                for i in range(n):
                    idx = int(targets[i, k])
                    scores, stats, extra = rows[k][i]
                    target = Target(k + 1, idx, self.loaded.label(idx), target_p[i][k])
                    per_item[i].append(MapResult(method.name, method.signed, target, scores, stats, method.describe(),
                                                 expl.layer, seconds / (n * k_count),
                                                 expl.details[i] if expl.details else {}, extra,
                                                 precision=self.arithmetic[method.name]))
        labels = self.loaded.label
        results = [self._result(it, Prediction(tuple(top_idx[i]), tuple(top_p[i]), tuple(labels(c) for c in top_idx[i]),
                                               int(tied[i])), per_item[i]) for i, it in enumerate(items)]
        self._warn_degenerate(results)
        return results

    def _predicted(self, x, views: dict, seeds: list[int]) -> Predicted:
        """The prediction and the first method's explanations of the chosen targets.

        One forward serves both (Grad-CAM's hooked forward yields the logits) when the method
        runs at the prediction's arithmetic; otherwise the prediction is made at the run's
        precision and the method explains at its own.
        """
        method, arith = self.methods[0], self.arithmetic[self.methods[0].name]
        pick = lambda probs: choose_targets(probs, self.fixed_target, self.top_k)  # noqa: E731
        if arith == self.predict_arithmetic:
            with self._at(arith, x, views) as xa:
                return method.explain_predicted(xa, pick, seeds)
        t = time.perf_counter()
        with self._at(self.predict_arithmetic, x, views) as xa:
            probs = method.predict(xa)  # (N, classes)
        seconds = time.perf_counter() - t
        targets = pick(probs)  # (N, K)
        with self._at(arith, x, views) as xa:
            return Predicted(probs, targets, method.explain_targets(xa, targets, seeds), seconds)

    @contextmanager
    def _at(self, arith: str, x, views: dict) -> Iterator:
        """The model at arithmetic ``arith`` during the block, given the batch as that arithmetic takes it."""
        key = arith != "fp32"
        if key not in views:
            views[key] = prepare_inputs(x, arith)
        with autocast_model(self.loaded.module, arith, self.device):
            yield views[key]

    def _warn_degenerate(self, results: list[ItemResult]) -> None:
        """One line per kind of map or prediction that means nothing (the records say which)."""
        from xai_cli.modalities.base import DEGENERATE_TEXT

        for r in results:
            for m in r.maps:
                kind = m.stats.get("degenerate")
                if kind:
                    self.warnings.append(f"{m.method}: some maps are flat ({DEGENERATE_TEXT[kind]}): drawn without "
                                         f"colours; stats.degenerate in their records says so")
            if r.prediction.tied > 1:
                self.warnings.append("some inputs' top classes tie (the model prefers none of them): the lowest class "
                                     "index among them is explained; prediction_tie in their records")

    def _result(self, it, prediction: Prediction, maps: list[MapResult]) -> ItemResult:
        bad = [m.method for m in maps if not m.finite]
        reason = "; ".join(f"{name}: the map contains NaN or Inf, so it was not drawn" for name in dict.fromkeys(bad))
        return ItemResult(it.index, self.files[it.index], self.modality.name, "error" if bad else "ok",
                          sha256=it.sha256, item=it, prediction=prediction, maps=maps, reason=reason or None)


def item_seed(seed: int, sha256: str) -> int:
    """A per-input seed from the run seed and the input's content: independent of input order."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{sha256}".encode()).digest()[:4], "little")
