"""What a text's record holds beyond the common fields: its tokens (with character offsets
into ``text``), its words (merged from their tokens), and per map one score per token and one
per word; and the statistics of a text map."""

from __future__ import annotations

import numpy as np

from xai_cli.modalities.base import TOP_SHARE, degenerate
from xai_cli.modalities.text.decode import TextItem

TOP_WORDS = 10  # words listed by |score| in each map's statistics
MAX_RECORD_CHARS = 200_000  # a longer text is stored in its record only as far as its tokens reach


def num(v: float) -> float:
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


def text_stats(token_scores: np.ndarray, word_scores: np.ndarray, it: TextItem) -> dict:
    """min, max, mean and sum of the word scores; ``top10_mass``, the share of sum |score| held by
    the 10 % of words with the largest |score| (as for image pixels); the strongest words;
    ``degenerate``: why the map shows nothing ("zero", "near_zero", "constant") or None."""
    ws = word_scores
    finite = bool(np.isfinite(token_scores).all() and np.isfinite(ws).all())
    safe = np.nan_to_num(ws)
    mag = np.sort(np.abs(safe))[::-1]
    k = max(1, int(np.ceil(TOP_SHARE * mag.size)))
    mass = float(mag[:k].sum() / mag.sum()) if mag.sum() > 0 else 0.0
    order = np.argsort(-np.abs(safe), kind="stable")[:TOP_WORDS]
    spans = it.word_spans()
    flat = degenerate(float(safe.min()), float(safe.max())) if safe.size and finite else None
    return {"finite": finite, "degenerate": flat, "min": num(safe.min()) if safe.size else 0.0, "max": num(safe.max()) if safe.size else 0.0,
            "mean": num(safe.mean()) if safe.size else 0.0, "sum": num(safe.sum()), "top10_mass": num(mass),
            "top_words": [{"word": int(w), "text": it.text[spans[w][0]:spans[w][1]], "score": num(safe[w])} for w in order]}


def without_words(it: TextItem, words: list[int]) -> str:
    """The text with the given words deleted (and the space before each, so no gap is left)."""
    spans = it.word_spans()
    cuts = sorted(spans[w] for w in set(words) if 0 <= w < len(spans))
    out, at = [], 0
    for s, e in cuts:
        while s > at and it.text[s - 1] == " ":
            s -= 1
        out.append(it.text[at:s])
        at = max(at, e)
    out.append(it.text[at:])
    return "".join(out)


def record_fields(result, run) -> dict:
    """The text-specific fields of an explained text's record."""
    it: TextItem = result.item
    src = result.file
    stored = it.text if len(it.text) <= MAX_RECORD_CHARS else it.text[:it.covered_chars()]
    total = {"tokens_total": it.total_tokens} if it.total_exact else {
        "tokens_total": None, "tokens_total_at_least": it.total_tokens}  # only a prefix was tokenised
    return {
        "modality": "text",
        "input": {"path": result.path, "rel": str(result.rel), "sha256": result.sha256, "encoding": it.encoding,
                  "key": src.key, "line": getattr(src, "line", None), "span": list(src.span) if src.span else None,
                  "chars": len(it.text), "notes": it.notes},
        "tokenization": {"max_length": run.modality_fields["max_length"], "truncated": it.truncated,
                         "tokens_kept": len(it.input_ids), **total, "chars_covered": it.covered_chars()},
        "text": stored,
        "text_complete": len(stored) == len(it.text),
        "tokens": tokens_entry(it),
        "words": words_entry(it),
    }
