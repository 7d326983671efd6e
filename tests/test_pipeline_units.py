"""Pipeline pieces without verl runs: the resumable stage runner, the stage command lines and hand-offs, the report,
the stand-in judge and the command-line options."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from qwenlong_verl.pipeline.pipeline_options import PipelineError, PipelineOptions, cpu_demo_options
from qwenlong_verl.pipeline.run_report import build_report, render_markdown, write_report
from qwenlong_verl.pipeline.stage_runner import Stage, StageContext, StageRecord, run_stages
from qwenlong_verl.pipeline.stages import (
    difficulty_output,
    input_model,
    retrospective_overrides,
    rl_command,
    rl_hf_model,
    run_phase,
    sft_command,
    sft_hf_model,
)
from qwenlong_verl.pipeline.standin_judge import StandinJudge, similarity, verdict_text
from qwenlong_verl.reporting import read_metrics


# ------------------------------------------------------------------------------------------------ runner
def _counting_stages(calls: list[str], value: dict[str, int], fail: set[str] = frozenset()) -> list[Stage]:
    def make(name: str):
        def run(ctx: StageContext):
            calls.append(name)
            if name in fail:
                (ctx.stage_dir() / "partial.txt").write_text("half")
                raise RuntimeError(f"{name} broke")
            prev = {k: (ctx.outputs(k) or {}).get("v") for k in ("a", "b")}
            return {"v": value[name], "saw": prev}
        return run

    return [Stage("a", make("a"), lambda ctx: {"va": value["a"]}), Stage("b", make("b")),
            Stage("c", make("c"), always=True)]


def _ctx(tmp_path: Path) -> StageContext:
    return StageContext(options=PipelineOptions(workdir=tmp_path / "w"))


def test_finished_stages_are_skipped_and_their_outputs_reused(tmp_path):
    calls: list[str] = []
    value = {"a": 1, "b": 2, "c": 3}
    run_stages(_counting_stages(calls, value), _ctx(tmp_path))
    assert calls == ["a", "b", "c"]
    ctx = _ctx(tmp_path)
    records = run_stages(_counting_stages(calls, value), ctx)
    assert calls == ["a", "b", "c", "c"]  # only the always-stage ran again
    assert [records[n].status for n in "abc"] == ["skipped-done", "skipped-done", "ran"]
    assert records["c"].outputs["saw"] == {"a": 1, "b": 2}
    done = json.loads((tmp_path / "w" / "a" / "DONE").read_text())
    assert done["outputs"]["v"] == 1 and done["signature"] == {"va": 1}


def test_from_and_force_rerun_and_clear_stage_folders(tmp_path):
    calls: list[str] = []
    value = {"a": 1, "b": 2, "c": 3}
    run_stages(_counting_stages(calls, value), _ctx(tmp_path))
    marker = tmp_path / "w" / "b" / "old.txt"
    marker.write_text("old")
    run_stages(_counting_stages(calls, value), _ctx(tmp_path), from_stage="b")
    assert calls[3:] == ["b", "c"] and not marker.exists()
    run_stages(_counting_stages(calls, value), _ctx(tmp_path), force=True)
    assert calls[5:] == ["a", "b", "c"]


def test_changed_settings_of_a_finished_stage_stop_the_run(tmp_path):
    calls: list[str] = []
    run_stages(_counting_stages(calls, {"a": 1, "b": 2, "c": 3}), _ctx(tmp_path))
    with pytest.raises(PipelineError, match=r"stage a finished earlier with other settings \(va: 1 -> 5\).*--from a"):
        run_stages(_counting_stages(calls, {"a": 5, "b": 2, "c": 3}), _ctx(tmp_path))


def test_skip_and_failed_stage_resumes_in_place(tmp_path):
    calls: list[str] = []
    value = {"a": 1, "b": 2, "c": 3}
    with pytest.raises(RuntimeError, match="b broke"):
        run_stages(_counting_stages(calls, value, fail={"b"}), _ctx(tmp_path))
    assert not (tmp_path / "w" / "b" / "DONE").exists()
    records = run_stages(_counting_stages(calls, value), _ctx(tmp_path))
    assert (tmp_path / "w" / "b" / "partial.txt").exists()  # unfinished folder kept: verl resumes from it
    assert records["b"].status == "ran"
    ctx = _ctx(tmp_path)
    records = run_stages(_counting_stages(calls, value), ctx, skip=["b"], force=True)
    assert records["b"].status == "skipped" and records["c"].outputs["saw"] == {"a": 1, "b": None}
    with pytest.raises(PipelineError, match="unknown stage 'z'"):
        run_stages(_counting_stages(calls, value), _ctx(tmp_path), skip=["z"])


def test_failing_command_raises_with_the_log_tail(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.current = "x"
    ctx.stage_dir().mkdir(parents=True)
    with pytest.raises(PipelineError, match=r"(?s)stage x: .* status 3.*boom-line.*full log"):
        ctx.run_command(["bash", "-c", "echo boom-line; exit 3"])
    ctx.options.stage_timeout_s = 0.5
    with pytest.raises(PipelineError, match="timed out"):
        ctx.run_command(["sleep", "30"])


# ------------------------------------------------------------------------------------------------ stages
def _fake_checkpoint(root: Path, step: int, *parts: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "latest_checkpointed_iteration.txt").write_text(str(step))
    hf = root.joinpath(f"global_step_{step}", *parts, "huggingface")
    hf.mkdir(parents=True)
    (hf / "config.json").write_text("{}")
    (hf / "model.safetensors").write_bytes(b"x")
    return hf


def test_hf_weights_are_found_in_the_last_checkpoint(tmp_path):
    expected = _fake_checkpoint(tmp_path / "sft", 12)
    assert sft_hf_model(tmp_path / "sft") == expected
    expected = _fake_checkpoint(tmp_path / "rl", 3, "actor")
    assert rl_hf_model(tmp_path / "rl") == expected
    with pytest.raises(PipelineError, match="saved nothing"):
        sft_hf_model(tmp_path / "none")
    (tmp_path / "bare" / "global_step_1" / "actor").mkdir(parents=True)
    (tmp_path / "bare" / "latest_checkpointed_iteration.txt").write_text("1")
    with pytest.raises(PipelineError, match="needs hf_model"):
        rl_hf_model(tmp_path / "bare")


def _value(cmd: list[str], key: str) -> str:
    hits = [a.split("=", 1)[1] for a in cmd if a.split("=", 1)[0].lstrip("+") == key]
    assert len(hits) == 1, (key, cmd)
    return hits[0]


def test_phase2_command_hands_over_weights_difficulty_and_fresh_folder(tmp_path):
    o = cpu_demo_options(tmp_path, overrides={"rl": ["trainer.seed=3"], "phase2": ["data.train_batch_size=8"]})
    cmd = rl_command(o, 2, train="t.parquet", val="v.parquet", model="/p1/hf", ckpt=tmp_path / "phase2" / "ckpt",
                     difficulty_out=difficulty_output(tmp_path / "phase2"), difficulty_in="/p1/difficulty.json",
                     judge_url="http://127.0.0.1:1/v1")
    assert cmd[2:5] == ["verl.trainer.main_ppo", "+recipe=qwenlong_phase2", "+qwenlong_env=cpu"]
    assert _value(cmd, "actor_rollout_ref.model.path") == "/p1/hf"
    assert _value(cmd, "trainer.default_local_dir") == str(tmp_path / "phase2" / "ckpt")
    assert _value(cmd, "qwenlong.retrospective.difficulty_file") == "/p1/difficulty.json"
    assert _value(cmd, "qwenlong.retrospective.enable") == "true"
    assert _value(cmd, "qwenlong.curriculum.phase") == "2"
    assert _value(cmd, "qwenlong.curriculum.lengths") == "[320,600]"
    assert _value(cmd, "trainer.total_training_steps") == _value(cmd, "trainer.save_freq") == "12"
    assert _value(cmd, "trainer.total_epochs") == "12"  # the step count, not the epochs, ends the run
    assert _value(cmd, "actor_rollout_ref.rollout.n") == "8"  # the demo's G
    assert "hf_model" in _value(cmd, "actor_rollout_ref.actor.checkpoint.save_contents")
    assert _value(cmd, "qwenlong.judge.base_url") == "http://127.0.0.1:1/v1"
    assert cmd[-2:] == ["trainer.seed=3", "data.train_batch_size=8"]  # the user's overrides come last
    assert retrospective_overrides(None, "zero_mean") == ["++qwenlong.retrospective.enable=false"]


def test_phase2_continues_phase1_or_its_own_interrupted_attempt(tmp_path):
    """Phase II resumes phase I's last checkpoint; re-run after an interruption it goes on from its own last
    checkpoint (verl's auto mode in its own folder), with the same totals: phase I's steps + its own."""
    o = cpu_demo_options(tmp_path)
    p1 = tmp_path / "phase1" / "ckpt" / "global_step_12"
    first = rl_command(o, 2, train="t", val="v", model="m", ckpt=tmp_path / "phase2" / "ckpt", difficulty_out=None,
                       difficulty_in=None, judge_url=None, resume_from=p1)
    assert _value(first, "trainer.resume_mode") == "resume_path"
    assert _value(first, "trainer.resume_from_path") == str(p1)
    again = rl_command(o, 2, train="t", val="v", model="m", ckpt=tmp_path / "phase2" / "ckpt", difficulty_out=None,
                       difficulty_in=None, judge_url=None, resume_from=p1, own_progress=True)
    assert _value(again, "trainer.resume_mode") == "auto"
    assert not any(a.startswith("trainer.resume_from_path") for a in again)
    for cmd in (first, again):
        assert [a for a in cmd if a.startswith("trainer.total_training_steps")][-1] == "trainer.total_training_steps=24"


def test_a_rerun_of_an_interrupted_phase2_keeps_its_steps(tmp_path, monkeypatch):
    """run_phase: a phase II folder without checkpoints starts from phase I's; one holding an interrupted attempt's
    checkpoints goes on from them (the command verl gets, captured at the stage runner)."""
    import pandas as pd

    ctx = StageContext(options=cpu_demo_options(tmp_path / "w"))
    _fake_checkpoint(tmp_path / "p1ckpt", 12, "actor")
    train = tmp_path / "train.parquet"
    pd.DataFrame({"prompt_length": [200, 500], "data_source": ["d", "d"],
                  "extra_info": [{"index": 0}, {"index": 1}]}).to_parquet(train)
    ctx.records = {"data": StageRecord("data", "ran", {"train": str(train), "val": str(train), "model": "/base"}),
                   "phase1": StageRecord("phase1", "ran", {"hf_model": "/p1", "ckpt": str(tmp_path / "p1ckpt")})}
    ctx.current = "phase2"
    commands: list[list[str]] = []

    def verl_saves_step(step: int):
        def run_command(cmd, **_):
            commands.append(list(cmd))
            _fake_checkpoint(ctx.stage_dir() / "ckpt", step, "actor")
        return run_command

    ctx.stage_dir().mkdir(parents=True)
    monkeypatch.setattr(ctx, "run_command", verl_saves_step(15))  # killed after step 15 of 24
    run_phase(ctx, 2)
    assert _value(commands[-1], "trainer.resume_mode") == "resume_path"
    monkeypatch.setattr(ctx, "run_command", verl_saves_step(24))
    out = run_phase(ctx, 2)
    assert _value(commands[-1], "trainer.resume_mode") == "auto"  # its own global_step_15, not phase I's step 12
    assert out["continued_own_attempt"] == str(ctx.stage_dir() / "ckpt" / "global_step_15")
    assert out["continued_from"] == str(tmp_path / "p1ckpt" / "global_step_12")


def test_gpu_commands_follow_the_recipes(tmp_path):
    o = PipelineOptions(mode="gpu", workdir=tmp_path, ray_address="10.0.0.1:6379", nproc_per_node=8)
    cmd = rl_command(o, 2, train="t", val="v", model="m", ckpt=tmp_path, difficulty_out=None, difficulty_in=None,
                     judge_url=None)
    assert "+qwenlong_env=cpu" not in cmd and "+qwenlong_rope=yarn" in cmd
    assert _value(cmd, "ray_kwargs.ray_init.address") == "10.0.0.1:6379"
    assert _value(cmd, "trainer.nnodes") == "1" and _value(cmd, "trainer.n_gpus_per_node") == "8"
    assert _value(cmd, "qwenlong.curriculum.lengths") == "[20000,60000]"
    assert not any(a.startswith("trainer.total_training_steps") for a in cmd)  # the recipe's epochs
    sft = sft_command(o, "sft.parquet", "base", tmp_path / "ckpt")
    assert "--nproc_per_node=8" in sft and "+sft_recipe=qwenlong_sft" in sft
    assert _value(sft, "trainer.total_epochs") == "3"
    ray_sft = sft_command(PipelineOptions(mode="gpu", sft_launcher="ray"), "d", "m", tmp_path)
    assert ray_sft[1:3] == ["-m", "verl.trainer.sft_trainer_ray"]


def test_each_stage_starts_from_the_latest_trained_model(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.records = {"data": StageRecord("data", "ran", {"model": "/base"}), "sft": StageRecord("sft", "skipped"),
                   "phase1": StageRecord("phase1", "ran", {"hf_model": "/p1"})}
    assert input_model(ctx, "phase1") == ("/base", "base")
    assert input_model(ctx, "phase2") == ("/p1", "phase1")
    ctx.records["sft"] = StageRecord("sft", "skipped-done", {"hf_model": "/sft"})
    assert input_model(ctx, "phase1") == ("/sft", "sft")


def test_options_reject_bad_values():
    with pytest.raises(ValueError, match="phase_lengths"):
        PipelineOptions(phase_lengths=(500, 100))
    with pytest.raises(ValueError, match="unknown stage 'phase3'"):
        PipelineOptions(overrides={"phase3": ["a=1"]})
    with pytest.raises(ValueError, match="eval_models"):
        PipelineOptions(eval_models=("best",))


def test_cli_defaults_are_the_cpu_demo(tmp_path):
    from qwenlong_verl.cli import build_parser
    from qwenlong_verl.commands.pipeline import options_from_args

    args = build_parser().parse_args(["pipeline"])
    o = options_from_args(args)
    assert o.mode == "cpu" and o.workdir == Path.cwd() / "qwenlong_demo" and o.standin_judge and o.phase1_steps == 12
    assert o.demo.kinds == ("needle",) and o.demo.pretrain_steps == 400 and o.eval_samples == 2
    o = options_from_args(build_parser().parse_args(["pipeline", "--demo-pretrain-steps", "0", "--rl-override", "a=1"]))
    assert o.demo.pretrain_steps == 0 and o.overrides["rl"][-1] == "a=1"  # after the demo's own batch settings
    assert o.overrides["rl"][0] == "data.train_batch_size=8"
    args = build_parser().parse_args(["pipeline", "--gpu", "--model", "m", "--phase1-override", "a=1",
                                      "--judge-url", "http://j/v1", "--phase-lengths", "20000,60000"])
    o = options_from_args(args)
    assert (o.mode, o.model, o.overrides, o.standin_judge, o.eval_backend) == ("gpu", "m", {"phase1": ["a=1"]},
                                                                               False, "endpoint")
    assert o.phase1_steps is None and o.max_response_length is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pipeline", "--phase-lengths", "9,3"])


# ------------------------------------------------------------------------------------------------ report
def _metrics(path: Path, rows: list[tuple[int, dict]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in rows))


def test_report_summarises_every_stage(tmp_path):
    sft_m, p1_m, p2_m = tmp_path / "sft.jsonl", tmp_path / "p1" / "metrics.jsonl", tmp_path / "p2" / "metrics.jsonl"
    _metrics(sft_m, [(1, {"train/loss": 5.0}), (2, {"train/loss": 3.0})])
    _metrics(p1_m, [(1, {"critic/score/mean": 0.25, "qwenlong/reward/acc_mean": 0.2, "qwenlong/judge/calls": 10,
                         "qwenlong/judge/call_rate": 0.5, "qwenlong/phase": 1.0,
                         "training/filter_groups/evicted_samples": 4}),
                    (2, {"critic/score/mean": 0.5, "qwenlong/reward/acc_mean": 0.4, "qwenlong/judge/calls": 6,
                         "qwenlong/judge/call_rate": 0.3, "qwenlong/phase": 1.0})])
    # phase II was interrupted after step 1 and resumed: the rotated log holds step 1, the new one steps 1-2
    _metrics(p2_m.with_name("metrics.1.jsonl"), [(1, {"critic/score/mean": 0.0, "old": 1})])
    _metrics(p2_m, [(1, {"critic/score/mean": 0.75, "qwenlong/retro_pool": 5, "qwenlong/retro_in_batch": 2}),
                    (2, {"critic/score/mean": 1.0, "qwenlong/retro_pool": 5, "qwenlong/retro_in_batch": 1,
                         "qwenlong/phase": 2.0})])
    steps = read_metrics(p2_m)
    assert [s["step"] for s in steps] == [1, 2] and steps[0]["data"] == {"critic/score/mean": 0.75, "old": 1,
                                                                         "qwenlong/retro_pool": 5,
                                                                         "qwenlong/retro_in_batch": 2}
    sizes = {"rows": 10, "outside_all_phases": 0, "phase1": {"band_size": 6, "retro_candidates": 0},
             "phase2": {"band_size": 4, "retro_candidates": 3},
             "difficulty": {"examples": 6, "zero_mean": 3, "all_correct": 1}}
    records = {
        "data": StageRecord("data", "skipped-done", {"model": "/m", "phase_sizes": sizes}, 2.0),
        "sft": StageRecord("sft", "ran", {"metrics": str(sft_m), "hf_model": "/sft"}, 10.0),
        "phase1": StageRecord("phase1", "ran", {"metrics": str(p1_m), "hf_model": "/p1", "start_stage": "sft",
                                                "start_model": "/sft", "difficulty_file": "/p1/difficulty.json",
                                                "phase_sizes": sizes}, 60.0),
        "phase2": StageRecord("phase2", "ran", {"metrics": str(p2_m), "hf_model": "/p2", "start_stage": "phase1",
                                                "start_model": "/p1", "retrospective_file": "/p1/difficulty.json",
                                                "phase_sizes": sizes}, 50.0),
        "eval": StageRecord("eval", "ran", {"models": {"sft": {"model": "/sft", "rows": 8, "score": 12.5,
                                                               "rule_acc": 12.5, "judge_calls": 3, "judge_yes": 0}}}),
    }
    report = build_report(tmp_path, records)
    p1, p2 = report["stages"]["phase1"], report["stages"]["phase2"]
    assert (p1["steps"], p1["reward_mean"], p1["reward_first"], p1["reward_last"]) == (2, 0.375, 0.25, 0.5)
    assert (p1["judge_calls"], p1["judge_call_rate"], p1["dapo_evicted"], p1["phase"]) == (16, 0.4, 4, 1)
    assert (p2["reward_mean"], p2["retro_pool"], p2["retro_in_batches"], p2["retro_candidates"]) == (0.875, 5, 3, 3)
    assert p2["phase_band_size"] == 4 and p2["start_stage"] == "phase1"
    assert report["stages"]["sft"]["loss_first"] == 5.0 and report["total_wall_s"] == 122.0
    md = render_markdown(report)
    assert "| phase2 | ran | 50 | 2 | 0.875 | 0.750 → 1 |" in md
    assert "pool 5, 3 trained (from difficulty.json)" in md and "| sft | 8 | 12.5 |" in md
    paths = write_report(tmp_path, records, tmp_path / "out")
    assert Path(paths["png"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads(Path(paths["json"]).read_text())["curves"]["phase2"][1] == [2, 1.0, None]


def test_report_says_whether_the_run_learns(tmp_path):
    """First vs last steps per phase, and the held-out gain of the final model over SFT with a paired bootstrap
    interval from the eval stage's scored rows (several samples per row)."""
    p1_m = tmp_path / "p1" / "metrics.jsonl"
    _metrics(p1_m, [(i, {"critic/score/mean": r}) for i, r in enumerate([0.1, 0.2, 0.1, 0.5, 0.6, 0.7], 1)])
    p2_m = tmp_path / "p2" / "metrics.jsonl"
    _metrics(p2_m, [(i, {"critic/score/mean": r}) for i, r in enumerate([0.6, 0.5, 0.4, 0.3], 1)])

    def scored(label: str, hit) -> str:
        path = tmp_path / f"{label}_scored.jsonl"
        path.write_text("".join(json.dumps({"id": f"r{i}", "sample": k, "score": float(hit(i, k))}) + "\n"
                                for i in range(40) for k in range(2)))
        return str(path)

    models = {"sft": {"rows": 40, "score": 10.0, "scored": scored("sft", lambda i, k: i < 4)},
              "phase2": {"rows": 40, "score": 55.0, "scored": scored("phase2", lambda i, k: i < 20 or (i < 24 and k))}}
    records = {"phase1": StageRecord("phase1", "ran", {"metrics": str(p1_m)}, 1.0),
               "phase2": StageRecord("phase2", "ran", {"metrics": str(p2_m)}, 1.0),
               "eval": StageRecord("eval", "ran", {"models": models}, 1.0)}
    learning = build_report(tmp_path, records)["learning"]
    p1, p2 = learning["phases"]["phase1"]["reward"], learning["phases"]["phase2"]["reward"]
    assert p1["first"] == pytest.approx(0.4 / 3) and p1["last"] == pytest.approx(0.6) and p1["rises"]
    assert p2["first"] == pytest.approx(0.55) and p2["last"] == pytest.approx(0.35) and not p2["rises"]
    h = learning["heldout"]
    assert (h["rows"], h["before"], h["after"]) == (40, 0.1, 0.55) and h["gain_excludes_0"]
    assert h["gain"]["estimate"] == pytest.approx(0.45) and 0 < h["gain"]["low"] < 0.45 < h["gain"]["high"]
    md = render_markdown(build_report(tmp_path, records))
    assert "## Does it learn?" in md and "phase2, mean of the first vs the last 2 steps" not in md
    assert "phase1, mean of the first vs the last 3 steps: reward 0.133 → 0.600 (rises)" in md
    assert "(does not rise)" in md and "gain +45.0 points" in md and "excludes 0: a real gain" in md
    # the same model twice: no gain shown
    models["phase2"] = models["sft"]
    md = render_markdown(build_report(tmp_path, records))
    assert "includes 0: no gain shown" in md


def test_report_gives_each_phase_its_own_heldout_gain_and_names_an_empty_pool(tmp_path):
    """SFT -> phase I -> phase II: a phase II that adds nothing on the held-out rows is visible as its own line, and
    an empty retrospective pool is said, not left as 'pool 0'."""
    def scored(label: str, hit) -> str:
        path = tmp_path / f"{label}_scored.jsonl"
        path.write_text("".join(json.dumps({"id": f"r{i}", "sample": 0, "score": float(hit(i))}) + "\n"
                                for i in range(40)))
        return str(path)

    models = {"sft": {"scored": scored("sft", lambda i: i < 4)},
              "phase1": {"scored": scored("phase1", lambda i: i < 24)},
              "phase2": {"scored": scored("phase2", lambda i: i < 24)}}
    p2_m = tmp_path / "p2" / "metrics.jsonl"
    _metrics(p2_m, [(i, {"critic/score/mean": 0.5, "qwenlong/retro_pool": 0.0}) for i in (3, 4)])
    records = {"phase2": StageRecord("phase2", "ran", {"metrics": str(p2_m), "retrospective_file": "d.json"}, 1.0),
               "eval": StageRecord("eval", "ran", {"models": models}, 1.0)}
    report = build_report(tmp_path, records)
    learning = report["learning"]
    steps = {(h["before_label"], h["after_label"]): h for h in learning["heldout_steps"]}
    assert steps[("sft", "phase1")]["gain"]["estimate"] == pytest.approx(0.5)
    assert steps[("sft", "phase1")]["gain_excludes_0"]
    assert steps[("phase1", "phase2")]["gain"]["estimate"] == 0.0
    md = render_markdown(report)
    assert "phase1 alone (40 rows): sft 10.0 % → phase1 60.0 %" in md
    assert "phase2 alone (40 rows): phase1 60.0 % → phase2 60.0 %, gain +0.0 points" in md
    assert "retrospective pool of phase II: 0 example(s): phase I left no unsolved example" in md


# ------------------------------------------------------------------------------------------------ judge
def test_standin_judge_speaks_the_reward_judge_protocol():
    from qwenlong_verl.reward.judge import JUDGE_USER_TEMPLATE, parse_verdict

    assert similarity("The Amber", "amber!") == 1.0 and similarity("x", "") == 0.0
    yes = verdict_text(JUDGE_USER_TEMPLATE.format(question="q", gold="emerald", answer="emerld"))
    no = verdict_text(JUDGE_USER_TEMPLATE.format(question="q", gold="emerald", answer="violet"))
    assert parse_verdict(yes) is True and parse_verdict(no) is False
    assert parse_verdict(verdict_text("nothing to compare")) is None
    with StandinJudge() as judge:
        r = httpx.post(judge.base_url + "/chat/completions", json={"model": "j", "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": JUDGE_USER_TEMPLATE.format(question="q", gold="Ivory", answer="ivory.")}]})
        assert r.status_code == 200
        assert parse_verdict(r.json()["choices"][0]["message"]["content"]) is True
        assert httpx.post(judge.base_url + "/chat/completions", content=b"{").status_code == 400
        assert (judge.requests, judge.yes) == (1, 1)


def test_eval_stage_against_a_served_model(tmp_path, tiny_model_dir):
    """The GPU eval path: `qwenlong-verl eval` against an OpenAI-compatible server (a scripted one here)."""
    from fake_openai_server import FakeOpenAIServer

    from qwenlong_verl.data.synth import generate_docqa, write_rows
    from qwenlong_verl.pipeline.stages import run_eval

    rows = generate_docqa(6, min_tokens=120, max_tokens=200, seed=4, kinds=("copy",))
    data = tmp_path / "eval.parquet"
    write_rows(rows, str(data))
    golds = [r["reward_model"]["ground_truth"] for r in rows]
    answer = golds[0]
    with FakeOpenAIServer(responder=lambda messages: f"<think>x</think> Therefore, the answer is {answer}.") as srv:
        o = PipelineOptions(mode="gpu", workdir=tmp_path / "w", eval_backend="endpoint", eval_endpoint=srv.base_url,
                            eval_served_model="served", eval_max_new_tokens=32)
        ctx = StageContext(options=o, records={"data": StageRecord("data", "ran", {"model": "/m", "eval": [str(data)]}),
                                               "phase2": StageRecord("phase2", "ran",
                                                                     {"hf_model": str(tiny_model_dir)})})
        ctx.current = "eval"
        ctx.stage_dir().mkdir(parents=True)
        out = run_eval(ctx)
    m = out["models"]["phase2"]
    assert m["model"] == "served" and m["rows"] == 6
    assert m["score"] == pytest.approx(100.0 * golds.count(answer) / len(golds), abs=0.01)
