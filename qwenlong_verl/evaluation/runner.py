"""The evaluation loop: prompts -> middle truncation -> bounded concurrent sampling -> scoring -> appended records.

Each (row, sample) pair is one job. ``concurrency`` workers take jobs in row order, so a row's prompt is truncated
once (in a thread, a wave ahead: tokenizing 120K tokens takes a while) and shared by its samples. Every finished
sample is scored at once and appended to ``generations.jsonl``; a failed sample (retries spent, or refused by the server) is logged
and left out of the file, so the next run asks for it again. A sample whose judge call finally failed is kept in
the file (``judge_failed: true``, its rule score) but counts as failed unless ``allow_judge_failures``: the next run
asks the judge again about the stored response, without asking the model. The report is built from the file at the
end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qwenlong_verl.config import check_fields, option
from qwenlong_verl.evaluation.client import ChatClient, ChatRequestError, Completion
from qwenlong_verl.evaluation.data import PROMPT_TEMPLATE, EvalDataError, EvalRow
from qwenlong_verl.evaluation.report import build_report, write_report
from qwenlong_verl.evaluation.store import GENERATIONS, GenerationStore, Key
from qwenlong_verl.evaluation.truncation import MiddleTruncator, Truncated
from qwenlong_verl.redaction import redact, redact_url

logger = logging.getLogger(__name__)

SCORE_FIELDS = ("score", "acc", "rule_score", "judge_score", "judge_called", "judge_failed", "judge_cached",
                "extracted_answer", "family")


class Scorer(Protocol):
    """What the runner needs from the reward's ``HybridScorer``."""

    def score(self, data_source: str, question: str, response: str, ground_truth: Any) -> Awaitable[Any]: ...


@dataclass
class EvalOptions:
    out_dir: str
    n_samples: int = option(1, ge=1)  # samples per row; > 1 gives pass@k
    concurrency: int = option(32, ge=1)  # generation requests in flight at most
    pass_ks: list[int] | None = None  # default 1, 2, 4, ..., n
    progress: bool = True
    force_resume: bool = False  # resume although run.json settings differ
    rescore: bool = False  # score every stored response again (e.g. with a judge added) before continuing
    allow_judge_failures: bool = False  # a sample whose judge call finally failed counts as done (rule score)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class EvalResult:
    """What one evaluation run produced: the report (also written as report.json/.md/.png under ``paths``), how
    many samples were asked and reused, and which failed. ``complete`` is the command's exit status 0."""

    report: dict[str, Any]
    paths: dict[str, Path]
    asked: int  # samples requested in this run
    reused: int  # samples found in generations.jsonl from earlier runs
    failed: list[tuple[str, int, str]] = field(default_factory=list)  # (id, sample, error): generation failed
    judge_failed: list[tuple[str, int, str]] = field(default_factory=list)  # (id, sample, error): judge failed
    allow_judge_failures: bool = False
    report_s: float = 0.0  # seconds spent writing the report files (the PNG chart is most of it)

    @property
    def complete(self) -> bool:
        return (bool(self.report["complete"]) and not self.failed
                and (self.allow_judge_failures or not self.judge_failed))

    @property
    def accuracy(self) -> float | None:
        """Mean accuracy (percent) over the benchmarks, as the report's Average row; None when nothing was scored."""
        return self.report["average"].get("accuracy")

    @property
    def rule_accuracy(self) -> float | None:
        """Mean rule-only accuracy (percent) over the benchmarks: what the judge adds is ``accuracy`` minus this."""
        return self.report["average"].get("rule_accuracy")

    @property
    def rows(self) -> int:
        """Rows of the data over all benchmarks (each asked ``n`` times)."""
        return int(self.report["average"].get("rows", 0))

    @property
    def report_path(self) -> Path | None:
        """report.json, once written."""
        return self.paths.get("json")

    def failure_summary(self, show: int = 5) -> str | None:
        """One line: how many samples failed, which (the first few ids), and how to retry; None when none did."""
        parts = []
        for label, items in (("generation request(s)", self.failed),
                             ("judge call(s)" + (" (accepted: --allow-judge-failures)"
                                                 if self.allow_judge_failures else ""), self.judge_failed)):
            if items:
                items = sorted(items)
                ids = ", ".join(f"{i}#{s}" for i, s, _ in items[:show]) + (", ..." if len(items) > show else "")
                parts.append(f"{len(items)} {label} failed ({ids}; last error: {items[-1][2][:200]})")
        if not parts:
            return None
        text = "; ".join(parts)
        judge_retry = bool(self.judge_failed) and not self.allow_judge_failures
        if self.failed or judge_retry:
            text += ". Rerun the same command to retry only those"
            if judge_retry:
                text += (" (a stored response is judged again, not regenerated), or pass --allow-judge-failures to "
                         "accept rule-only scores for the judge failures")
        return text


def ground_truth(row: EvalRow) -> Any:
    """One gold answer as a string, several as a list (the scorer takes the best match over them)."""
    return row.answers[0] if len(row.answers) == 1 else list(row.answers)


def score_fields(result: Any) -> dict[str, Any]:
    """The scorer's result as a flat dict (``SampleScore.as_dict()``: score, rule/judge parts, em/sub_em/f1...)."""
    if hasattr(result, "as_dict"):
        d = dict(result.as_dict())
    elif dataclasses.is_dataclass(result):
        d = dataclasses.asdict(result)
    elif isinstance(result, Mapping):
        d = dict(result)
    else:
        d = {k: getattr(result, k) for k in SCORE_FIELDS if hasattr(result, k)}
    if d.get("score") is None:
        raise TypeError(f"scorer returned no 'score': {result!r}")
    d.pop("data_source", None)  # the record has its own
    d["score"] = float(d["score"])
    d["correct"] = bool(d["acc"]) if d.get("acc") is not None else d["score"] >= 1.0
    return d


def preflight(rows: Sequence[EvalRow], scorer: Scorer) -> None:
    """Check every row against the scorer's rules (known data_source, parsable gold) before any request."""
    rule_only = getattr(scorer, "rule_only", None)
    if rule_only is None:
        return
    for row in rows:
        try:
            rule_only(row.data_source, "", ground_truth(row))
        except ValueError as exc:
            raise EvalDataError(f"{row.source} (id {row.id!r}): {exc}") from exc


def generation_settings(chat: ChatClient, truncator: MiddleTruncator, tokenizer_name: str | None) -> dict[str, Any]:
    """Settings that change what the model is asked; a resumed run must match them."""
    o = chat.options
    return {
        "model": o.model,
        "temperature": o.temperature,
        "top_p": o.top_p,
        "max_tokens": o.max_tokens,
        "seed": o.seed,
        "extra_body": o.extra_body,
        "max_input_tokens": truncator.max_tokens,
        "tokenizer": tokenizer_name,
        "template_sha1": hashlib.sha1(PROMPT_TEMPLATE.encode()).hexdigest()[:12],
    }


class _PromptCache:
    """Truncate each row's prompt once, in a worker thread, and share it between the row's samples.

    Each prompt a worker receives starts the truncation of the next row not yet started, so the rows of the next
    wave are truncated while this wave's requests wait on the server: a slot that frees sends its next request at
    once instead of first tokenizing. Started rows run at most about ``concurrency`` ahead of the claimed ones.
    """

    def __init__(self, truncator: MiddleTruncator, job_rows: Sequence[EvalRow]) -> None:
        self.truncator = truncator
        self.pending = Counter(row.id for row in job_rows)  # samples of each row still to run: freed after the last
        self.tasks: dict[str, asyncio.Task[Truncated]] = {}
        self._order = list({row.id: row for row in job_rows}.values())  # distinct rows in job order
        self._next = 0  # index in ``_order`` of the next row to start

    def _start(self, row: EvalRow) -> asyncio.Task[Truncated]:
        task = self.tasks.get(row.id)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(self.truncator, row.user_message()))
            self.tasks[row.id] = task
        return task

    async def get(self, row: EvalRow) -> Truncated:
        prompt = await self._start(row)
        while self._next < len(self._order):  # one row ahead per prompt handed out
            ahead = self._order[self._next]
            self._next += 1
            if ahead.id not in self.tasks and self.pending[ahead.id] > 0:
                self._start(ahead)
                break
        return prompt

    def release(self, row: EvalRow) -> None:
        self.pending[row.id] -= 1
        if self.pending[row.id] <= 0:
            self.tasks.pop(row.id, None)

    async def aclose(self) -> None:
        """Cancel the truncations started ahead for rows no worker will claim (Ctrl-C, a failure)."""
        for task in self.tasks.values():
            task.cancel()  # a no-op for a finished one
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()


JUDGE_FIELDS = ("judge_score", "judge_called", "judge_failed", "judge_parse_failed", "judge_cached",
                "judge_latency_s", "judge_error")


def keep_earlier_verdict(old: Mapping[str, Any], new: dict[str, Any]) -> bool:
    """A re-score whose judge call failed must not erase the verdict the judge gave before (a 1.0 became 0.0 when
    the judge was down during ``--rescore``). When ``old`` holds a verdict and ``new`` has none, ``new`` takes the
    earlier judge fields and its score becomes max(new rule score, earlier judge score) again; the failed re-ask is
    noted in ``rescore_judge_error``. Returns whether the earlier verdict was kept."""
    had_verdict = bool(old.get("judge_called")) and not old.get("judge_failed") and old.get("judge_score") is not None
    if not (had_verdict and new.get("judge_failed")):
        return False
    new["rescore_judge_error"] = new.get("judge_error") or "no verdict"
    for name in JUDGE_FIELDS:
        if name in old:
            new[name] = old[name]
    new["judge_failed"] = False
    new["score"] = max(float(new.get("rule_score") or 0.0), float(old["judge_score"]))
    new["acc"] = 1.0 if new["score"] >= 1.0 else 0.0
    new["correct"] = bool(new["acc"])
    return True


async def _rescore(records: dict[Key, dict[str, Any]], rows: Mapping[str, EvalRow], scorer: Scorer,
                   concurrency: int, progress: bool) -> int:
    """Score ``records`` again in place; returns how many kept their earlier verdict (the judge failed now)."""
    from tqdm.auto import tqdm

    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(records), desc="rescore", unit="sample", disable=not progress)
    kept = 0

    async def one(rec: dict[str, Any]) -> None:
        nonlocal kept
        row = rows[rec["id"]]
        async with sem:
            new = score_fields(await scorer.score(row.data_source, row.question, rec["response"], ground_truth(row)))
        if keep_earlier_verdict(rec, new):
            kept += 1
        else:
            rec.pop("rescore_judge_error", None)
        rec.update(new)
        bar.update(1)

    try:
        await asyncio.gather(*(one(r) for r in records.values()))
    finally:
        bar.close()
    if kept:
        logger.warning("the judge failed on %d re-scored sample(s); their earlier verdicts were kept "
                       "(rescore_judge_error in %s); rerun --rescore when the judge answers", kept, GENERATIONS)
    return kept


def _open_store(rows: Sequence[EvalRow], chat: ChatClient, scorer: Scorer, truncator: MiddleTruncator,
                options: EvalOptions, tokenizer_name: str | None,
                scorer_settings: Mapping[str, Any] | None) -> GenerationStore:
    """Step 1: check the rows against the scorer, then open ``options.out_dir`` and check (or write) its run.json:
    a directory that holds a run with other generation settings is refused before any request."""
    preflight(rows, scorer)
    store = GenerationStore(options.out_dir)
    settings = {**generation_settings(chat, truncator, tokenizer_name), "scorer": dict(scorer_settings or {})}
    # --rescore recomputes every stored score below, so a changed scorer is no reason to refuse the directory.
    store.check_manifest(settings, force=options.force_resume, ignore=("scorer",) if options.rescore else ())
    return store


def _load_stored(store: GenerationStore, by_id: Mapping[str, EvalRow], options: EvalOptions,
                 has_judge: bool) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
    """Step 2 (resume): every stored sample, and those of them this run counts as done (ids in the data, sample
    index below n). Stored ids must still name the same benchmark and question, else the file is refused."""
    # Responses (up to 10K tokens each, x n samples) are only needed to re-score; keep memory to scores otherwise.
    # A sample whose judge call failed keeps its response: it is judged again below.
    stored = store.load(drop=() if options.rescore else ("response",),
                        keep_all_if=(lambda rec: bool(rec.get("judge_failed"))) if has_judge else None)
    foreign = [k for k in stored if k[0] not in by_id]
    beyond = [k for k in stored if k[0] in by_id and k[1] >= options.n_samples]
    if foreign:
        logger.warning("%d stored sample(s) belong to ids not in --data (e.g. %r); they stay in %s but are left "
                       "out of this report", len(foreign), foreign[0][0], store.path)
    if beyond:
        logger.warning("%d stored sample(s) have a sample index >= n=%d; left out of this report", len(beyond),
                       options.n_samples)
    done = {k: v for k, v in stored.items() if k[0] in by_id and k[1] < options.n_samples}
    for key, rec in done.items():
        row = by_id[key[0]]
        for name in ("benchmark", "question"):
            if rec.get(name) != getattr(row, name):
                raise ValueError(f"{store.path}: id {key[0]!r} was stored with {name} {str(rec.get(name))[:80]!r} "
                                 f"but {row.source} has {str(getattr(row, name))[:80]!r}; ids must be stable")
    return stored, done


async def _rescore_stored(stored: dict[Key, dict[str, Any]], by_id: Mapping[str, EvalRow], scorer: Scorer,
                          store: GenerationStore, options: EvalOptions) -> None:
    """Step 3 (``--rescore``): score every stored response of the data's ids again and rewrite the file atomically;
    the responses are then dropped from memory."""
    logger.info("re-scoring %d stored sample(s)", len(stored))
    await _rescore({k: v for k, v in stored.items() if k[0] in by_id}, by_id, scorer, options.concurrency,
                   options.progress)
    store.rewrite(stored.values())
    for rec in stored.values():
        rec.pop("response", None)


async def _rejudge_failed(done: dict[Key, dict[str, Any]], by_id: Mapping[str, EvalRow], scorer: Scorer,
                          store: GenerationStore, options: EvalOptions) -> None:
    """Step 4: ask the judge again about each done sample whose judge call failed before, from its stored response
    (the model is not asked again); the new records are appended and replace the old ones on the next load."""
    rejudge = {k: v for k, v in done.items() if v.get("judge_failed") and isinstance(v.get("response"), str)}
    if not rejudge:
        return
    logger.info("asking the judge again for %d stored sample(s) whose judge call failed", len(rejudge))
    await _rescore(rejudge, by_id, scorer, options.concurrency, options.progress)
    store.open()
    try:
        for rec in rejudge.values():
            store.append(rec)  # the later line replaces the earlier one on the next load
    finally:
        store.close()
    still = sum(bool(r.get("judge_failed")) for r in rejudge.values())
    logger.info("judge: %d of %d re-asked sample(s) now have a verdict", len(rejudge) - still, len(rejudge))


def _sample_record(row: EvalRow, sample: int, prompt: Truncated, comp: Completion, latency: float,
                   resp_tokens: int | None, scored: Mapping[str, Any]) -> dict[str, Any]:
    """The line ``generations.jsonl`` keeps for one finished (row, sample)."""
    return {
        "id": row.id,
        "sample": sample,
        "benchmark": row.benchmark,
        "data_source": row.data_source,
        "question": row.question,
        "answers": list(row.answers),
        "response": comp.text,
        "finish_reason": comp.finish_reason,
        "input_tokens": prompt.original_tokens if prompt.original_tokens >= 0 else None,
        "input_tokens_exact": prompt.original_exact,  # False: estimated from the truncation windows
        "input_tokens_sent": prompt.tokens if prompt.tokens >= 0 else None,
        "input_truncated": prompt.truncated,
        "prompt_tokens": comp.prompt_tokens,
        "response_tokens": resp_tokens,
        "attempts": comp.attempts,
        "latency_s": round(latency, 3),
        **({"replaced_chars": comp.replaced_chars} if comp.replaced_chars else {}),
        **scored,
    }


async def _generate(jobs: Sequence[tuple[EvalRow, int]], done: Mapping[Key, Mapping[str, Any]], total: int,
                    chat: ChatClient, scorer: Scorer, truncator: MiddleTruncator, store: GenerationStore,
                    options: EvalOptions, count_tokens: Callable[[str], int] | None,
                    ) -> tuple[dict[Key, dict[str, Any]], list[tuple[str, int, str]]]:
    """Step 5 (the pool): ``options.concurrency`` workers ask the model for each missing (row, sample), score the
    reply and append it to ``generations.jsonl`` at once. Returns the new records (without their responses) and the
    failed requests as (id, sample, error); a failed sample is not stored, so the next run asks for it again."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    failed: list[tuple[str, int, str]] = []
    new: dict[Key, dict[str, Any]] = {}
    correct = sum(bool(r.get("correct")) for r in done.values())

    queue: asyncio.Queue[tuple[EvalRow, int]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    cache = _PromptCache(truncator, [row for row, _ in jobs])
    bar = tqdm(total=total, initial=len(done), desc="eval", unit="sample", disable=not options.progress,
               dynamic_ncols=True)

    async def run_one(row: EvalRow, sample: int) -> dict[str, Any]:
        prompt = await cache.get(row)
        t0 = time.monotonic()
        comp: Completion = await chat.complete(prompt.text, sample)
        latency = time.monotonic() - t0
        scored = score_fields(await scorer.score(row.data_source, row.question, comp.text, ground_truth(row)))
        resp_tokens = comp.completion_tokens
        if resp_tokens is None and count_tokens is not None:
            resp_tokens = await asyncio.to_thread(count_tokens, comp.text)
        return _sample_record(row, sample, prompt, comp, latency, resp_tokens, scored)

    async def worker() -> None:
        nonlocal correct
        while True:
            try:
                row, sample = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                rec = await run_one(row, sample)
            except ChatRequestError as exc:
                failed.append((row.id, sample, str(exc)))
                logger.error("id=%s sample=%d failed: %s", row.id, sample, exc)
            else:
                store.append(rec)  # no await between here and the flush: lines never interleave
                store.replaced_chars += rec.get("replaced_chars", 0)
                rec.pop("response")  # the report needs only the scores
                new[(row.id, sample)] = rec
                correct += rec["correct"]
                bar.update(1)
                bar.set_postfix(acc=f"{100.0 * correct / max(1, len(done) + len(new)):.1f}", failed=len(failed),
                                refresh=False)
            finally:
                cache.release(row)

    store.open()
    workers = [asyncio.ensure_future(worker()) for _ in range(min(options.concurrency, max(1, len(jobs))))]
    try:
        # log lines go above the bar instead of through it
        with logging_redirect_tqdm() if options.progress else contextlib.nullcontext():
            await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        await cache.aclose()
        store.close()
        bar.close()
    return new, failed


def _finish(rows: Sequence[EvalRow], records: list[dict[str, Any]], chat: ChatClient, truncator: MiddleTruncator,
            options: EvalOptions, scorer_settings: Mapping[str, Any] | None, store: GenerationStore, asked: int,
            reused: int, failed: list[tuple[str, int, str]]) -> EvalResult:
    """Step 6 (report): aggregate every record of this run's rows into the report, note what failed (judge failures
    too, unless accepted), write report.json/.md/.png into ``options.out_dir`` and log the failure summary."""
    bench_rows = Counter(r.benchmark for r in rows)
    meta = {"model": chat.options.model, "endpoint": redact_url(chat.options.endpoint), "n": options.n_samples,
            "temperature": chat.options.temperature, "top_p": chat.options.top_p,
            "max_tokens": chat.options.max_tokens, "max_input_tokens": truncator.max_tokens,
            "judge": (scorer_settings or {}).get("judge_model")}
    report = build_report(records, bench_rows, options.n_samples, options.pass_ks, meta)
    judge_failed = sorted((str(r["id"]), int(r["sample"]),
                           redact(f"judge: {r.get('judge_error') or 'no verdict'}"))
                          for r in records if r.get("judge_failed"))
    result = EvalResult(report=report, paths={}, asked=asked, reused=reused, failed=failed,
                        judge_failed=judge_failed, allow_judge_failures=options.allow_judge_failures)
    report["failed"] = [{"id": i, "sample": s, "error": e} for i, s, e in failed]
    if not options.allow_judge_failures:
        report["failed"] += [{"id": i, "sample": s, "error": e} for i, s, e in judge_failed]
    report["judge_failures_accepted"] = len(judge_failed) if options.allow_judge_failures else 0
    report["complete"] = result.complete
    if store.replaced_chars:
        logger.warning("%d unencodable character(s) (lone surrogates) in model replies replaced by U+FFFD in %s",
                       store.replaced_chars, store.path)
    t0 = time.perf_counter()
    result.paths = write_report(report, options.out_dir)
    result.report_s = time.perf_counter() - t0
    summary = result.failure_summary()
    if summary:
        (logger.warning if result.complete else logger.error)("%s", summary)
    return result


async def run_eval(
    rows: Sequence[EvalRow],
    chat: ChatClient,
    scorer: Scorer,
    truncator: MiddleTruncator,
    options: EvalOptions,
    *,
    tokenizer_name: str | None = None,
    scorer_settings: Mapping[str, Any] | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> EvalResult:
    """Evaluate ``rows`` (``options.n_samples`` each), resuming from ``options.out_dir``; write the reports.

    The steps, in order: open and check the output directory, load what earlier runs stored, re-score it
    (``rescore``) or re-judge the samples whose judge call failed, ask the model for the missing samples, report.
    For a served model from options alone (data files, tokenizer, judge, locking), see
    :func:`qwenlong_verl.evaluation.api.evaluate_endpoint`.

    Args:
        rows: The evaluation rows (ids unique and stable across runs).
        chat: An open client of the model server.
        scorer: Scores a reply (``HybridScorer``: rule, and the judge when it has one).
        truncator: Middle-truncates each prompt to the model's input budget.
        options: Output folder, samples per row, concurrency, resume and re-score switches.
        tokenizer_name: Stored in run.json: a resumed run must use the same tokenizer.
        scorer_settings: Stored in run.json (judge model, families, QA metric) and shown in the report.
        count_tokens: Counts a reply's tokens when the server reports none.

    Returns:
        The report, the paths written, and what was asked, reused and failed.
    """
    store = _open_store(rows, chat, scorer, truncator, options, tokenizer_name, scorer_settings)
    by_id = {r.id: r for r in rows}
    has_judge = getattr(scorer, "judge", None) is not None
    stored, done = _load_stored(store, by_id, options, has_judge)
    if options.rescore and stored:
        await _rescore_stored(stored, by_id, scorer, store, options)
    if has_judge and not options.rescore:
        await _rejudge_failed(done, by_id, scorer, store, options)
    for rec in done.values():
        rec.pop("response", None)

    jobs = [(row, s) for row in rows for s in range(options.n_samples) if (row.id, s) not in done]
    total = len(rows) * options.n_samples
    logger.info("%d of %d samples already done in %s; asking for %d", len(done), total, store.dir, len(jobs))
    new, failed = await _generate(jobs, done, total, chat, scorer, truncator, store, options, count_tokens)
    records = list({**done, **new}.values())
    return _finish(rows, records, chat, truncator, options, scorer_settings, store, asked=len(jobs),
                   reused=len(done), failed=failed)
