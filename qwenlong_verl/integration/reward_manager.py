"""``reward.reward_manager.name=qwenlong``: the hybrid reward inside verl 0.9.1's reward loop.

``reward = max(rule, judge) + overlong_penalty``. The overlong penalty is DAPO's soft punishment with the same config
keys as verl's ``dapo`` manager (``reward.reward_kwargs.overlong_buffer_cfg.{enable,len,penalty_factor,log}`` and
``reward.reward_kwargs.max_resp_len``), whose ``__init__`` validates them; ``run_single`` is ours because the score
needs the question and the sample's identity. Options: ``qwenlong.reward.*`` (:class:`ScoreOptions`) and
``qwenlong.judge.*`` (:class:`JudgeOptions`).

Every sample returns the same ``reward_extra_info`` keys (verl stacks them by the first sample's keys), and pushes one
telemetry record that the ``qwenlong`` trainer turns into ``qwenlong/judge/*`` step metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager

from qwenlong_verl import telemetry
from qwenlong_verl.config import options_from, qwenlong_section
from qwenlong_verl.reward import rule
from qwenlong_verl.reward.judge import JudgeClient, JudgeOptions
from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions
from qwenlong_verl.row_files import plain as _plain

logger = logging.getLogger(__name__)

MANAGER_NAME = "qwenlong"
EXTRA_INFO_KEYS = ("score", "acc", "rule_score", "judge_score", "judge_called", "judge_failed", "judge_cached",
                   "overlong_penalty", "truncated")
_VALIDATION_SPLITS = {"val", "valid", "validation", "test"}


def overlong_penalty(length: int, max_resp_len: int, buffer_len: int, penalty_factor: float) -> float:
    """DAPO soft overlong punishment: ``min(-(L - (max_resp_len - buffer_len)) / buffer_len * factor, 0)``."""
    return min(-(length - (max_resp_len - buffer_len)) / buffer_len * penalty_factor, 0.0)


def _last_user_text(raw_prompt: Any) -> str:
    messages = list(raw_prompt) if raw_prompt is not None and not isinstance(raw_prompt, str) else []
    if isinstance(raw_prompt, str):
        return raw_prompt
    for msg in reversed(messages):
        if isinstance(msg, Mapping) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # multimodal-style content parts
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


@register(MANAGER_NAME)
class QwenLongRewardManager(DAPORewardManager):
    """The QwenLong-L1 hybrid reward (see the module docstring)."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None,
                 reward_model_tokenizer=None) -> None:
        super().__init__(config, tokenizer, compute_score, reward_router_address, reward_model_tokenizer)
        self.score_options = options_from(ScoreOptions, qwenlong_section(config, "reward"), "qwenlong.reward")
        self.judge_options = options_from(JudgeOptions, qwenlong_section(config, "judge"), "qwenlong.judge")
        self.judge = JudgeClient.shared(self.judge_options) if self.judge_options.active else None
        self.scorer = HybridScorer(self.score_options, self.judge)
        reward_cfg = config.reward.get("custom_reward_function") or {}
        if reward_cfg.get("path"):
            logger.warning("reward manager 'qwenlong' scores with its own hybrid rule; "
                           "reward.custom_reward_function.path=%s is ignored", reward_cfg.get("path"))
        self.max_response_length = self._max_response_length(config)
        cfg = self.overlong_buffer_cfg
        self.overlong_enabled = bool(cfg is not None and cfg.get("enable", False))

    @staticmethod
    def _max_response_length(config) -> int | None:
        kwargs = config.reward.get("reward_kwargs") or {}
        for value in (kwargs.get("max_resp_len"), config.get("data", {}).get("max_response_length")):
            if value is not None:
                return int(value)
        try:
            return int(config.actor_rollout_ref.rollout.response_length)
        except (AttributeError, TypeError, ValueError, KeyError):
            return None

    async def run_single(self, data: DataProto) -> dict:
        data = data[-1:]  # multi-output agent loops: the reward is for the last sequence, as in verl's managers
        item = data[0]
        nt = item.non_tensor_batch
        response_ids = item.batch["responses"]
        valid_len = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        data_source = str(_plain(nt.get("data_source", "")))
        index = _plain(nt.get("index"))
        extra_info = _plain(nt.get("extra_info")) or {}
        if not isinstance(extra_info, Mapping):
            extra_info = {}
        if index is None:
            index = extra_info.get("index")
        where = f"data_source={data_source!r} index={index!r}"

        reward_model = _plain(nt.get("reward_model"))
        if not isinstance(reward_model, Mapping) or reward_model.get("ground_truth") is None:
            raise ValueError(f"qwenlong reward: sample {where} has no reward_model.ground_truth "
                             f"(reward_model={reward_model!r})")
        ground_truth = reward_model["ground_truth"]  # plain(): numpy arrays are lists already

        # the running loop, not self.loop: the manager may be built outside the loop that scores
        response = await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:valid_len], skip_special_tokens=True))
        question = str(extra_info.get("question") or "") or rule.extract_question(
            _last_user_text(_plain(nt.get("raw_prompt"))), self.score_options.max_question_chars)

        try:
            sample = await self.scorer.score(data_source, question, response, ground_truth)
        except ValueError as exc:  # unknown data_source, empty ground truth: a data error, named
            raise ValueError(f"qwenlong reward: sample {where}: {exc}") from exc

        truncated = self.max_response_length is not None and valid_len >= self.max_response_length
        penalty = 0.0
        if self.overlong_enabled:
            cfg = self.overlong_buffer_cfg
            penalty = overlong_penalty(valid_len, int(self.max_resp_len), int(cfg.len), float(cfg.penalty_factor))
        reward = sample.score + penalty

        extra = {"score": float(sample.score), "acc": float(sample.acc), "rule_score": float(sample.rule_score),
                 "judge_score": float(sample.judge_score), "judge_called": float(sample.judge_called),
                 "judge_failed": float(sample.judge_failed), "judge_cached": float(sample.judge_cached),
                 "overlong_penalty": float(penalty), "truncated": float(truncated)}
        if self.overlong_enabled and self.overlong_buffer_cfg.get("log", False):  # dapo's own keys, when asked
            extra["overlong_reward"] = float(penalty)
            extra["overlong"] = float(penalty < 0)

        global_step = _plain(nt.get("global_steps"))
        record = {
            "index": int(index) if isinstance(index, int | float) else index,
            "uid": _plain(nt.get("uid")),
            "data_source": data_source,
            "global_step": int(global_step) if isinstance(global_step, int | float) else None,
            "validate": self._is_validation(data, nt, extra_info),
            "score": float(sample.score), "acc": float(sample.acc), "rule_score": float(sample.rule_score),
            "judge_score": float(sample.judge_score), "judge_called": sample.judge_called,
            "judge_failed": sample.judge_failed, "judge_parse_failed": sample.judge_parse_failed,
            "judge_latency_s": float(sample.judge_latency_s),
            "judge_cached": sample.judge_cached, "truncated": bool(truncated), "reward": float(reward),
            "rule_reason": sample.rule_reason,
        }
        await telemetry.apush([record])
        return {"reward_score": float(reward), "reward_extra_info": extra}

    @staticmethod
    def _is_validation(data: DataProto, nt: Mapping[str, Any], extra_info: Mapping[str, Any]) -> bool:
        """verl 0.9.1 drops the trainer's ``validate`` flag before the agent loop builds the reward input (V1:
        ``AgentLoopWorkerTQ.generate_sequences`` pops it), so it is read where it can survive: a ``validate`` /
        ``__qwenlong_validate__`` field, the batch meta_info (colocated reward path), or ``extra_info.split``."""
        for key in ("validate", "__qwenlong_validate__"):
            if key in nt:
                return bool(_plain(nt[key]))
        if "validate" in (data.meta_info or {}):
            return bool(data.meta_info["validate"])
        split = extra_info.get("split")
        return isinstance(split, str) and split.lower() in _VALIDATION_SPLITS
