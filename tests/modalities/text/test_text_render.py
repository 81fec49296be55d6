"""The text picture: words kept whole when wrapping, line breaks kept, white at 0, a legend."""

from __future__ import annotations

import numpy as np

from xai_cli.render.tokens import MAX_LINES, colours, font, layout, render_text_panel


def spans_of(text: str) -> list[tuple[int, int]]:
    import re

    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


def test_wrapping_keeps_words_whole_and_line_breaks():
    text = "alpha beta, gamma\n\ndelta " + "word " * 40
    spans = spans_of(text)
    pieces = layout(text, spans, len(text), font(18), 300)
    words = [p for p in pieces if p.word >= 0]
    assert [p.text for p in words][:5] == ["alpha", "beta", ",", "gamma", "delta"]
    by_word = {p.word: p for p in words}
    assert by_word[1].line == by_word[2].line  # "beta" and its comma stay together
    assert by_word[4].line == by_word[3].line + 2  # the empty line between paragraphs is kept
    assert max(p.x + font(18).getlength(p.text) for p in pieces) <= 300 + 1e-6
    assert max(p.line for p in pieces) > 5


def test_a_string_longer_than_a_line_is_cut_not_overflowing():
    text = "see https://" + "x" * 300
    pieces = layout(text, spans_of(text), len(text), font(18), 200)
    assert max(p.x + font(18).getlength(p.text) for p in pieces) <= 200 + 1e-6


def test_colours_are_white_at_zero_and_diverge():
    c = colours(np.array([0.0, 1.0, -1.0]), 1.0).astype(int)
    assert (c[0] > 240).all()  # near white
    assert c[1][0] > c[1][2] and c[2][2] > c[2][0]  # red for +, blue for -


def test_panel_draws_title_text_and_legend():
    text = "The hotel was terrible, the room noisy."
    spans = spans_of(text)
    scores = np.zeros(len(spans))
    scores[3], scores[7] = 2.0, -0.5
    img = render_text_panel(text, spans, scores, signed=True, title="ig · 'negative' (98.9%)", subtitle="demo-text")
    arr = np.asarray(img)
    assert img.width == 960 and 120 < img.height < 260
    reds = (arr[..., 0] > 90) & (arr[..., 1] < 40) & (arr[..., 2] < 60)
    assert reds.sum() > 200  # "terrible" sits on the darkest red
    long = render_text_panel("word " * 5000, spans_of("word " * 5000), np.ones(5000), signed=False, title="t")
    assert long.height < (MAX_LINES + 10) * 30  # cut at MAX_LINES lines, not thousands of pixels tall
