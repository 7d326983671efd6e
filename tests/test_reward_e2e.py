"""verl's real main_ppo on CPU with the judge server up: the hybrid reward scores rollouts and judge health reaches
the per-step training logs."""

from __future__ import annotations

import re

import pytest
from e2e_utils import demo_overrides, run_main_ppo
from fake_openai_server import FakeOpenAIServer

# one verl run (its own limit: run_main_ppo's 900 s) plus set-up; the e2e lock is waited for outside this bound
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

_CANDIDATE = re.compile(r"Candidate answer: (.*)", re.DOTALL)


def _responder(messages):
    """A deterministic stand-in judge: YES for candidate answers of even length, NO otherwise."""
    m = _CANDIDATE.search(messages[-1]["content"])
    answer = m.group(1) if m else ""
    return f"Compared.\nVERDICT: {'YES' if len(answer) % 2 == 0 else 'NO'}"


def test_main_ppo_logs_judge_metrics(demo_data, tmp_path, e2e_lock):
    # a fifth of the requests fail with HTTP 503 and are not retried: training must go on with the rule scores
    with FakeOpenAIServer(responder=_responder, latency_s=0.01, fail_rate=0.2, seed=3) as judge:
        result = run_main_ppo(
            [*demo_overrides(demo_data, steps=2),
             f"++qwenlong.judge.base_url={judge.base_url}",
             "++qwenlong.judge.max_retries=0",
             "++qwenlong.judge.timeout_s=10",
             # phase II alone: no phase-I difficulty file to carry hard examples from
             "qwenlong.retrospective.enable=false",
             # the untrained tiny model never closes </think>: score the whole response so the judge is asked
             "++qwenlong.reward.answer_after_think=off"],
            tmp_path, recipe="qwenlong_phase2")
        requests = judge.count
        outcomes = judge.outcomes
    assert result.returncode == 0, result.tail()
    assert result.steps() == [1, 2], result.tail()
    assert requests > 0 and outcomes["ok"] > 0 and outcomes["fail"] > 0
    for step in (1, 2):
        m = result.step_metrics(step)
        assert m["qwenlong/reward/samples"] > 0
        for key in ("qwenlong/judge/call_rate", "qwenlong/judge/failure_rate", "qwenlong/judge/agreement",
                    "qwenlong/judge/latency_mean_s", "qwenlong/judge/latency_p95_s", "qwenlong/reward/acc_mean"):
            assert key in m, (key, sorted(k for k in m if k.startswith("qwenlong/")))
        assert 0 < m["qwenlong/judge/call_rate"] <= 1
        assert m["qwenlong/judge/latency_mean_s"] > 0
    total_calls = sum(result.step_metrics(s)["qwenlong/judge/calls"] for s in (1, 2))
    total_failures = sum(result.step_metrics(s)["qwenlong/judge/failures"] for s in (1, 2))
    assert total_calls > 0 and total_failures > 0  # failures are counted, not fatal
