"""Turn a DocQA parquet/JSONL (DocQA-RL-1.6K layout) into training parquet with stable indices and stored lengths.

The phased curriculum selects examples by prompt token length. verl's own ``filter_overlong_prompts`` re-tokenises
every prompt at every start-up; this module measures the length once, with the policy tokenizer and chat template
(the same count verl uses: ``apply_chat_template(..., add_generation_prompt=True)``), and stores it as the
top-level column ``prompt_length`` and as ``extra_info.prompt_length``.

Every row needs a ``prompt`` (chat list; a bare string becomes one user message) and a non-empty
``reward_model.ground_truth``. A row without them is an error naming the row, or, with ``skip_invalid``, is
skipped and reported (count and the first reasons) — never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

LENGTH_COLUMN = "prompt_length"


class DataPrepError(ValueError):
    """A row of the input is unusable; the message names the row and the key."""


@dataclass
class PrepareReport:
    input_rows: int
    output_rows: int
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row number in the input, reason)
    converted_string_prompts: int = 0
    length_min: int = 0
    length_mean: float = 0.0
    length_max: int = 0

    def summary(self) -> str:
        text = (f"{self.output_rows}/{self.input_rows} rows written; prompt tokens min {self.length_min} "
                f"mean {self.length_mean:.0f} max {self.length_max}")
        if self.skipped:
            text += f"; {len(self.skipped)} skipped (first: row {self.skipped[0][0]}: {self.skipped[0][1]})"
        if self.converted_string_prompts:
            text += f"; {self.converted_string_prompts} string prompts wrapped as one user message"
        return text


def _plain(value: Any) -> Any:
    """Parquet gives numpy arrays for lists; turn nested values back into plain Python."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def prompt_texts(tokenizer: Any, prompts: Sequence[Any], chat_template_kwargs: Mapping[str, Any] | None = None
                 ) -> list[str]:
    kwargs = dict(chat_template_kwargs or {})
    for key in ("tokenize", "return_dict", "return_tensors", "add_generation_prompt"):
        kwargs.pop(key, None)
    return [tokenizer.apply_chat_template(_plain(p), add_generation_prompt=True, tokenize=False, **kwargs)
            for p in prompts]


def prompt_lengths(tokenizer: Any, prompts: Sequence[Any], chat_template_kwargs: Mapping[str, Any] | None = None
                   ) -> list[int]:
    """Token length of each chat prompt with the generation prompt, as verl's ``filter_overlong_prompts`` counts it.

    Rendering the template to text and tokenising the batch without special tokens gives the same ids as
    ``apply_chat_template(tokenize=True)`` (that is how transformers implements it), but lets a fast tokenizer
    encode the whole batch in parallel threads.
    """
    texts = prompt_texts(tokenizer, prompts, chat_template_kwargs)
    enc = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [len(ids) for ids in enc]


def content_index(row: Mapping[str, Any]) -> str:
    """A stable id from the row's content (data source, prompt, ground truth): survives re-ordering and filtering."""
    payload = json.dumps([row.get("data_source"), _plain(row.get("prompt")),
                          _plain((row.get("reward_model") or {}).get("ground_truth"))],
                         sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def read_table(path: str | Path):
    import pandas as pd

    p = str(path)
    if p.endswith(".parquet"):
        return pd.read_parquet(p)
    if p.endswith((".jsonl", ".json")):
        return pd.read_json(p, lines=True, dtype=False)
    raise DataPrepError(f"input {p!r}: expected a .parquet, .jsonl or .json (lines) file")


def _check_row(i: int, row: dict[str, Any], prompt_key: str) -> tuple[str | None, bool]:
    """Return (reason the row is unusable or None, whether a string prompt was wrapped)."""
    prompt = row.get(prompt_key)
    wrapped = False
    if isinstance(prompt, str):
        if not prompt.strip():
            return f"empty '{prompt_key}'", False
        row[prompt_key] = [{"role": "user", "content": prompt}]
        wrapped = True
    elif prompt is None or (isinstance(prompt, float) and np.isnan(prompt)):
        return f"missing '{prompt_key}'", False
    else:
        prompt = _plain(prompt)
        if not isinstance(prompt, list) or not prompt:
            return f"'{prompt_key}' must be a non-empty chat list, got {type(prompt).__name__}", False
        for j, m in enumerate(prompt):
            if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
                return f"'{prompt_key}[{j}]' must be a {{role, content}} message, got {m!r:.80}", False
        row[prompt_key] = prompt
    rm = _plain(row.get("reward_model"))
    gt = rm.get("ground_truth") if isinstance(rm, Mapping) else None
    if gt is None or (isinstance(gt, str) and not gt.strip()) or (isinstance(gt, list) and not gt):
        return "missing 'reward_model.ground_truth'", wrapped
    row["reward_model"] = rm
    if row.get("data_source") is None:
        return "missing 'data_source'", wrapped
    return None, wrapped


def _lengths_worker(args: tuple[str, list[Any], dict[str, Any]]) -> list[int]:
    tokenizer_path, prompts, kwargs = args
    return prompt_lengths(_load_tokenizer_cached(tokenizer_path), prompts, kwargs)


_TOKENIZERS: dict[str, Any] = {}


def _load_tokenizer_cached(path: str):
    if path not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    return _TOKENIZERS[path]


def compute_lengths(tokenizer_path: str, prompts: Sequence[Any], *, chat_template_kwargs: Mapping | None = None,
                    num_workers: int = 1, chunk_size: int = 64, progress: bool = True) -> list[int]:
    """Lengths of many prompts, in chunks with a progress bar; ``num_workers>1`` spreads chunks over processes
    (worth it for slow Python tokenizers or very large inputs; a fast tokenizer already encodes a chunk with
    several threads)."""
    from tqdm import tqdm

    chunks = [list(prompts[i:i + chunk_size]) for i in range(0, len(prompts), chunk_size)]
    kwargs = dict(chat_template_kwargs or {})
    out: list[int] = []
    bar = tqdm(total=len(prompts), desc="prompt lengths", unit="row", disable=not progress)
    if num_workers > 1 and len(chunks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            for res in pool.map(_lengths_worker, [(tokenizer_path, c, kwargs) for c in chunks]):
                out.extend(res)
                bar.update(len(res))
    else:
        tok = _load_tokenizer_cached(tokenizer_path)
        for c in chunks:
            out.extend(prompt_lengths(tok, c, kwargs))
            bar.update(len(c))
    bar.close()
    return out


def prepare_dataset(
    input_path: str | Path,
    output_path: str | Path,
    tokenizer_path: str,
    *,
    prompt_key: str = "prompt",
    skip_invalid: bool = False,
    index_mode: str = "keep",
    chat_template_kwargs: Mapping[str, Any] | None = None,
    num_workers: int = 1,
    progress: bool = True,
) -> PrepareReport:
    """Validate, index and measure a DocQA file; write parquet to ``output_path``.

    ``index_mode``: ``keep`` uses ``extra_info.index`` when every row has one and they are unique, else assigns
    the row position; ``position`` always assigns 0..n-1 (input order); ``hash`` assigns a content hash (stable under
    re-ordering and filtering of the input). Duplicate indices are an error.
    """
    import pandas as pd

    if index_mode not in ("keep", "position", "hash"):
        raise DataPrepError(f"index_mode must be keep, position or hash, got {index_mode!r}")
    df = read_table(input_path)
    records = df.to_dict(orient="records")
    report = PrepareReport(input_rows=len(records), output_rows=0)
    kept: list[tuple[int, dict[str, Any]]] = []
    for i, row in enumerate(records):
        reason, wrapped = _check_row(i, row, prompt_key)
        report.converted_string_prompts += int(wrapped)
        if reason is None:
            extra = _plain(row.get("extra_info"))
            row["extra_info"] = dict(extra) if isinstance(extra, Mapping) else {}
            kept.append((i, row))
            continue
        where = f"{input_path}: row {i}"
        idx = (_plain(row.get("extra_info")) or {}).get("index") if isinstance(row.get("extra_info"), Mapping) else None
        if idx is not None:
            where += f" (extra_info.index={idx})"
        if not skip_invalid:
            raise DataPrepError(f"{where}: {reason}; fix the row or pass --skip-invalid to skip and count such rows")
        report.skipped.append((i, reason))
        logger.warning("skipping %s: %s", where, reason)
    if not kept:
        raise DataPrepError(f"{input_path}: no usable rows ({len(report.skipped)} skipped)")

    existing = [r["extra_info"].get("index") for _, r in kept]
    if index_mode == "hash":
        new_index: list[Any] = [content_index(r) for _, r in kept]
    elif index_mode == "keep" and all(x is not None for x in existing):
        new_index = existing
    else:
        if index_mode == "keep" and any(x is not None for x in existing):
            logger.warning("some rows lack extra_info.index: assigning row positions to all rows")
        new_index = [i for i, _ in kept]
    seen: dict[Any, int] = {}
    for (i, _), idx in zip(kept, new_index, strict=True):
        if idx in seen:
            raise DataPrepError(
                f"{input_path}: rows {seen[idx]} and {i} share extra_info.index={idx!r}; indices must be unique "
                "(use --index position or --index hash to re-number)")
        seen[idx] = i

    lengths = compute_lengths(tokenizer_path, [r[prompt_key] for _, r in kept],
                              chat_template_kwargs=chat_template_kwargs, num_workers=num_workers, progress=progress)
    rows = []
    for (_, row), idx, length in zip(kept, new_index, lengths, strict=True):
        row["extra_info"]["index"] = idx
        row["extra_info"][LENGTH_COLUMN] = int(length)
        row[LENGTH_COLUMN] = int(length)
        rows.append(row)
    out = pd.DataFrame(rows)
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    out.to_parquet(output_path, index=False)
    arr = np.asarray(lengths)
    report.output_rows = len(rows)
    report.length_min, report.length_mean, report.length_max = int(arr.min()), float(arr.mean()), int(arr.max())
    logger.info("%s -> %s: %s", input_path, output_path, report.summary())
    return report
