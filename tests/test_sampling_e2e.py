"""The curriculum through verl's real ``main_ppo`` on CPU: phase I writes the difficulty file (DAPO-evicted groups
included), phase II provably mixes in phase I's zero-reward examples, and a run killed mid-way resumes without
repeating or losing examples (scored by verl's own dapo reward manager, so the table's fallback is checked too).

The tiny model never answers correctly, so a scripted judge (a local OpenAI-compatible server) decides rewards:
"hard" examples are always wrong (their all-zero groups are evicted by DAPO and never reach the trainer), the others
get a verdict from a hash of the candidate answer, so their groups are mixed and trainable.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from conftest import hold_e2e_lock
from e2e_utils import CPU_ENV, run_main_ppo
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.data.synth import generate_docqa, write_rows
from qwenlong_verl.sampling.difficulty import FILE_NAME, DifficultyTable
from qwenlong_verl.sampling.options import sampling_options
from qwenlong_verl.sampling.phases import view_from_file
from qwenlong_verl.sampling.sampler import PhasedRetrospectiveSampler

# a test may run phase I and phase II first (module fixtures, 900 s limit each), or a run killed at a checkpoint
# (600 s) and its resumption (900 s)
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

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
    """``policy["hard"]``: indices always judged wrong; the rest: YES for half of the candidate answers."""
    policy: dict[str, set] = {"hard": set()}

    def respond(messages):
        m = _USER.search(messages[-1]["content"])
        index = data.gold_to_index[m.group("gold").strip()]
        if index in policy["hard"]:
            return "Different.\nVERDICT: NO"
        yes = zlib.crc32(m.group("answer").encode()) % 2 == 0
        return "Compared.\nVERDICT: " + ("YES" if yes else "NO")

    with FakeOpenAIServer(responder=respond) as server:
        server.policy = policy
        yield server


def _judge_overrides(server) -> list[str]:
    # the untrained model writes no </think>: score its whole text, so the judge is asked for every rollout
    return [f"++qwenlong.judge.base_url={server.base_url}", "++qwenlong.judge.max_retries=1",
            "++qwenlong.reward.answer_after_think=off"]


def _sum(result, key: str) -> float:
    return sum(m["data"].get(key, 0.0) for m in result.metrics)


@pytest.fixture(scope="module")
def phase1(data, judge, tmp_path_factory):
    work = tmp_path_factory.mktemp("phase1")
    judge.policy["hard"] = set(data.hard)
    with hold_e2e_lock():
        # a full checkpoint at the last step: phase II continues it
        result = run_main_ppo(data.overrides(STEPS) + _judge_overrides(judge) + ["++qwenlong.curriculum.phase=1",
                                                                                 f"trainer.save_freq={STEPS}"],
                              work, recipe="qwenlong_phase1")
    return work, result


@pytest.fixture(scope="module")
def phase2(data, judge, phase1, tmp_path_factory):
    work = tmp_path_factory.mktemp("phase2")
    judge.policy["hard"] = set()  # phase II: the former hard examples are now sometimes solved, so DAPO keeps them
    with hold_e2e_lock():
        # the cross-launch curriculum: phase II resumes phase I's checkpoint (steps number on: 4..6)
        result = run_main_ppo(
            data.overrides(2 * STEPS) + _judge_overrides(judge) + [
                "++qwenlong.curriculum.phase=2", "++qwenlong.retrospective.enable=true",
                f"++qwenlong.retrospective.difficulty_file={phase1[0] / 'ckpt' / FILE_NAME}",
                "trainer.resume_mode=resume_path",
                f"trainer.resume_from_path={phase1[0] / 'ckpt' / f'global_step_{STEPS}'}",
                f"trainer.total_epochs={2 * STEPS}", f"trainer.save_freq={STEPS}"],
            work, recipe="qwenlong_phase2")
    return work, result


def test_phase1_writes_difficulty_file_with_evicted_groups(data, phase1):
    work, result = phase1
    assert result.returncode == 0, result.tail()
    assert result.steps() == list(range(1, STEPS + 1)), result.tail()
    table = DifficultyTable.load(work / "ckpt" / FILE_NAME)
    # only phase I examples (prompt_length <= L1) were drawn, every record is phase 1
    assert set(table.examples) <= data.short and table.phases() == [1]
    for m in result.metrics:
        assert m["data"]["qwenlong/phase"] == 1.0
        assert m["data"]["qwenlong/retro_share"] == 0.0
    # DAPO evicted groups, and those rollouts are in the table all the same: it holds every scored rollout, more
    # than the trainer saw (STEPS batches of BATCH x N_ROLLOUTS)
    assert _sum(result, "training/filter_groups/evicted_samples") > 0, result.tail()
    rollouts = sum(h[2] for ex in table.examples.values() for h in ex.history)
    assert rollouts == _sum(result, "qwenlong/scored_samples") > STEPS * BATCH * N_ROLLOUTS
    # the hard examples (always all-zero groups, so always evicted and never trained) are recorded, mean reward 0
    hard_seen = data.hard & set(table.examples)
    assert hard_seen, f"no hard example drawn in {STEPS} steps; table: {sorted(table.examples)}"
    for idx in hard_seen:
        n, mean = table.stats(idx)
        assert mean == 0.0 and n >= N_ROLLOUTS and n % N_ROLLOUTS == 0


def test_phase2_mixes_in_phase1_zero_reward_examples(data, phase1, phase2):
    prior = DifficultyTable.load(phase1[0] / "ckpt" / FILE_NAME)
    zero = {i for i, m in prior.means().items() if m == 0.0}
    solved = {i for i, m in prior.means().items() if m > 0.0}
    work, result = phase2
    assert result.returncode == 0, result.tail()
    assert result.steps() == list(range(STEPS + 1, 2 * STEPS + 1)), result.tail()
    table = DifficultyTable.load(work / "ckpt" / FILE_NAME)
    drawn2 = {i for i, ex in table.examples.items() if any(h[1] == 2 for h in ex.history)}
    retro = drawn2 & data.short
    # phase II drew its own band and phase I examples, and the latter are exactly zero-reward ones (nothing else of
    # phase I's band: phase I's data order did not carry over into phase II's sampler)
    assert drawn2 & data.long
    assert drawn2 <= data.long | zero, drawn2 - data.long
    assert retro and retro <= zero, (retro, zero)
    assert not retro & solved
    # the trained batches contained retrospective examples (logged per step by the trainer)
    assert max(m["data"].get("qwenlong/retro_share", 0.0) for m in result.metrics) > 0.0
    for m in result.metrics:
        assert m["data"]["qwenlong/phase"] == 2.0
        assert m["data"]["qwenlong/retro_pool"] == float(len({i for i in zero if i in data.short}))
    # the phase II file carries phase I's history too, for a later phase
    assert table.phases() == [1, 2]
    assert all(table.stats(i, phases=[1])[0] == prior.stats(i)[0] for i in prior.examples)


def test_phase2_launch_continues_phase1_training_state(data, phase1, phase2):
    """Phase II resumed phase I's checkpoint: its first update used phase I's Adam moments (the state's step counts
    on: 3 after phase I, 6 after phase II), the lr follows one schedule, and global steps continue."""
    from e2e_utils import adam_steps

    work1, result1 = phase1
    work2, result2 = phase2
    assert adam_steps(work1 / "ckpt" / f"global_step_{STEPS}" / "actor") == {STEPS}
    assert adam_steps(work2 / "ckpt" / f"global_step_{2 * STEPS}" / "actor") == {2 * STEPS}
    assert "phase 2 continues phase 1's training state" in result2.output, result2.tail()
    assert "starts at epoch 0 (none of phase 1's data order carries over)" in result2.output
    lrs = [m["data"]["actor/lr"] for m in result1.metrics + result2.metrics]
    assert len(lrs) == 2 * STEPS and len(set(lrs)) == 1, lrs  # the recipes' constant lr, one schedule


def test_in_run_schedule_switches_phase_without_restarting(data, judge, tmp_path, e2e_lock):
    """``qwenlong.curriculum.schedule`` in one run: phase I for steps 1-2, phase II for 3-4. The switch is logged,
    the difficulty file is written and a full checkpoint saved at the end of phase I, the optimizer runs on, and
    phase II draws from its band (plus phase I's unsolved examples) only."""
    from e2e_utils import adam_steps

    work = tmp_path / "schedule"
    judge.policy["hard"] = set(data.hard)
    result = run_main_ppo(
        data.overrides(4) + _judge_overrides(judge) + [
            "++qwenlong.curriculum.schedule=[{phase:1,until_step:2},{phase:2,until_step:4}]",
            "++qwenlong.retrospective.enable=true", "trainer.save_freq=100", "trainer.total_epochs=4"],
        work, recipe="qwenlong_phase1")
    assert result.returncode == 0, result.tail()
    assert result.steps() == [1, 2, 3, 4]
    assert [m["data"]["qwenlong/phase"] for m in result.metrics] == [1.0, 1.0, 2.0, 2.0]
    assert "qwenlong: phase switch 1 -> 2 at step 3" in result.output
    assert "(end of phase 1)" in result.output  # the difficulty file, written at the switch
    assert adam_steps(work / "ckpt" / "global_step_2" / "actor") == {2}  # saved at the end of phase I
    assert adam_steps(work / "ckpt" / "global_step_4" / "actor") == {4}
    table = DifficultyTable.load(work / "ckpt" / FILE_NAME)
    zero1 = {i for i, m in table.means(phases=[1]).items() if m == 0.0}
    drawn2 = {i for i, ex in table.examples.items() if any(h[1] == 2 for h in ex.history)}
    assert drawn2 & data.long and drawn2 <= data.long | zero1, drawn2 - data.long


REWARD_FN = '''
def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return 1.0 if int(extra_info["index"]) % 2 == 0 else 0.0
'''


def test_killed_run_resumes_without_repeating_or_losing_examples(data, tmp_path, e2e_lock):
    """DAPO off, so each step draws exactly one batch: steps 1..5 must draw the sampler's order, batch by batch.

    The run also scores with verl's own ``dapo`` reward manager (a reward by index parity), which sends no
    telemetry: a warning, then the difficulty table falls back to the trained batch's rewards (with DAPO's filter
    off, every rollout of the step). One run serves both checks (a verl run costs minutes on 2 cores)."""
    work = tmp_path / "resume"
    work.mkdir()
    fn = work / "parity_reward.py"
    fn.write_text(REWARD_FN)
    steps = 5  # 16 phase I examples = 4 batches: step 5 starts the second epoch
    overrides = data.overrides(steps) + ["++qwenlong.curriculum.phase=1", "algorithm.filter_groups.enable=false",
                                         "trainer.save_freq=2", "trainer.total_epochs=2",
                                         "reward.reward_manager.name=dapo", f"reward.custom_reward_function.path={fn}",
                                         "reward.custom_reward_function.name=compute_score"]
    ckpt = work / "ckpt"  # run_main_ppo(workdir=work) uses it, so the resumed run finds the killed run's checkpoints
    first = _run_until_checkpoint(overrides, work / "killed", ckpt, step=2)
    assert first == "killed", first
    resumed = run_main_ppo(overrides + ["trainer.resume_mode=auto"], work, recipe="qwenlong_phase1")
    assert resumed.returncode == 0, resumed.tail()
    assert resumed.steps() == [3, 4, 5], resumed.tail()
    table = DifficultyTable.load(ckpt / FILE_NAME)
    drawn: dict[int, set] = {}
    for idx, ex in table.examples.items():
        for step, _phase, n, _ in ex.history:
            assert n == N_ROLLOUTS, (idx, ex.history)  # a prompt drawn twice in one step would show 2 x n
            drawn.setdefault(step, set()).add(idx)
    # what the sampler yields for phase I, epochs 0 and 1, by seed
    options = sampling_options({"qwenlong": {"curriculum": {"lengths": [L1, L2], "phase": 1, "seed": 5}}})
    view = view_from_file(str(data.train))
    sampler = PhasedRetrospectiveSampler(view, options)
    order = [view.indices[p] for p in sampler.epoch_order()]
    sampler.epoch = 1
    order += [view.indices[p] for p in sampler.epoch_order()]
    for step in range(1, steps + 1):
        assert drawn[step] == set(order[(step - 1) * BATCH: step * BATCH]), (step, drawn)
    # the fallback: no telemetry from verl's dapo manager, the trained batch's rewards instead, every rollout of it
    assert "no reward telemetry" in resumed.output
    assert set(table.examples) <= data.short
    for idx in table.examples:
        n, mean = table.stats(idx)
        assert n % N_ROLLOUTS == 0 and mean == (1.0 if idx % 2 == 0 else 0.0), (idx, n, mean)
    assert all(m["data"]["qwenlong/difficulty_records"] == BATCH * N_ROLLOUTS for m in resumed.metrics)


def _run_until_checkpoint(overrides: list[str], workdir: Path, ckpt: Path, step: int, timeout_s: int = 600) -> str:
    """Start main_ppo, SIGKILL its whole process group once checkpoint ``step`` is complete."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "verl.trainer.main_ppo", "+recipe=qwenlong_phase1", "+qwenlong_env=cpu",
            f"trainer.default_local_dir={ckpt}", "trainer.experiment_name=e2e", *overrides]
    log = open(workdir / "run.log", "w")
    # the metrics log in the run's folder: without a path, verl's file logger writes <cwd of the TaskRunner>/<project>/
    # e2e.jsonl, and that cwd is not the driver's (it left qwenlong_verl/e2e.jsonl in the checkout)
    env = {**os.environ, **CPU_ENV, "VERL_FILE_LOGGER_PATH": str(workdir / "metrics.jsonl")}
    proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tracker = ckpt / "latest_checkpointed_iteration.txt"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited early with {proc.returncode}; see {workdir / 'run.log'}"
            if tracker.exists() and tracker.read_text().strip() == str(step):
                os.killpg(proc.pid, signal.SIGKILL)  # a preemption: no clean shutdown of anything
                proc.wait(timeout=60)
                return "killed"
            time.sleep(1.0)
        return "timeout"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        log.close()
