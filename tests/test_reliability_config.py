"""``qwenlong.*`` options are checked in the driver before Ray starts: unknown keys named, types, ranges and enums,
the judge URL's syntax, and one probe of an active judge (or the user's explicit rule-only choice)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer
from omegaconf import OmegaConf
from reliability_utils import closed_port

from qwenlong_verl.config import QwenLongConfigError
from qwenlong_verl.config_checks import PROBE_ENV, check_qwenlong_options, packaged_top_level_keys, probe_judge

CONFIGS = Path(__file__).resolve().parent.parent / "qwenlong_verl" / "hydra_configs"
BASE = yaml.safe_load((CONFIGS / "recipe" / "qwenlong_base.yaml").read_text())["qwenlong"]


def config(**sections) -> OmegaConf:
    block = copy.deepcopy(BASE)
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(block.get(name), dict):
            block[name].update(values)
        else:
            block[name] = values
    return OmegaConf.create({"qwenlong": block})


@pytest.mark.parametrize("overlay", sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.glob("*/*.yaml")))
def test_every_packaged_recipe_and_overlay_passes(overlay):
    extra = (yaml.safe_load((CONFIGS / overlay).read_text()) or {}).get("qwenlong") or {}
    check_qwenlong_options(OmegaConf.merge(config(), OmegaConf.create({"qwenlong": extra})))


def test_packaged_keys_include_the_overlays():
    assert {"recipe_loaded", "backend", "judge", "curriculum"} <= packaged_top_level_keys()


BAD = {
    "judge_url_typo": ({"judge": {"base_url": "not-a-url"}}, "qwenlong.judge.base_url='not-a-url' is not an http"),
    "judge_url_port": ({"judge": {"base_url": "http://host:port/v1"}}, "qwenlong.judge.base_url="),
    "judge_unknown_key": ({"judge": {"max_concurency": 4}}, "unknown option(s) qwenlong.judge.max_concurency"),
    "judge_zero_concurrency": ({"judge": {"max_concurrency": 0}}, "max_concurrency must be >= 1"),
    "judge_str_concurrency": ({"judge": {"max_concurrency": "abc"}},
                              "qwenlong.judge.max_concurrency='abc' has type str; expected int"),
    "judge_negative_timeout": ({"judge": {"timeout_s": -1}}, "timeout_s must be >= 0"),
    "reward_bad_metric": ({"reward": {"qa_metric": "bogus"}}, "qa_metric must be one of"),
    "reward_bad_family": ({"reward": {"default_family": "poetry"}}, "default_family must be one of"),
    "reward_bool_as_str": ({"reward": {"answer_after_think": True}}, "has type bool; expected str"),
    "unknown_section": ({"judg": {"base_url": "http://h/v1"}}, "unknown option(s) qwenlong.judg;"),
    "section_not_mapping": ({"judge": "http://h/v1"}, "qwenlong.judge must be a mapping"),
    "curriculum_phase_str": ({"curriculum": {"phase": "two"}}, "qwenlong.curriculum.phase='two' has type str"),
    "curriculum_lengths_str": ({"curriculum": {"lengths": "20000,60000"}}, "qwenlong.curriculum.lengths="),
    "retro_unknown_key": ({"retrospective": {"ratoi": 0.1}}, "unknown option(s) qwenlong.retrospective.ratoi"),
    "retro_ratio_range": ({"retrospective": {"ratio": 1.5}}, "qwenlong.retrospective.ratio must be in [0, 1), got 1.5"),
    "retro_mode": ({"retrospective": {"mode": "hardest"}}, "qwenlong.retrospective.mode must be one of"),
    "advantage_scope": ({"advantage": {"std_scope": "batch"}}, "std_scope='batch'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_options_are_named(case):
    sections, expect = BAD[case]
    with pytest.raises(QwenLongConfigError) as err:
        check_qwenlong_options(config(**sections))
    assert expect in str(err.value)


def test_no_qwenlong_block_is_fine():
    check_qwenlong_options(OmegaConf.create({"data": {}}))


# -- the judge probe -----------------------------------------------------------------------------------------------
def test_unreachable_judge_stops_with_the_fix():
    cfg = config(judge={"base_url": f"http://user:pw@127.0.0.1:{closed_port()}/v1"})
    with pytest.raises(QwenLongConfigError) as err:
        probe_judge(cfg, timeout_s=2)
    text = str(err.value)
    assert "the judge is unreachable" in text and "qwenlong.judge.enabled=false" in text and PROBE_ENV in text
    assert "pw@" not in text


def test_a_live_judge_passes_with_one_request():
    with FakeOpenAIServer() as judge:
        probe_judge(config(judge={"base_url": judge.base_url}))
        probe_judge(config(judge={"base_url": judge.base_url + "/chat/completions"}))
        assert judge.count == 0  # a GET, not a chat request: the judge does no work


def test_any_http_answer_counts_as_reachable():
    with FakeOpenAIServer() as judge:  # no /v2/models route: 404, but a server is there
        probe_judge(config(judge={"base_url": f"http://127.0.0.1:{judge.port}/v2"}))


@pytest.mark.parametrize("judge, env", [
    ({"base_url": None}, {}),  # rule-only: nothing to probe
    ({"enabled": False}, {}),  # the user opted into rule-only although a URL is set
    ({}, {PROBE_ENV: "0"}),  # probe turned off
])
def test_probe_skipped_when_opted_out(monkeypatch, judge, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = config(judge={"base_url": f"http://127.0.0.1:{closed_port()}/v1", **judge})
    probe_judge(cfg, timeout_s=1)


def test_hydra_guard_stops_before_ray(monkeypatch, caplog):
    """The guard's own path: a bad option stops the run (SystemExit) with the message; the probe comes last."""
    import qwenlong_verl.hydra.callbacks as hc
    import qwenlong_verl.preflight.guard as guard

    monkeypatch.setattr(guard, "plugin_problems", lambda config=None: [])
    base = {"data": {"max_prompt_length": 10, "max_response_length": 10},
            "actor_rollout_ref": {"rollout": {}}, "trainer": {"v1": {"trainer_mode": "none"}}}
    cfg = OmegaConf.merge(OmegaConf.create(base), config(reward={"qa_metric": "bogus"}))
    with pytest.raises(SystemExit) as err:
        hc.QwenLongGuard(checks=hc.GUARD_CHECKS).on_job_start(cfg)
    assert "qa_metric must be one of" in str(err.value)
    down = OmegaConf.merge(OmegaConf.create(base), config(judge={"base_url": f"http://127.0.0.1:{closed_port()}"}))
    with pytest.raises(SystemExit) as err:
        hc.QwenLongGuard(checks=hc.GUARD_CHECKS).on_job_start(down)
    assert "the judge is unreachable" in str(err.value)
