"""The ``qwenlong`` V1 trainer mode: verl's synchronous PPO trainer plus the QwenLong-L1 hooks.

Registered as ``trainer.v1.trainer_mode=qwenlong``. verl compares ``self.trainer_mode == "sync"`` in many places
(replay buffer class, gen_batch_size, checkpointing, prompt submission); a registered name other than "sync" would get
async semantics. So the attribute always reads "sync" and the registry name only picks this class.

Why a trainer mode (and not ``data.custom_cls`` or a custom replay buffer): verl 0.9.1 has no sampler hook (the
curriculum sampler was removed), and the phase mixture changes with the step and with the difficulty table, which a
dataset's fixed index space cannot express without re-building it. A trainer subclass can (1) put a ``Stateful``
sampler into the StatefulDataLoader, so verl's own ``data.pt`` checkpoints its position; (2) keep verl's sync
``ReplayBuffer`` untouched, so DAPO dynamic sampling keeps working; (3) drain the reward workers' telemetry every
step (evicted DAPO groups included, since every rollout is scored) into the difficulty table; (4) save that table
beside each checkpoint and at the end of a phase.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from omegaconf import OmegaConf, open_dict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from qwenlong_verl import telemetry
from qwenlong_verl.integration.batch_fields import batch_fields
from qwenlong_verl.sampling.difficulty import FILE_NAME, DifficultyTable, difficulty_score
from qwenlong_verl.sampling.options import SamplingOptions, sampling_options
from qwenlong_verl.sampling.phases import DatasetView, view_from_arrow
from qwenlong_verl.sampling.sampler import PhasedRetrospectiveSampler

logger = logging.getLogger(__name__)
# like verl's own modules: phase switches and difficulty-file writes show in the TaskRunner log at INFO
for _name in ("qwenlong_verl.sampling", __name__):
    logging.getLogger(_name).setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

TRAINER_MODE = "qwenlong"

try:  # per-task advantage std (another plugin); the trainer works without it
    from qwenlong_verl.integration.trainer_hooks import AlgoTrainerMixin

    _MIXINS: tuple[type, ...] = (AlgoTrainerMixin,)
except ImportError:  # pragma: no cover - only when that plugin is absent
    _MIXINS = ()


def dataset_view(dataset: Any, length_key: str) -> DatasetView:
    """Stored lengths and indices of verl's ``RLHFDataset`` (its HF ``datasets`` frame), without tokenising."""
    frame = getattr(dataset, "dataframe", None)
    if frame is None or not hasattr(frame, "select_columns"):
        raise TypeError(f"qwenlong sampler: the train dataset ({type(dataset).__name__}) has no HF `dataframe`; "
                        "use verl's RLHFDataset (data.custom_cls unset) or a subclass of it")
    cols = [c for c in (length_key, "extra_info", "data_source") if c in frame.column_names]
    # with_format("arrow")[:] honours the indices mapping that filter/select leave behind
    table = frame.select_columns(cols).with_format("arrow")[:]
    return view_from_arrow(table, length_key, where="data.train_files")


def checkpoint_phase(folder: str) -> int | None:
    """The curriculum phase a verl checkpoint folder (``global_step_N``) was taken in: our sampler's state inside
    the dataloader state ``data.pt``. torchdata's ``StatefulDataLoader`` hands that state to the sampler only when
    the next epoch's iterator starts, after verl's ``_load_checkpoint`` returns, so the trainer reads it here."""
    import torch

    path = os.path.join(folder, "data.pt")
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - verl loaded it already; a read failure only costs the phase check
        logger.warning("qwenlong: could not read %s: %s", path, exc)
        return None
    stack = [state]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("version") is not None and "phase" in node and "signature" in node:
                return int(node["phase"])
            stack.extend(node.values())
    return None


@register_trainer(TRAINER_MODE)
class QwenLongTrainer(*_MIXINS, PPOTrainerSync):
    # PPOTrainer.__init__ assigns config.trainer.v1.trainer_mode; keep verl's sync code paths.
    trainer_mode = property(lambda self: "sync", lambda self, value: None)

    # ------------------------------------------------------------------ set-up
    def _init_dataloader(self):
        options = sampling_options(self.config)
        options.validate(max_prompt_length=self.config.data.get("max_prompt_length"),
                         total_training_steps=self.config.trainer.get("total_training_steps"))
        self.qwenlong_options: SamplingOptions = options
        if self.config.data.get("filter_overlong_prompts", False):
            logger.warning("qwenlong: data.filter_overlong_prompts=True re-tokenises every prompt at start-up; the "
                           "phased sampler already selects by the stored lengths, so set it to False")
        super()._init_dataloader()

        from torchdata.stateful_dataloader import StatefulDataLoader
        from verl.utils.dataset.rl_dataset import collate_fn

        view = dataset_view(self.train_dataset, options.curriculum.length_key)
        self._qw_view = view
        self._qw_lengths = {idx: int(length) for idx, length in zip(view.indices, view.lengths, strict=True)}
        self.difficulty = DifficultyTable(metric=options.difficulty.metric)
        retro = options.retrospective
        if retro.enable and retro.difficulty_file:
            prior = DifficultyTable.load(retro.difficulty_file)
            self.difficulty.merge(prior)
            logger.info("qwenlong: difficulty table %s: %d examples, phases %s", retro.difficulty_file, len(prior),
                        prior.phases())
        self.sampler = PhasedRetrospectiveSampler(view, options, table=self.difficulty, start_step=1)
        num_workers = self.config.data["dataloader_num_workers"]
        if options.curriculum.schedule and num_workers:
            logger.warning("qwenlong: with a phase schedule set data.dataloader_num_workers=0; %d workers prefetch "
                           "indices, so a few examples of the old phase follow each switch", num_workers)
        gen_batch_size = self.config.data.get("gen_batch_size", None) or self.config.data.train_batch_size
        self.train_dataloader = StatefulDataLoader(
            dataset=self.train_dataset,
            batch_size=gen_batch_size,
            num_workers=num_workers,
            drop_last=True,
            collate_fn=collate_fn,
            sampler=self.sampler,
        )
        self.train_dataloader_it = None
        self._qw_fix_step_counts()
        self._qw_warned_fallback = False
        self._qw_pending: list[dict] = []  # training records drained early (at the start of a validation)
        self._qw_last_written_phase: int | None = None

    def _qw_fix_step_counts(self) -> None:
        """verl sized an epoch as the whole dataset; an epoch of ours is the phase's band plus its picks."""
        train_batch_size = self.config.data.train_batch_size
        self.steps_per_epoch = max(1, len(self.sampler) // train_batch_size)
        total = self.config.trainer.total_training_steps
        if total is None:
            sched = self.qwenlong_options.curriculum.schedule
            if sched:
                if sched[-1].until_step is None:
                    from qwenlong_verl.config import QwenLongConfigError

                    raise QwenLongConfigError(
                        "qwenlong.curriculum.schedule: set trainer.total_training_steps or the last entry's until_step")
                total = sched[-1].until_step
            else:
                total = self.steps_per_epoch * self.config.trainer.total_epochs
        self.total_training_steps = int(total)
        with open_dict(self.config):
            for path in ("actor_rollout_ref.actor.optim", "critic.optim"):
                if OmegaConf.select(self.config, path) is not None:
                    OmegaConf.update(self.config, f"{path}.total_training_steps",
                                     self.total_training_steps * self.parameter_sync_step)
        logger.info("qwenlong: phase %d epoch = %d examples -> %d steps per epoch, %d training steps",
                    self.sampler.phase, len(self.sampler), self.steps_per_epoch, self.total_training_steps)

    # ------------------------------------------------------------------ step hooks
    def on_step_begin(self):
        super().on_step_begin()
        self._qw_refilled = 0
        phase = self.qwenlong_options.phase_at(self.global_steps)
        if phase != self.sampler.phase and self.global_steps > 1:
            # end of an in-run phase: its table is the next phase's retrospective source, and a file for later runs
            logger.info("qwenlong: phase switch %d -> %d at step %d; model, optimizer state, lr schedule and step "
                        "count continue", self.sampler.phase, phase, self.global_steps)
            self._qw_write_difficulty(reason=f"end of phase {self.sampler.phase}")
        self.sampler.set_step(self.global_steps)

    def on_step_end(self):
        super().on_step_end()
        # an in-run schedule saves a full checkpoint at the last step of each phase (when checkpoints are on), so
        # every phase's model can be evaluated and a later launch can resume at the phase boundary
        step, save_freq = self.global_steps, int(self.config.trainer.save_freq or 0)
        if (self.qwenlong_options.curriculum.schedule and save_freq > 0 and step < self.total_training_steps
                and step % save_freq != 0 and self.qwenlong_options.phase_at(step + 1) != self.sampler.phase):
            logger.info("qwenlong: checkpoint at the end of phase %d (step %d)", self.sampler.phase, step)
            self._save_checkpoint()

    # ------------------------------------------------------------------ DAPO refill bound
    def _add_prompts_to_generate(self, num_prompts: int) -> int:
        """verl's ReplayBuffer calls this to replace groups that dynamic sampling evicted. verl's V1 ignores
        ``algorithm.filter_groups.max_num_gen_batches`` and refills without bound, so a batch the model cannot
        solve at all (or solves entirely) spins forever; like DAPO's original trainer, stop with a message."""
        limit = int(OmegaConf.select(self.config, "algorithm.filter_groups.max_num_gen_batches", default=0) or 0)
        self._qw_refilled = getattr(self, "_qw_refilled", 0) + num_prompts
        batch = int(self.config.data.train_batch_size)
        if limit > 0 and self._qw_refilled > limit * batch:
            raise RuntimeError(
                f"qwenlong: DAPO dynamic sampling replaced {self._qw_refilled} prompt groups at step "
                f"{self.global_steps} (more than algorithm.filter_groups.max_num_gen_batches={limit} x "
                f"data.train_batch_size={batch}) without filling a batch: nearly every group has the same reward "
                "(all wrong or all right). The data is too hard or too easy for this model; raise "
                "max_num_gen_batches, change the data, or set algorithm.filter_groups.enable=false")
        return super()._add_prompts_to_generate(num_prompts)

    # ------------------------------------------------------------------ validation records
    def on_validate_begin(self):
        super().on_validate_begin()
        # verl drops the validate flag before the reward workers see a sample, so they cannot tag validation
        # records; in sync mode nothing else is scored while validating, so keep what is pending for training
        # and drop what arrives during validation (not training rewards, not difficulty).
        self._qw_pending.extend(self._qw_drain())

    def on_validate_end(self):
        super().on_validate_end()
        self._qw_drain()

    def _qw_drain(self) -> list[dict]:
        try:
            return telemetry.drain()
        except Exception as exc:  # noqa: BLE001 - metrics must never stop training
            logger.warning("qwenlong: telemetry drain failed: %s", exc)
            return []

    def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int):
        batch = super()._step_once(metrics, timing_raw, sample_batch_size)
        metrics.update(self._qw_batch_metrics(batch))
        metrics.update(self._telemetry_metrics(batch))
        return batch

    def _qw_batch_indices(self, batch: Any) -> dict[str, Any]:
        """uid -> example index of the prompt groups in the trained batch."""
        data = batch_fields(batch, ["uid", "index"])
        return {str(u): i for u, i in zip(data["uid"], data["index"], strict=True)}

    def _qw_batch_metrics(self, batch: Any) -> dict[str, float]:
        """Phase, share of retrospective examples and mean prior difficulty of the trained batch."""
        opts = self.qwenlong_options
        out = {"qwenlong/phase": float(self.sampler.phase), "qwenlong/epoch": float(self.sampler.epoch),
               "qwenlong/retro_pool": float(len(self.sampler.pool)),
               "qwenlong/difficulty_examples": float(len(self.difficulty))}
        try:
            groups = self._qw_batch_indices(batch)
        except Exception as exc:  # noqa: BLE001 - metrics must never stop training
            logger.warning("qwenlong: could not read the batch's example indices: %s", exc)
            return out
        self._qw_last_groups = groups
        indices = list(groups.values())
        if not indices:
            return out
        retro = sum(self.sampler.is_retrospective(i) for i in indices)
        out["qwenlong/retro_share"] = retro / len(indices)
        out["qwenlong/retro_in_batch"] = float(retro)
        known = []
        for idx in indices:
            n, mean = self.difficulty.stats(idx)
            if mean is not None and n >= opts.retrospective.min_rollouts:
                known.append(mean)
        out["qwenlong/batch_known_share"] = len(known) / len(indices)
        if known:
            eps = opts.retrospective.eps
            out["qwenlong/batch_difficulty"] = float(np.mean([difficulty_score(m, eps) for m in known]))
            out["qwenlong/batch_prior_reward"] = float(np.mean(known))
        return out

    def _telemetry_metrics(self, batch: Any = None) -> dict[str, float]:
        """Drain the reward workers' per-sample records: difficulty table + judge health metrics."""
        records, self._qw_pending = self._qw_pending + self._qw_drain(), []
        train = [r for r in records if not r.get("validate", False)]
        out: dict[str, float] = {"qwenlong/scored_samples": float(len(train))}
        if self.qwenlong_options.difficulty.enable:
            out.update(self._qw_record_difficulty(train, batch))
        try:
            from qwenlong_verl.reward.metrics import judge_step_metrics
        except ImportError:
            return out
        out.update(judge_step_metrics(train))
        return out

    def _qw_record_difficulty(self, train: list[dict], batch: Any) -> dict[str, float]:
        by_phase: dict[int, list[dict]] = {}
        for r in train:
            step = int(r.get("global_step") or self.global_steps)
            by_phase.setdefault(self.qwenlong_options.phase_at(step), []).append(r)
        used = skipped = 0
        for phase, recs in by_phase.items():
            u, s = self.difficulty.add_records(recs, phase, lengths=self._qw_lengths)
            used, skipped = used + u, skipped + s
        if skipped:
            logger.warning("qwenlong: %d telemetry records lack 'index' or '%s'; not in the difficulty table",
                           skipped, self.difficulty.metric)
        if not used and batch is not None and batch.keys:
            used = self._qw_difficulty_from_batch(batch)
        return {"qwenlong/difficulty_records": float(used)}

    def _qw_difficulty_from_batch(self, batch: Any) -> int:
        """Fallback without the qwenlong reward manager: rewards of the trained batch only (groups that DAPO
        evicted are not seen here)."""
        if not self._qw_warned_fallback:
            logger.warning("qwenlong: no reward telemetry (is reward.reward_manager.name=qwenlong?); the difficulty "
                           "table falls back to the trained batch and misses groups evicted by filter_groups")
            self._qw_warned_fallback = True
        metric = self.difficulty.metric
        records = []
        try:
            data = batch_fields(batch, ["index", "extra_fields", "rm_scores"], raw=("extra_fields", "rm_scores"))
            for idx, extra, scores in zip(data["index"], data["extra_fields"], data["rm_scores"], strict=True):
                extra = getattr(extra, "data", extra)
                info = extra.get("reward_extra_info", {}) if isinstance(extra, dict) else {}
                value = info.get(metric)
                if value is None:  # verl's managers put the scalar score under "acc"; else: score > 0
                    total = float(scores.sum().item())
                    value = total if metric == "score" else float(total > 0)
                records.append({"index": idx, metric: float(value), "global_step": self.global_steps})
        except Exception as exc:  # noqa: BLE001 - the table is best effort here; training goes on
            logger.warning("qwenlong: fallback difficulty read failed: %s", exc)
            return 0
        used, _ = self.difficulty.add_records(records, self.qwenlong_options.phase_at(self.global_steps),
                                              lengths=self._qw_lengths)
        return used

    # ------------------------------------------------------------------ files and checkpoints
    def _qw_output_file(self) -> str:
        path = self.qwenlong_options.difficulty.output_file
        if not path:
            path = os.path.join(self.config.trainer.default_local_dir, FILE_NAME)
        return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)

    def _qw_write_difficulty(self, reason: str) -> None:
        if not self.qwenlong_options.difficulty.enable:
            return
        try:
            path = self.difficulty.save(self._qw_output_file())
            logger.info("qwenlong: difficulty table (%d examples) written to %s (%s)", len(self.difficulty), path,
                        reason)
        except OSError as exc:
            logger.error("qwenlong: could not write the difficulty table: %s", exc)

    def _save_checkpoint(self):
        if self.qwenlong_options.difficulty.enable and self.qwenlong_options.difficulty.save_with_checkpoint:
            # written before verl marks the checkpoint complete (latest_checkpointed_iteration.txt)
            folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
            self.difficulty.save(os.path.join(folder, FILE_NAME))
        super()._save_checkpoint()

    def _load_checkpoint(self):
        super()._load_checkpoint()
        if self.global_steps <= 0:
            return
        if self.config.trainer.resume_mode == "resume_path":
            folder = self.config.trainer.resume_from_path
        else:
            folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
        if not os.path.isabs(folder):
            folder = os.path.join(os.getcwd(), folder)
        path = os.path.join(folder, FILE_NAME)
        if os.path.isfile(path):
            self.difficulty = DifficultyTable.load(path)
            self.sampler.table = self.difficulty
            logger.info("qwenlong: restored the difficulty table (%d examples) from %s", len(self.difficulty), path)
        elif self.qwenlong_options.difficulty.enable:
            logger.warning("qwenlong: checkpoint %s has no %s; the difficulty table restarts from the input file",
                           folder, FILE_NAME)
        taken_in = checkpoint_phase(folder)
        if taken_in is not None and not self.qwenlong_options.curriculum.schedule and taken_in != self.sampler.phase:
            self._qw_continue_phase(folder, taken_in)

    def _qw_continue_phase(self, folder: str, taken_in: int) -> None:
        """A launch that continues another phase's checkpoint (phase II resuming phase I): verl restored the weights,
        optimizer, lr scheduler, RNG and global step N. The sampler starts this phase's band at epoch 0; its
        retrospective pool is rebuilt from the restored table (phase I's records up to N). The step budget counts
        on from N: ``trainer.total_training_steps`` must exceed N (an unset one means this phase's epochs after
        N), and verl's epoch loop, which counts epochs from N // steps_per_epoch, gets as many more epochs."""
        from qwenlong_verl.config import QwenLongConfigError

        done = self.global_steps
        self.sampler.table = self.difficulty
        self.sampler._enter_phase(self.sampler.phase)
        self.steps_per_epoch = max(1, len(self.sampler) // self.config.data.train_batch_size)
        if self.config.trainer.get("total_training_steps") is None:
            self.total_training_steps += done
        if self.total_training_steps <= done:
            raise QwenLongConfigError(
                f"trainer.total_training_steps={self.total_training_steps} is not past the resumed step {done} of "
                f"{folder}: phase {self.sampler.phase} would train 0 steps. Global steps continue across phases; set "
                f"trainer.total_training_steps={done} + this phase's steps")
        with open_dict(self.config):
            self.config.trainer.total_epochs = int(self.config.trainer.total_epochs) + done // self.steps_per_epoch
        logger.info("qwenlong: phase %d continues phase %d's training state from %s: steps %d..%d (model, optimizer "
                    "moments, lr schedule, RNG and step count restored; phase %d's band from epoch 0, %d "
                    "retrospective candidates)", self.sampler.phase, taken_in, folder, done + 1,
                    self.total_training_steps, self.sampler.phase, len(self.sampler.pool))

    def fit(self, agent_loop_manager):
        try:
            return super().fit(agent_loop_manager)
        finally:
            self._qw_write_difficulty(reason="end of training")
