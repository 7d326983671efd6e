"""Report aggregation: pass@k estimator, per-benchmark statistics, the Markdown/JSON/PNG writers."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenlong_verl.evaluation.report import (
    build_report,
    default_ks,
    pass_at_k,
    render_markdown,
    report_figure,
    write_report,
)


@given(n=st.integers(1, 8), data=st.data())
def test_pass_at_k_is_the_subset_average(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    brute = sum(any(s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute)


def test_pass_at_k_edges():
    assert pass_at_k(16, 0, 2) == 0.0 and pass_at_k(16, 16, 2) == 1.0
    assert pass_at_k(4, 1, 1) == 0.25
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)
    assert default_ks(1) == [1] and default_ks(16) == [1, 2, 4, 8, 16] and default_ks(6) == [1, 2, 4, 6]


def rec(rid, sample, bench, correct, rule=None, judge=0.0, tokens=10, truncated=False, finish="stop", failed=False):
    rule = float(correct) if rule is None else rule
    return {"id": rid, "sample": sample, "benchmark": bench, "score": float(correct), "acc": bool(correct),
            "correct": bool(correct), "rule_score": rule, "judge_score": judge, "judge_called": rule < 1,
            "judge_failed": failed, "response_tokens": tokens, "input_truncated": truncated, "finish_reason": finish}


def test_build_report_numbers(tmp_path):
    records = [
        # docmath: 2 rows x 2 samples; row d1 1/2 correct (judge-credited), row d2 0/2, truncated
        rec("d1", 0, "docmath", True, rule=0.0, judge=1.0, tokens=100),
        rec("d1", 1, "docmath", False, tokens=300, finish="length"),
        rec("d2", 0, "docmath", False, tokens=200, truncated=True),
        rec("d2", 1, "docmath", False, tokens=400, truncated=True, failed=True),
        # hotpot: 1 row x 2 samples, both right by rule
        rec("h1", 0, "hotpotqa", True),
        rec("h1", 1, "hotpotqa", True),
    ]
    rep = build_report(records, {"docmath": 2, "hotpotqa": 1}, n=2, meta={"model": "m"})
    d, h, avg = rep["benchmarks"]["docmath"], rep["benchmarks"]["hotpotqa"], rep["average"]
    assert rep["ks"] == [1, 2] and rep["complete"]
    assert d["accuracy"] == 25.0 and d["rule_accuracy"] == 0.0 and d["judge_share"] == 25.0
    assert d["mean_response_tokens"] == 250.0 and d["truncated_share"] == 50.0 and d["output_cut_share"] == 25.0
    assert d["judge_failed"] == 1 and d["judge_calls"] == 4
    assert d["pass_at"] == {"1": 25.0, "2": 50.0}
    assert h["accuracy"] == 100.0 and h["pass_at"]["2"] == 100.0
    assert avg["accuracy"] == 62.5 and avg["pass_at"]["2"] == 75.0 and avg["samples"] == 6

    partial = build_report(records[:-1], {"docmath": 2, "hotpotqa": 1}, n=2)
    assert not partial["complete"] and partial["benchmarks"]["hotpotqa"]["samples"] == 1
    assert partial["benchmarks"]["hotpotqa"]["pass_at"]["2"] is None  # no row has 2 samples yet
    assert "Incomplete run" in render_markdown(partial)
    with pytest.raises(ValueError, match="other"):
        build_report(records + [rec("x", 0, "other", True)], {"docmath": 2, "hotpotqa": 1}, n=2)

    paths = write_report(rep, tmp_path)
    md = paths["md"].read_text()
    assert "| docmath | 2 | 4 | 25.0 | 0.0 | 25.0 | 1 | 250.0 | 50.0 | 25.0 | 25.0 | 50.0 |" in md
    assert "| **Average** |" in md and "pass@2" in md
    assert json.loads(paths["json"].read_text())["average"]["accuracy"] == 62.5
    png = paths["png"].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_single_sample_report_has_no_pass_at(tmp_path):
    rep = build_report([rec("a", 0, "b", True)], {"b": 1, "empty": 2}, n=1)
    assert rep["ks"] == [] and rep["benchmarks"]["b"]["pass_at"] == {}
    assert rep["benchmarks"]["empty"]["accuracy"] is None and not rep["complete"]
    assert rep["average"]["accuracy"] == 100.0  # benchmarks with no samples yet are not averaged as 0
    write_report(rep, tmp_path)  # a benchmark without samples still renders


@pytest.mark.parametrize("names", [["b"], ["hotpotqa", "musique"],
                                   ["docmath", "longbench_v2_hard_subset_with_a_long_name", "frames", "2wikimqa"]])
def test_chart_text_stays_inside_the_figure(names):
    """The margins come from text measurements, not tight_layout: every label, the title and the legend are drawn
    inside the figure and the tick labels clear the axes."""
    rep = build_report([rec("x", 0, b, True) for b in names], dict.fromkeys(names, 1), n=1)
    rep["meta"] = {"model": "deepseek-r1-distill-qwen-14b-qwenlong-l1-phase2"}
    fig = report_figure(rep)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    width, height = fig.bbox.width, fig.bbox.height
    texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.yaxis.label, ax.get_legend()]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (text, box)
    axes_box = ax.get_window_extent(renderer)
    for label in ax.get_xticklabels():
        assert label.get_window_extent(renderer).y1 <= axes_box.y0
