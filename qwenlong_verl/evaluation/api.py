"""The library entry of evaluation: :class:`EndpointEvalOptions` in, :class:`~.runner.EvalResult` out.

:func:`evaluate_endpoint` evaluates a model served by an OpenAI-compatible server (vLLM) on long-context DocQA
files, the way ``qwenlong-verl eval`` does, for callers that are not the command line (the pipeline's eval stage,
a notebook). It does everything the command does except parse arguments and print: it checks the output folder and
that the servers answer, holds the folder's lock, loads the data and the tokenizer, builds the scorer (rule, and the
judge when one is given) and runs :func:`~.runner.run_eval`. The bounds of every option are declared on its field
(:func:`qwenlong_verl.config.option`), and the command builds its parser from them: one source of defaults and
limits. A problem found before any request raises :class:`EvalSetupError`, whose ``exit_code`` is the command's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwenlong_verl.config import SEED_MAX, check_fields, option
from qwenlong_verl.reward.rule import FAMILIES

if TYPE_CHECKING:
    from qwenlong_verl.evaluation.client import ChatOptions
    from qwenlong_verl.evaluation.runner import EvalOptions, EvalResult
    from qwenlong_verl.evaluation.truncation import MiddleTruncator

logger = logging.getLogger(__name__)

# Upper bounds of the counts a user gives: a typo (concurrency 100000) is refused instead of exhausting sockets.
MAX_IN_FLIGHT = 1024
MAX_RETRIES = 20
MAX_SAMPLES = 1024
MAX_ROWS = 10_000_000  # limit: rows of one file
MAX_TOKEN_COUNT = 10_000_000  # tokens of a prompt or a reply: beyond any model's context
MAX_TEMPERATURE = 10.0  # beyond this sampling is noise; servers refuse far less (OpenAI: 2)
MAX_TIMEOUT_S = 86400.0  # a day per request
MAX_BACKOFF_S = 3600.0
QA_METRICS = ("em_or_sub_em", "sub_em", "em", "f1")  # reward.scoring's QA rule scores, the paper's eval first
LOCK_FILE = ".eval.lock"


class EvalSetupError(Exception):
    """A problem found before any request that the caller can fix (an unusable output folder, a server that does not
    answer, a folder in use by another eval, a tokenizer that does not load); the message names the option, the
    cause and the fix. ``exit_code`` is what ``qwenlong-verl eval`` exits with: 1 for a server that is down, else 2."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class EndpointEvalOptions:
    """Everything one evaluation of a served model needs; the fields are ``qwenlong-verl eval``'s options (``out_dir``
    is ``--out``, ``timeout_s`` is ``--timeout``, ``retry_backoff_s`` is ``--retry-backoff``, ``pass_ks`` is
    ``--pass-k``, ``families`` is ``--family`` as a dict, ``progress`` is the opposite of ``--no-progress``)."""

    endpoint: str  # OpenAI-compatible server: http://host:port[/v1]
    model: str  # the model name the server knows (vLLM: the served model path/name)
    data: list[str]  # JSONL or parquet files in the eval layout or the verl RL layout
    out_dir: str  # output folder (resumed when it exists)
    api_key_env: str | None = None  # env var whose value is sent as the server's API key (None: no key is sent)
    concurrency: int = option(32, ge=1, le=MAX_IN_FLIGHT)  # generation requests in flight at most
    timeout_s: float = option(1800.0, ge=0.001, le=MAX_TIMEOUT_S, hint="> 0 and at most a day")  # per request
    max_retries: int = option(4, ge=0, le=MAX_RETRIES)  # retries of a failed request
    retry_backoff_s: float = option(1.0, ge=0.0, le=MAX_BACKOFF_S)  # before the first retry; doubles each retry
    limit: int | None = option(None, ge=1, le=MAX_ROWS)  # only the first N rows of each file (smoke tests)
    tokenizer: str | None = None  # for middle truncation and token counts (None: ``model`` when it is a local dir)
    max_input_tokens: int = option(120_000, ge=0, le=MAX_TOKEN_COUNT)  # middle-truncate prompts (0: send uncut)
    max_tokens: int = option(10_000, ge=1, le=MAX_TOKEN_COUNT)  # max output tokens (PAPER: 10K)
    temperature: float = option(0.7, ge=0.0, le=MAX_TEMPERATURE)  # PAPER §3.3
    top_p: float = option(0.95, gt=0, le=1)
    n_samples: int = option(1, ge=1, le=MAX_SAMPLES)  # samples per row (pass@k for k <= n)
    pass_ks: list[int] | None = None  # k values of pass@k, each 1 to MAX_SAMPLES (None: 1, 2, 4, ..., n)
    seed: int | None = option(None, ge=0, le=SEED_MAX)  # per-request seed = seed + sample index (vLLM)
    judge_endpoint: str | None = None  # OpenAI-compatible server of the LLM judge (None: rule scores only)
    judge_model: str | None = None  # the judge's model name; given together with judge_endpoint
    judge_api_key_env: str | None = None  # env var whose value is sent as the judge's API key (None: none)
    judge_concurrency: int = option(16, ge=1, le=MAX_IN_FLIGHT)  # judge requests in flight at most
    families: dict[str, str] = field(default_factory=dict)  # rule family of a data_source the scorer does not know
    default_family: str | None = option(None, choices=(*FAMILIES, None))  # family of every unknown data_source
    qa_metric: str = option("em_or_sub_em", choices=QA_METRICS)  # rule score of QA (em_or_sub_em: the paper's)
    rescore: bool = False  # score every stored response again before continuing
    allow_judge_failures: bool = False  # a sample whose judge call finally failed counts as done (rule score)
    force_resume: bool = False  # resume although the settings in run.json differ
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        from qwenlong_verl.openai_client import http_url_error

        check_fields(self)
        for name in ("endpoint", "judge_endpoint"):
            url = getattr(self, name)
            if url is not None and http_url_error(url) is not None:
                from qwenlong_verl.redaction import redact_url

                raise ValueError(f"{name} must be an http:// or https:// URL with a host, e.g. "
                                 f"http://127.0.0.1:8000/v1, got {redact_url(str(url))!r}")
        if not self.data:
            raise ValueError("data is empty: give at least one JSONL or parquet file to evaluate")
        if self.pass_ks is not None and (not self.pass_ks or any(not 1 <= k <= MAX_SAMPLES for k in self.pass_ks)):
            raise ValueError(f"pass_ks must be integers from 1 to {MAX_SAMPLES}, got {self.pass_ks!r}")
        if bool(self.judge_endpoint) != bool(self.judge_model):
            raise ValueError("judge_endpoint (--judge-endpoint) and judge_model (--judge-model) go together: give "
                             "both, or neither to score by the rule alone")
        for ds, fam in self.families.items():
            if not ds or fam not in FAMILIES:
                raise ValueError(f"families.{ds}: family must be one of {FAMILIES}, got {fam!r}")

    def chat_options(self) -> ChatOptions:
        """The model client's options."""
        from qwenlong_verl.evaluation.client import ChatOptions

        return ChatOptions(endpoint=self.endpoint, model=self.model, api_key_env=self.api_key_env,
                           temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                           seed=self.seed, timeout_s=self.timeout_s, max_retries=self.max_retries,
                           backoff_s=self.retry_backoff_s, max_connections=max(self.concurrency, 1))

    def loop_options(self) -> EvalOptions:
        """The evaluation loop's options (:func:`~.runner.run_eval`)."""
        from qwenlong_verl.evaluation.runner import EvalOptions

        return EvalOptions(out_dir=self.out_dir, n_samples=self.n_samples, concurrency=self.concurrency,
                           pass_ks=self.pass_ks, progress=self.progress, force_resume=self.force_resume,
                           rescore=self.rescore, allow_judge_failures=self.allow_judge_failures)

    def scorer_settings(self) -> dict[str, Any]:
        """What run.json stores of the scorer (a resumed run compares them) and the report shows."""
        return {"judge_model": self.judge_model, "families": dict(self.families),
                "default_family": self.default_family, "qa_metric": self.qa_metric}


# -- before any request --------------------------------------------------------------------------------------------
def check_out_dir(out: str, data: list[str]) -> None:
    """``out`` is a folder this process can write, and none of the files eval writes there is an input.

    Args:
        out: The output folder (``--out``).
        data: The input files, which must not be overwritten.

    Raises:
        EvalSetupError: ``out`` is a file.
        OutputPathError: an output file cannot be written, or is one of ``data``.
    """
    from qwenlong_verl.evaluation.report import REPORT_JSON, REPORT_MD, REPORT_PNG
    from qwenlong_verl.evaluation.store import GENERATIONS, MANIFEST
    from qwenlong_verl.outputs import check_output

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise EvalSetupError(f"--out {out!r} is a file; eval writes a folder (generations, reports): give a folder "
                             "path")
    for name in (GENERATIONS, MANIFEST, REPORT_JSON, REPORT_MD, REPORT_PNG):
        check_output(path / name, option="--out", inputs=data)


def check_servers_answer(options: EndpointEvalOptions) -> None:
    """One GET to the model server and to the judge before any work: a server that is down is named now, instead of
    every sample failing after its retries. A judge that is down is accepted with ``allow_judge_failures``.

    Raises:
        EvalSetupError: (exit code 1) a server does not answer.
    """
    from qwenlong_verl.config_checks import probe_server
    from qwenlong_verl.openai_client import openai_base_url
    from qwenlong_verl.redaction import redact_url

    # the probes go the route of the requests that follow, with the same key (when one is named)
    reason = probe_server(openai_base_url(options.endpoint), api_key_env=options.api_key_env)
    if reason is not None:
        raise EvalSetupError(f"--endpoint {redact_url(options.endpoint)!r}: the model server is unreachable "
                             f"({reason}); start it (vllm serve ...) or fix the URL", exit_code=1)
    if options.judge_endpoint and not options.allow_judge_failures:
        reason = probe_server(openai_base_url(options.judge_endpoint), api_key_env=options.judge_api_key_env)
        if reason is not None:
            raise EvalSetupError(f"--judge-endpoint {redact_url(options.judge_endpoint)!r}: the judge is unreachable "
                                 f"({reason}); start it or fix the URL, or pass --allow-judge-failures to score by "
                                 "the rule alone", exit_code=1)


@contextlib.contextmanager
def out_dir_lock(out: str) -> Iterator[None]:
    """Hold ``<out>/.eval.lock`` (an exclusive ``flock``) for the whole run. Two evals on one folder would each ask
    for every missing sample (every request twice) and interleave their appends; the second is refused at once,
    naming the first's pid. The kernel drops the lock when the holder dies, so a killed run never blocks the next.

    Raises:
        EvalSetupError: another process holds the lock.
    """
    import fcntl

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            raise EvalSetupError(f"--out {out!r} is in use by another qwenlong-verl eval (pid {holder}): wait for "
                                 "it to finish (it saves every sample; a rerun then resumes), or give another --out",
                                 exit_code=2) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the run ---------------------------------------------------------------------------------------------------------
def load_tokenizer(options: EndpointEvalOptions) -> tuple[Any | None, str | None]:
    """(tokenizer, its name) for middle truncation: ``tokenizer``, else ``model`` when it is a local folder; (None,
    None) when neither and truncation is off.

    Raises:
        ValueError: truncation is on and there is no tokenizer to truncate with.
        EvalSetupError: the tokenizer does not load.
    """
    from qwenlong_verl.model_source import TokenizerLoadError
    from qwenlong_verl.model_source import load_tokenizer as load

    name = options.tokenizer
    if name is None and Path(options.model).is_dir():
        name = options.model
    if name is None:
        if options.max_input_tokens > 0:
            raise ValueError("middle truncation needs a tokenizer: pass --tokenizer PATH (the served model's "
                             "tokenizer), or --max-input-tokens 0 to send prompts uncut")
        return None, None
    try:
        return load(name, "--tokenizer" if options.tokenizer else "--model (as tokenizer)"), name
    except TokenizerLoadError as exc:
        raise EvalSetupError(str(exc), exc.exit_code) from exc


def build_scorer(options: EndpointEvalOptions) -> tuple[Any, Any]:
    """(the hybrid scorer, its judge client or None): the rule score, and the judge's verdict when a judge is set."""
    from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions

    score_opts = ScoreOptions(families=dict(options.families), default_family=options.default_family,
                              qa_metric=options.qa_metric)
    judge = None
    if options.judge_endpoint:
        from qwenlong_verl.openai_client import openai_base_url
        from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions

        judge = JudgeClient(JudgeOptions(base_url=openai_base_url(options.judge_endpoint), model=options.judge_model,
                                         max_concurrency=options.judge_concurrency,
                                         api_key_env=options.judge_api_key_env))  # None: no key is sent
    return HybridScorer(score_opts, judge=judge), judge


def _truncator(tokenizer: Any | None, max_input_tokens: int) -> tuple[MiddleTruncator, Any]:
    from qwenlong_verl.evaluation.truncation import MiddleTruncator

    count = None
    if tokenizer is not None:
        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return MiddleTruncator(tokenizer, max_input_tokens), count


async def evaluate_endpoint_async(options: EndpointEvalOptions) -> EvalResult:
    """The run itself, without the checks and the lock of :func:`evaluate_endpoint` (for a caller already inside an
    event loop that holds the folder itself): load the rows and the tokenizer, then :func:`~.runner.run_eval`.

    Args:
        options: What to evaluate, where, and how.

    Returns:
        The report and counts (see :func:`evaluate_endpoint`).
    """
    from qwenlong_verl.evaluation.client import ChatClient
    from qwenlong_verl.evaluation.data import load_rows
    from qwenlong_verl.evaluation.runner import run_eval

    rows = load_rows(options.data, limit=options.limit)
    tokenizer, tok_name = await asyncio.to_thread(load_tokenizer, options)
    truncator, count = _truncator(tokenizer, options.max_input_tokens)
    chat_opts, loop_opts = options.chat_options(), options.loop_options()
    scorer, judge = build_scorer(options)
    try:
        async with ChatClient(chat_opts) as chat:
            return await run_eval(rows, chat, scorer, truncator, loop_opts, tokenizer_name=tok_name,
                                  scorer_settings=options.scorer_settings(), count_tokens=count)
    finally:
        if judge is not None:
            await judge.aclose()


def evaluate_endpoint(options: EndpointEvalOptions) -> EvalResult:
    """Evaluate the served model on ``options.data``, resuming from ``options.out_dir``, as ``qwenlong-verl eval``.

    Before any request the output folder is checked, the model server (and the judge, unless judge failures are
    allowed) must answer a GET, and the folder's lock is taken for the whole run. Runs its own event loop: call it
    from synchronous code (inside a running loop use :func:`evaluate_endpoint_async`).

    Args:
        options: What to evaluate, where, and how.

    Returns:
        The report (also written as report.json/.md/.png), its paths, accuracy, the samples asked and reused, and
        the failed ones; ``complete`` is False when a generation request, or a judge call (unless
        ``allow_judge_failures``), failed: a rerun with the same options retries only those.

    Raises:
        EvalSetupError: a problem found before any request (folder, servers, lock, tokenizer); see ``exit_code``.
        OutputPathError: an output file cannot be written or is an input.
        EvalDataError: a data file is malformed (the message names the file, row and key).
        EvalStoreError: the output folder holds a run with other settings, or a corrupt line.
        ValueError, OSError: other bad input (a row the scorer cannot score, an unreadable file).
    """
    check_out_dir(options.out_dir, options.data)
    check_servers_answer(options)
    with out_dir_lock(options.out_dir):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        return asyncio.run(evaluate_endpoint_async(options))
