"""The phased-context + retrospective sampler that the ``qwenlong`` trainer mode puts into verl's train dataloader.

An epoch of phase k is the phase's length band (paper Eq. 9, from stored lengths) plus the retrospective picks
(hard examples of earlier phases, paper §3.2 / Eq. 10), shuffled by ``(seed, phase, epoch)``. The sampler is
``Stateful``: verl saves ``train_dataloader.state_dict()`` into ``data.pt`` with every checkpoint, and torchdata's
``StatefulDataLoader`` stores our ``state_dict()`` in it, so a resumed run continues at the same position of the
same epoch (no example repeated or skipped). The retrospective pool of the current phase is part of the state,
because the live difficulty table keeps changing after the phase started.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from qwenlong_verl.sampling.difficulty import DifficultyTable
from qwenlong_verl.sampling.options import SamplingOptions
from qwenlong_verl.sampling.phases import (
    DatasetView,
    RetroPool,
    epoch_seed,
    phase_band,
    pick_retrospective,
    retrospective_count,
    retrospective_pool,
)

logger = logging.getLogger(__name__)

STATE_VERSION = 1


def epoch_picks(options: SamplingOptions, pool: RetroPool, band_size: int, phase: int, epoch: int) -> np.ndarray:
    """Dataset positions of the retrospective picks of (phase, epoch): a function of the seed alone."""
    retro = options.retrospective
    k = retrospective_count(options, band_size, len(pool))
    return pick_retrospective(pool, k, retro.eps, epoch_seed(retro.seed, 7919, phase, epoch))


class PhasedRetrospectiveSampler(Sampler[int]):
    """Yields dataset positions: the current phase's band plus retrospective picks, one epoch per ``iter()``.

    ``set_step(global_step)`` (called by the trainer at each step) applies ``qwenlong.curriculum.schedule``: when
    the phase changes, the next index drawn already comes from the new phase (epoch 0, position 0). ``table`` is
    the difficulty table the retrospective pool is computed from when a phase starts (the previous phase's file,
    plus the run's own records with an in-run schedule).
    """

    def __init__(self, view: DatasetView, options: SamplingOptions, table: DifficultyTable | None = None,
                 start_step: int = 1) -> None:
        self.view = view
        self.options = options
        self.table = table
        self._signature = view.signature()
        self.phase = 0
        self.epoch = 0
        self.position = 0  # indices of the current epoch already yielded
        self.pool = RetroPool(np.zeros(0, dtype=np.int64), np.zeros(0))
        self._target_phase = options.phase_at(start_step)
        self._order_cache: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None
        self._enter_phase(self._target_phase)

    # ------------------------------------------------------------------ phases and epochs
    def _enter_phase(self, phase: int) -> None:
        self.phase, self.epoch, self.position = phase, 0, 0
        self._set_band(phase_band(self.view, self.options, phase))
        self.pool = retrospective_pool(self.view, self.table, self.options, phase)
        self._order_cache = None
        lower, upper = self.options.phase_bounds(phase)
        if len(self.band) == 0:
            raise ValueError(
                f"qwenlong curriculum phase {phase} ({lower} < prompt_length <= {upper}) has no examples among the "
                f"{len(self.view)} training rows (lengths {int(self.view.lengths.min())}..{int(self.view.lengths.max())}"
                "): check qwenlong.curriculum.lengths against `qwenlong-verl plan`")
        logger.info("qwenlong curriculum: phase %d (%s < prompt_length <= %s): %d band examples, %d retrospective "
                    "candidates, %d per epoch", phase, lower, upper, len(self.band), len(self.pool),
                    self.retro_per_epoch)

    def _set_band(self, band: np.ndarray) -> None:
        self.band = band
        self._in_band = np.zeros(len(self.view), dtype=bool)
        self._in_band[band] = True

    def is_retrospective(self, index: Any) -> bool:
        """Whether example ``index`` is in the current phase as a retrospective pick: outside the phase's band, or
        (cumulative bands, where picks repeat band examples) among the current epoch's picks."""
        pos = self.view.position(index)
        if pos is None:
            return False
        if not self._in_band[pos]:
            return True
        return bool(self.options.curriculum.cumulative and pos in set(self._epoch()[1].tolist()))

    @property
    def retro_per_epoch(self) -> int:
        return retrospective_count(self.options, len(self.band), len(self.pool))

    def _epoch(self) -> tuple[np.ndarray, np.ndarray]:
        """(order of dataset positions, retrospective picks) of the current (phase, epoch); deterministic."""
        key = (self.phase, self.epoch)
        if self._order_cache is not None and self._order_cache[0] == key:
            return self._order_cache[1], self._order_cache[2]
        cur = self.options.curriculum
        picks = epoch_picks(self.options, self.pool, len(self.band), self.phase, self.epoch)
        order = np.concatenate([self.band, picks]).astype(np.int64)
        if cur.shuffle:
            order = epoch_seed(cur.seed, self.phase, self.epoch).permutation(order)
        self._order_cache = (key, order, picks)
        return order, picks

    def epoch_order(self) -> np.ndarray:
        return self._epoch()[0].copy()

    def retrospective_positions(self) -> np.ndarray:
        """Dataset positions picked retrospectively in the current epoch."""
        return self._epoch()[1].copy()

    def retrospective_indices(self) -> set[Any]:
        return {self.view.indices[p] for p in self._epoch()[1]}

    def set_step(self, global_step: int) -> None:
        self._target_phase = self.options.phase_at(global_step)

    def __len__(self) -> int:
        return len(self.band) + self.retro_per_epoch

    def __iter__(self) -> Iterator[int]:
        # One epoch per iter(): verl's _fetch_one_gen_batch re-creates the iterator on StopIteration.
        while True:
            if self._target_phase != self.phase:
                self._enter_phase(self._target_phase)
            order, _ = self._epoch()
            switched = False
            while self.position < len(order):
                if self._target_phase != self.phase:
                    switched = True
                    break
                pos = int(order[self.position])
                self.position += 1
                yield pos
            if not switched:
                self.epoch += 1
                self.position = 0
                return

    # ------------------------------------------------------------------ Stateful
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "signature": self._signature,
            "phase": self.phase,
            "epoch": self.epoch,
            "position": self.position,
            "pool_positions": self.pool.positions.tolist(),
            "pool_means": self.pool.means.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state or state.get("version") != STATE_VERSION:
            logger.warning("qwenlong sampler: checkpoint has no sampler state of version %d; starting phase %d at "
                           "epoch 0", STATE_VERSION, self.phase)
            return
        if state.get("signature") != self._signature:
            logger.warning("qwenlong sampler: checkpoint's sampler state belongs to other training data (%s, now %s); "
                           "starting phase %d at epoch 0", state.get("signature"), self._signature, self.phase)
            return
        phase = int(state["phase"])
        if not self.options.curriculum.schedule and phase != self.options.curriculum.phase:
            # the cross-launch curriculum: phase II continues phase I's training state, not its data order
            logger.info("qwenlong sampler: checkpoint was taken in phase %d, this run trains phase %d; phase %d "
                        "starts at epoch 0 (none of phase %d's data order carries over)", phase,
                        self.options.curriculum.phase, self.options.curriculum.phase, phase)
            return
        self.phase = phase
        self._set_band(phase_band(self.view, self.options, phase))
        self.pool = RetroPool(np.asarray(state["pool_positions"], dtype=np.int64),
                              np.asarray(state["pool_means"], dtype=float))
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order_cache = None
        logger.info("qwenlong sampler: resumed phase %d epoch %d at position %d/%d", self.phase, self.epoch,
                    self.position, len(self))
