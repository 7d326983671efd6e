"""Judge health and reward metrics for one training step, from the reward manager's telemetry records.

The ``qwenlong`` trainer drains the per-sample records (see :mod:`qwenlong_verl.telemetry`) every step and logs
``judge_step_metrics(records)`` with the step's other metrics.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def _num(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _flag(value: Any) -> bool:
    return bool(_num(value)) if not isinstance(value, bool) else value


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of a non-empty list."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def judge_step_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Metrics over one step's records (each one scored sample).

    * ``qwenlong/reward/{samples, score_mean, acc_mean, rule_acc_mean, truncated_rate}``, and
      ``qwenlong/reward/acc_mean/<data_source>`` per data_source; ``rule_acc`` = 1[rule_score >= 1].
    * ``qwenlong/reward/reason/<reason>``: the share of samples whose rule verdict had that reason (``matched``,
      ``hedged``, ``negated``, ``different_entity``, ``unfinished``, ...; records without ``rule_reason`` count in
      none), so a run shows why rollouts got their rule reward; the judge's share is ``qwenlong/judge/call_rate``.
    * ``qwenlong/judge/call_rate`` = judged / samples; ``failure_rate`` = failed / judged, split into
      ``parse_failure_rate`` (the judge replied without a clear verdict: a drifting judge or a too small
      ``max_tokens``) and ``transport_failure_rate`` (no usable reply: timeouts, HTTP errors); ``cache_hit_rate`` =
      cached / judged; ``pass_rate`` = YES / answered (answered = judged and not failed); ``rescue_rate`` = YES /
      samples (samples the judge turned correct); ``agreement`` = answered samples where 1[rule >= 1] equals the
      verdict / answered (the judge is only asked when the rule says 0, so it is the share of NO verdicts);
      ``latency_{mean,p50,p95,max}_s`` over judged samples that were not cached (present only when there are any);
      ``calls`` and ``failures`` as counts.
    Malformed fields count as 0/False. An empty step gives ``{"qwenlong/reward/samples": 0.0}``.
    """
    recs = [r for r in records if isinstance(r, Mapping)]
    n = len(recs)
    out: dict[str, float] = {"qwenlong/reward/samples": float(n)}
    if n == 0:
        return out
    scores = [_num(r.get("score")) for r in recs]
    accs = [_num(r.get("acc")) for r in recs]
    out["qwenlong/reward/score_mean"] = sum(scores) / n
    out["qwenlong/reward/acc_mean"] = sum(accs) / n
    out["qwenlong/reward/rule_acc_mean"] = sum(_num(r.get("rule_score")) >= 1.0 for r in recs) / n
    out["qwenlong/reward/truncated_rate"] = sum(_flag(r.get("truncated")) for r in recs) / n
    reasons: dict[str, int] = defaultdict(int)
    for r in recs:
        if isinstance(r.get("rule_reason"), str) and r["rule_reason"]:
            reasons[r["rule_reason"]] += 1
    for reason, count in sorted(reasons.items()):
        out[f"qwenlong/reward/reason/{reason}"] = count / n
    by_source: dict[str, list[float]] = defaultdict(list)
    for r, acc in zip(recs, accs, strict=True):
        by_source[str(r.get("data_source", "unknown"))].append(acc)
    for ds, values in sorted(by_source.items()):
        out[f"qwenlong/reward/acc_mean/{ds}"] = sum(values) / len(values)

    judged = [r for r in recs if _flag(r.get("judge_called"))]
    failed = [r for r in judged if _flag(r.get("judge_failed"))]
    parse_failed = [r for r in failed if _flag(r.get("judge_parse_failed"))]
    answered = [r for r in judged if not _flag(r.get("judge_failed"))]
    yes = [r for r in answered if _num(r.get("judge_score")) >= 1.0]
    agree = [r for r in answered if (_num(r.get("rule_score")) >= 1.0) == (_num(r.get("judge_score")) >= 1.0)]
    out["qwenlong/judge/calls"] = float(len(judged))
    out["qwenlong/judge/failures"] = float(len(failed))
    out["qwenlong/judge/call_rate"] = len(judged) / n
    out["qwenlong/judge/failure_rate"] = len(failed) / len(judged) if judged else 0.0
    out["qwenlong/judge/parse_failure_rate"] = len(parse_failed) / len(judged) if judged else 0.0
    out["qwenlong/judge/transport_failure_rate"] = ((len(failed) - len(parse_failed)) / len(judged)
                                                    if judged else 0.0)
    out["qwenlong/judge/cache_hit_rate"] = (sum(_flag(r.get("judge_cached")) for r in judged) / len(judged)
                                            if judged else 0.0)
    out["qwenlong/judge/pass_rate"] = len(yes) / len(answered) if answered else 0.0
    out["qwenlong/judge/rescue_rate"] = len(yes) / n
    out["qwenlong/judge/agreement"] = len(agree) / len(answered) if answered else 1.0
    latencies = [_num(r.get("judge_latency_s")) for r in judged if not _flag(r.get("judge_cached"))]
    if latencies:
        out["qwenlong/judge/latency_mean_s"] = sum(latencies) / len(latencies)
        out["qwenlong/judge/latency_p50_s"] = _percentile(latencies, 0.50)
        out["qwenlong/judge/latency_p95_s"] = _percentile(latencies, 0.95)
        out["qwenlong/judge/latency_max_s"] = max(latencies)
    return out
