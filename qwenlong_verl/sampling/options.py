"""Options of the phased curriculum, retrospective sampling and difficulty tracking (``qwenlong.*`` keys)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.config import QwenLongConfigError, check_fields, option, options_from, qwenlong_section

logger = logging.getLogger(__name__)

RETROSPECTIVE_MODES = ("zero_mean", "weighted")


DEFAULT_SEED = 42  # the sampler's seed when neither qwenlong.curriculum.seed nor data.seed is set


@dataclass
class ScheduleEntry:
    """One entry of ``qwenlong.curriculum.schedule``: train phase ``phase`` up to and including ``until_step``
    (``None``: to the end of training)."""

    phase: int
    until_step: int | None = None


@dataclass
class CurriculumOptions:
    """``qwenlong.curriculum.*``

    * ``lengths`` (list[int], default ``[]``): the phase bounds L_1 < L_2 < ... in prompt tokens (the paper uses
      ``[20000, 60000]``). Empty: one phase holding every row (no length filter).
    * ``phase`` (int, default 1): the phase this run trains (1-based) when ``schedule`` is empty.
    * ``cumulative`` (bool, default false): phase k draws ``length <= L_k`` instead of ``L_{k-1} < length <= L_k``
      (paper Eq. 9).
    * ``schedule`` (list of ``{phase, until_step}``, default ``[]``): several phases in one run; phase switches at
      the step after ``until_step``; the last entry may omit ``until_step``. Needs ``data.dataloader_num_workers=0``
      for an exact switch.
    * ``length_key`` (str, default ``prompt_length``): the stored length column written by ``qwenlong-verl prepare``.
    * ``shuffle`` (bool, default true): shuffle each epoch (false: dataset order, retrospective picks appended).
    * ``seed`` (int, default null): seed of the epoch order; null follows verl's ``data.seed`` (then 42), so a
      sweep or an ablation over ``data.seed`` varies this sampler's order as it varies verl's own sampler's.
    """

    lengths: list[int] = field(default_factory=list)
    phase: int = 1
    cumulative: bool = False
    schedule: list[ScheduleEntry] = field(default_factory=list)
    length_key: str = "prompt_length"
    shuffle: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        self.schedule = [s if isinstance(s, ScheduleEntry) else options_from(ScheduleEntry, s, f"schedule[{i}]")
                         for i, s in enumerate(self.schedule)]


@dataclass
class RetrospectiveOptions:
    """``qwenlong.retrospective.*``

    * ``enable`` (bool, default false): mix hard examples of earlier phases into the current phase.
    * ``difficulty_file`` (str, default null): difficulty table written by the previous phase's run
      (``qwenlong.difficulty.output_file`` of that run). Within one run with a ``schedule``, the run's own table is
      used as well.
    * ``mode`` (``zero_mean`` | ``weighted``, default ``zero_mean``): ``zero_mean`` keeps the examples whose mean
      reward in earlier phases was 0 (paper §3.2); ``weighted`` draws from every earlier example with probability
      proportional to the difficulty 1/(mean + eps) (paper Eq. 10), without replacement.
    * ``ratio`` (float in [0, 1), default null): share of the phase's epoch made of retrospective examples:
      ``count = round(ratio / (1 - ratio) * band_size)``.
    * ``count`` (int, default null): number of retrospective examples per epoch. Neither set: ``zero_mean`` keeps
      all of them, ``weighted`` is an error. At most the number of candidates.
    * ``eps`` (float, default 0.01): the epsilon of 1/(mean + eps).
    * ``min_rollouts`` (int, default 1): fewer recorded rollouts than this: the example's difficulty is unknown
      and it is not a candidate.
    * ``seed`` (int, default null: ``data.seed``, then 42): seed of the picks (re-drawn each epoch when fewer than
      all are taken).

    The bounds sit on the fields; :meth:`SamplingOptions.validate` checks them with the cross-field rules.
    """

    enable: bool = False
    difficulty_file: str | None = None
    mode: str = option("zero_mean", choices=RETROSPECTIVE_MODES)
    ratio: float | None = option(None, ge=0, lt=1)
    count: int | None = option(None, ge=0)
    eps: float = option(0.01, gt=0)
    min_rollouts: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        # `~/runs/p1/difficulty.json` on a cluster: the shell does not expand `~` inside a Hydra override
        if isinstance(self.difficulty_file, str) and self.difficulty_file.startswith("~"):
            self.difficulty_file = os.path.expanduser(self.difficulty_file)


@dataclass
class DifficultyOptions:
    """``qwenlong.difficulty.*``

    * ``enable`` (bool, default true): record the per-example rewards of every rollout (from the reward
      manager's telemetry; evicted DAPO groups included).
    * ``metric`` (str, default ``acc``): the telemetry record key used as the reward (``acc`` is 0/1 correctness;
      ``score`` includes the overlong penalty).
    * ``output_file`` (str, default null = ``<trainer.default_local_dir>/qwenlong_difficulty.json``): written at
      the end of training and at every in-run phase switch; the next phase's ``retrospective.difficulty_file``.
    * ``save_with_checkpoint`` (bool, default true): also write ``global_step_N/qwenlong_difficulty.json`` with
      every checkpoint, and restore it on resume.
    """

    enable: bool = True
    metric: str = "acc"
    output_file: str | None = None
    save_with_checkpoint: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.output_file, str) and self.output_file.startswith("~"):
            self.output_file = os.path.expanduser(self.output_file)


@dataclass
class SamplingOptions:
    """Every option of the ``qwenlong`` trainer mode's sampling, under three ``qwenlong:`` sub-keys.

    ``qwenlong.curriculum``: ``lengths`` ([] | [L_1, L_2, ...] prompt tokens), ``phase`` (1), ``cumulative``
    (false), ``schedule`` ([] | [{phase, until_step}, ...]), ``length_key`` (prompt_length), ``shuffle`` (true),
    ``seed`` (null: ``data.seed``).

    ``qwenlong.retrospective``: ``enable`` (false), ``difficulty_file`` (null), ``mode`` (zero_mean | weighted),
    ``ratio`` (null), ``count`` (null), ``eps`` (0.01), ``min_rollouts`` (1), ``seed`` (null: ``data.seed``).

    ``qwenlong.difficulty``: ``enable`` (true), ``metric`` (acc), ``output_file`` (null =
    ``<trainer.default_local_dir>/qwenlong_difficulty.json``), ``save_with_checkpoint`` (true).

    See :class:`CurriculumOptions`, :class:`RetrospectiveOptions` and :class:`DifficultyOptions` for each key's
    meaning. verl keys that must agree: ``data.max_prompt_length >= L_k`` of every phase trained,
    ``data.filter_overlong_prompts=false`` (the stored lengths replace it), ``data.dataloader_num_workers=0`` with a
    schedule.
    """

    curriculum: CurriculumOptions = field(default_factory=CurriculumOptions)
    retrospective: RetrospectiveOptions = field(default_factory=RetrospectiveOptions)
    difficulty: DifficultyOptions = field(default_factory=DifficultyOptions)

    def __post_init__(self) -> None:
        # built without a verl config (tests, `plan`): no data.seed to follow
        for part in (self.curriculum, self.retrospective):
            if part.seed is None:
                part.seed = DEFAULT_SEED

    @property
    def num_phases(self) -> int:
        return max(1, len(self.curriculum.lengths))

    def phase_bounds(self, phase: int) -> tuple[int, int | None]:
        """(exclusive lower, inclusive upper) length bounds of ``phase``; upper None = unbounded."""
        lengths = self.curriculum.lengths
        if not lengths:
            return 0, None
        lower = 0 if (phase == 1 or self.curriculum.cumulative) else int(lengths[phase - 2])
        return lower, int(lengths[phase - 1])

    def phases_used(self) -> list[int]:
        if self.curriculum.schedule:
            return [s.phase for s in self.curriculum.schedule]
        return [self.curriculum.phase]

    def phase_at(self, step: int) -> int:
        """The phase that global step ``step`` (1-based) trains."""
        sched = self.curriculum.schedule
        if not sched:
            return self.curriculum.phase
        for entry in sched:
            if entry.until_step is None or step <= entry.until_step:
                return entry.phase
        return sched[-1].phase

    def validate(self, *, max_prompt_length: int | None = None, total_training_steps: int | None = None) -> None:
        """Raise :class:`QwenLongConfigError` naming the inconsistent values."""
        cur, retro = self.curriculum, self.retrospective
        lengths = [int(x) for x in cur.lengths]
        if any(x <= 0 for x in lengths):
            raise QwenLongConfigError(f"qwenlong.curriculum.lengths must be positive token counts, got {lengths}")
        for a, b in zip(lengths, lengths[1:], strict=False):
            if b <= a:
                raise QwenLongConfigError(
                    f"qwenlong.curriculum.lengths must increase strictly (L_1 < L_2 < ...), got {lengths}: "
                    f"{b} follows {a}")
        for where, phase in [("qwenlong.curriculum.phase", cur.phase)] + [
                (f"qwenlong.curriculum.schedule[{i}].phase", s.phase) for i, s in enumerate(cur.schedule)]:
            if not isinstance(phase, int) or not 1 <= phase <= self.num_phases:
                raise QwenLongConfigError(
                    f"{where}={phase!r} is not a phase of qwenlong.curriculum.lengths={lengths} "
                    f"(phases 1..{self.num_phases})")
        prev = 0
        for i, s in enumerate(cur.schedule):
            last = i == len(cur.schedule) - 1
            if s.until_step is None and not last:
                raise QwenLongConfigError(
                    f"qwenlong.curriculum.schedule[{i}].until_step is missing; only the last entry may omit it")
            if s.until_step is not None and s.until_step <= prev:
                raise QwenLongConfigError(
                    f"qwenlong.curriculum.schedule[{i}].until_step={s.until_step} must be greater than the previous "
                    f"entry's ({prev})")
            if s.until_step is not None:
                prev = s.until_step
        if max_prompt_length is not None and lengths:
            for phase in self.phases_used():
                upper = self.phase_bounds(phase)[1]
                if upper is not None and int(max_prompt_length) < upper:
                    raise QwenLongConfigError(
                        f"data.max_prompt_length={max_prompt_length} is below phase {phase}'s upper bound "
                        f"L_{phase}={upper} (qwenlong.curriculum.lengths={lengths}): prompts of that phase would be "
                        f"truncated; set data.max_prompt_length>={upper}")
        check_fields(retro, where="qwenlong.retrospective")  # mode, ratio, count, eps: bounds on the fields
        if retro.ratio is not None and retro.count is not None:
            raise QwenLongConfigError(
                f"qwenlong.retrospective: set ratio ({retro.ratio}) or count ({retro.count}), not both")
        if retro.enable and retro.mode == "weighted" and retro.ratio is None and retro.count is None:
            raise QwenLongConfigError(
                "qwenlong.retrospective.mode=weighted needs qwenlong.retrospective.ratio or .count")
        if retro.enable and not retro.difficulty_file and not cur.schedule:
            raise QwenLongConfigError(
                "qwenlong.retrospective.enable=true needs qwenlong.retrospective.difficulty_file (the previous "
                "phase's qwenlong.difficulty.output_file) or an in-run qwenlong.curriculum.schedule")
        if retro.enable and not self.difficulty.enable and cur.schedule and not retro.difficulty_file:
            raise QwenLongConfigError(
                "qwenlong.retrospective with an in-run schedule needs qwenlong.difficulty.enable=true")
        if (total_training_steps is not None and cur.schedule and cur.schedule[-1].until_step is not None
                and cur.schedule[-1].until_step < total_training_steps):
            logger.warning("qwenlong.curriculum.schedule ends at step %d, before trainer.total_training_steps=%d: "
                           "the last phase (%d) continues to the end", cur.schedule[-1].until_step,
                           total_training_steps, cur.schedule[-1].phase)


def sampling_options(config: Any) -> SamplingOptions:
    """Read ``qwenlong.{curriculum,retrospective,difficulty}`` from a verl config (dict or DictConfig)."""
    parts = {}
    for key, cls in (("curriculum", CurriculumOptions), ("retrospective", RetrospectiveOptions),
                     ("difficulty", DifficultyOptions)):
        parts[key] = options_from(cls, qwenlong_section(config, key), f"qwenlong.{key}")
    data_seed = _data_seed(config)
    for key in ("curriculum", "retrospective"):
        if parts[key].seed is None:
            parts[key].seed = DEFAULT_SEED if data_seed is None else data_seed
    return SamplingOptions(**parts)


def _data_seed(config: Any) -> int | None:
    """verl's ``data.seed`` (the seed of its own train sampler), when the config has one."""
    data = config.get("data") if hasattr(config, "get") else None
    seed = data.get("seed") if data is not None and hasattr(data, "get") else None
    return None if seed is None else int(seed)


def validate_run_config(config: Any) -> None:
    """Driver-side check before Ray starts (called by the recipes' Hydra guard): option consistency, phase bounds
    against ``data.max_prompt_length``, and that the retrospective input file exists."""
    from pathlib import Path

    from omegaconf import OmegaConf

    opts = sampling_options(config)
    mode = OmegaConf.select(config, "trainer.v1.trainer_mode", default=None)
    if mode != "qwenlong":
        if qwenlong_section(config, "curriculum") or qwenlong_section(config, "retrospective"):
            logger.warning("qwenlong.curriculum/retrospective are set but trainer.v1.trainer_mode=%s; they only act "
                           "with trainer.v1.trainer_mode=qwenlong", mode)
        return
    opts.validate(max_prompt_length=OmegaConf.select(config, "data.max_prompt_length", default=None),
                  total_training_steps=OmegaConf.select(config, "trainer.total_training_steps", default=None))
    retro = opts.retrospective
    if retro.enable and retro.difficulty_file and not Path(retro.difficulty_file).is_file():
        raise QwenLongConfigError(
            f"qwenlong.retrospective.difficulty_file={retro.difficulty_file!r} does not exist; it is written by the "
            "previous phase's run (its qwenlong.difficulty.output_file, default "
            "<trainer.default_local_dir>/qwenlong_difficulty.json)")
