"""judge_step_metrics: the per-step judge health numbers the trainer logs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenlong_verl.reward.metrics import judge_step_metrics


def rec(**kw):
    base = {"index": 0, "uid": "u", "data_source": "musique", "score": 0.0, "acc": 0.0, "rule_score": 0.0,
            "judge_score": 0.0, "judge_called": False, "judge_failed": False, "judge_latency_s": 0.0,
            "judge_cached": False, "truncated": False, "validate": False}
    base.update(kw)
    return base


def test_metrics_values():
    records = [
        rec(score=1.0, acc=1.0, rule_score=1.0),  # rule pass, no judge
        rec(score=1.0, acc=1.0, judge_called=True, judge_score=1.0, judge_latency_s=0.1),  # rescued
        rec(judge_called=True, judge_latency_s=0.3),  # judge NO
        rec(judge_called=True, judge_failed=True, judge_latency_s=0.5),  # failed
        rec(judge_called=True, judge_cached=True, judge_latency_s=0.0001),  # cached NO
        rec(data_source="docmath", truncated=True),
    ]
    m = judge_step_metrics(records)
    assert m["qwenlong/reward/samples"] == 6
    assert m["qwenlong/reward/acc_mean"] == pytest.approx(2 / 6)
    assert m["qwenlong/reward/rule_acc_mean"] == pytest.approx(1 / 6)
    assert m["qwenlong/reward/truncated_rate"] == pytest.approx(1 / 6)
    assert m["qwenlong/reward/acc_mean/musique"] == pytest.approx(2 / 5)
    assert m["qwenlong/reward/acc_mean/docmath"] == 0.0
    assert m["qwenlong/judge/calls"] == 4 and m["qwenlong/judge/failures"] == 1
    assert m["qwenlong/judge/call_rate"] == pytest.approx(4 / 6)
    assert m["qwenlong/judge/failure_rate"] == pytest.approx(1 / 4)
    assert m["qwenlong/judge/cache_hit_rate"] == pytest.approx(1 / 4)
    assert m["qwenlong/judge/pass_rate"] == pytest.approx(1 / 3)
    assert m["qwenlong/judge/rescue_rate"] == pytest.approx(1 / 6)
    assert m["qwenlong/judge/agreement"] == pytest.approx(2 / 3)
    # latency over the uncached calls: 0.1, 0.3, 0.5
    assert m["qwenlong/judge/latency_mean_s"] == pytest.approx(0.3)
    assert m["qwenlong/judge/latency_p50_s"] == pytest.approx(0.3)
    assert m["qwenlong/judge/latency_p95_s"] == pytest.approx(0.48)
    assert m["qwenlong/judge/latency_max_s"] == pytest.approx(0.5)


def test_empty_and_no_judge():
    assert judge_step_metrics([]) == {"qwenlong/reward/samples": 0.0}
    m = judge_step_metrics([rec(score=1.0, acc=1.0, rule_score=1.0)])
    assert m["qwenlong/judge/call_rate"] == 0.0 and m["qwenlong/judge/failure_rate"] == 0.0
    assert "qwenlong/judge/latency_mean_s" not in m


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["score", "acc", "judge_called", "judge_failed", "judge_cached",
                                                 "judge_latency_s", "rule_score", "judge_score", "data_source",
                                                 "truncated"]),
                                st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=5),
                                          st.integers())), max_size=20))
def test_malformed_records_never_raise(records):
    m = judge_step_metrics(records)
    assert all(isinstance(v, float) for v in m.values())


def test_parse_failures_are_apart_from_transport_failures():
    records = [
        rec(judge_called=True, judge_failed=True, judge_parse_failed=True),  # replied, no clear verdict
        rec(judge_called=True, judge_failed=True),  # no usable reply (older records have no parse flag)
        rec(judge_called=True, judge_failed=True, judge_parse_failed=False),
        rec(judge_called=True, judge_score=1.0),
        rec(judge_parse_failed=True),  # not judged: the flag alone counts nothing
    ]
    m = judge_step_metrics(records)
    assert m["qwenlong/judge/failure_rate"] == pytest.approx(3 / 4)
    assert m["qwenlong/judge/parse_failure_rate"] == pytest.approx(1 / 4)
    assert m["qwenlong/judge/transport_failure_rate"] == pytest.approx(2 / 4)
    assert judge_step_metrics([rec()])["qwenlong/judge/parse_failure_rate"] == 0.0
