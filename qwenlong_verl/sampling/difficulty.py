"""Per-example reward history: the difficulty table that retrospective sampling reads.

For every example (keyed by ``extra_info.index``) the table keeps, per global step, how many rollouts were scored
and the sum of their rewards (``acc`` by default), with the curriculum phase of that step. The mean reward over a
set of phases gives the paper's difficulty ``diff = 1 / (mean + eps)`` (Eq. 10).

File format (JSON, written atomically)::

    {"format": "qwenlong-difficulty", "version": 1, "metric": "acc",
     "examples": [{"index": 12, "data_source": "docmath", "prompt_length": 18231,
                   "history": [[step, phase, n_rollouts, reward_sum], ...]}, ...]}
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = "qwenlong-difficulty"
VERSION = 1
FILE_NAME = "qwenlong_difficulty.json"


class DifficultyFileError(ValueError):
    """A difficulty file is missing, unreadable or not in the expected format; the message names it."""


def normalize_index(value: Any) -> Any:
    """Dataset indices arrive as numpy scalars, Python ints or strings; keep ints as int, the rest as str."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return str(value)


@dataclass
class ExampleHistory:
    data_source: str | None = None
    prompt_length: int | None = None
    # [global_step, phase, n_rollouts, reward_sum]
    history: list[list[float]] = field(default_factory=list)

    def totals(self, phases: Iterable[int] | None = None) -> tuple[int, float]:
        wanted = None if phases is None else set(phases)
        n, total = 0, 0.0
        for _step, phase, count, s in self.history:
            if wanted is None or int(phase) in wanted:
                n += int(count)
                total += float(s)
        return n, total


class DifficultyTable:
    """Rewards of every rollout per example and step. Not thread-safe: the trainer owns it."""

    def __init__(self, metric: str = "acc") -> None:
        self.metric = metric
        self.examples: dict[Any, ExampleHistory] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def __contains__(self, index: Any) -> bool:
        return normalize_index(index) in self.examples

    def add(self, index: Any, step: int, phase: int, rewards: Iterable[float], *, data_source: str | None = None,
            prompt_length: int | None = None) -> None:
        values = [float(r) for r in rewards]
        if not values:
            return
        ex = self.examples.setdefault(normalize_index(index), ExampleHistory())
        if data_source is not None and ex.data_source is None:
            ex.data_source = str(data_source)
        if prompt_length is not None and ex.prompt_length is None:
            ex.prompt_length = int(prompt_length)
        last = ex.history[-1] if ex.history else None
        if last is not None and int(last[0]) == int(step) and int(last[1]) == int(phase):
            last[2] += len(values)
            last[3] += sum(values)
        else:
            ex.history.append([int(step), int(phase), len(values), float(sum(values))])

    def add_records(self, records: Iterable[Mapping[str, Any]], phase: int, *, lengths: Mapping[Any, int] | None = None
                    ) -> tuple[int, int]:
        """Add reward-manager telemetry records (training only). Returns (records used, records without the metric
        or index, which are skipped and counted)."""
        used = skipped = 0
        grouped: dict[tuple[Any, int], list[float]] = {}
        sources: dict[Any, str] = {}
        for r in records:
            if r.get("validate", False):
                continue
            if r.get("index") is None or r.get(self.metric) is None:
                skipped += 1
                continue
            idx = normalize_index(r["index"])
            grouped.setdefault((idx, int(r.get("global_step") or 0)), []).append(float(r[self.metric]))
            if r.get("data_source") is not None:
                sources[idx] = str(r["data_source"])
            used += 1
        for (idx, step), values in sorted(grouped.items(), key=lambda kv: (kv[0][1], str(kv[0][0]))):
            self.add(idx, step, phase, values, data_source=sources.get(idx),
                     prompt_length=None if lengths is None else lengths.get(idx))
        return used, skipped

    def stats(self, index: Any, phases: Iterable[int] | None = None) -> tuple[int, float | None]:
        """(number of rollouts, mean reward or None) over ``phases`` (all when None)."""
        ex = self.examples.get(normalize_index(index))
        if ex is None:
            return 0, None
        n, total = ex.totals(phases)
        return n, (total / n if n else None)

    def means(self, phases: Iterable[int] | None = None, min_rollouts: int = 1) -> dict[Any, float]:
        """Mean reward per example over ``phases``, for examples with at least ``min_rollouts`` rollouts."""
        phases = None if phases is None else list(phases)
        out = {}
        for idx, ex in self.examples.items():
            n, total = ex.totals(phases)
            if n >= max(1, min_rollouts):
                out[idx] = total / n
        return out

    def phases(self) -> list[int]:
        return sorted({int(h[1]) for ex in self.examples.values() for h in ex.history})

    def merge(self, other: DifficultyTable) -> None:
        """Add ``other``'s history (entries for the same step and phase are summed)."""
        for idx, ex in other.examples.items():
            for step, phase, n, s in ex.history:
                mine = self.examples.setdefault(idx, ExampleHistory(ex.data_source, ex.prompt_length))
                mine.history.append([int(step), int(phase), int(n), float(s)])
                mine.history.sort(key=lambda h: (h[0], h[1]))

    # --------------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "metric": self.metric,
            "examples": [
                {"index": idx, "data_source": ex.data_source, "prompt_length": ex.prompt_length,
                 "history": [[int(a), int(b), int(c), float(d)] for a, b, c, d in ex.history]}
                for idx, ex in self.examples.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "difficulty table") -> DifficultyTable:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise DifficultyFileError(f"{where}: not a qwenlong difficulty file (missing format={FORMAT!r})")
        if int(data.get("version", 0)) > VERSION:
            raise DifficultyFileError(f"{where}: version {data.get('version')} is newer than this reader ({VERSION})")
        table = cls(metric=str(data.get("metric", "acc")))
        for i, e in enumerate(data.get("examples", [])):
            try:
                hist = [[int(h[0]), int(h[1]), int(h[2]), float(h[3])] for h in e["history"]]
                idx = normalize_index(e["index"])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise DifficultyFileError(f"{where}: examples[{i}] is malformed ({exc!r})") from exc
            if idx in table.examples:
                raise DifficultyFileError(f"{where}: examples[{i}] repeats index {idx!r}")
            for step, _phase, count, total in hist:
                # rewards are at most 1 per rollout (acc, or score = max(rule, judge) - overlong penalty)
                if count < 0 or not math.isfinite(total) or total > count + 1e-6:
                    raise DifficultyFileError(
                        f"{where}: examples[{i}] (index {idx!r}) step {step}: reward sum {total} over {count} "
                        "rollout(s) is impossible (each reward is at most 1); the file is damaged or not from "
                        "qwenlong-verl")
            table.examples[idx] = ExampleHistory(e.get("data_source"), e.get("prompt_length"), hist)
        return table

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file + rename), so a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".difficulty-", suffix=".json", dir=str(path.parent))
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_dict(), fh)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> DifficultyTable:
        path = Path(path)
        if not path.is_file():
            raise DifficultyFileError(f"difficulty file {str(path)!r} does not exist (it is written by the previous "
                                      "phase's run as qwenlong.difficulty.output_file)")
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DifficultyFileError(f"difficulty file {str(path)!r} is unreadable: {exc}") from exc
        return cls.from_dict(data, where=f"difficulty file {str(path)!r}")


def difficulty_score(mean: float, eps: float) -> float:
    """Paper Eq. 10: ``diff = 1 / (mean_reward + eps)``; eps keeps mean 0 finite."""
    return 1.0 / (float(mean) + float(eps))
