"""Warm-up SFT data: question-document-answer triplets (with reasoning) -> verl's multi-turn ``messages`` layout.

QwenLong-L1 (PAPER §2.3, Eq. 11) warms the policy up with plain NLL on verified teacher demonstrations (x, c, y*)
before RL. verl's SFT trainer (``verl.trainer.sft_trainer``, ``MultiTurnSFTDataset``) reads a parquet with a
``messages`` column and puts the loss on the assistant turns. One converted row is::

    messages: [{"role": "user", "content": <the QwenLong-L1 DocQA prompt: document + question + answer format>},
               {"role": "assistant", "content": "<think>\\n{reasoning}\\n</think>\\n\\nTherefore, the answer is {a}."}]
    data_source, id, prompt_length (with a tokenizer), reasoning_source ("column" | "evidence" | "none")

The user turn is exactly the RL prompt (same template as :mod:`qwenlong_verl.data.synth` and the eval layout), so the
SFT model meets the same text in RL phase I. The answer line matches what the reward extracts ("the answer is X"
after the last ``</think>``).

Input rows: any layout :func:`qwenlong_verl.evaluation.data.load_file` reads: the triplet layout (``question``,
``context``, ``answers``/``answer``, ``data_source``) or verl RL rows (``prompt``,
``reward_model.ground_truth``, ``extra_info``). The reasoning comes from ``reasoning`` (triplet layout) or
``extra_info.reasoning`` (verl rows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.config import check_fields, option

logger = logging.getLogger(__name__)

REASONING_MODES = ("column", "evidence", "none")


class SFTDataError(ValueError):
    """A row cannot be turned into an SFT example; the message names the row and the key."""


@dataclass
class SFTConversionOptions:
    """How triplets become SFT conversations.

    * ``reasoning``: ``column`` (every row must carry its reasoning: the paper's teacher demonstrations),
      ``evidence`` (the row's reasoning when present, else the document sentences that state the answer: for
      synthetic data, whose answers appear in the document), ``none`` (empty thinking block).
    * ``reasoning_key``: the column (triplet layout) or ``extra_info`` key (verl rows) holding the reasoning.
    * ``answer_template``: the final line; it must contain ``{answer}`` and keep the "the answer is" phrase the
      reward extracts.
    * ``max_prompt_tokens``: with a tokenizer, rows whose chat-templated user prompt is longer are left out, and
      counted (paper: the SFT set lies within phase I's input bound, 20K). ``None``: keep every row.
    * ``max_evidence_sentences``: at most this many document sentences in an ``evidence`` reasoning.
    """

    reasoning: str = option("column", choices=REASONING_MODES)
    reasoning_key: str = "reasoning"
    think_open: str = "<think>"
    think_close: str = "</think>"
    answer_template: str = "Therefore, the answer is {answer}."
    max_prompt_tokens: int | None = option(None, gt=0)
    max_evidence_sentences: int = option(2, ge=1)

    def __post_init__(self) -> None:
        check_fields(self)
        if "{answer}" not in self.answer_template:
            raise ValueError(f"answer_template must contain '{{answer}}', got {self.answer_template!r}")


@dataclass
class ConversionStats:
    rows_in: int = 0
    rows_out: int = 0
    too_long: list[str] = field(default_factory=list)  # ids left out by max_prompt_tokens
    reasoning_sources: dict[str, int] = field(default_factory=dict)
    no_evidence: list[str] = field(default_factory=list)  # ids whose evidence reasoning found no sentence

    def as_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "too_long": len(self.too_long),
                "too_long_ids": self.too_long[:20], "reasoning_sources": dict(self.reasoning_sources),
                "no_evidence": len(self.no_evidence)}


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_OPTION = re.compile(r"\(([A-Z])\)\s*([^\n]+)")


def _sentences(document: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(document.replace("\n", " ")) if s.strip()]


def evidence_sentences(document: str, question: str, answer: str, limit: int = 2) -> list[str]:
    """Document sentences that state ``answer`` (whole-word, case-insensitive), first ``limit`` distinct ones.

    A one-letter answer to a multiple-choice question is looked up through the option it names ("(B) Talor" ->
    "Talor")."""
    target = answer.strip()
    if len(target) == 1 and target.isalpha():
        options = dict(_OPTION.findall(question))
        target = options.get(target.upper(), "").strip()
    if not target:
        return []
    pattern = re.compile(rf"(?<!\w){re.escape(target)}(?!\w)", re.IGNORECASE)
    out: list[str] = []
    for sentence in _sentences(document):
        if pattern.search(sentence) and sentence not in out:
            out.append(sentence)
            if len(out) >= limit:
                break
    return out


def assistant_message(answer: str, reasoning: str, options: SFTConversionOptions) -> str:
    """``<think>\\n{reasoning}\\n</think>\\n\\n{answer line}`` (R1-style, what the reward parses)."""
    think = f"{options.think_open}\n{reasoning.strip()}\n{options.think_close}" if reasoning.strip() else (
        f"{options.think_open}\n{options.think_close}")
    return f"{think}\n\n{options.answer_template.format(answer=answer)}"


def _reasoning_for(row: Any, options: SFTConversionOptions, stats: ConversionStats) -> tuple[str, str]:
    value = row.extra.get(options.reasoning_key)
    if isinstance(value, str) and value.strip():
        return value, "column"
    if value is not None and not isinstance(value, str):
        raise SFTDataError(f"{row.source}: '{options.reasoning_key}' must be a string, got {type(value).__name__}")
    if options.reasoning == "column":
        raise SFTDataError(
            f"{row.source}: no reasoning ('{options.reasoning_key}' column, or extra_info.{options.reasoning_key} "
            "for verl rows); the paper's SFT data are teacher demonstrations with reasoning. Use reasoning mode "
            "'evidence' (document sentences stating the answer) or 'none' for data without it")
    if options.reasoning == "none":
        return "", "none"
    context = row.context
    if not context and row.prompt:
        context = row.prompt
    found = evidence_sentences(context, row.question, row.answers[0], options.max_evidence_sentences)
    if not found:
        stats.no_evidence.append(row.id)
        return f"The question asks: {row.question.splitlines()[0]}", "evidence"
    return "The text states: " + " ".join(found), "evidence"


def convert_rows(rows: Sequence[Any], options: SFTConversionOptions = SFTConversionOptions(),
                 tokenizer: Any = None) -> tuple[list[dict[str, Any]], ConversionStats]:
    """Turn loaded rows (:class:`qwenlong_verl.evaluation.data.EvalRow`) into SFT rows; returns (rows, stats).

    The first gold answer is the target. Rows over ``options.max_prompt_tokens`` (needs ``tokenizer``) are left out
    and listed in ``stats.too_long``; nothing else is dropped: a row without what it needs raises
    :class:`SFTDataError`."""
    if options.max_prompt_tokens is not None and tokenizer is None:
        raise ValueError("max_prompt_tokens needs a tokenizer to measure the prompts")
    stats = ConversionStats(rows_in=len(rows))
    out: list[dict[str, Any]] = []
    for row in rows:
        user = row.user_message()
        length = None
        if tokenizer is not None:
            from qwenlong_verl.data.prepare import prompt_lengths

            length = prompt_lengths(tokenizer, [[{"role": "user", "content": user}]])[0]
            if options.max_prompt_tokens is not None and length > options.max_prompt_tokens:
                stats.too_long.append(row.id)
                continue
        reasoning, source = _reasoning_for(row, options, stats)
        stats.reasoning_sources[source] = stats.reasoning_sources.get(source, 0) + 1
        record: dict[str, Any] = {
            "messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": assistant_message(row.answers[0], reasoning, options)}],
            "data_source": row.data_source,
            "id": row.id,
            "reasoning_source": source,
        }
        if length is not None:
            record["prompt_length"] = int(length)
        out.append(record)
    stats.rows_out = len(out)
    if stats.too_long:
        logger.warning("SFT conversion: %d of %d rows have prompts over %d tokens and are left out (first: %s)",
                       len(stats.too_long), stats.rows_in, options.max_prompt_tokens, ", ".join(stats.too_long[:5]))
    if stats.no_evidence:
        logger.warning("SFT conversion: %d rows have no document sentence stating their answer; their reasoning "
                       "only restates the question (first: %s)", len(stats.no_evidence),
                       ", ".join(stats.no_evidence[:5]))
    return out, stats


def load_triplets(paths: Iterable[str | Path]) -> list[Any]:
    """Rows of JSONL/parquet files in the triplet (eval) layout or the verl RL layout."""
    from qwenlong_verl.evaluation.data import load_rows

    return load_rows([str(p) for p in paths])


def check_template_keeps_reasoning(tokenizer: Any, record: dict[str, Any]) -> None:
    """Raise :class:`SFTDataError` when the tokenizer's chat template drops or alters the assistant turn.

    DeepSeek-R1-Distill templates cut everything up to ``</think>`` out of assistant messages, so verl's SFT would
    train on the answer line alone and never on the reasoning; this check catches that before training."""
    assistant = record["messages"][-1]["content"]
    text = tokenizer.apply_chat_template(record["messages"], tokenize=False, add_generation_prompt=False)
    if assistant not in text:
        think_lost = "</think>" in assistant and assistant.split("</think>")[-1].strip() in text
        hint = (" (the template removes the thinking part of assistant turns, as DeepSeek-R1-Distill's does: "
                "train with a chat template that keeps it, e.g. set the tokenizer's chat_template, or use "
                "reasoning mode 'none')") if think_lost else ""
        raise SFTDataError(f"row {record.get('id')}: the chat template does not keep the assistant turn verbatim"
                           f"{hint}")


def write_sft_parquet(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    import pandas as pd

    if not records:
        raise SFTDataError(f"{path}: no SFT rows to write")
    from qwenlong_verl.outputs import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:  # a complete file or the old one, never half of one
        pd.DataFrame(list(records)).to_parquet(tmp, index=False)
    return path


def convert_files(inputs: Sequence[str | Path], output: str | Path,
                  options: SFTConversionOptions = SFTConversionOptions(), tokenizer: Any = None) -> ConversionStats:
    """Load ``inputs``, convert, check the chat template on the first row (with a tokenizer), write ``output``
    (checked first: a .parquet path in a writable folder that is none of the inputs)."""
    from qwenlong_verl.outputs import check_output

    check_output(output, option="--out", inputs=list(inputs), suffixes=(".parquet",))
    records, stats = convert_rows(load_triplets(inputs), options, tokenizer)
    if tokenizer is not None and records:
        check_template_keeps_reasoning(tokenizer, records[0])
    write_sft_parquet(records, output)
    logger.info("wrote %d SFT rows to %s (reasoning: %s)", len(records), output, stats.reasoning_sources)
    return stats
