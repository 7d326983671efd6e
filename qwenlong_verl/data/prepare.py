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
import signal
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qwenlong_verl.row_files import plain as _plain
from qwenlong_verl.row_files import read_row_file

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
    repairs: Counter[str] = field(default_factory=Counter)  # what was fixed on the way in, and how often
    long_prompts: int = 0  # prompts over LONG_PROMPT_TOKENS
    length_min: int = 0
    length_mean: float = 0.0
    length_max: int = 0

    def summary(self) -> str:
        text = (f"{self.output_rows}/{self.input_rows} rows written; prompt tokens min {self.length_min} "
                f"mean {self.length_mean:.0f} max {self.length_max}")
        if self.skipped:
            text += f"; {len(self.skipped)} skipped (first: row {self.skipped[0][0]}: {self.skipped[0][1]})"
        for what, count in sorted(self.repairs.items()):
            text += f"; {count} {what}"
        return text


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


def read_records(path: str | Path) -> tuple[list[Any], list[str]]:
    """Rows of a parquet, JSONL or JSON (a list, or one object per line) file, as plain Python, and where each row
    is (``file:line`` for JSONL, ``file: row i`` otherwise) for error messages
    (:func:`qwenlong_verl.row_files.read_row_file`). A line that is not JSON (a truncated file) is an error naming
    ``file:line``."""
    f = read_row_file(path, error=DataPrepError)
    return f.rows, [f.where(i) for i in range(len(f.rows))]


def read_table(path: str | Path):
    """The input as a pandas DataFrame (validated reading: see :func:`read_records`)."""
    import pandas as pd

    rows, _ = read_records(path)
    return pd.DataFrame(rows)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _parse_json_text(value: str, want: type) -> Any:
    """``value`` parsed as JSON of type ``want``; None when it does not parse or is another type."""
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, want) else None


def _check_prompt(row: dict[str, Any], prompt_key: str, repairs: Counter[str]) -> str | None:
    prompt = row.get(prompt_key)
    if isinstance(prompt, str):
        if not prompt.strip():
            return f"empty '{prompt_key}'"
        if prompt.lstrip().startswith(("[{", "[ {", "[\n")) or prompt.strip() == "[]":
            parsed = _parse_json_text(prompt, list)
            if parsed is None:
                return (f"'{prompt_key}' is a string that looks like a JSON chat list but does not parse as one; "
                        "store the chat list itself, or fix the JSON")
            prompt = parsed
            repairs["JSON-string prompts parsed into chat lists"] += 1
        else:
            row[prompt_key] = [{"role": "user", "content": prompt}]
            repairs["string prompts wrapped as one user message"] += 1
            return None
    if prompt is None or _is_nan(prompt):
        return f"missing '{prompt_key}'"
    prompt = _plain(prompt)
    if not isinstance(prompt, list) or not prompt:
        return f"'{prompt_key}' must be a non-empty chat list, got {type(prompt).__name__}"
    for j, m in enumerate(prompt):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            return f"'{prompt_key}[{j}]' must be a {{role, content}} message, got {m!r:.80}"
        if not isinstance(m["role"], str) or not isinstance(m["content"], str):
            return (f"'{prompt_key}[{j}]': role and content must be strings, got role "
                    f"{type(m['role']).__name__} and content {type(m['content']).__name__}")
    row[prompt_key] = prompt
    return None


def _check_ground_truth(row: dict[str, Any], repairs: Counter[str]) -> str | None:
    rm = _plain(row.get("reward_model"))
    if isinstance(rm, str):
        parsed = _parse_json_text(rm, dict)
        if parsed is None:
            return "'reward_model' is a string that is not a JSON object; store {'ground_truth': ...}"
        rm = parsed
        repairs["JSON-string reward_model parsed"] += 1
    if rm is not None and not isinstance(rm, Mapping):
        return f"'reward_model' must be an object with 'ground_truth', got {type(rm).__name__}"
    gt = rm.get("ground_truth") if isinstance(rm, Mapping) else None
    if gt is None or (isinstance(gt, str) and not gt.strip()) or (isinstance(gt, list) and not gt):
        return "missing 'reward_model.ground_truth'"
    if _is_nan(gt):
        return "'reward_model.ground_truth' is NaN (a missing value); give the gold answer as a string"
    if isinstance(gt, bool) or isinstance(gt, Mapping):
        return (f"'reward_model.ground_truth' must be a string or a list of strings, got "
                f"{type(gt).__name__} {gt!r:.60}")
    if isinstance(gt, list):
        for j, item in enumerate(gt):
            if not isinstance(item, str | int | float) or isinstance(item, bool) or _is_nan(item):
                return (f"'reward_model.ground_truth[{j}]' must be a string (or number), got "
                        f"{type(item).__name__} {item!r:.60}; nested lists are not accepted answers")
    from qwenlong_verl.reward.rule import gold_answers

    try:
        gold_answers(gt)
    except ValueError as exc:
        return f"'reward_model.ground_truth': {exc}"
    row["reward_model"] = dict(rm)
    return None


def _check_data_source(row: dict[str, Any], families: Mapping[str, str] | None, default_family: str | None
                       ) -> str | None:
    ds = row.get("data_source")
    if ds is None or _is_nan(ds):
        return "missing 'data_source'"
    if not isinstance(ds, str) or not ds.strip():
        return f"'data_source' must be a non-empty string, got {type(ds).__name__} {ds!r:.60}"
    from qwenlong_verl.reward.rule import resolve_family

    try:
        resolve_family(ds, families, default_family)
    except ValueError as exc:
        return (f"{exc} (prepare: --family {ds}=qa|math|choice or --default-family; the same setting is then "
                "needed in training)")
    return None


def _check_extra_info(row: dict[str, Any], repairs: Counter[str]) -> str | None:
    extra = _plain(row.get("extra_info"))
    if extra is None or _is_nan(extra):
        row["extra_info"] = {}
        return None
    if isinstance(extra, str):
        parsed = _parse_json_text(extra, dict)
        if parsed is None:
            return "'extra_info' is a string that is not a JSON object; store the object itself"
        extra = parsed
        repairs["JSON-string extra_info parsed"] += 1
    if not isinstance(extra, Mapping):
        return f"'extra_info' must be an object, got {type(extra).__name__}"
    row["extra_info"] = dict(extra)
    return None


def _check_row(i: int, row: dict[str, Any], prompt_key: str, repairs: Counter[str] | None = None, *,
               families: Mapping[str, str] | None = None, default_family: str | None = None) -> str | None:
    """Validate and normalise ``row`` in place; the reason it is unusable, or None. Repairs are counted."""
    repairs = repairs if repairs is not None else Counter()
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    for check in (lambda: _check_prompt(row, prompt_key, repairs), lambda: _check_ground_truth(row, repairs),
                  lambda: _check_data_source(row, families, default_family), lambda: _check_extra_info(row, repairs)):
        reason = check()
        if reason is not None:
            return reason
    return None


def _kind(value: Any) -> str | None:
    if value is None or _is_nan(value):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def check_column_types(rows: Sequence[Mapping[str, Any]], where: Sequence[str]) -> None:
    """Every column (and every key nested in objects and lists) must hold one kind of value across the rows,
    as parquet requires; the error names the column and the first row that differs, before any tokenising."""
    def walk(name: str, values: list[tuple[int, Any]]) -> None:
        first: dict[str, int] = {}
        for pos, v in values:
            k = _kind(v)
            if k is not None and k not in first:
                first[k] = pos
        if len(first) > 1:
            (k0, p0), (k1, p1) = sorted(first.items(), key=lambda kv: kv[1])[:2]
            raise DataPrepError(
                f"{where[p1]}: column '{name}' holds a {k1} here but a {k0} in {where[p0]}; a parquet column "
                "needs one type: make them all the same (e.g. all strings)")
        if "object" in first:
            keys: dict[str, list[tuple[int, Any]]] = {}
            for pos, v in values:
                if isinstance(v, Mapping):
                    for key, item in v.items():
                        keys.setdefault(str(key), []).append((pos, item))
            for key, items in keys.items():
                walk(f"{name}.{key}", items)
        elif "list" in first:
            walk(f"{name}[]", [(pos, item) for pos, v in values if isinstance(v, list | tuple) for item in v])

    columns: dict[str, list[tuple[int, Any]]] = {}
    for pos, row in enumerate(rows):
        for key, v in row.items():
            columns.setdefault(str(key), []).append((pos, v))
    for name, values in columns.items():
        walk(name, values)


def _lengths_worker(args: tuple[str, list[Any], dict[str, Any]]) -> list[int]:
    tokenizer_path, prompts, kwargs = args
    return prompt_lengths(_load_tokenizer_cached(tokenizer_path), prompts, kwargs)


_TOKENIZERS: dict[str, Any] = {}


def _load_tokenizer_cached(path: str):
    if path not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    return _TOKENIZERS[path]


def _locate_failure(tokenizer_path: str, prompts: Sequence[Any], kwargs: Mapping[str, Any],
                    where: Sequence[str] | None, exc: Exception) -> DataPrepError:
    """The row whose chat template or tokenisation fails, as an error naming it."""
    tok = _load_tokenizer_cached(tokenizer_path)
    for j, prompt in enumerate(prompts):
        try:
            prompt_lengths(tok, [prompt], kwargs)
        except Exception as row_exc:  # jinja2 TemplateError, ValueError, TypeError from the tokenizer
            at = where[j] if where is not None else f"row {j}"
            return DataPrepError(f"{at}: the chat template or tokenizer fails on this prompt "
                                 f"({type(row_exc).__name__}: {str(row_exc)[:300]})")
    return DataPrepError(f"computing prompt lengths failed ({type(exc).__name__}: {str(exc)[:300]})")


def _worker_signals() -> None:
    """In a tokenizer worker: the default SIGTERM (the parent's pool terminates workers with it; a forked worker
    would otherwise inherit the CLI's handler that turns it into an exception) and no Ctrl-C (the terminal sends it
    to the whole group; the parent alone reacts, by terminating the pool, so no worker prints a traceback)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def compute_lengths(tokenizer_path: str, prompts: Sequence[Any], *, chat_template_kwargs: Mapping | None = None,
                    num_workers: int = 1, chunk_size: int = 64, progress: bool = True,
                    where: Sequence[str] | None = None) -> list[int]:
    """Lengths of many prompts, in chunks with a progress bar; ``num_workers>1`` spreads chunks over processes
    (worth it for slow Python tokenizers or very large inputs; a fast tokenizer already encodes a chunk with
    several threads). A prompt the chat template or tokenizer rejects is a :class:`DataPrepError` naming it
    (``where[i]`` locates prompt ``i``)."""
    try:
        return _compute_lengths(tokenizer_path, prompts, chat_template_kwargs, num_workers, chunk_size, progress)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        raise _locate_failure(tokenizer_path, prompts, dict(chat_template_kwargs or {}), where, exc) from exc


def _compute_lengths(tokenizer_path: str, prompts: Sequence[Any], chat_template_kwargs: Mapping | None,
                     num_workers: int, chunk_size: int, progress: bool) -> list[int]:
    from tqdm import tqdm

    chunks = [list(prompts[i:i + chunk_size]) for i in range(0, len(prompts), chunk_size)]
    kwargs = dict(chat_template_kwargs or {})
    out: list[int] = []
    bar = tqdm(total=len(prompts), desc="prompt lengths", unit="row", disable=not progress)
    if num_workers > 1 and len(chunks) > 1:
        import multiprocessing

        # multiprocessing's Pool, not concurrent.futures': leaving the block for any reason (a worker's error,
        # Ctrl-C, SIGTERM turned into an exception by the CLI) terminates the workers at once. The executor's
        # shutdown waited for every queued chunk, and a parent killed meanwhile left workers blocked on its pipe.
        with multiprocessing.get_context().Pool(min(num_workers, len(chunks)), initializer=_worker_signals) as pool:
            for res in pool.imap(_lengths_worker, [(tokenizer_path, c, kwargs) for c in chunks]):
                out.extend(res)
                bar.update(len(res))
    else:
        tok = _load_tokenizer_cached(tokenizer_path)
        for c in chunks:
            out.extend(prompt_lengths(tok, c, kwargs))
            bar.update(len(c))
    bar.close()
    return out


LONG_PROMPT_TOKENS = 131_072  # beyond any released long-context model's window (QwenLong-L1: 60K + YaRN)


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
    families: Mapping[str, str] | None = None,
    default_family: str | None = None,
) -> PrepareReport:
    """Validate, index and measure a DocQA file; write parquet to ``output_path`` (atomically).

    Every row is validated before any tokenising (prompt, ground truth, data_source against the reward's families
    or ``families``/``default_family``, extra_info, one type per column); errors name ``file:line`` or the row and
    the field. Repairs (a JSON string parsed, a string prompt wrapped) are counted in ``report.repairs``.

    ``index_mode``: ``keep`` uses ``extra_info.index`` when every row has one and they are unique, else assigns
    the row position; ``position`` always assigns 0..n-1 (input order); ``hash`` assigns a content hash (stable under
    re-ordering and filtering of the input). Duplicate indices are an error.
    """
    import pandas as pd

    from qwenlong_verl.outputs import atomic_path, scrub

    if index_mode not in ("keep", "position", "hash"):
        raise DataPrepError(f"index_mode must be keep, position or hash, got {index_mode!r}")
    raw, where_of = read_records(input_path)
    records, bad_chars = scrub(_plain(raw))
    report = PrepareReport(input_rows=len(records), output_rows=0)
    if bad_chars:
        report.repairs["unencodable characters (lone surrogates) replaced by U+FFFD"] += bad_chars
    kept: list[tuple[int, dict[str, Any]]] = []
    for i, row in enumerate(records):
        reason = _check_row(i, row, prompt_key, report.repairs, families=families, default_family=default_family)
        if reason is None:
            kept.append((i, row))
            continue
        where = f"{where_of[i]}" + ("" if where_of[i].endswith(f"row {i}") else f", row {i}")
        info = row.get("extra_info") if isinstance(row, dict) else None
        idx = info.get("index") if isinstance(info, Mapping) else None
        if idx is not None:
            where += f" (extra_info.index={idx})"
        if not skip_invalid:
            raise DataPrepError(f"{where}: {reason}; fix the row or pass --skip-invalid to skip and count such rows")
        report.skipped.append((i, reason))
        if len(report.skipped) <= 10:
            logger.warning("skipping %s: %s", where, reason)
    if len(report.skipped) > 10:
        logger.warning("... %d more rows skipped (%d in all)", len(report.skipped) - 10, len(report.skipped))
    if not kept:
        raise DataPrepError(f"{input_path}: no usable rows ({len(report.skipped)} skipped)")
    report.converted_string_prompts = report.repairs.get("string prompts wrapped as one user message", 0)

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
        if isinstance(idx, list | dict) or _is_nan(idx):
            raise DataPrepError(f"{where_of[i]}: extra_info.index must be a string or an integer, got {idx!r:.60} "
                                "(use --index position or --index hash to re-number)")
        if idx in seen:
            raise DataPrepError(
                f"{input_path}: rows {seen[idx]} and {i} share extra_info.index={idx!r}; indices must be unique "
                "(use --index position or --index hash to re-number)")
        seen[idx] = i
    for (_, row), idx in zip(kept, new_index, strict=True):
        row["extra_info"]["index"] = idx
        row["extra_info"][LENGTH_COLUMN] = 0  # placeholder: the type check and the dry run see the final columns
        row[LENGTH_COLUMN] = 0
    rows = [row for _, row in kept]
    kept_where = [where_of[i] for i, _ in kept]
    try:
        check_column_types(rows, kept_where)
    except DataPrepError as exc:
        if "extra_info.index" in str(exc):
            raise DataPrepError(f"{exc} (or pass --index position / --index hash to re-number)") from None
        raise
    try:  # what the final write does, minus the lengths: fail now rather than after tokenising
        import pyarrow as pa

        pa.Table.from_pandas(pd.DataFrame(rows[:1000]), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataPrepError(f"{input_path}: the rows cannot be stored as parquet: {exc}") from exc

    lengths = compute_lengths(tokenizer_path, [r[prompt_key] for r in rows],
                              chat_template_kwargs=chat_template_kwargs, num_workers=num_workers, progress=progress,
                              where=kept_where)
    for row, length in zip(rows, lengths, strict=True):
        row["extra_info"][LENGTH_COLUMN] = int(length)
        row[LENGTH_COLUMN] = int(length)
    out = pd.DataFrame(rows)
    with atomic_path(output_path) as tmp:
        out.to_parquet(tmp, index=False)
    arr = np.asarray(lengths)
    report.output_rows = len(rows)
    report.length_min, report.length_mean, report.length_max = int(arr.min()), float(arr.mean()), int(arr.max())
    long_rows = [kept_where[j] for j in np.flatnonzero(arr > LONG_PROMPT_TOKENS)]
    report.long_prompts = len(long_rows)
    if long_rows:
        logger.warning("%d prompt(s) longer than %d tokens (max %d, first at %s): no model trains on that much "
                       "context; check those rows", len(long_rows), LONG_PROMPT_TOKENS, report.length_max,
                       long_rows[0])
    logger.info("%s -> %s: %s", input_path, output_path, report.summary())
    return report
