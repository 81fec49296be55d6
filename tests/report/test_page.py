"""The report driven in a real headless Chromium: what a person browsing a run sees and does."""

from __future__ import annotations

import json
import time

import pytest

from xai_cli.report import build_report


def manifest(run):
    return [json.loads(line) for line in (run / "manifest.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def image_report(image_run):
    return build_report(image_run, workers=0)


def test_loads_without_console_errors_or_network(open_page, image_report):
    p = open_page(image_report)
    p.page.click("#grid .card:not(.failed)")  # the detail view loads its chunk and full-size pictures too
    p.page.wait_for_selector("#detail .method")
    p.page.wait_for_load_state("load")
    assert p.errors == []
    assert p.requests and all(u.startswith("file://") for u in p.requests), [u for u in p.requests if not u.startswith("file://")]


def test_counts_match_the_manifest(open_page, image_run, image_report):
    lines = manifest(image_run)
    p = open_page(image_report)
    count = p.page.eval_on_selector("#count", "c => ({...c.dataset})")
    assert int(count["total"]) == len(lines) == len(p.rows())
    assert int(count["ok"]) == sum(e["status"] == "ok" for e in lines)
    assert int(count["failed"]) == sum(e["status"] == "error" for e in lines) == 2
    assert p.texts("#grid .card .name") == [e["input"] for e in lines]


def test_sort_by_probability_orders_the_cards(open_page, image_report):
    p = open_page(image_report)
    p.page.select_option("#sort", "prob")
    probs = [float(t.rstrip("%")) for t in p.texts("#grid .card .prob")]
    assert len(probs) == 6 and probs == sorted(probs, reverse=True)
    p.page.click("#dir")
    probs = [float(t.rstrip("%")) for t in p.texts("#grid .card .prob")]
    assert probs == sorted(probs)
    assert p.texts("#grid .card.failed .name")  # inputs without a probability are listed last, not dropped
    assert p.page.eval_on_selector_all("#grid .card", "cs => cs.slice(-2).every(c => c.classList.contains('failed'))")


def test_filtering_by_class_hides_the_others(open_page, image_report):
    p = open_page(image_report)
    label = p.page.eval_on_selector("#f-label option:nth-child(3)", "o => o.textContent")
    p.page.select_option("#f-label", label=label)
    assert p.texts("#grid .card .label") and set(p.texts("#grid .card .label")) == {label}
    assert p.page.eval_on_selector("#count", "c => c.dataset.matching") == str(len(p.rows()))
    p.page.select_option("#f-label", "")
    p.page.select_option("#f-status", "error")
    assert p.texts("#grid .card .name") == ["broken.png", "truncated.png"]
    p.page.select_option("#f-status", "")
    p.page.fill("#q", "digit_03")
    p.page.wait_for_function("document.querySelectorAll('#grid .card').length === 1")
    assert p.texts("#grid .card .name") == ["digit_03_label_3.png"]


def test_opening_an_input_shows_all_its_methods(open_page, image_run, image_report):
    p = open_page(image_report)
    row = next(k for k, e in enumerate(manifest(image_run)) if e["status"] == "ok")
    p.page.click(f"#grid .card[data-row='{row}']")
    p.page.wait_for_selector("#detail .method")
    assert p.page.eval_on_selector_all("#detail .method", "fs => fs.map(f => f.dataset.method)") == ["gradcam", "saliency"]
    record = json.loads((image_run / manifest(image_run)[row]["record"]).read_text())
    images = p.page.eval_on_selector_all("#detail .method img", "is => is.map(i => [i.complete && i.naturalWidth, i.getAttribute('src')])")
    assert all(w for w, _ in images), images  # every full-size picture loaded
    assert [src.rsplit("/", 1)[1] for _, src in images] == [record["methods"][m][0]["png"] for m in ("gradcam", "saliency")]
    assert "top10_mass" in p.page.inner_text("#detail")
    assert p.page.is_visible("#detail .original img")


def test_a_failed_input_is_listed_with_its_reason(open_page, image_run, image_report):
    reasons = {e["input"]: e["reason"] for e in manifest(image_run) if e["status"] == "error"}
    p = open_page(image_report)
    shown = dict(zip(p.texts("#grid .card.failed .name"), p.texts("#grid .card.failed .reason")))
    assert shown.keys() == reasons.keys()
    for name, reason in reasons.items():
        assert reason in shown[name]


def test_keyboard_moves_between_inputs(open_page, image_report):
    p = open_page(image_report)
    p.page.focus("#grid .card[data-row='0']")
    p.page.keyboard.press("j")
    assert p.page.evaluate("document.activeElement.dataset.row") == "1"
    p.page.keyboard.press("ArrowLeft")
    assert p.page.evaluate("document.activeElement.dataset.row") == "0"
    p.page.keyboard.press("Enter")
    p.page.wait_for_selector("#detail .detail-body[data-row='0']")
    p.page.keyboard.press("ArrowRight")
    p.page.wait_for_selector("#detail .detail-body[data-row='1']")
    p.page.keyboard.press("k")
    p.page.wait_for_selector("#detail .detail-body[data-row='0']")
    p.page.keyboard.press("Escape")
    assert p.page.is_hidden("#detail")
    assert p.page.evaluate("document.activeElement.dataset.row") == "0"


def test_text_run_highlights_words(open_page, text_run):
    p = open_page(build_report(text_run, workers=0))
    assert len(p.rows()) == 3 and p.texts("#grid .card .snippet")
    p.page.click("#grid .card[data-row='0']")
    p.page.wait_for_selector("#detail .highlight")
    assert p.page.eval_on_selector_all("#detail .highlight", "hs => hs.map(h => h.dataset.method)") == ["ig", "saliency"]
    record = json.loads((text_run / manifest(text_run)[0]["record"]).read_text())
    assert p.page.inner_text("#detail .highlight[data-method='ig']").split() == record["text"].split()
    assert p.errors == []


def test_audit_and_compare_runs_show_the_verdict_metrics_and_drift(open_page, audit_compare_run):
    p = open_page(build_report(audit_compare_run, workers=0))
    assert p.page.eval_on_selector("#audit .verdict", "v => v.dataset.verdict") == "failed"
    assert "insertion_auc" in p.page.inner_text("#audit table.metrics")
    assert p.page.eval_on_selector("#compare .verdict", "v => v.textContent").strip().startswith("Compare")
    assert p.texts("#compare .worst li a")  # worst inputs, linked
    # any drift measure sorts the grid, lowest first
    p.page.select_option("#sort", "drift:spearman")
    names = p.texts("#grid .card .name")
    assert names[:6] == sorted(names[:6], reverse=True)  # spearman falls with the input's position
    p.page.click("#compare .worst li a")
    p.page.wait_for_selector("#detail .compare img")
    assert "spearman" in p.page.inner_text("#detail .compare")
    assert p.errors == []


def test_readable_at_laptop_width_and_printable(open_page, image_report, tmp_path):
    p = open_page(image_report, width=1024)
    assert p.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    p.page.emulate_media(media="print")
    assert p.page.is_hidden("#controls")
    pdf = p.page.pdf(path=str(tmp_path / "report.pdf"))
    assert pdf[:4] == b"%PDF"


def test_100000_inputs_open_paged_and_fast(open_page, tmp_path):
    """A 100,000-line manifest: every input counted, 60 cards drawn, the first page in under 2 s."""
    run = tmp_path / "big"
    run.mkdir()
    with open(run / "manifest.jsonl", "w") as f:
        for i in range(100_000):
            f.write(json.dumps({"input": f"d{i // 1000:03d}/img_{i:06d}.png", "status": "error", "reason": f"synthetic {i % 7}"}) + "\n")
    t = time.perf_counter()
    index = build_report(run, workers=0)
    assert time.perf_counter() - t < 30
    p = open_page(index)
    seconds = p.page.evaluate("performance.now()") / 1000
    assert len(p.rows()) == 60
    assert p.page.eval_on_selector("#count", "c => c.dataset.total") == "100000"
    assert seconds < 2, f"first page after {seconds:.2f} s"
    p.page.click("#pager button[aria-label='last page']")
    assert p.texts("#grid .card .name")[-1] == "d099/img_099999.png"
