"""Is a judge endpoint usable as the reward's judge? Known answer pairs, judged in each mode, scored.

:data:`CASES` is a small built-in set of (question, candidate answer, reference answer) pairs whose equivalence is
known: the kinds the rule cannot settle, namely paraphrases, units and scale words, fractions, partial answers, hedges,
near-miss numbers and years. :func:`run_mode` sends them through the same
:class:`~qwenlong_verl.reward.judge.JudgeClient` the reward uses, in one judge mode, and returns a :class:`ModeReport`:
the accuracy, the false YES (a wrong answer rewarded: the costly error in RL) and false NO, the failure rate split
into parse and transport failures, and the completion tokens requested and received per HTTP call. :func:`probe` asks
first whether anything answers. ``qwenlong-verl judge-check`` (:mod:`qwenlong_verl.commands.judge_check`) is the
command line around them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One (question, candidate, reference) pair whose equivalence is known: what a usable judge must get right."""

    question: str
    answer: str  # the candidate
    gold: str  # the reference
    equivalent: bool
    kind: str  # what makes it hard


CASES: tuple[Case, ...] = (
    # equivalent: the rule's sub-EM / numeric match misses these, the judge must say YES
    Case("Which university did she attend?", "MIT", "Massachusetts Institute of Technology", True, "abbreviation"),
    Case("Who wrote the novel mentioned in the second paragraph?", "J. K. Rowling", "Joanne Rowling", True,
         "name variant"),
    Case("What was the company's revenue growth in 2021?", "twelve and a half percent", "12.5%", True,
         "number in words"),
    Case("How many employees did the firm have at the end of the year?", "about 1.2 thousand", "1,200", True,
         "scale word"),
    Case("What fraction of the budget went to research?", "one third", "1/3", True, "fraction in words"),
    Case("What is the total net income?", "$3.4 million", "3,400,000 dollars", True, "units"),
    Case("Which river flows through the capital?", "the Thames", "River Thames", True, "article and generic word"),
    Case("In which year was the treaty signed?", "It was signed in sixteen forty-eight.", "1648", True,
         "year in words"),
    Case("Which element has the symbol Fe?", "Fe, that is iron", "iron", True, "restatement"),
    Case("Which country is the landlocked state between France and Spain?", "Andorra",
         "The Principality of Andorra", True, "official name"),
    Case("How long did the project take?", "a year and a half", "18 months", True, "unit conversion"),
    Case("Who was the first president of the organisation?", "Dr. Maria Keller", "Maria Keller", True, "title"),
    Case("Where is the company headquartered?", "NYC", "New York City", True, "abbreviation"),
    # not equivalent: the judge must say NO
    Case("Which city hosted the 1992 Summer Olympics?", "Madrid", "Barcelona", False, "different entity"),
    Case("What was the company's revenue growth in 2021?", "15%", "12.5%", False, "different number"),
    Case("In which year was the treaty signed?", "1649", "1648", False, "year off by one"),
    Case("Who wrote the novel mentioned in the second paragraph?", "Either J. K. Rowling or J. R. R. Tolkien",
         "J. K. Rowling", False, "hedge between candidates"),
    Case("Which university did she attend?", "Harvard, MIT and Stanford; the text does not say which", "MIT", False,
         "list of candidates"),
    Case("Which two countries signed the agreement?", "France", "France and Germany", False, "part of the answer"),
    Case("What was the result for the quarter?", "a gain of $2 million", "a loss of $2 million", False,
         "opposite sign"),
    Case("What is the total net income?", "3.4 billion dollars", "3.4 million dollars", False, "wrong scale"),
    Case("Where was the author born?", "somewhere in Europe", "Vienna, Austria", False, "vaguer"),
    Case("What fraction of the budget went to research?", "one quarter", "1/3", False, "different fraction"),
    Case("How many employees did the firm have at the end of the year?", "12,000", "1,200", False,
         "order of magnitude"),
    Case("Who directed the film?", "George Lucas", "Steven Spielberg", False, "different person"),
    Case("Which element has the symbol Fe?", "The document does not say.", "iron", False, "no answer"),
)


@dataclass
class ModeReport:
    """How one judge mode did on the cases: verdict counts, failures by cause, tokens per HTTP call, latency, and
    the cases it got wrong (for ``--show-wrong`` and the JSON report)."""

    mode: str
    cases: int
    correct: int = 0
    false_yes: int = 0  # said YES to a non-equivalent answer
    false_no: int = 0  # said NO to an equivalent answer
    failures: int = 0
    parse_failures: int = 0
    transport_failures: int = 0
    http_requests: int = 0
    tokens_requested_per_call: float = 0.0
    tokens_received_per_call: float | None = None  # None when the server reports no usage
    logprob_verdicts: int = 0
    fell_back_to_generate: int = 0
    latency_mean_s: float = 0.0
    wall_s: float = 0.0
    wrong: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Correct verdicts over all cases: a failed call counts as wrong (it leaves the rule score)."""
        return self.correct / self.cases if self.cases else 0.0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.cases if self.cases else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy": self.accuracy, "failure_rate": self.failure_rate}


class EndpointUnreachable(RuntimeError):
    """The judge endpoint does not answer at all."""


def probe(base_url: str, timeout_s: float, api_key_env: str | None = None) -> list[str]:
    """The model ids the endpoint serves (``GET /models``); [] when it answers without a list (some servers have
    no such route). The probe is :func:`~qwenlong_verl.openai_client.list_models`, the judge client's route (no
    proxy, URL user info as basic auth, the same key), so a URL with credentials works here exactly as it does in
    training.

    Args:
        base_url: The judge's ``.../v1`` (or ``.../v1/chat/completions``) URL.
        timeout_s: Bound on connecting and on the reply (seconds).
        api_key_env: Name of the variable holding the judge's key; None or unset: no key.

    Raises:
        EndpointUnreachable: Nothing answers; the message names the URL (credentials masked) and why.
    """
    from qwenlong_verl.openai_client import list_models, openai_base_url
    from qwenlong_verl.redaction import redact_url

    reason, ids = list_models(base_url, timeout_s=timeout_s, api_key_env=api_key_env)
    if reason is not None:
        raise EndpointUnreachable(f"{redact_url(openai_base_url(base_url))}: {reason}")
    return ids


async def run_mode(base_url: str, model: str, mode: str, cases: tuple[Case, ...] = CASES, timeout_s: float = 60.0,
                   concurrency: int = 16, api_key_env: str | None = "QWENLONG_JUDGE_API_KEY") -> ModeReport:
    """Judge every case once in ``mode`` (no cache, one retry) and score the verdicts against the known answers.

    The requests go through the reward's own :class:`~qwenlong_verl.reward.judge.JudgeClient`, so what is measured
    is what training will get from this endpoint.

    Args:
        base_url: The judge's ``.../v1`` URL.
        model: The model name sent with each request.
        mode: ``"generate"`` or ``"logprob"`` (:attr:`~qwenlong_verl.reward.judge.JudgeOptions.mode`).
        cases: The pairs to judge (default: the built-in :data:`CASES`).
        timeout_s: Bound on one request (seconds).
        concurrency: Requests in flight.
        api_key_env: Name of the variable holding the judge's key; None or unset: no key.

    Returns:
        The mode's :class:`ModeReport`.
    """
    from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions

    options = JudgeOptions(base_url=base_url, model=model, mode=mode, timeout_s=timeout_s, max_retries=1,
                           backoff_s=0.2, cache_size=0, max_concurrency=concurrency, api_key_env=api_key_env)
    report = ModeReport(mode=mode, cases=len(cases))
    start = time.perf_counter()
    async with JudgeClient(options) as client:
        verdicts = await asyncio.gather(*(client.judge(c.question, c.answer, c.gold) for c in cases))
        stats = client.stats
    report.wall_s = time.perf_counter() - start
    for case, v in zip(cases, verdicts, strict=True):
        if not v.ok:
            report.failures += 1
            report.parse_failures += int(v.parse_failed)
            report.transport_failures += int(not v.parse_failed)
            report.wrong.append({**asdict(case), "verdict": None, "error": v.error})
        elif v.equivalent == case.equivalent:
            report.correct += 1
        else:
            report.false_yes += int(v.equivalent)
            report.false_no += int(not v.equivalent)
            report.wrong.append({**asdict(case), "verdict": v.equivalent, "reply": (v.raw or "")[-300:]})
    report.http_requests = stats.attempts
    report.tokens_requested_per_call = stats.completion_tokens_requested / max(stats.attempts, 1)
    answered = stats.attempts - stats.usage_missing
    report.tokens_received_per_call = stats.completion_tokens_received / answered if answered > 0 else None
    report.logprob_verdicts = stats.logprob_verdicts
    report.fell_back_to_generate = stats.logprob_fallbacks + stats.logprob_low_mass
    report.latency_mean_s = sum(v.latency_s for v in verdicts) / len(verdicts) if verdicts else 0.0
    return report


def format_reports(reports: list[ModeReport]) -> str:
    """The reports as a fixed-width table, one row per mode (and a line when logprob mode fell back to generate)."""
    head = (f"{'mode':<9} {'accuracy':>8} {'false YES':>9} {'false NO':>8} {'failed':>6} {'parse':>5} "
            f"{'transport':>9} {'tok req/call':>12} {'tok recv/call':>13} {'latency s':>9}")
    lines = [head, "-" * len(head)]
    for r in reports:
        recv = "-" if r.tokens_received_per_call is None else f"{r.tokens_received_per_call:.1f}"
        lines.append(f"{r.mode:<9} {100 * r.accuracy:>7.1f}% {r.false_yes:>9d} {r.false_no:>8d} {r.failures:>6d} "
                     f"{r.parse_failures:>5d} {r.transport_failures:>9d} {r.tokens_requested_per_call:>12.1f} "
                     f"{recv:>13} {r.latency_mean_s:>9.2f}")
        if r.mode == "logprob" and r.fell_back_to_generate:
            lines.append(f"  logprob: {r.fell_back_to_generate} request(s) fell back to generate mode (no logprobs "
                         "from the server, or a first token that was not YES/NO)")
    return "\n".join(lines)
