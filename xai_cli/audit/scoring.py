"""Scores of a batch of explained inputs: every metric the audit computes per input.

Called by the audit sink with a batch of ok results (rank-1 maps only). All methods' maps of
the batch go through the perturbation metrics together, so their forward passes share chunks
of ``perturbations_per_eval`` rows; nothing is ever run one input at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xai_cli.audit.ground_truth import GroundTruth, rationale_spans
from xai_cli.audit.settings import AuditSettings
from xai_cli.core.engine import item_seed
from xai_cli.core.precision import autocast_calls, autocast_model
from xai_cli.core.results import ItemResult, MapResult
from xai_cli.methods.base import Method, Normalization
from xai_cli.metrics import localisation as loc

Scores = dict[str, dict]  # {method: {"metrics": {name: float|None}, "curves": {...}}}


@dataclass
class Context:
    """What scoring needs from the run: the model, its device and preprocessing, the methods."""

    model: torch.nn.Module
    device: torch.device
    modality: str
    methods: list[Method]
    normalization: Normalization | None
    settings: AuditSettings
    truth: GroundTruth
    seed: int
    precision: str = "fp32"  # the audit's own forward passes run at the explain pass's precision


def first_maps(result: ItemResult) -> dict[str, MapResult]:
    """Each method's rank-1 map (the audit scores the top target only)."""
    return {name: maps[0] for name, maps in result.by_method().items()}


def score_batch(results: list[ItemResult], ctx: Context) -> list[Scores]:
    """One ``{method: {"metrics", "curves"}}`` per result (ok results only, rank-1 maps)."""
    out: list[Scores] = [{m.name: {"metrics": {}, "curves": {}} for m in ctx.methods} for _ in results]
    if not results:
        return out
    score = _image if ctx.modality == "image" else _text
    with autocast_model(ctx.model, ctx.precision, ctx.device):
        score(results, ctx, out)
    if ctx.settings.wants("completeness"):
        for r, scores in zip(results, out):
            for name, m in first_maps(r).items():
                if "completeness_error" in m.details:
                    scores[name]["metrics"]["completeness_error"] = float(m.details["completeness_error"])
    return out


def _seeds(results: list[ItemResult], seed: int) -> list[int]:
    return [item_seed(seed, r.sha256) for r in results]


def _image(results: list[ItemResult], ctx: Context, out: list[Scores]) -> None:
    from xai_cli.metrics.faithfulness import deletion_insertion

    s, names = ctx.settings, [m.name for m in ctx.methods]
    per_method = [[first_maps(r)[name] for r in results] for name in names]
    if s.wants("faithfulness"):
        x = _collate(results, ctx)  # (N, C, H, W)
        n = len(results)
        # Every method's maps in one call: their perturbed rows share forward passes, and what
        # does not depend on the map (the random ordering, the input, baseline and blur) runs
        # once per input. Methods explain the same rank-1 target, whose probability the
        # explain pass already has.
        maps = torch.stack([torch.stack([torch.from_numpy(np.asarray(m.scores, dtype=np.float32)) for m in ms])
                            for ms in per_method])  # (M, N, H, W)
        first = per_method[0]
        curves = deletion_insertion(ctx.model, x, maps.to(ctx.device), torch.tensor([m.target.index for m in first]),
                                    normalization=ctx.normalization, steps=s.steps, baseline=s.baseline,
                                    blur_kernel=s.blur_kernel, blur_sigma=s.blur_sigma, seeds=_seeds(results, ctx.seed),
                                    perturbations_per_eval=s.perturbations_per_eval,
                                    probabilities=[m.target.probability for m in first])
        for c in curves.values():
            values = c.metrics()
            for j, name in enumerate(names):
                for i in range(n):
                    entry = out[i][name]
                    entry["metrics"].update({k: float(v[j, i]) for k, v in values.items()})
                    entry["curves"][c.kind] = {"curve": _r(c.curve[j, i]), "random_curve": _r(c.random_curve[j, i])}
    if s.wants("road"):
        from xai_cli.metrics.road import road

        x = _collate(results, ctx)
        for name, ms in zip(names, per_method):
            maps = torch.stack([torch.from_numpy(np.asarray(m.scores, dtype=np.float32)) for m in ms])
            values = road(ctx.model, x, maps, torch.tensor([m.target.index for m in ms]), noise=s.road_noise,
                          seeds=_seeds(results, ctx.seed), perturbations_per_eval=s.perturbations_per_eval)
            for i in range(len(results)):
                out[i][name]["metrics"].update({k: float(v[i]) for k, v in values.items()})
    if s.wants("localisation") and ctx.truth.kind in ("masks", "boxes"):
        masks = [ctx.truth.input_mask(r.file, r.item.size, r.item.box, r.item.tensor.shape[-1]) for r in results]
        have = [i for i, mk in enumerate(masks) if mk is not None]
        if have:
            gt = np.stack([masks[i] for i in have])
            for name, ms in zip(names, per_method):
                a = np.stack([ms[i].scores for i in have]).astype(np.float64)
                values = {"pointing_game": loc.pointing_game(a, gt, s.pointing_tolerance),
                          "energy_pointing_game": loc.energy_pointing_game(a, gt),
                          "relevance_mass": loc.relevance_mass_accuracy(a, gt),
                          "relevance_rank": loc.relevance_rank_accuracy(a, gt)}
                for k, i in enumerate(have):
                    out[i][name]["metrics"].update({m: _num(v[k]) for m, v in values.items()})


def _text(results: list[ItemResult], ctx: Context, out: list[Scores]) -> None:
    from xai_cli.metrics.text_faithfulness import comprehensiveness_sufficiency

    s = ctx.settings
    items = [r.item for r in results]
    if s.wants("faithfulness"):
        batch = _collate(results, ctx)
        width = batch.input_ids.shape[1]
        for method in ctx.methods:
            ms = [first_maps(r)[method.name] for r in results]
            maps = torch.zeros(len(items), width, dtype=torch.float64)
            for i, m in enumerate(ms):
                maps[i, :len(m.scores)] = torch.from_numpy(np.asarray(m.scores, dtype=np.float64))
            targets = torch.tensor([m.target.index for m in ms])
            tf = comprehensiveness_sufficiency(ctx.model, batch, maps, targets, fractions=s.fraction_list,
                                               mask=s.text_mask, seeds=_seeds(results, ctx.seed),
                                               perturbations_per_eval=s.perturbations_per_eval)
            values = tf.metrics()
            for i in range(len(items)):
                out[i][method.name]["metrics"].update({k: float(v[i]) for k, v in values.items()})
                out[i][method.name]["curves"]["aopc"] = {
                    "full": round(float(tf.full[i]), 6), "removed": _r(tf.removed[i]), "kept": _r(tf.kept[i]),
                    "random_removed": _r(tf.random_removed[i]), "random_kept": _r(tf.random_kept[i])}
    if s.wants("localisation"):
        for i, (r, it) in enumerate(zip(results, items)):
            spans = rationale_spans(r.file)
            if spans is None:
                continue
            gt = loc.word_mask_from_spans(it.word_spans(), spans)[None, None, :]  # (1, 1, W)
            for name, m in first_maps(r).items():
                a = np.asarray(m.extra["word_scores"], dtype=np.float64)[None, None, :]
                out[i][name]["metrics"].update({
                    "pointing_game": _num(loc.pointing_game(a, gt, 0)[0]),
                    "relevance_mass": _num(loc.relevance_mass_accuracy(a, gt)[0]),
                    "relevance_rank": _num(loc.relevance_rank_accuracy(a, gt)[0])})


def model_input(item, modality: str):
    """What the model takes of a decoded item and nothing more: the (C, H, W) tensor, or (ids,
    word ids). The audit keeps these for its sample until the run ends, not the decoded originals."""
    return item.tensor if modality == "image" else (item.input_ids, item.word_ids)


def collate(inputs: list, ctx: Context):
    """Inputs kept by :func:`model_input` -> the model's input on its device: (N, C, H, W) or a ``TokenBatch``."""
    if ctx.modality == "image":
        return torch.stack(inputs).to(ctx.device)
    from xai_cli.methods.text._base import TokenBatch

    return TokenBatch.from_lists([ids for ids, _ in inputs], [w for _, w in inputs], ctx.model.pad_id, ctx.device)


def _collate(results: list[ItemResult], ctx: Context):
    return collate([model_input(r.item, ctx.modality) for r in results], ctx)


SampleScores = tuple[dict[str, dict[str, np.ndarray]], list[str], dict[str, dict[str, str]]]


def score_sample(inputs: list, targets: torch.Tensor, seeds: list[int], ctx: Context) -> SampleScores:
    """Randomisation and max-sensitivity of every method on the sampled inputs, images or texts.

    Text maps are compared over the tokens of words (padding and special tokens left out: IG and
    transformer attribution give special tokens exactly 0, ties that would agree at every step);
    max-sensitivity perturbs the word embeddings (``metrics.stability.token_max_sensitivity``),
    so methods that hide words instead get no value and a reason.

    Args:
        inputs: The sample, as :func:`model_input` keeps it.
        targets: (n,) the classes their maps explained.
        seeds: One per input, for the noise of max-sensitivity.
        ctx: The model, methods and settings.

    Returns:
        ``({method: {metric: (n,) values}}, the cascade's blocks, {method: {metric: why not measured}})``.
    """
    from xai_cli.metrics.explainers import method_explainer
    from xai_cli.metrics.randomisation import cascade_blocks, model_randomisation
    from xai_cli.metrics.stability import max_sensitivity, token_max_sensitivity

    s, text = ctx.settings, ctx.modality == "text"
    x, targets = collate(inputs, ctx), targets.to(ctx.device)
    compared = (x.word_ids >= 0) if text else None  # (N, T) for text
    sensitivity = token_max_sensitivity if text else max_sensitivity
    out: dict[str, dict[str, np.ndarray]] = {}
    reasons: dict[str, dict[str, str]] = {}
    blocks = cascade_blocks(ctx.model)
    for method in ctx.methods:
        explain = autocast_calls(method_explainer(method.name, method.params, ctx.normalization, ctx.modality),
                                 ctx.precision, ctx.device)
        base = explain(ctx.model, x, targets)
        values: dict[str, np.ndarray] = {}
        if s.wants("randomisation"):
            values.update(model_randomisation(explain, ctx.model, x, targets, blocks=blocks, seed=s.randomisation_seed,
                                              maps=base, mask=compared).metrics())
        if s.wants("stability") and text and not method.takes_embeddings:
            values["max_sensitivity"] = np.full(len(inputs), np.nan)
            reasons.setdefault(method.name, {})["max_sensitivity"] = (
                f"{method.name} explains text by hiding words (token ids); max-sensitivity perturbs the word "
                "embeddings, which it cannot take")
        elif s.wants("stability"):
            values["max_sensitivity"] = sensitivity(explain, ctx.model, x, targets, radius=s.radius,
                                                    n_samples=s.stability_samples, seeds=seeds, maps=base,
                                                    inputs_per_explain=max(len(inputs), 64))
        out[method.name] = values
    return out, blocks, reasons


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in a]
