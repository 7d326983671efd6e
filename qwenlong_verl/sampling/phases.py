"""Pure selection logic of the curriculum: phase bands from stored lengths, retrospective candidates and picks.

No tokenizer and no verl here: the trainer's sampler, ``qwenlong-verl plan`` and the benchmark all call these on the
stored ``prompt_length`` column.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qwenlong_verl.sampling.difficulty import DifficultyTable, difficulty_score, normalize_index
from qwenlong_verl.sampling.options import SamplingOptions

logger = logging.getLogger(__name__)

PREPARE_HINT = "run `qwenlong-verl prepare DATA --out OUT.parquet --tokenizer MODEL` to store it"


class MissingLengthError(ValueError):
    """The training data has no stored prompt lengths (or indices); the message says to run ``prepare``."""


@dataclass
class DatasetView:
    """What the sampler needs of the training data, one entry per dataset row (row = dataset position)."""

    lengths: np.ndarray  # int64 prompt token length per row
    indices: list[Any]  # extra_info.index per row
    data_sources: list[str] | None = None

    def __post_init__(self) -> None:
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        if len(self.indices) != len(self.lengths):
            raise ValueError(f"{len(self.indices)} indices for {len(self.lengths)} lengths")
        self.indices = [normalize_index(i) for i in self.indices]
        self._position: dict[Any, int] = {}
        for pos, idx in enumerate(self.indices):
            if idx in self._position:
                raise ValueError(
                    f"training data rows {self._position[idx]} and {pos} share extra_info.index={idx!r}; the "
                    "difficulty table needs unique indices (`qwenlong-verl prepare --index position` re-numbers)")
            self._position[idx] = pos

    def __len__(self) -> int:
        return len(self.lengths)

    def position(self, index: Any) -> int | None:
        return self._position.get(normalize_index(index))

    def signature(self) -> str:
        """Identifies the data the sampler state belongs to (row count, lengths and indices)."""
        h = hashlib.sha1(self.lengths.tobytes())
        h.update(repr(self.indices).encode())
        return f"{len(self.lengths)}:{h.hexdigest()[:16]}"


def view_from_arrow(table: Any, length_key: str = "prompt_length", where: str = "training data") -> DatasetView:
    """Build a :class:`DatasetView` from a pyarrow Table with the prepared layout (no tokenisation)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    extra = table.column("extra_info") if "extra_info" in names else None
    if extra is not None:
        extra = extra.combine_chunks() if isinstance(extra, pa.ChunkedArray) else extra
    extra_fields = {extra.type.field(i).name for i in range(extra.type.num_fields)} if (
        extra is not None and pa.types.is_struct(extra.type)) else set()
    if length_key in names:
        lengths_col = table.column(length_key)
    elif length_key in extra_fields:
        lengths_col = pc.struct_field(extra, length_key)
    else:
        raise MissingLengthError(f"{where} has no '{length_key}' column (nor extra_info.{length_key}): the phased "
                                 f"sampler reads stored prompt lengths; {PREPARE_HINT}")
    if lengths_col.null_count:
        raise MissingLengthError(f"{where}: {lengths_col.null_count} rows have no '{length_key}'; {PREPARE_HINT}")
    if "index" not in extra_fields:
        raise MissingLengthError(f"{where} has no extra_info.index (the example id of the difficulty table); "
                                 f"{PREPARE_HINT}")
    index_col = pc.struct_field(extra, "index")
    if index_col.null_count:
        raise MissingLengthError(f"{where}: {index_col.null_count} rows have no extra_info.index; {PREPARE_HINT}")
    sources = table.column("data_source").to_pylist() if "data_source" in names else None
    return DatasetView(np.asarray(lengths_col.to_numpy(zero_copy_only=False), dtype=np.int64),
                       index_col.to_pylist(), sources)


def view_from_file(path: str, length_key: str = "prompt_length") -> DatasetView:
    import pyarrow.parquet as pq

    if not str(path).endswith(".parquet"):
        raise ValueError(f"{path!r}: expected the .parquet written by `qwenlong-verl prepare`")
    cols = [c for c in pq.read_schema(path).names if c in (length_key, "extra_info", "data_source")]
    return view_from_arrow(pq.read_table(path, columns=cols), length_key, where=str(path))


def band_positions(lengths: np.ndarray, lower: int, upper: int | None) -> np.ndarray:
    """Rows with ``lower < length <= upper`` (paper Eq. 9), as sorted positions."""
    mask = lengths > lower
    if upper is not None:
        mask &= lengths <= upper
    return np.flatnonzero(mask)


def phase_band(view: DatasetView, options: SamplingOptions, phase: int) -> np.ndarray:
    lower, upper = options.phase_bounds(phase)
    return band_positions(view.lengths, lower, upper)


@dataclass
class RetroPool:
    """Retrospective candidates of one phase: dataset positions and their mean reward in earlier phases."""

    positions: np.ndarray
    means: np.ndarray
    missing: int = 0  # hard examples of the table that are not in the training data
    too_long: int = 0  # hard examples longer than the phase's upper bound

    def __len__(self) -> int:
        return len(self.positions)


def retrospective_pool(view: DatasetView, table: DifficultyTable | None, options: SamplingOptions, phase: int
                       ) -> RetroPool:
    """Examples seen in phases before ``phase`` that qualify (``zero_mean``: mean reward 0; ``weighted``: all),
    restricted to rows of the training data that fit the phase's upper length bound."""
    empty = RetroPool(np.zeros(0, dtype=np.int64), np.zeros(0))
    retro = options.retrospective
    if not retro.enable or table is None:
        return empty
    earlier = [p for p in table.phases() if p < phase]
    if not earlier:
        return empty
    means = table.means(phases=earlier, min_rollouts=retro.min_rollouts)
    upper = options.phase_bounds(phase)[1]
    positions, values = [], []
    missing = too_long = 0
    for idx, mean in means.items():
        if retro.mode == "zero_mean" and mean != 0.0:
            continue
        pos = view.position(idx)
        if pos is None:
            missing += 1
            continue
        if upper is not None and view.lengths[pos] > upper:
            too_long += 1
            continue
        positions.append(pos)
        values.append(mean)
    order = np.argsort(positions, kind="stable")
    pool = RetroPool(np.asarray(positions, dtype=np.int64)[order], np.asarray(values, dtype=float)[order],
                     missing, too_long)
    if missing or too_long:
        logger.warning("qwenlong retrospective (phase %d): %d qualifying examples are not in the training data and "
                       "%d are longer than the phase bound; they are not used", phase, missing, too_long)
    return pool


def retrospective_count(options: SamplingOptions, band_size: int, n_candidates: int) -> int:
    """How many retrospective examples one epoch of a phase holds (see ``RetrospectiveOptions``)."""
    retro = options.retrospective
    if retro.count is not None:
        want = int(retro.count)
    elif retro.ratio is not None:
        r = float(retro.ratio)
        want = int(round(r / (1.0 - r) * band_size))
    else:
        want = n_candidates
    return max(0, min(want, n_candidates))


def weighted_pick(weights: Sequence[float] | np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct items drawn with probability proportional to ``weights`` (successive sampling without
    replacement; Efraimidis-Spirakis keys ``log(u) / w``, largest k). Returns sorted item numbers."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.log(rng.random(n)) / w
    return np.sort(np.argpartition(-keys, k - 1)[:k])


def pick_retrospective(pool: RetroPool, k: int, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Dataset positions of ``k`` picks from ``pool``, weighted by difficulty 1/(mean + eps) (Eq. 10)."""
    if k >= len(pool):
        return pool.positions.copy()
    weights = [difficulty_score(m, eps) for m in pool.means]
    return pool.positions[weighted_pick(weights, k, rng)]


def epoch_seed(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) & 0xFFFFFFFF for p in parts])


def length_histogram(lengths: np.ndarray, bins: int = 20, upper: int | None = None) -> dict[str, list[float]]:
    if len(lengths) == 0:
        return {"edges": [], "counts": []}
    hi = upper if upper is not None else int(lengths.max())
    counts, edges = np.histogram(lengths, bins=bins, range=(0, max(1, hi)))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
