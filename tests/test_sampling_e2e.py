"""The curriculum through verl's real ``main_ppo`` on CPU, in one scheduled run (``qwenlong.curriculum.schedule``:
phase I for steps 1-3, phase II for 4-6): phase I records every scored rollout (DAPO-evicted groups included),
phase II provably mixes in phase I's zero-reward examples, and the switch keeps the optimizer. The cross-launch form
(phase II resuming phase I's checkpoint) and a stopped run that goes on without repeating or losing examples are
the pipeline's, checked in ``test_pipeline_e2e.py``.

The tiny model never answers correctly, so a scripted judge (a local OpenAI-compatible server) decides rewards:
"hard" examples are judged wrong on their first draw (their all-zero groups are evicted by DAPO and never reach the
trainer, and phase II finds them unsolved), every other verdict comes from a hash of the candidate answer, so groups
are mixed and trainable (and a hard example drawn again, as a retrospective pick in phase II, can be trained).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import Counter
from pathlib import Path

import pytest
from conftest import hold_e2e_lock
from e2e_utils import run_main_ppo
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.data.synth import generate_docqa, write_rows
from qwenlong_verl.sampling.difficulty import FILE_NAME, DifficultyTable

# the first test runs the scheduled run (module fixture, 900 s limit)
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

L1, L2 = 500, 1024
STEPS = 3
N_ROLLOUTS = 4
BATCH = 4
CURRICULUM = [f"++qwenlong.curriculum.lengths=[{L1},{L2}]", "++qwenlong.curriculum.seed=5"]


class Data:
    def __init__(self, root: Path, model: Path, tokenizer) -> None:
        short = generate_docqa(16, min_tokens=300, max_tokens=420, tokenizer=tokenizer, seed=21, kinds=("multihop",))
        long = generate_docqa(8, min_tokens=650, max_tokens=850, tokenizer=tokenizer, seed=22, kinds=("multihop",),
                              index_offset=1000)
        val = generate_docqa(2, min_tokens=300, max_tokens=400, tokenizer=tokenizer, seed=23, kinds=("multihop",),
                             index_offset=5000, split="val")
        self.rows = short + long
        assert max(r["prompt_length"] for r in short) <= L1 < min(r["prompt_length"] for r in long) <= L2
        self.model = model
        self.train, self.val = root / "train.parquet", root / "val.parquet"
        write_rows(self.rows, str(self.train))
        write_rows(val, str(self.val))
        self.short = {r["extra_info"]["index"] for r in short}
        self.long = {r["extra_info"]["index"] for r in long}
        self.hard = {i for i in self.short if i % 3 == 0}
        self.gold_to_index = {r["reward_model"]["ground_truth"]: r["extra_info"]["index"] for r in self.rows}
        assert len(self.gold_to_index) == len(self.rows), "synthetic answers must be unique per row"

    def overrides(self, steps: int) -> list[str]:
        return [f"data.train_files={self.train}", f"data.val_files={self.val}",
                f"actor_rollout_ref.model.path={self.model}", f"trainer.total_training_steps={steps}",
                f"data.train_batch_size={BATCH}", f"actor_rollout_ref.rollout.n={N_ROLLOUTS}", *CURRICULUM]


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_model_dir, tiny_tokenizer) -> Data:
    return Data(tmp_path_factory.mktemp("curriculum_data"), tiny_model_dir, tiny_tokenizer)


_USER = re.compile(r"Question: .*\nReference answer: (?P<gold>.*)\nCandidate answer: (?P<answer>.*)", re.DOTALL)


@pytest.fixture(scope="module")
def judge(data):
    """Hard examples: NO for their first N_ROLLOUTS judge calls (one group); every other call: YES for half of the
    candidate answers (a hash)."""
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def respond(messages):
        m = _USER.search(messages[-1]["content"])
        index = data.gold_to_index[m.group("gold").strip()]
        with lock:
            first_group = calls[index] < N_ROLLOUTS
            calls[index] += 1
        if index in data.hard and first_group:
            return "Different.\nVERDICT: NO"
        yes = zlib.crc32(m.group("answer").encode()) % 2 == 0
        return "Compared.\nVERDICT: " + ("YES" if yes else "NO")

    with FakeOpenAIServer(responder=respond) as server:
        yield server


def _judge_overrides(server) -> list[str]:
    # the untrained model writes no </think>: score its whole text, so the judge is asked for every rollout
    return [f"++qwenlong.judge.base_url={server.base_url}", "++qwenlong.judge.max_retries=1",
            "++qwenlong.reward.answer_after_think=off"]


def _sum(metrics: list[dict], key: str) -> float:
    return sum(m["data"].get(key, 0.0) for m in metrics)


class Scheduled:
    """The scheduled run: its folder, result, metrics split by phase, the final table and the table saved with the
    checkpoint at the end of phase I (what phase II's retrospective pool was built from)."""

    def __init__(self, work: Path, result) -> None:
        self.work, self.result = work, result
        self.ckpt = work / "ckpt"
        self.p1 = [m for m in result.metrics if m["step"] <= STEPS]
        self.p2 = [m for m in result.metrics if m["step"] > STEPS]
        self.table = DifficultyTable.load(self.ckpt / FILE_NAME)
        self.prior = DifficultyTable.load(self.ckpt / f"global_step_{STEPS}" / FILE_NAME)


@pytest.fixture(scope="module")
def scheduled(data, judge, tmp_path_factory) -> Scheduled:
    work = tmp_path_factory.mktemp("scheduled")
    with hold_e2e_lock():
        result = run_main_ppo(
            data.overrides(2 * STEPS) + _judge_overrides(judge) + [
                f"++qwenlong.curriculum.schedule=[{{phase:1,until_step:{STEPS}}},{{phase:2,until_step:{2 * STEPS}}}]",
                "++qwenlong.retrospective.enable=true", "trainer.save_freq=100", f"trainer.total_epochs={2 * STEPS}"],
            work, recipe="qwenlong_phase1")
    assert result.returncode == 0, result.tail()
    assert result.steps() == list(range(1, 2 * STEPS + 1)), result.tail()
    return Scheduled(work, result)


def test_phase1_records_every_scored_rollout_evicted_groups_included(data, scheduled):
    run = scheduled
    # phase I drew only its band (prompt_length <= L1); the table saved at its end holds phase 1 records only
    assert set(run.prior.examples) <= data.short and run.prior.phases() == [1]
    for m in run.p1:
        assert m["data"]["qwenlong/phase"] == 1.0
        assert m["data"]["qwenlong/retro_share"] == 0.0
    # DAPO evicted groups, and those rollouts are in the table all the same: it holds every scored rollout, more
    # than the trainer saw (STEPS batches of BATCH x N_ROLLOUTS)
    assert _sum(run.p1, "training/filter_groups/evicted_samples") > 0, run.result.tail()
    rollouts = sum(h[2] for ex in run.prior.examples.values() for h in ex.history)
    assert rollouts == _sum(run.p1, "qwenlong/scored_samples") > STEPS * BATCH * N_ROLLOUTS
    # the hard examples' first groups (all zero, so evicted and never trained) are recorded with reward 0 (a step
    # that drew an example twice, DAPO's refill running into the next epoch, has one entry for both groups)
    hard_seen = data.hard & set(run.prior.examples)
    assert hard_seen, f"no hard example drawn in {STEPS} steps; table: {sorted(run.prior.examples)}"
    for idx in hard_seen:
        _step, _phase, n, total = run.prior.examples[idx].history[0]
        assert n % N_ROLLOUTS == 0 and total <= n - N_ROLLOUTS, run.prior.examples[idx].history


def test_phase2_mixes_in_phase1_zero_reward_examples(data, scheduled):
    run = scheduled
    zero = {i for i, m in run.prior.means().items() if m == 0.0}
    solved = {i for i, m in run.prior.means().items() if m > 0.0}
    drawn2 = {i for i, ex in run.table.examples.items() if any(h[1] == 2 for h in ex.history)}
    retro = drawn2 & data.short
    # phase II drew its own band and phase I examples, and the latter are exactly zero-reward ones (nothing else of
    # phase I's band: phase I's data order did not carry over into phase II's sampler)
    assert drawn2 & data.long
    assert drawn2 <= data.long | zero, drawn2 - data.long
    assert retro and retro <= zero, (retro, zero)
    assert not retro & solved
    # the trained batches contained retrospective examples (logged per step by the trainer)
    assert max(m["data"].get("qwenlong/retro_share", 0.0) for m in run.p2) > 0.0, run.result.tail()
    for m in run.p2:
        assert m["data"]["qwenlong/phase"] == 2.0
        assert m["data"]["qwenlong/retro_pool"] == float(len(zero & data.short))
    # the final table carries phase I's history unchanged, for a later phase
    assert run.table.phases() == [1, 2]
    assert all(run.table.stats(i, phases=[1]) == run.prior.stats(i) for i in run.prior.examples)


def test_the_switch_keeps_model_optimizer_and_lr_schedule(scheduled):
    """The switch is logged, the difficulty file is written and a full checkpoint saved at the end of phase I, and
    the optimizer runs on: Adam has taken 3 steps at the end of phase I and 6 at the end, under one lr."""
    from e2e_utils import adam_steps

    run = scheduled
    out = run.result.output
    assert f"qwenlong: phase switch 1 -> 2 at step {STEPS + 1}" in out
    assert "(end of phase 1)" in out  # the difficulty file, written at the switch
    assert f"qwenlong: checkpoint at the end of phase 1 (step {STEPS})" in out
    assert adam_steps(run.ckpt / f"global_step_{STEPS}" / "actor") == {STEPS}  # saved at the end of phase I
    assert adam_steps(run.ckpt / f"global_step_{2 * STEPS}" / "actor") == {2 * STEPS}
    lrs = [m["data"]["actor/lr"] for m in run.result.metrics]
    assert len(set(lrs)) == 1, lrs  # the recipes' constant lr, one schedule
