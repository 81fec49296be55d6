"""One text input's outputs: a picture per method, the JSON record, the manifest line.

Runs in a writer thread with CPU data only. Every file is written atomically and the record
last, so a record on disk means its pictures are there too (resume relies on it).

The record lists the tokens (with character offsets into ``text``), the words (merged from
their tokens) and, per method and target, one score per token and one per word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from xai_cli.inputs.text import TextItem
from xai_cli.outputs.items import finish_record, save_picture
from xai_cli.outputs.layout import Layout, target_tag
from xai_cli.render.heatmap import encode_png
from xai_cli.render.tokens import render_text_panel
from xai_cli.summary import TOP_SHARE

TOP_WORDS = 10  # words listed by |score| in each method's entry


@dataclass
class TextResult:
    """One method's scores for one text and one target, on the CPU."""

    method: str
    signed: bool
    target: dict  # rank, index, label, probability
    token_scores: np.ndarray  # (L,) float64, special tokens included
    word_scores: np.ndarray  # (W,) float64
    params: dict
    seconds: float
    details: dict = field(default_factory=dict)


@dataclass
class TextItemJob:
    """Everything needed to write one text's outputs."""

    rel: PurePosixPath
    item: TextItem
    base_record: dict  # schema_version, input, model, tokenization, prediction, text
    results: list[TextResult]
    several_targets: bool
    model_name: str
    save_raw: bool


def _num(v: float) -> float:
    return float(f"{v:.6g}")  # 6 significant digits: plenty for scores, half the JSON


def tokens_entry(it: TextItem) -> list[dict]:
    return [{"i": i, "token": tok, "id": tid, "start": off[0] if off else None, "end": off[1] if off else None,
             "word": w if w >= 0 else None, "special": off is None}
            for i, (tok, tid, off, w) in enumerate(zip(it.tokens, it.input_ids, it.offsets, it.word_ids))]


def words_entry(it: TextItem) -> list[dict]:
    tokens: list[list[int]] = [[] for _ in range(it.n_words)]
    for i, w in enumerate(it.word_ids):
        if w >= 0:
            tokens[w].append(i)
    return [{"i": w, "text": it.text[s:e], "start": s, "end": e, "tokens": tokens[w]}
            for w, (s, e) in enumerate(it.word_spans())]


def stats(r: TextResult, words: list[dict]) -> dict:
    """min, max, mean and sum of the word scores; ``top10_mass``, the share of sum |score| held by
    the 10 % of words with the largest |score| (as for image pixels); the strongest words."""
    ws = r.word_scores
    finite = bool(np.isfinite(r.token_scores).all() and np.isfinite(ws).all())
    safe = np.nan_to_num(ws)
    mag = np.sort(np.abs(safe))[::-1]
    k = max(1, int(np.ceil(TOP_SHARE * mag.size)))
    mass = float(mag[:k].sum() / mag.sum()) if mag.sum() > 0 else 0.0
    order = np.argsort(-np.abs(safe), kind="stable")[:TOP_WORDS]
    return {"finite": finite, "min": _num(safe.min()) if safe.size else 0.0, "max": _num(safe.max()) if safe.size else 0.0,
            "mean": _num(safe.mean()) if safe.size else 0.0, "sum": _num(safe.sum()), "top10_mass": _num(mass),
            "top_words": [{"word": int(w), "text": words[w]["text"], "score": _num(safe[w])} for w in order]}


def write_text_item(job: TextItemJob, layout: Layout) -> dict:
    """Render and write one text's files; return its manifest line."""
    it = job.item
    words = words_entry(it)
    spans = [(w["start"], w["end"]) for w in words]
    outputs: list[str] = []
    methods: dict[str, list[dict]] = {}
    problems: list[str] = []
    for r in job.results:
        tag = target_tag(r.target["rank"], r.target["index"], r.target["label"], job.several_targets)
        st = stats(r, words)
        entry = {"target": r.target, "params": r.params, "png": None, "raw": None, "seconds": round(r.seconds, 6),
                 "stats": st, "details": r.details,
                 "token_scores": [_num(v) for v in np.nan_to_num(r.token_scores)],
                 "word_scores": [_num(v) for v in np.nan_to_num(r.word_scores)]}
        methods.setdefault(r.method, []).append(entry)
        if not st["finite"]:
            problems.append(f"{r.method}: scores contain NaN or Inf")
            continue
        save_picture(layout, job.rel, r.method, tag, encode_png(_panel(job, r, spans)),
                     r.token_scores if job.save_raw else None, entry, outputs)
    record = dict(job.base_record)
    record["tokens"] = tokens_entry(it)
    record["words"] = words
    record["methods"] = methods
    return finish_record(layout, job.rel, record, problems, outputs)


def _panel(job: TextItemJob, r: TextResult, spans: list[tuple[int, int]]):
    it, t = job.item, r.target
    name = f"'{t['label']}'" if t.get("label") else f"class {t['index']}"
    title = f"{r.method} · {name} ({t['probability']:.1%})"
    bits = [job.model_name, f"rank {t['rank']}"]
    if r.details.get("class_specific") is False:
        bits.append("not class-specific")
    if "completeness_error" in r.details:
        bits.append(f"completeness error {r.details['completeness_error']:.2%}")
    note = f"truncated: explained the first {len(it.input_ids)} of {it.total_tokens} tokens" if it.truncated else ""
    return render_text_panel(it.text, spans, r.word_scores, signed=r.signed, title=title, subtitle=" · ".join(bits),
                             note=note, end=it.covered_chars())
