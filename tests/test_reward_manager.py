"""The ``qwenlong`` reward manager driven through verl's own reward-loop worker with real DataProtos."""

from __future__ import annotations

import asyncio
import os
from functools import partial

import numpy as np
import pytest
import torch
import verl
from fake_openai_server import FakeOpenAIServer
from hydra import compose, initialize_config_dir
from tensordict import TensorDict
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager

from qwenlong_verl import telemetry
from qwenlong_verl.integration.reward_manager import EXTRA_INFO_KEYS, QwenLongRewardManager, overlong_penalty
from qwenlong_verl.reward.scoring import compute_score

VERL_CONFIG_DIR = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
MAX_RESP = 24


def verl_config(model_dir, *overrides: str):
    """verl's real ppo_trainer config, composed by hydra, with our overrides."""
    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        return compose("ppo_trainer", overrides=[
            f"actor_rollout_ref.model.path={model_dir}",
            "reward.reward_manager.name=qwenlong",
            f"data.max_response_length={MAX_RESP}",
            *overrides,
        ])


def make_data(tokenizer, samples: list[dict]) -> DataProto:
    """A batch shaped like the one verl's agent loop hands to the reward loop (left-padded prompts,
    right-padded responses, one row per sample, dataset fields in non_tensor_batch)."""
    prompts = [tokenizer.encode(s.get("prompt", "Please read the text.")) for s in samples]
    responses = [tokenizer.encode(s["response"]) for s in samples]
    p_len, r_len = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id or 0
    p_t = torch.full((len(samples), p_len), pad, dtype=torch.long)
    r_t = torch.full((len(samples), r_len), pad, dtype=torch.long)
    mask = torch.zeros((len(samples), p_len + r_len), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        p_t[i, p_len - len(p):] = torch.tensor(p)
        r_t[i, :len(r)] = torch.tensor(r)
        mask[i, p_len - len(p):p_len + len(r)] = 1
    input_ids = torch.cat([p_t, r_t], dim=1)
    batch = TensorDict({"prompts": p_t, "responses": r_t, "attention_mask": mask, "input_ids": input_ids,
                        "position_ids": torch.clamp(mask.cumsum(-1) - 1, min=0)}, batch_size=len(samples))
    non_tensor = {
        "data_source": np.array([s["data_source"] for s in samples], dtype=object),
        "reward_model": np.array([{"style": "rule", "ground_truth": s["gt"]} for s in samples], dtype=object),
        "extra_info": np.array([{"index": s["index"], "question": s.get("question", "Q?"),
                                 "split": s.get("split", "train")} for s in samples], dtype=object),
        "raw_prompt": np.array([[{"role": "user", "content": "x"}] for _ in samples], dtype=object),
        "index": np.array([s["index"] for s in samples], dtype=object),
        "uid": np.array([f"uid-{s['index']}" for s in samples], dtype=object),
        "global_steps": np.array([3] * len(samples), dtype=object),
    }
    return DataProto(batch=batch, non_tensor_batch=non_tensor)


SAMPLES = [
    # rule says 1: judge never asked
    {"data_source": "musique", "response": "<think>hmm</think> Therefore, the answer is Paris.", "gt": "Paris",
     "index": 0, "question": "Capital of France?"},
    # rule says 0, judge says YES
    {"data_source": "hotpotqa", "response": "<think>hmm</think> Therefore, the answer is Lutetia.", "gt": "Paris",
     "index": 1, "question": "Capital of France?"},
    # rule says 0, judge says NO
    {"data_source": "musique", "response": "<think>hmm</think> Therefore, the answer is Rome.", "gt": "Paris",
     "index": 2, "question": "Capital of France?"},
    # multiple choice: regex only, no judge even when wrong
    {"data_source": "long_toc_choices", "response": "<think>x</think> The answer is (C).",
     "gt": "The correct answer is (B)", "index": 3},
    # numeric with a list of accepted answers
    {"data_source": "docmath", "response": "<think>x</think> The answer is 1,250.0 million.", "gt": ["1250", "1.25e9"],
     "index": 4, "split": "test"},
    # no </think>: unfinished reasoning, 0, no judge
    {"data_source": "musique", "response": "the answer is Lutetia", "gt": "Paris", "index": 5},
]


def _responder(messages):
    return "Old name of Paris.\nVERDICT: YES" if "Lutetia" in messages[-1]["content"] else "Different.\nVERDICT: NO"


@pytest.fixture
def judge_server():
    with FakeOpenAIServer(responder=_responder) as srv:
        yield srv


def _worker(config) -> RewardLoopWorker:
    return RewardLoopWorker(config)  # verl's worker class itself (the Ray actor wraps exactly this)


def score_batch(config, data: DataProto, worker: RewardLoopWorker | None = None) -> list[dict]:
    """Build the worker inside the event loop that scores, as in verl's async Ray actor."""
    async def run():
        w = worker or _worker(config)
        return await w.compute_score_batch(data)

    return asyncio.run(run())


def test_registered_in_verl_registry():
    assert get_reward_manager_cls("qwenlong") is QwenLongRewardManager


def test_scores_through_verl_reward_loop_worker(tiny_model_dir, tiny_tokenizer, judge_server):
    config = verl_config(tiny_model_dir, f"+qwenlong.judge.base_url={judge_server.base_url}",
                         "+qwenlong.judge.max_retries=0")
    assert isinstance(_worker(config).reward_manager, QwenLongRewardManager)
    telemetry.reset_local()
    data = make_data(tiny_tokenizer, SAMPLES)
    outputs = score_batch(config, data)

    infos = [o["reward_extra_info"] for o in outputs]
    assert all(list(info) == list(EXTRA_INFO_KEYS) for info in infos)  # verl stacks by the first sample's keys
    stacked = {k: np.array([info[k] for info in infos]) for k in infos[0]}  # as RewardLoopManager does
    assert stacked["score"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert stacked["acc"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert stacked["rule_score"].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert stacked["judge_called"].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert stacked["judge_score"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert stacked["judge_failed"].tolist() == [0.0] * 6
    assert [o["reward_score"] for o in outputs] == stacked["score"].tolist()  # overlong shaping is off
    assert judge_server.count == 2
    user = judge_server.bodies()[0]["messages"][1]["content"]
    assert "Question: Capital of France?" in user

    rm_scores = QwenLongRewardManager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    assert rm_scores.shape == data.batch["responses"].shape and rm_scores.sum().item() == 3.0

    records = sorted(telemetry.drain(), key=lambda r: r["index"])
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4, 5]
    r1 = records[1]
    assert r1["uid"] == "uid-1" and r1["data_source"] == "hotpotqa" and r1["global_step"] == 3
    assert r1["judge_called"] is True and r1["acc"] == 1.0 and r1["judge_latency_s"] > 0
    assert [r["validate"] for r in records] == [False, False, False, False, True, False]  # extra_info.split=test


def test_overlong_penalty_matches_verl_dapo_manager(tiny_model_dir, tiny_tokenizer):
    overrides = ["+reward.reward_kwargs.overlong_buffer_cfg.enable=True",
                 "+reward.reward_kwargs.overlong_buffer_cfg.len=8",
                 "+reward.reward_kwargs.overlong_buffer_cfg.penalty_factor=1.0",
                 "+reward.reward_kwargs.overlong_buffer_cfg.log=False",
                 f"+reward.reward_kwargs.max_resp_len={MAX_RESP}"]
    config = verl_config(tiny_model_dir, *overrides)
    long_tail = " word" * 30
    samples = [dict(s, response=s["response"] + long_tail * (i % 2)) for i, s in enumerate(SAMPLES)]
    data = make_data(tiny_tokenizer, samples)
    ours = score_batch(config, data)

    async def run_dapo():
        dapo = DAPORewardManager(config, tiny_tokenizer, compute_score=partial(compute_score))
        return await asyncio.gather(*(dapo.run_single(data[i:i + 1]) for i in range(len(samples))))

    theirs = asyncio.run(run_dapo())
    penalties = [o["reward_extra_info"]["overlong_penalty"] for o in ours]
    assert any(p < 0 for p in penalties) and any(p == 0 for p in penalties)
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine["reward_score"] == pytest.approx(float(ref["reward_score"]))
        # acc stays the 0/1 correctness: the penalty changes the reward only
        assert mine["reward_extra_info"]["acc"] == mine["reward_extra_info"]["score"]
    truncated = [o["reward_extra_info"]["truncated"] for o in ours]
    lengths = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:].sum(-1).tolist()
    assert truncated == [float(n >= MAX_RESP) for n in lengths]
    assert overlong_penalty(24, 24, 8, 1.0) == -1.0 and overlong_penalty(16, 24, 8, 1.0) == 0.0


def test_judge_down_never_stops_training(tiny_model_dir, tiny_tokenizer):
    with FakeOpenAIServer(fail_rate=1.0) as srv:
        config = verl_config(tiny_model_dir, f"+qwenlong.judge.base_url={srv.base_url}",
                             "+qwenlong.judge.max_retries=1", "+qwenlong.judge.backoff_s=0.0")
        outputs = score_batch(config, make_data(tiny_tokenizer, SAMPLES))
    info = [o["reward_extra_info"] for o in outputs]
    assert [i["judge_failed"] for i in info] == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert [i["score"] for i in info] == [i["rule_score"] for i in info]  # rule score kept
    assert srv.count == 4  # two unique requests, two attempts each


def test_malformed_rows_are_named_errors(tiny_model_dir, tiny_tokenizer):
    config = verl_config(tiny_model_dir)
    bad = make_data(tiny_tokenizer, [dict(SAMPLES[0], data_source="gsm8k", index=17)])
    with pytest.raises(ValueError, match=r"data_source='gsm8k' index=17.*unknown data_source 'gsm8k'"):
        score_batch(config, bad)
    missing = make_data(tiny_tokenizer, [dict(SAMPLES[0], index=9)])
    missing.non_tensor_batch["reward_model"] = np.array([{"style": "rule"}], dtype=object)
    with pytest.raises(ValueError, match=r"index=9 has no reward_model.ground_truth"):
        score_batch(config, missing)
    # with a default family the unknown data_source is scored
    config = verl_config(tiny_model_dir, "+qwenlong.reward.default_family=qa")
    assert score_batch(config, bad)[0]["reward_score"] == 1.0


def test_unknown_option_is_a_config_error(tiny_model_dir):
    config = verl_config(tiny_model_dir, "+qwenlong.reward.answer_after_thinks=off")
    with pytest.raises(ValueError, match="qwenlong.reward.answer_after_thinks"):
        _worker(config)


def test_scoring_functions_as_verl_custom_reward_function(tiny_model_dir, tiny_tokenizer, judge_server):
    """Other recipes can use the scoring alone: verl's naive manager loading our functions by pkg:// path."""
    rule_cfg = verl_config(tiny_model_dir, "reward.reward_manager.name=naive",
                           "reward.custom_reward_function.path=pkg://qwenlong_verl.reward.scoring",
                           "reward.custom_reward_function.name=compute_score")
    data = make_data(tiny_tokenizer, SAMPLES)
    outputs = score_batch(rule_cfg, data)
    assert [o["reward_score"] for o in outputs] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert judge_server.count == 0

    judge_cfg = verl_config(tiny_model_dir, "reward.reward_manager.name=naive",
                            "reward.custom_reward_function.path=pkg://qwenlong_verl.reward.scoring",
                            "reward.custom_reward_function.name=compute_score_with_judge",
                            f"+reward.custom_reward_function.reward_kwargs.judge.base_url={judge_server.base_url}")
    outputs = score_batch(judge_cfg, data)
    assert [o["reward_score"] for o in outputs] == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert [o["reward_extra_info"]["judge_called"] for o in outputs] == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert judge_server.count == 2
