"""Text pictures a person can read: the document itself, wrapped, with each word's background
coloured by its score on a diverging map (white at 0, red for, blue against the class), a
title naming method, class and probability, the strongest words listed, and a colour bar.

Pure PIL/numpy: rendering gets the text, word spans and CPU scores, never the model. The
original spacing and line breaks are kept; a word is never split across lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
import numpy as np
from PIL import Image, ImageDraw

from xai_cli.render import colormap
from xai_cli.render.fonts import font

WIDTH = 960  # picture width in px
MAX_LINES = 80  # longer texts are cut (the picture says so); the JSON has every score
_ATOMS = re.compile(r"\r\n|\r|\n|[ \t]+|[^ \t\r\n]+")


@dataclass(frozen=True)
class Piece:
    """One drawn run of text: position, string, and its word (-1 for text between words)."""

    x: float
    line: int
    text: str
    word: int


def _runs(text: str, spans: list[tuple[int, int]], end: int) -> list[tuple[str, int]]:
    """The text up to ``end`` cut into (string, word index or -1) runs, in order."""
    runs, pos = [], 0
    for w, (s, e) in sorted(enumerate(spans), key=lambda x: x[1]):
        if s < 0 or e <= s or s < pos:
            continue
        if s > pos:
            runs.append((text[pos:s], -1))
        runs.append((text[s:e], w))
        pos = e
    if pos < end:
        runs.append((text[pos:end], -1))
    return runs


def layout(text: str, spans: list[tuple[int, int]], end: int, fnt, width: float) -> list[Piece]:
    """Place the runs on lines ``width`` px wide, breaking only at whitespace or line breaks."""
    atoms = [(m.group(), w) for run, w in _runs(text, spans, end) for m in _ATOMS.finditer(run)]
    pieces: list[Piece] = []
    x, line, space = 0.0, 0, fnt.getlength(" ")
    i = 0
    while i < len(atoms):
        a, w = atoms[i]
        if a in ("\n", "\r", "\r\n"):
            x, line, i = 0.0, line + 1, i + 1
            continue
        if a[0] in " \t":
            x += 0 if x == 0 else space * len(a.expandtabs(4))
            i += 1
            continue
        j = i  # a chunk: the atoms up to the next whitespace ("phone" + "," stay together)
        while j < len(atoms) and not atoms[j][0][0] in " \t\r\n":
            j += 1
        chunk = atoms[i:j]
        chunk_w = sum(fnt.getlength(s) for s, _ in chunk)
        if x > 0 and x + chunk_w > width:
            x, line = 0.0, line + 1
        for s, cw in chunk:
            for part in _hard_split(s, fnt, width):
                if x > 0 and x + fnt.getlength(part) > width:
                    x, line = 0.0, line + 1
                pieces.append(Piece(x, line, part, cw))
                x += fnt.getlength(part)
        i = j
    return pieces


def _hard_split(s: str, fnt, width: float) -> list[str]:
    """A string wider than a whole line (a long URL) cut into line-sized parts."""
    if fnt.getlength(s) <= width:
        return [s]
    parts, cur = [], ""
    for ch in s:
        if cur and fnt.getlength(cur + ch) > width:
            parts.append(cur)
            cur = ""
        cur += ch
    return parts + [cur]


def scale_of(scores: np.ndarray) -> float:
    """The largest |score|: the colour bar's end (1 when every score is 0 or none is finite)."""
    finite = np.abs(scores[np.isfinite(scores)])
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def colours(scores: np.ndarray, top: float) -> np.ndarray:
    """(W,) scores -> (W, 3) uint8 on RdBu_r with white at 0 and +-top at the ends."""
    return colormap.apply(0.5 + 0.5 * np.nan_to_num(scores) / top, "rdbu_r")


def render_text_panel(text: str, spans: list[tuple[int, int]], scores: np.ndarray, *, signed: bool, title: str,
                      subtitle: str = "", note: str = "", end: int | None = None, width: int = WIDTH,
                      lines: tuple[str, ...] = (), warnings: tuple[str, ...] = (), top: float | None = None
                      ) -> Image.Image:
    """The full picture: title, the coloured text, the strongest words, a colour bar.

    Args:
        text: The document.
        spans: (start, end) character span of each word.
        scores: (W,) one score per word.
        signed: Scores take both signs (the bar runs -max..max; else 0..max).
        title, subtitle: Header lines.
        note: A grey line under the text (e.g. that the text was truncated).
        end: Draw the text up to this character (default: the end of the last word).
        lines, warnings: Further header lines, grey and orange (wrapped to the width).
        top: The colour bar's end, fixed for the run; None: the largest |score|.
    """
    from xai_cli.render.heatmap import WARN, wrap

    fs, pad = 18, 16
    body, head, small = font(fs), font(fs + 2, bold=True), font(fs - 4)
    line_h = int(fs * 1.55)
    end = max((e for _, e in spans), default=0) if end is None else end
    pieces = layout(text, spans, end, body, width - 2 * pad)
    n_lines = max((p.line for p in pieces), default=0) + 1
    cut = n_lines > MAX_LINES
    pieces = [p for p in pieces if p.line < MAX_LINES]
    top_words = _strongest(text, spans, scores)
    rows = [(s, (90, 90, 90)) for line in ((subtitle,) if subtitle else ()) + tuple(lines) for s in wrap(line, small, width - 2 * pad)]
    rows += [(s, WARN) for line in warnings for s in wrap(line, small, width - 2 * pad)]
    header = pad + fs + 6 + len(rows) * (fs - 1) + 8
    text_h = min(n_lines, MAX_LINES) * line_h
    footer = 10 + (fs if note or cut else 0) + (fs if top_words else 0) + 44
    canvas = Image.new("RGB", (width, header + text_h + footer + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), title, fill="black", font=head)
    for i, (line, colour) in enumerate(rows):
        draw.text((pad, pad + fs + 6 + i * (fs - 1)), line, fill=colour, font=small)
    top = top or scale_of(scores)
    rgb = colours(scores, top)
    for p in pieces:
        x, y = pad + p.x, header + p.line * line_h
        fill = "black"
        if p.word >= 0:
            c = tuple(int(v) for v in rgb[p.word])
            draw.rectangle((x - 1, y + 1, x + body.getlength(p.text) + 1, y + line_h - 2), fill=c)
            fill = "white" if 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 120 else "black"
        else:
            fill = (60, 60, 60)
        draw.text((x, y + (line_h - fs) // 2 - 1), p.text, fill=fill, font=body)
    y = header + text_h + 10
    if note or cut:
        more = f"(first {MAX_LINES} of {n_lines} lines shown) " if cut else ""
        draw.text((pad, y), more + note, fill=(120, 120, 120), font=small)
        y += fs
    if top_words:
        draw.text((pad, y), "strongest: " + "   ".join(top_words), fill=(40, 40, 40), font=small)
        y += fs
    _colour_bar(canvas, draw, (pad, y + 4), top, signed, small)
    return canvas


def _strongest(text: str, spans: list[tuple[int, int]], scores: np.ndarray, k: int = 6) -> list[str]:
    """The k words with the largest |score|, each text once (lime gives every "the" one weight)."""
    out, seen = [], set()
    for w in np.argsort(-np.abs(np.nan_to_num(scores)), kind="stable"):
        word = text[spans[w][0]:spans[w][1]]
        if len(out) == k or not np.isfinite(scores[w]) or scores[w] == 0:
            break
        if word.casefold() not in seen:
            seen.add(word.casefold())
            out.append(f"{word[:24]} {scores[w]:+.3g}")
    return out


def _colour_bar(canvas: Image.Image, draw: ImageDraw.ImageDraw, at: tuple[int, int], top: float, signed: bool,
                fnt) -> None:
    x0, y0 = at
    bw, bh = 320, 12
    lo = -1.0 if signed else 0.0
    ramp = colormap.apply(0.5 + 0.5 * np.linspace(lo, 1.0, bw)[None, :].repeat(bh, 0), "rdbu_r")
    canvas.paste(Image.fromarray(ramp), (x0, y0))
    draw.rectangle((x0, y0, x0 + bw - 1, y0 + bh - 1), outline=(60, 60, 60))
    ticks = [(-top, 0), (0.0, bw // 2), (top, bw - 1)] if signed else [(0.0, 0), (top / 2, bw // 2), (top, bw - 1)]
    for v, dx in ticks:
        label = f"{v:.3g}"
        draw.line((x0 + dx, y0 + bh, x0 + dx, y0 + bh + 3), fill="black")
        tx = min(max(x0 + dx - fnt.getlength(label) / 2, x0), x0 + bw - fnt.getlength(label))
        draw.text((tx, y0 + bh + 4), label, fill="black", font=fnt)
    caption = "red: for · blue: against · white: 0" if signed else "white: none · red: most"
    draw.text((x0 + bw + 14, y0 - 2), caption, fill=(90, 90, 90), font=fnt)
