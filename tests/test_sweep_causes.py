"""Issue 24: a failed sweep job names its cause, in the launcher's per-job line and in sweep-report, redacted. The
per-job line used to end with submitit's log path ("- .../.submitit/1/1_0_log.out") and the report's cell with the
guard's heading ("qwenlong-verl: this run would fail ..."), neither saying what was wrong. A real sweep whose point the guard refuses is the second point of the local sweep
in ``test_sweeps.py``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from qwenlong_verl.hydra.sweep import STATUS_FILE
from qwenlong_verl.hydra.sweep_causes import cause_line
from qwenlong_verl.hydra.sweep_report import write_report

GUARD = ("qwenlong-verl: this run would fail on the GPU workers or the TaskRunner:\n"
         "  - qwenlong.curriculum.phase=3 is not a phase of qwenlong.curriculum.lengths=[384, 1024] (phases 1..2)\n"
         "  - data.train_files: /d/x.parquet does not exist. Fix: `qwenlong-verl prepare ...`\n"
         "(`qwenlong-verl preflight <the same overrides>` runs every check, verl's own included)")
SUBMITIT = ("Job (task=0) failed during processing with trace:\n----------------------\n{inner}\n"
            "----------------------\nYou can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
            "  - /s/.submitit/1/1_0_log.err\n  - /s/.submitit/1/1_0_log.out")
RAY_SP = ("ray.exceptions.RayTaskError(AssertionError): ray::TaskRunner.run() (pid=7, ip=127.0.0.1)\n"
          '  File "verl/workers/engine/fsdp/transformer_impl.py", line 210, in _build_module\n'
          "    assert num_heads % sp_size == 0\n"
          "AssertionError: num_attention_heads (4) must be divisible by ulysses_sequence_parallel_size (8)")


def test_the_cause_is_found_under_every_wrapper():
    assert cause_line(SUBMITIT.format(inner=GUARD)) == (
        "qwenlong.curriculum.phase=3 is not a phase of qwenlong.curriculum.lengths=[384, 1024] (phases 1..2) "
        "(+1 more)")
    assert cause_line(RAY_SP) == ("AssertionError: num_attention_heads (4) must be divisible by "
                                  "ulysses_sequence_parallel_size (8)")
    assert cause_line(SUBMITIT.format(inner=RAY_SP)).startswith("AssertionError: num_attention_heads (4)")
    bare = 'Traceback (most recent call last):\n  File "x.py", line 3, in f\n    assert n_heads % sp == 0\nAssertionError'
    assert cause_line(bare) == "AssertionError at `assert n_heads % sp == 0`"
    assert cause_line("TypeError: '>' not supported between 'str' and 'float'\n") == (
        "TypeError: '>' not supported between 'str' and 'float'")
    assert cause_line(None) is None and cause_line("  \n") is None


def test_the_cause_is_redacted():
    text = "ValueError: login to https://bob:pw-778899@hub.example failed with +trainer.wandb_api_key=wk-s3cret-1"
    line = cause_line(text)
    assert line.startswith("ValueError: login to") and "pw-778899" not in line and "wk-s3cret-1" not in line


def test_report_names_the_cause_of_a_failed_job(tmp_path):
    sweep = tmp_path / "sweep"
    for num, status in ((0, {"status": "failed", "error": GUARD}), (1, {"status": "failed", "error": RAY_SP})):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"x.sp={8 * (num + 1)}"]))
        (job / STATUS_FILE).write_text(json.dumps({"job_num": num, **status}))
    report, paths = write_report(sweep, sweep, plot=False)
    assert [r["cause"] for r in report["jobs"]] == [cause_line(GUARD), cause_line(RAY_SP)]
    md = Path(paths["md"]).read_text()
    assert "qwenlong.curriculum.phase=3 is not a phase" in md and "this run would fail" not in md
    assert "AssertionError: num_attention_heads (4) must be divisible" in md
