"""bench/ablation_report.py: files written, JSON numbers equal a direct computation, and the "what it shows" list
says "excludes 0" for a constructed clear win and "includes 0" for a constructed null."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from qwenlong_verl.evaluation.bootstrap import clustered_diff_ci, clustered_mean_ci, mean_ci

BENCH = Path(__file__).resolve().parent.parent / "bench" / "ablation_report.py"
BANDS = ["≤400", "400–800"]
ROWS = 120
N_BOOT = 400


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("ablation_report_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _eval_rows(p: float, seed: int) -> list[dict]:
    """ROWS rows, half in each band, correct with probability ``p`` (exact count per band, shuffled)."""
    rng = np.random.default_rng(seed)
    rows = []
    for b, band in enumerate(BANDS):
        n = ROWS // len(BANDS)
        correct = np.zeros(n, dtype=int)
        correct[: round(p * n)] = 1
        rng.shuffle(correct)
        rows += [{"id": f"q{b}-{i}", "prompt_length": 200 + 400 * b + i, "band": band, "correct": int(c)}
                 for i, c in enumerate(correct)]
    return rows


def _record(arm: str, label: str, seed: int, p: float, reward_end: float) -> dict:
    steps = 12
    rewards = [[s, 0.2 + (reward_end - 0.2) * s / (steps - 1) + 0.01 * seed, None] for s in range(steps)]
    return {"arm": arm, "label": label, "seed": seed, "rewards": rewards, "eval": _eval_rows(p, 100 * seed + len(arm)),
            "judge_calls": 40 + seed, "judge_rescues": 3 + seed, "scored": 96, "wall_s": 100.0 + seed,
            "rl_steps": steps}


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    """Arm a: 30 % (same as SFT); arm b: 80 % (clear win); arm c: 30 % again (null); 3 seeds each."""
    records = []
    for arm, label, p, end in (("a_grpo", "verl GRPO (stock)", 0.3, 0.4), ("b_full", "full recipe", 0.8, 0.9),
                               ("c_null", "no-op change", 0.3, 0.4)):
        for seed in range(3):
            # seeds spread a little around p so the clustered interval has seed variance
            records.append(_record(arm, label, seed, p + 0.05 * (seed - 1), end))
    meta = {"command": "python bench/bench_ablation.py --seeds 0 1 2", "seeds": [0, 1, 2], "steps": 12, "batch": 8,
            "rollouts": 8, "lr": 2e-4, "task": "synthetic copy DocQA", "machine": "test", "started": "t0",
            "finished": "t1", "bands": BANDS, "sft_eval": _eval_rows(0.3, 999), "window": 3}
    out = tmp_path_factory.mktemp("ablation")
    paths = report.write_report(records, out, meta, n_boot=N_BOOT, seed=0)
    return records, meta, out, paths


def test_files_exist_and_no_temporaries(written):
    _, _, out, paths = written
    assert {p.name for p in paths.values()} == {"ablation.json", "ablation.md", "ablation.png"}
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["ablation.json", "ablation.md", "ablation.png"]


def test_json_numbers_match_direct_computation(written):
    records, meta, _, paths = written
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["records"] == records and doc["meta"]["bands"] == BANDS
    summary = doc["summary"]
    assert [a["arm"] for a in summary["arms"]] == ["a_grpo", "b_full", "c_null"]
    groups = {arm: [[r["correct"] for r in rec["eval"]] for rec in records if rec["arm"] == arm]
              for arm in ("a_grpo", "b_full", "c_null")}
    sft = [r["correct"] for r in meta["sft_eval"]]
    boot = {"n_boot": N_BOOT, "seed": 0}
    a, b, c = summary["arms"]
    assert b["accuracy"] == clustered_mean_ci(groups["b_full"], **boot).as_dict()
    assert b["accuracy"]["estimate"] == pytest.approx(np.mean(groups["b_full"]))
    assert b["vs_sft"] == clustered_diff_ci([sft], groups["b_full"], **boot).as_dict()
    assert b["vs_first"] == clustered_diff_ci(groups["a_grpo"], groups["b_full"], **boot).as_dict()
    assert a["vs_first"] is None
    assert summary["sft"]["accuracy"] == mean_ci(sft, **boot).as_dict()
    band_b = [[r["correct"] for r in rec["eval"] if r["band"] == BANDS[1]] for rec in records
              if rec["arm"] == "b_full"]
    assert b["bands"][BANDS[1]]["accuracy"] == clustered_mean_ci(band_b, **boot).as_dict()
    assert b["bands"][BANDS[1]]["rows"] == ROWS // 2
    # final-window reward: mean of the last 3 logged scores per seed, then mean and sd over seeds
    finals = [np.mean([row[1] for row in rec["rewards"][-3:]]) for rec in records if rec["arm"] == "b_full"]
    assert b["reward"]["final"]["mean"] == pytest.approx(np.mean(finals))
    assert b["reward"]["final"]["sd"] == pytest.approx(np.std(finals, ddof=1))
    assert b["judge"] == {"calls": 40 + 41 + 42, "rescues": 3 + 4 + 5, "scored": 3 * 96,
                          "rescue_share": pytest.approx(12 / 288)}
    assert b["wall_s_mean"] == pytest.approx(101.0)


def _finding(md: str, label: str, ref: str) -> str:
    hits = [line for line in md.splitlines() if line.startswith(f"- **{label}** vs {ref}")]
    assert len(hits) == 1, (label, ref, md)
    return hits[0]


def test_markdown_names_arms_and_states_win_and_null(written):
    _, _, _, paths = written
    md = paths["md"].read_text(encoding="utf-8")
    for label in ("verl GRPO (stock)", "full recipe", "no-op change"):
        assert f"## {label}" in md
    assert "python bench/bench_ablation.py --seeds 0 1 2" in md and "[0, 1, 2]" in md
    assert "band ≤400" in md and "band 400–800" in md
    shows = md.split("## What it shows", 1)[1]
    win = _finding(shows, "full recipe", "**verl GRPO (stock)**")
    assert "excludes 0" in win and "higher" in win
    assert "excludes 0" in _finding(shows, "full recipe", "the SFT start")
    null = _finding(shows, "no-op change", "**verl GRPO (stock)**")
    assert "includes 0" in null and "no difference" in null
    assert "includes 0" in _finding(shows, "no-op change", "the SFT start")
    assert "includes 0" in _finding(shows, "verl GRPO (stock)", "the SFT start")


def test_main_rerenders_from_json(report, written, tmp_path):
    _, _, _, paths = written
    before = json.loads(paths["json"].read_text(encoding="utf-8"))["summary"]
    assert report.main([str(paths["json"]), "--out-dir", str(tmp_path), "--n-boot", str(N_BOOT)]) == 0
    assert json.loads((tmp_path / "ablation.json").read_text(encoding="utf-8"))["summary"] == before
    assert (tmp_path / "ablation.md").read_text(encoding="utf-8") == paths["md"].read_text(encoding="utf-8")
    assert (tmp_path / "ablation.png").is_file()
    assert report.main([str(tmp_path / "missing.json")]) == 2


def test_without_sft_and_single_arm(report, tmp_path):
    rec = _record("a_grpo", "stock", 0, 0.5, 0.5)
    paths = report.write_report([rec], tmp_path, {"bands": BANDS}, n_boot=100)
    summary = json.loads(paths["json"].read_text(encoding="utf-8"))["summary"]
    assert summary["sft"] is None and summary["arms"][0]["vs_sft"] is None
    assert "No differences could be computed" in paths["md"].read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="no records"):
        report.write_report([], tmp_path, {})


def test_paired_differences_match_rows_within_a_seed_and_cancel_seed_luck(report, tmp_path):
    """Two arms whose seed-level luck is shared (the same rows right on the same seed) and differ by exactly 10 % of
    rows: the paired interval is tight around +10 points, the band split follows the rows, and the seeds needed
    for +-5 points come from the spread of the per-seed differences."""
    records = []
    for seed in range(5):
        base = _eval_rows(0.2 + 0.1 * seed, seed)  # seed luck: 20 % .. 60 % right
        better = [dict(r) for r in base]
        wrong = [r for r in better if not r["correct"]]
        for r in wrong[: len(better) // 10]:  # 12 more rows right on every seed
            r["correct"] = 1
        for arm, rows in (("ref", base), ("new", better)):
            records.append({"arm": arm, "label": arm, "seed": seed, "eval": rows, "tokens": 1e6, "rl_steps": 10,
                            "wall_s": 60.0})
    meta = {"bands": BANDS, "paired": True, "comparisons": [["new", "ref", "the change"]]}
    summary = report.summarize(records, meta, n_boot=N_BOOT, seed=0)
    (piece,) = summary["pieces"]
    assert piece["paired"] and piece["seeds"] == 5 and piece["rows"] == ROWS
    assert piece["diff"]["estimate"] == pytest.approx(0.1)
    assert piece["diff"]["low"] > 0.05 and piece["diff"]["high"] < 0.15  # seed luck cancelled
    assert piece["per_seed"] == pytest.approx([0.1] * 5)
    assert piece["seeds_for_5pts"] == 2  # no spread between seeds: the minimum
    assert sum(piece["bands"][b]["diff"]["estimate"] for b in BANDS) == pytest.approx(0.2)
    unpaired = report.summarize(records, {**meta, "paired": False}, n_boot=N_BOOT, seed=0)["pieces"][0]
    assert unpaired["diff"]["high"] - unpaired["diff"]["low"] > 2 * (piece["diff"]["high"] - piece["diff"]["low"])
    md = report.render_markdown(summary, meta)
    assert "| the change | new vs ref | +10.0 pts" in md and "seeds for +-5 pts" in md and "## Compute" in md
    # a seed the reference did not run is left out of the pairing
    assert set(report.paired_differences(records[:-2] + records[-1:], [r for r in records if r["arm"] == "ref"][:4])
               ) == {0, 1, 2, 3}
