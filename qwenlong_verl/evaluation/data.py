"""Evaluation rows: the documented input layout, loading (JSONL / parquet), and the verl-parquet converter.

One row is one question over one document. The layout (one JSON object per line, or one parquet row)::

    id           str       optional; unique across all --data files (default "<file stem>:<row number>")
    benchmark    str       the report groups by it; default: data_source
    data_source  str       routes the scorer (docmath -> numeric match, others -> EM/sub-EM); default: benchmark
    question     str       required; the judge sees only this, never the document
    context      str       the document; required unless prompt is given
    answers      [str]     gold answers (a str or number is read as one answer); "answer" is accepted too
    prompt       str       optional: the full user message, used instead of the QwenLong-L1 template

LongBench's own field names are accepted as aliases: ``_id`` for id, ``input`` for question, ``dataset`` for
benchmark. A file in the verl RL layout (DocQA-RL-1.6K, ``qwenlong_verl.data.synth``: ``prompt`` chat list,
``reward_model.ground_truth``, ``extra_info``) is recognised by its columns and converted with
:func:`row_from_verl`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.row_files import plain as _plain
from qwenlong_verl.row_files import read_row_file

logger = logging.getLogger(__name__)

# PAPER Table 1 / REPO README, verbatim: the answer-format line is what the reward's extraction relies on.
PROMPT_TEMPLATE = (
    "Please read the following text and answer the question below.\n\n<text>\n{context}\n</text>\n\n{question}\n\n"
    'Format your response as follows: "Therefore, the answer is (insert answer here)".'
)

ALIASES = {"_id": "id", "input": "question", "dataset": "benchmark", "answer": "answers", "ground_truth": "answers"}
KNOWN_KEYS = {"id", "benchmark", "data_source", "question", "context", "answers", "prompt"}
VERL_KEYS = {"prompt", "reward_model"}

# The template with its two slots as groups: used to recover question and document from a verl prompt.
_TEMPLATE_RE = re.compile(
    r"<text>\n?(?P<context>.*)\n?</text>\s*(?P<question>.*?)\s*Format your response as follows:", re.DOTALL
)


class EvalDataError(ValueError):
    """A row of an evaluation file is malformed; the message names the file, the row and the key."""


@dataclass(frozen=True)
class EvalRow:
    id: str
    benchmark: str
    data_source: str
    question: str
    answers: tuple[str, ...]
    context: str = ""
    prompt: str | None = None
    source: str = field(default="", compare=False)  # "file:row" for error messages
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def user_message(self) -> str:
        """The user turn sent to the model: ``prompt`` as given, else the QwenLong-L1 template."""
        if self.prompt is not None:
            return self.prompt
        return PROMPT_TEMPLATE.format(context=self.context, question=self.question)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["answers"] = list(self.answers)
        d.pop("source")
        d.pop("extra")
        if d["prompt"] is None:
            d.pop("prompt")
        return d


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _answers(value: Any, where: str) -> tuple[str, ...]:
    if _is_missing(value):
        raise EvalDataError(f"{where}: missing 'answers' (a list of gold answers; 'answer' is accepted too)")
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for i, a in enumerate(items):
        if isinstance(a, bool) or not isinstance(a, (str, int, float)) or _is_missing(a):
            raise EvalDataError(f"{where}: answers[{i}] = {a!r} is not a string or number")
        s = str(a).strip()
        if not s:
            raise EvalDataError(f"{where}: answers[{i}] is empty")
        out.append(s)
    if not out:
        raise EvalDataError(f"{where}: 'answers' is an empty list")
    return tuple(out)


def _text(rec: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    v = rec.get(key)
    if _is_missing(v):
        if required:
            raise EvalDataError(f"{where}: missing '{key}'")
        return None
    if not isinstance(v, str):
        raise EvalDataError(f"{where}: '{key}' must be a string, got {type(v).__name__} {str(v)[:60]!r}")
    return v


def row_from_record(rec: Mapping[str, Any], where: str, default_id: str) -> EvalRow:
    """Validate one record of the documented layout (aliases allowed) and build an :class:`EvalRow`."""
    if not isinstance(rec, Mapping):
        raise EvalDataError(f"{where}: a row must be a JSON object, got {type(rec).__name__}")
    norm: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in rec.items():
        canon = ALIASES.get(key, key)
        if canon in KNOWN_KEYS:
            if canon in norm and not _is_missing(norm[canon]) and not _is_missing(value):
                raise EvalDataError(f"{where}: both '{key}' and another name for '{canon}' are set")
            if canon not in norm or _is_missing(norm[canon]):
                norm[canon] = _plain(value)
        else:
            extra[key] = _plain(value)
    question = _text(norm, "question", where, required=True)
    prompt = _text(norm, "prompt", where, required=False)
    context = _text(norm, "context", where, required=prompt is None) or ""
    if not question.strip():
        raise EvalDataError(f"{where}: 'question' is empty")
    benchmark = _text(norm, "benchmark", where, required=False)
    data_source = _text(norm, "data_source", where, required=False)
    if not benchmark and not data_source:
        raise EvalDataError(f"{where}: needs 'benchmark' or 'data_source' (the report groups rows by benchmark)")
    rid = norm.get("id")
    if _is_missing(rid):
        rid = default_id
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise EvalDataError(f"{where}: 'id' must be a string or integer, got {rid!r}")
    return EvalRow(
        id=str(rid),
        benchmark=benchmark or data_source,  # type: ignore[arg-type]
        data_source=data_source or benchmark,  # type: ignore[arg-type]
        question=question,
        answers=_answers(norm.get("answers"), where),
        context=context,
        prompt=prompt,
        source=where,
        extra=extra,
    )


def split_template(user_message: str) -> tuple[str, str] | None:
    """(context, question) of a prompt built from :data:`PROMPT_TEMPLATE`, or None if it does not match."""
    m = _TEMPLATE_RE.search(user_message)
    if m is None or not m.group("question").strip():
        return None
    context = m.group("context")
    if context.endswith("\n"):
        context = context[:-1]
    return context, m.group("question").strip()


def row_from_verl(rec: Mapping[str, Any], where: str, default_id: str) -> EvalRow:
    """Convert one verl RL row (``data_source``, ``prompt`` chat list, ``reward_model.ground_truth``, ``extra_info``).

    The document and question are recovered from the QwenLong-L1 template in the last user turn; a prompt in another
    format is kept verbatim and the question comes from ``extra_info.question``.
    """
    rec = {k: _plain(v) for k, v in rec.items()}
    messages = rec.get("prompt")
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise EvalDataError(f"{where}: verl 'prompt' must be a non-empty chat list, got {str(messages)[:80]!r}")
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str):
        raise EvalDataError(f"{where}: verl 'prompt' has no user message with text content")
    if len(messages) != 1 or len(users) != 1:
        # A system turn or few-shot turns would be lost by the single-user-message eval format.
        raise EvalDataError(f"{where}: verl 'prompt' has {len(messages)} messages; only one user turn is supported")
    user = users[-1]["content"]
    reward_model = rec.get("reward_model")
    if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
        raise EvalDataError(f"{where}: verl row needs 'reward_model.ground_truth'")
    extra_info = rec.get("extra_info") if isinstance(rec.get("extra_info"), Mapping) else {}
    data_source = rec.get("data_source")
    if not isinstance(data_source, str) or not data_source:
        raise EvalDataError(f"{where}: verl row needs a string 'data_source', got {data_source!r}")
    parts = split_template(user)
    question = extra_info.get("question") if isinstance(extra_info.get("question"), str) else None
    prompt: str | None = None
    context = ""
    if parts is not None:
        context, templ_question = parts
        question = question or templ_question
        if PROMPT_TEMPLATE.format(context=context, question=templ_question) != user:
            prompt = user  # close to the template but not identical: send exactly what training saw
    else:
        prompt = user
    if not question:
        raise EvalDataError(
            f"{where}: cannot find the question: the prompt does not follow the QwenLong-L1 template "
            "('<text>...</text> question Format your response as follows:') and extra_info has no 'question'"
        )
    rid = extra_info.get("id", extra_info.get("index"))
    rid = f"{data_source}:{rid}" if not _is_missing(rid) else default_id
    return EvalRow(
        id=str(rid),
        benchmark=str(extra_info.get("benchmark") or data_source),
        data_source=data_source,
        question=question,
        answers=_answers(reward_model["ground_truth"], where + " reward_model.ground_truth"),
        context=context,
        prompt=prompt,
        source=where,
        extra={k: v for k, v in extra_info.items() if k not in ("question",)},
    )


def load_file(path: str | Path) -> list[EvalRow]:
    """Read one JSONL (rows numbered from line 1), JSON list or parquet file (rows numbered from 0) with
    :func:`qwenlong_verl.row_files.read_row_file`; verl rows are converted."""
    path = Path(path)
    from qwenlong_verl.outputs import scrub

    rows: list[EvalRow] = []
    replaced = 0
    f = read_row_file(path, error=EvalDataError)
    for i, rec in zip(f.numbers, f.rows, strict=True):
        rec, bad = scrub(rec)  # lone surrogates would make the request body unencodable
        replaced += bad
        where = f"{path}:{i}"
        default_id = f"{path.stem}:{i}"
        if isinstance(rec, Mapping) and VERL_KEYS <= set(rec) and not isinstance(rec.get("prompt"), str):
            rows.append(row_from_verl(rec, where, default_id))
        else:
            rows.append(row_from_record(rec, where, default_id))
    if not rows:
        raise EvalDataError(f"{path}: no rows")
    if replaced:
        logger.warning("%s: %d unencodable character(s) (lone surrogates) replaced by U+FFFD", path, replaced)
    return rows


def load_rows(paths: Sequence[str | Path], limit: int | None = None) -> list[EvalRow]:
    """Load every file in order (the first ``limit`` rows of each); ids must be unique across all of them."""
    rows: list[EvalRow] = []
    seen: dict[str, str] = {}
    for p in paths:
        for row in load_file(p)[:limit]:
            if row.id in seen:
                raise EvalDataError(f"{row.source}: duplicate id {row.id!r} (first at {seen[row.id]})")
            seen[row.id] = row.source
            rows.append(row)
    logger.info("loaded %d rows from %d file(s)", len(rows), len(paths))
    return rows


def convert_verl_file(src: str | Path, dst: str | Path) -> int:
    """Write the rows of a verl RL parquet/JSONL file in the documented eval layout (JSONL); returns the row count."""
    from qwenlong_verl.outputs import write_jsonl

    rows = load_file(src)
    n, _ = write_jsonl(dst, (row.to_json() for row in rows))  # atomically: a complete file or the old one
    return n
