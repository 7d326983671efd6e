"""Phase bands, retrospective weighting, determinism and state round-trip of the phased sampler (no verl run)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from qwenlong_verl.config import QwenLongConfigError
from qwenlong_verl.sampling.difficulty import DifficultyFileError, DifficultyTable, difficulty_score
from qwenlong_verl.sampling.options import SamplingOptions, sampling_options
from qwenlong_verl.sampling.phases import (
    DatasetView,
    MissingLengthError,
    band_positions,
    epoch_seed,
    retrospective_count,
    retrospective_pool,
    view_from_arrow,
    weighted_pick,
)
from qwenlong_verl.sampling.sampler import PhasedRetrospectiveSampler


def _opts(**sections) -> SamplingOptions:
    return sampling_options({"qwenlong": sections})


def _view(lengths, offset=1000) -> DatasetView:
    return DatasetView(np.asarray(lengths), [offset + i for i in range(len(lengths))])


# ---------------------------------------------------------------- bands (Eq. 9)
def test_band_is_half_open_interval():
    lengths = np.array([10, 20, 21, 60, 61, 1, 20000])
    assert band_positions(lengths, 0, 20).tolist() == [0, 1, 5]
    assert band_positions(lengths, 20, 60).tolist() == [2, 3]
    assert band_positions(lengths, 60, None).tolist() == [4, 6]


def test_phase_bounds_exclusive_and_cumulative():
    view = _view([100, 200, 300, 400, 500])
    o = _opts(curriculum={"lengths": [250, 500], "phase": 2})
    s = PhasedRetrospectiveSampler(view, o)
    assert sorted(s.band.tolist()) == [2, 3, 4]
    oc = _opts(curriculum={"lengths": [250, 500], "phase": 2, "cumulative": True})
    assert sorted(PhasedRetrospectiveSampler(view, oc).band.tolist()) == [0, 1, 2, 3, 4]
    o1 = _opts(curriculum={"lengths": [250, 500], "phase": 1})
    assert sorted(PhasedRetrospectiveSampler(view, o1).band.tolist()) == [0, 1]
    assert sorted(PhasedRetrospectiveSampler(view, _opts()).band.tolist()) == [0, 1, 2, 3, 4]  # no lengths: all


def test_empty_phase_is_an_error_naming_bounds():
    with pytest.raises(ValueError, match=r"phase 2 \(250 < prompt_length <= 300\) has no examples"):
        PhasedRetrospectiveSampler(_view([100, 200, 400]), _opts(curriculum={"lengths": [250, 300], "phase": 2}))


# ---------------------------------------------------------------- options validation
@pytest.mark.parametrize("sections,kwargs,match", [
    ({"curriculum": {"lengths": [60000, 20000]}}, {}, r"increase strictly.*\[60000, 20000\]"),
    ({"curriculum": {"lengths": [20000, 20000]}}, {}, "increase strictly"),
    ({"curriculum": {"lengths": [20000, 60000], "phase": 3}}, {}, r"phase=3 is not a phase"),
    ({"curriculum": {"lengths": [20000, 60000], "phase": 2}}, {"max_prompt_length": 20000},
     r"data.max_prompt_length=20000 is below phase 2's upper bound L_2=60000"),
    ({"curriculum": {"lengths": [20, 60], "schedule": [{"phase": 1}, {"phase": 2, "until_step": 5}]}}, {},
     r"schedule\[0\].until_step is missing"),
    ({"curriculum": {"lengths": [20, 60], "schedule": [{"phase": 1, "until_step": 5},
                                                       {"phase": 2, "until_step": 5}]}}, {}, "must be greater"),
    ({"retrospective": {"enable": True, "mode": "weighted", "difficulty_file": "x"}}, {}, "needs .*ratio or .count"),
    ({"retrospective": {"enable": True}}, {}, "needs qwenlong.retrospective.difficulty_file"),
    ({"retrospective": {"ratio": 1.0}}, {}, r"ratio must be in \[0, 1\)"),
    ({"retrospective": {"ratio": 0.1, "count": 3}}, {}, "not both"),
    ({"retrospective": {"mode": "hardest"}}, {},
     r"qwenlong.retrospective.mode must be one of \('zero_mean', 'weighted'\), got 'hardest'"),
])
def test_inconsistent_options_are_named(sections, kwargs, match):
    with pytest.raises(QwenLongConfigError, match=match):
        _opts(**sections).validate(**kwargs)


def test_unknown_key_is_named():
    with pytest.raises(QwenLongConfigError, match=r"qwenlong.curriculum.lenghts"):
        _opts(curriculum={"lenghts": [1]})


def test_schedule_maps_steps_to_phases():
    o = _opts(curriculum={"lengths": [20, 60], "schedule": [{"phase": 1, "until_step": 3}, {"phase": 2}]})
    o.validate()
    assert [o.phase_at(s) for s in range(1, 7)] == [1, 1, 1, 2, 2, 2]


# ---------------------------------------------------------------- difficulty table and weighting (Eq. 10)
def _table(means_by_index: dict, phase=1, n=4) -> DifficultyTable:
    t = DifficultyTable()
    for idx, m in means_by_index.items():
        k = int(round(m * n))
        t.add(idx, step=1, phase=phase, rewards=[1.0] * k + [0.0] * (n - k))
    return t


def test_table_records_and_round_trip(tmp_path):
    t = DifficultyTable()
    used, skipped = t.add_records([
        {"index": 5, "acc": 1, "global_step": 1, "data_source": "docmath"},
        {"index": 5, "acc": 0, "global_step": 1},
        {"index": np.int64(5), "acc": 0, "global_step": 2},
        {"index": "q7", "acc": 0, "global_step": 2},
        {"index": 9, "acc": 1, "global_step": 2, "validate": True},  # validation: ignored
        {"index": None, "acc": 1, "global_step": 2},  # counted as skipped
    ], phase=1, lengths={5: 321})
    assert (used, skipped) == (4, 1)
    assert t.stats(5) == (3, pytest.approx(1 / 3))
    assert t.examples[5].history == [[1, 1, 2, 1.0], [2, 1, 1, 0.0]]
    assert t.examples[5].prompt_length == 321 and t.examples[5].data_source == "docmath"
    assert 9 not in t
    path = t.save(tmp_path / "d.json")
    back = DifficultyTable.load(path)
    assert back.to_dict() == t.to_dict()
    assert back.stats("q7") == (1, 0.0)
    (tmp_path / "bad.json").write_text(json.dumps({"examples": []}))
    with pytest.raises(DifficultyFileError, match="not a qwenlong difficulty file"):
        DifficultyTable.load(tmp_path / "bad.json")
    with pytest.raises(DifficultyFileError, match="does not exist"):
        DifficultyTable.load(tmp_path / "missing.json")


def test_zero_mean_pool_keeps_only_unsolved_earlier_examples():
    view = _view([100, 150, 200, 300, 400])  # indices 1000..1004; phase 1 = <=250
    table = _table({1000: 0.0, 1001: 0.5, 1002: 0.0, 99999: 0.0})  # 99999 is not in the data
    table.add(1003, step=9, phase=2, rewards=[0.0])  # phase-2 record: not "earlier" for phase 2
    o = _opts(curriculum={"lengths": [250, 500], "phase": 2},
              retrospective={"enable": True, "difficulty_file": "x"})
    pool = retrospective_pool(view, table, o, phase=2)
    assert [view.indices[p] for p in pool.positions] == [1000, 1002]
    assert pool.missing == 1
    s = PhasedRetrospectiveSampler(view, o, table)
    order = s.epoch_order().tolist()
    assert sorted(order) == [0, 2, 3, 4]  # band {3, 4} + all zero-mean picks (no ratio/count: keep all)
    assert s.retrospective_indices() == {1000, 1002}
    # members of an epoch are band examples or picks; anything outside the band can only be a pick
    assert s.is_retrospective(1000) and not s.is_retrospective(1003)
    # cumulative bands: picks repeat band examples, so membership is the epoch's pick list
    oc = _opts(curriculum={"lengths": [250, 500], "phase": 2, "cumulative": True},
               retrospective={"enable": True, "difficulty_file": "x"})
    sc = PhasedRetrospectiveSampler(view, oc, table)
    assert sorted(sc.epoch_order().tolist()) == [0, 0, 1, 2, 2, 3, 4]
    assert sc.is_retrospective(1000) and not sc.is_retrospective(1001) and not sc.is_retrospective(1004)


def test_retrospective_count_ratio_and_count():
    assert retrospective_count(_opts(retrospective={"ratio": 0.2}), band_size=80, n_candidates=1000) == 20
    assert retrospective_count(_opts(retrospective={"ratio": 0.2}), band_size=80, n_candidates=7) == 7
    assert retrospective_count(_opts(retrospective={"count": 3}), band_size=80, n_candidates=7) == 3
    assert retrospective_count(_opts(), band_size=80, n_candidates=7) == 7


def test_weighted_pick_follows_difficulty():
    # means 0, 0.5, 1 with eps 0.01: weights 100, ~1.96, ~0.99
    weights = [difficulty_score(m, 0.01) for m in (0.0, 0.5, 1.0)]
    assert weights[0] == pytest.approx(100.0)
    counts = Counter()
    for trial in range(3000):
        counts.update(weighted_pick(weights, 1, epoch_seed(0, trial)).tolist())
    p = np.array([counts[i] for i in range(3)]) / 3000
    expected = np.array(weights) / sum(weights)
    assert np.allclose(p, expected, atol=0.01), (p, expected)
    # without replacement: k distinct, all when k >= n
    assert sorted(weighted_pick([1, 1, 1, 1], 3, epoch_seed(1)).tolist()) == sorted(
        set(weighted_pick([1, 1, 1, 1], 3, epoch_seed(1)).tolist()))
    assert weighted_pick([1, 2], 5, epoch_seed(1)).tolist() == [0, 1]


def test_weighted_mode_pools_every_earlier_example_and_prefers_hard_ones():
    n_easy, n_hard = 50, 50
    lengths = [100] * (n_easy + n_hard) + [400] * 20
    view = _view(lengths)
    table = _table({**{1000 + i: 1.0 for i in range(n_easy)}, **{1000 + n_easy + i: 0.0 for i in range(n_hard)}})
    o = _opts(curriculum={"lengths": [250, 500], "phase": 2},
              retrospective={"enable": True, "difficulty_file": "x", "mode": "weighted", "count": 10})
    s = PhasedRetrospectiveSampler(view, o, table)
    assert len(s.pool) == 100 and len(s) == 30
    hard = 0
    for epoch in range(20):
        s.epoch = epoch
        picks = s.retrospective_positions()
        assert len(set(picks.tolist())) == 10
        hard += int((picks >= n_easy).sum())
    assert hard / 200 > 0.9  # weight 100 vs ~0.99 per example


# ---------------------------------------------------------------- determinism and epochs
def _drain(sampler) -> list[int]:
    return list(iter(sampler))


def test_deterministic_by_seed_and_new_order_each_epoch():
    view = _view(list(range(1, 41)))
    o = _opts(curriculum={"seed": 3})
    a, b = PhasedRetrospectiveSampler(view, o), PhasedRetrospectiveSampler(view, o)
    e0a, e0b = _drain(a), _drain(b)
    assert e0a == e0b and sorted(e0a) == list(range(40))
    e1 = _drain(a)
    assert sorted(e1) == list(range(40)) and e1 != e0a
    assert _drain(PhasedRetrospectiveSampler(view, _opts(curriculum={"seed": 4}))) != e0a
    assert _drain(PhasedRetrospectiveSampler(view, _opts(curriculum={"shuffle": False}))) == list(range(40))


def test_schedule_switches_phase_at_the_configured_step():
    view = _view([10] * 8 + [50] * 8)
    o = _opts(curriculum={"lengths": [20, 60], "schedule": [{"phase": 1, "until_step": 2}, {"phase": 2}]})
    s = PhasedRetrospectiveSampler(view, o)
    it = iter(s)
    s.set_step(1)
    first = [next(it) for _ in range(3)]
    s.set_step(3)  # phase 2 from step 3 on: the very next index comes from the new band
    after = [next(it) for _ in range(8)]
    assert all(p < 8 for p in first) and sorted(after) == list(range(8, 16))
    assert (s.phase, s.epoch) == (2, 0)


# ---------------------------------------------------------------- state round-trip through torchdata
class _Rows(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _loader(sampler, batch_size):
    return StatefulDataLoader(_Rows(len(sampler.view)), batch_size=batch_size, sampler=sampler, drop_last=True,
                              num_workers=0, collate_fn=lambda b: b)


def _consume(loader_holder, n_batches):
    """verl's _fetch_one_gen_batch: next(); on StopIteration a new iter()."""
    out = []
    for _ in range(n_batches):
        try:
            if loader_holder["it"] is None:
                loader_holder["it"] = iter(loader_holder["dl"])
            out.append(next(loader_holder["it"]))
        except StopIteration:
            loader_holder["it"] = iter(loader_holder["dl"])
            out.append(next(loader_holder["it"]))
    return out


@pytest.mark.parametrize("batch_size,cut", [(1, 7), (4, 3), (4, 6), (3, 5)])
def test_resume_mid_epoch_neither_repeats_nor_skips(batch_size, cut):
    lengths = [100] * 6 + [400] * 18
    view = _view(lengths)
    table = _table({1000 + i: (0.0 if i % 2 else 1.0) for i in range(6)})
    o = _opts(curriculum={"lengths": [250, 500], "phase": 2, "seed": 11},
              retrospective={"enable": True, "difficulty_file": "x"})
    total = 50 // batch_size  # more than two epochs
    ref = {"dl": _loader(PhasedRetrospectiveSampler(view, o, table), batch_size), "it": None}
    reference = _consume(ref, total)

    first = {"dl": _loader(PhasedRetrospectiveSampler(view, o, table), batch_size), "it": None}
    part1 = _consume(first, cut)
    state = first["dl"].state_dict()
    state = torch.load(_roundtrip_bytes(state), weights_only=False)  # as verl does with data.pt
    # the difficulty table changes after the checkpoint: the resumed phase must keep its pool
    table2 = _table({1000 + i: 0.0 for i in range(6)})
    resumed_sampler = PhasedRetrospectiveSampler(view, o, table2)
    second = {"dl": _loader(resumed_sampler, batch_size), "it": None}
    second["dl"].load_state_dict(state)
    part2 = _consume(second, total - cut)
    assert part1 + part2 == reference
    # one epoch = 18 band + 3 zero-mean picks; every epoch covers each exactly once
    flat = [i for b in reference for i in b]
    per_epoch = len(resumed_sampler)
    assert per_epoch == 21
    usable = per_epoch - per_epoch % batch_size  # drop_last drops the epoch's tail, like verl's own sampler
    epoch0 = PhasedRetrospectiveSampler(view, o, table).epoch_order().tolist()
    assert flat[:usable] == epoch0[:usable]
    assert Counter(epoch0) == Counter(list(range(6, 24)) + [1, 3, 5])
    assert flat[usable:2 * usable] != flat[:usable]  # the next epoch is a new order


def _roundtrip_bytes(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_state_of_other_data_or_phase_is_ignored_with_a_warning(caplog):
    view = _view([100] * 10 + [400] * 10)
    o2 = _opts(curriculum={"lengths": [250, 500], "phase": 2})
    s = PhasedRetrospectiveSampler(view, _opts(curriculum={"lengths": [250, 500], "phase": 1}))
    next(iter(s))
    state = s.state_dict()
    fresh = PhasedRetrospectiveSampler(view, o2)
    fresh.load_state_dict(state)
    assert (fresh.phase, fresh.position) == (2, 0)
    other = PhasedRetrospectiveSampler(_view([100] * 11 + [400] * 10), _opts(curriculum={"lengths": [250, 500]}))
    other.load_state_dict(state)
    assert other.position == 0
    assert "phase 1" in caplog.text and "other training data" in caplog.text


# ---------------------------------------------------------------- stored lengths
def test_view_requires_stored_lengths_and_indices():
    import pyarrow as pa

    ok = pa.table({"prompt_length": [5, 7], "extra_info": [{"index": 3}, {"index": 4}]})
    v = view_from_arrow(ok)
    assert v.lengths.tolist() == [5, 7] and v.indices == [3, 4]
    nested = pa.table({"extra_info": [{"index": 3, "prompt_length": 9}, {"index": 4, "prompt_length": 8}]})
    assert view_from_arrow(nested).lengths.tolist() == [9, 8]
    with pytest.raises(MissingLengthError, match="qwenlong-verl prepare"):
        view_from_arrow(pa.table({"extra_info": [{"index": 3}]}))
    with pytest.raises(MissingLengthError, match="extra_info.index"):
        view_from_arrow(pa.table({"prompt_length": [1], "extra_info": [{"split": "x"}]}))
    with pytest.raises(ValueError, match="share extra_info.index=3"):
        DatasetView(np.array([1, 2]), [3, 3])


def test_run_config_check_for_the_hydra_guard(tmp_path):
    from omegaconf import OmegaConf

    from qwenlong_verl.sampling.options import validate_run_config

    cfg = OmegaConf.create({
        "data": {"max_prompt_length": 20000}, "trainer": {"v1": {"trainer_mode": "qwenlong"}},
        "qwenlong": {"recipe_loaded": True, "curriculum": {"lengths": [20000, 60000], "phase": 2}}})
    with pytest.raises(QwenLongConfigError, match="below phase 2's upper bound"):
        validate_run_config(cfg)
    cfg.data.max_prompt_length = 60000
    validate_run_config(cfg)
    cfg.qwenlong.retrospective = {"enable": True, "difficulty_file": str(tmp_path / "none.json")}
    with pytest.raises(QwenLongConfigError, match="none.json' does not exist"):
        validate_run_config(cfg)
    cfg.trainer.v1.trainer_mode = "sync"  # our keys do nothing there: no error
    validate_run_config(cfg)


def test_dataset_view_reads_verl_dataset_without_tokenising(tmp_path, tiny_tokenizer):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from qwenlong_verl.data.synth import generate_docqa, write_rows
    from qwenlong_verl.integration.trainer_mode import dataset_view

    rows = generate_docqa(6, min_tokens=300, max_tokens=900, tokenizer=tiny_tokenizer, seed=2, index_offset=40)
    write_rows(rows, str(tmp_path / "t.parquet"))
    cfg = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 600, "filter_overlong_prompts": True,
                            "cache_dir": str(tmp_path / "c"), "filter_overlong_prompts_workers": 1})
    ds = RLHFDataset(str(tmp_path / "t.parquet"), tiny_tokenizer, cfg)  # verl's filter leaves an indices mapping
    view = dataset_view(ds, "prompt_length")
    kept = [r for r in rows if r["prompt_length"] <= 600]
    assert 0 < len(kept) < 6 and len(view) == len(ds)
    assert view.indices == [r["extra_info"]["index"] for r in kept]
    assert view.lengths.tolist() == [r["prompt_length"] for r in kept]
    assert [ds[p]["index"] for p in range(len(ds))] == view.indices  # position p of the view is row p of verl's


def test_sampler_seed_follows_data_seed_unless_set():
    """A sweep or an ablation over verl's ``data.seed`` must vary this sampler's epoch order too (it replaces verl's
    sampler, whose order follows data.seed); an explicit qwenlong seed wins; with neither, 42."""
    from qwenlong_verl.sampling.options import sampling_options

    follows = sampling_options({"data": {"seed": 7}, "qwenlong": {"curriculum": {"lengths": [10, 20]}}})
    assert follows.curriculum.seed == 7 and follows.retrospective.seed == 7
    explicit = sampling_options({"data": {"seed": 7}, "qwenlong": {"curriculum": {"seed": 3}}})
    assert explicit.curriculum.seed == 3 and explicit.retrospective.seed == 7
    assert sampling_options({"qwenlong": {}}).curriculum.seed == 42
    view = DatasetView(np.full(40, 5), list(range(40)))
    orders = {seed: PhasedRetrospectiveSampler(view, sampling_options({"data": {"seed": seed}, "qwenlong": {}}))
              .epoch_order().tolist() for seed in (0, 1)}
    assert orders[0] != orders[1]


def test_tilde_in_difficulty_paths_is_the_home_folder(monkeypatch, tmp_path):
    """`~/runs/p1/difficulty.json` in a Hydra override reaches us unexpanded (no shell expands it there): the check
    that the file exists and the trainer that reads or writes it must both see the home folder's file."""
    from qwenlong_verl.sampling.options import sampling_options, validate_run_config

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "p1").mkdir()
    (tmp_path / "p1" / "difficulty.json").write_text("{}")
    opts = sampling_options({"qwenlong": {"retrospective": {"enable": True, "difficulty_file": "~/p1/difficulty.json"},
                                          "difficulty": {"output_file": "~/p2/difficulty.json"}}})
    assert opts.retrospective.difficulty_file == str(tmp_path / "p1" / "difficulty.json")
    assert opts.difficulty.output_file == str(tmp_path / "p2" / "difficulty.json")
    cfg = {"trainer": {"v1": {"trainer_mode": "qwenlong"}, "total_training_steps": 4},
           "data": {"max_prompt_length": 100},
           "qwenlong": {"curriculum": {"lengths": [50, 100], "phase": 2},
                        "retrospective": {"enable": True, "difficulty_file": "~/p1/difficulty.json"}}}
    from omegaconf import OmegaConf

    validate_run_config(OmegaConf.create(cfg))  # the file exists under ~: no error
    cfg["qwenlong"]["retrospective"]["difficulty_file"] = "~/p1/missing.json"
    with pytest.raises(Exception, match="missing.json"):
        validate_run_config(OmegaConf.create(cfg))
