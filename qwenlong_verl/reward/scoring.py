"""The hybrid score of QwenLong-L1: ``score = max(rule, judge)``, importable without verl's reward loop.

* :class:`HybridScorer` scores (data_source, question, response, ground truth) rows, asking the judge only when the
  rule score is below 1 and the data_source's family allows it.
* :func:`compute_score` is a plain verl ``reward.custom_reward_function`` (rule only);
  :func:`compute_score_with_judge` is its async twin that also asks a judge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.config import check_fields, option, options_from
from qwenlong_verl.reward import rule
from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions, JudgeVerdict

logger = logging.getLogger(__name__)

ANSWER_MODES = ("require", "optional", "off")
QA_METRICS = ("sub_em", "em", "em_or_sub_em", "f1")


@dataclass
class ScoreOptions:
    """``qwenlong.reward.*``: how rule scores are computed and when the judge is asked."""

    answer_after_think: str = option("require", choices=ANSWER_MODES)  # see rule.answer_region
    think_end: str = rule.THINK_END
    # family for unknown data_sources; None = unknown data_source is an error
    default_family: str | None = option(None, choices=(*rule.FAMILIES, None))
    families: dict[str, str] = field(default_factory=dict)  # data_source -> qa|math|choice overrides
    judge_families: list[str] = field(default_factory=lambda: [rule.QA, rule.MATH])  # MCQ is regex-only
    qa_metric: str = option("sub_em", choices=QA_METRICS)  # the QA rule score
    rel_tol: float = 1.5e-3  # numeric relative tolerance (DocMath: 0.15%)
    min_sig_digits: int = 3  # a rounded number must show this many significant digits (rule.numbers_match)
    max_question_chars: int = 4000  # question sent to the judge when it must be cut out of the prompt

    def __post_init__(self) -> None:
        check_fields(self)
        self.families = dict(self.families or {})
        for ds, fam in self.families.items():
            if fam not in rule.FAMILIES:
                raise ValueError(f"families.{ds}: family must be one of {rule.FAMILIES}, got {fam!r}")
        self.judge_families = list(self.judge_families or [])
        for fam in self.judge_families:
            if fam not in rule.FAMILIES:
                raise ValueError(f"judge_families: unknown family {fam!r}; families are {rule.FAMILIES}")


@dataclass
class SampleScore:
    score: float  # max(rule_score, judge_score)
    acc: float  # 1.0 if score >= 1 else 0.0
    rule_score: float
    judge_score: float = 0.0
    judge_called: bool = False
    judge_failed: bool = False
    judge_parse_failed: bool = False  # the judge replied without a clear verdict (a subset of judge_failed)
    judge_cached: bool = False
    judge_latency_s: float = 0.0
    judge_error: str | None = None
    extracted_answer: str | None = None
    rule_reason: str = ""  # why the rule gave its score: one of rule.REASONS ("matched", "hedged", "negated", ...)
    family: str = ""
    data_source: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # family details: em, sub_em, f1, numeric, ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_source": self.data_source, "family": self.family, "score": self.score, "acc": self.acc,
            "rule_score": self.rule_score, "judge_score": self.judge_score, "judge_called": self.judge_called,
            "judge_failed": self.judge_failed, "judge_parse_failed": self.judge_parse_failed,
            "judge_cached": self.judge_cached,
            "judge_latency_s": self.judge_latency_s, "judge_error": self.judge_error,
            "extracted_answer": self.extracted_answer, "rule_reason": self.rule_reason, **self.metrics,
        }


class RowError(ValueError):
    """A row to score is malformed; the message names the row and the key."""


class HybridScorer:
    """Rule score by data_source family, then the judge when the rule score is below 1 (see module docstring)."""

    def __init__(self, options: ScoreOptions | None = None, judge: JudgeClient | None = None) -> None:
        self.options = options or ScoreOptions()
        self.judge = judge

    def family(self, data_source: str) -> str:
        return rule.resolve_family(data_source, self.options.families, self.options.default_family)

    def rule_only(self, data_source: str, response: str, ground_truth: str | Sequence[str],
                  question: str | None = None) -> SampleScore:
        """The rule part of :meth:`score`, synchronous. Raises ValueError naming the data_source on a bad row."""
        family = self.family(data_source)
        return self._rule(data_source, family, response, self._golds(data_source, ground_truth), question)

    @staticmethod
    def _golds(data_source: str, ground_truth: Any) -> list[str]:
        """The accepted answers, parsed once per sample and handed to the rule and the judge."""
        try:
            return rule.gold_answers(ground_truth)
        except ValueError as exc:
            raise RowError(f"data_source {data_source!r}: {exc}") from exc

    def _rule(self, data_source: str, family: str, response: str, golds: list[str],
              question: str | None = None) -> SampleScore:
        opts = self.options
        read = rule.read_answer(response, opts.answer_after_think, opts.think_end)
        result = rule.score_read(family, read, golds, opts.qa_metric, opts.rel_tol, opts.min_sig_digits, question)
        answer = read.answer
        if result.reason == rule.CONFLICTING:  # the judge sees both answers that stand, not only the last
            answer = " ... then: ".join(s.text for s in read.statements)
        return SampleScore(score=result.score, acc=float(result.score >= 1.0), rule_score=result.score,
                           extracted_answer=answer, rule_reason=result.reason, family=family,
                           data_source=str(data_source), metrics=result.metrics)

    def wants_judge(self, sample: SampleScore) -> bool:
        return (self.judge is not None and sample.rule_score < 1.0 and sample.family in self.options.judge_families
                and bool(sample.extracted_answer))

    async def score(self, data_source: str, question: str, response: str,
                    ground_truth: str | Sequence[str]) -> SampleScore:
        """``score = max(rule, judge)``, ``acc = 1[score >= 1]``. The judge is asked only when rule < 1, the
        family is in ``judge_families`` and an answer was extracted; a failed judge call leaves the rule score
        (``judge_failed=True``). Raises only for a malformed row (unknown data_source, missing ground truth)."""
        family = self.family(data_source)
        golds = self._golds(data_source, ground_truth)
        return await self._add_judge(self._rule(data_source, family, response, golds, question), question, golds)

    async def _add_judge(self, sample: SampleScore, question: str, golds: list[str]) -> SampleScore:
        if not self.wants_judge(sample):
            return sample
        gold_text = golds[0] if len(golds) == 1 else " OR ".join(golds)
        verdict: JudgeVerdict = await self.judge.judge(question or "", sample.extracted_answer or "", gold_text)
        sample.judge_called = True
        sample.judge_cached = verdict.cached
        sample.judge_latency_s = verdict.latency_s
        sample.judge_failed = not verdict.ok
        sample.judge_parse_failed = verdict.parse_failed
        sample.judge_error = verdict.error
        sample.judge_score = verdict.score
        sample.score = max(sample.rule_score, sample.judge_score)
        sample.acc = float(sample.score >= 1.0)
        return sample

    async def score_many(self, rows: Sequence[Mapping[str, Any]], progress: bool = False) -> list[SampleScore]:
        """Score rows ``{data_source, question, response, ground_truth}`` concurrently (the judge client bounds
        the HTTP concurrency). Every row is checked first: a malformed one raises :class:`RowError` naming its
        position and key, before any judge request is made."""
        parsed: list[tuple[str, list[str]]] = []  # (family, golds) of each row, parsed once
        for i, row in enumerate(rows):
            check_row(row, i)
            try:
                family = self.family(row["data_source"])  # its message names the data_source
            except ValueError as exc:
                raise RowError(f"row {i}: {exc}") from exc
            try:
                parsed.append((family, rule.gold_answers(row["ground_truth"])))
            except ValueError as exc:
                raise RowError(f"row {i}: data_source {row['data_source']!r}: {exc}") from exc
        samples: list[SampleScore] = []
        tasks: list[asyncio.Future] = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(rows), desc="scoring", unit="row")
        for i, (row, (family, golds)) in enumerate(zip(rows, parsed, strict=True)):
            sample = self._rule(row["data_source"], family, row.get("response") or "", golds, row.get("question"))
            samples.append(sample)
            if self.wants_judge(sample):
                task = asyncio.ensure_future(self._add_judge(sample, row.get("question") or "", golds))
                if bar is not None:
                    task.add_done_callback(lambda _t: bar.update(1))
                tasks.append(task)
            elif bar is not None:
                bar.update(1)
            if i % 64 == 63:
                await asyncio.sleep(0)  # let the judge requests made so far go out while the rest is rule-scored
        try:
            await asyncio.gather(*tasks)
        finally:
            if bar is not None:
                bar.close()
        return samples


def check_row(row: Mapping[str, Any], position: int | str) -> None:
    if not isinstance(row, Mapping):
        raise RowError(f"row {position}: expected a mapping, got {type(row).__name__}")
    for key in ("data_source", "ground_truth"):
        if key not in row or row[key] is None:
            raise RowError(f"row {position}: missing key {key!r} (keys: {sorted(row)})")
    for key in ("question", "response"):
        if key in row and row[key] is not None and not isinstance(row[key], str):
            raise RowError(f"row {position}: {key!r} must be a string, got {type(row[key]).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# verl reward.custom_reward_function entry points
# ---------------------------------------------------------------------------------------------------------------
# keyword arguments verl's reward managers add to every call; any other unknown keyword is a typo and an error
_VERL_KWARGS = {"reward_router_address", "reward_model_tokenizer"}


def _options(kwargs: Mapping[str, Any]) -> ScoreOptions:
    return options_from(ScoreOptions, {k: v for k, v in kwargs.items() if k not in _VERL_KWARGS},
                        "reward.custom_reward_function.reward_kwargs")


def _result(sample: SampleScore) -> dict[str, Any]:
    """The reward function's result: the scores, and one 0/1 key per rule reason (``reason_matched``,
    ``reason_hedged``, …; the same keys for every sample, as verl stacks them), whose means are the reason shares."""
    return {"score": sample.score, "acc": sample.acc, "rule_score": sample.rule_score,
            "judge_score": sample.judge_score, "judge_called": float(sample.judge_called),
            "judge_failed": float(sample.judge_failed),
            **{f"reason_{r}": float(sample.rule_reason == r) for r in rule.REASONS}}


def _question(extra_info: Mapping[str, Any] | None, max_chars: int) -> str:
    info = extra_info or {}
    if info.get("question"):
        return str(info["question"])
    if info.get("prompt"):
        return rule.extract_question(str(info["prompt"]), max_chars)
    return ""


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **kwargs: Any) -> dict[str, float]:
    """Rule-only QwenLong-L1 score for verl's ``reward.custom_reward_function`` (``path:
    pkg://qwenlong_verl.reward.scoring``, ``name: compute_score``). ``reward_kwargs`` may set any
    :class:`ScoreOptions` field. Returns ``{score, acc, rule_score, judge_score, judge_called, judge_failed,
    reason_<reason>...}`` with ``score = rule score``."""
    opts = _options(kwargs)
    question = _question(extra_info, opts.max_question_chars) or None
    return _result(HybridScorer(opts).rule_only(data_source, solution_str, ground_truth, question))


async def compute_score_with_judge(data_source: str, solution_str: str, ground_truth: Any,
                                   extra_info: Mapping[str, Any] | None = None, judge: Mapping[str, Any] | None = None,
                                   **kwargs: Any) -> dict[str, float]:
    """Async :func:`compute_score` with the judge: ``score = max(rule, judge)``. ``reward_kwargs.judge`` holds
    :class:`JudgeOptions` fields (at least ``base_url``); the client is shared per process. The question comes from
    ``extra_info.question`` (or is cut out of ``extra_info.prompt``)."""
    opts = _options(kwargs)
    judge_opts = options_from(JudgeOptions, judge or {}, "reward.custom_reward_function.reward_kwargs.judge")
    client = JudgeClient.shared(judge_opts) if judge_opts.active else None
    sample = await HybridScorer(opts, client).score(data_source, _question(extra_info, opts.max_question_chars),
                                                     solution_str, ground_truth)
    return _result(sample)
