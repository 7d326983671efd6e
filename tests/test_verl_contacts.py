"""The table of verl contact points: every row holds on the installed verl 0.9.1, and a broken row (a renamed
method, a dropped parameter, an attribute no longer assigned) fails in ``doctor`` naming the contact."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from qwenlong_verl.integration import contacts
from qwenlong_verl.integration.contacts import CONTACTS, Contact, check_all, check_contact

PACKAGE = Path(__file__).resolve().parent.parent / "qwenlong_verl"
# the verl rules preflight restates (its checks run without verl) -> the row that watches each
RESTATED = {
    "monkey_patch": "verl.models.transformers.monkey_patch:apply_monkey_patch",
    "rearrange_micro_batches": "verl.utils.seqlen_balancing:rearrange_micro_batches",
    "vLLMHttpServer._validate_configs":
        "verl.workers.rollout.vllm_rollout.vllm_async_server:vLLMHttpServer._validate_configs",
}


def test_every_contact_holds_on_the_installed_verl():
    broken = [(c.target, why) for c, why in check_all() if why]
    assert broken == []
    assert len(CONTACTS) >= 40
    privates = {c.target for c in CONTACTS if c.private}
    assert "verl.workers.rollout.base:_ROLLOUT_REGISTRY" in privates
    assert "verl.trainer.ppo.v1.trainer_sync:PPOTrainerSync._step_once" in privates


class _Trainer:  # a stand-in for a future verl whose trainer renamed a hook and dropped a parameter
    def __init__(self, config):
        self.mode = "sync"

    def _step_twice(self, metrics, timing_raw, sample_batch_size):  # was _step_once
        return None

    def _add_prompts_to_generate(self, count):  # parameter renamed
        return count


def _stand_in(target: str):
    name = target.split(":")[1].split(".")[-1]
    return getattr(_Trainer, name)


def test_a_renamed_method_is_named():
    row = Contact("fake.trainer:Trainer._step_once", "trainer_mode", "overridden")
    assert check_contact(row, _stand_in).startswith("fake.trainer:Trainer._step_once is gone (AttributeError")


def test_a_dropped_parameter_and_a_lost_attribute_are_named():
    row = Contact("fake.trainer:Trainer._add_prompts_to_generate", "trainer_mode", "overridden", params=("num_prompts",))
    assert "has no parameter(s) num_prompts that trainer_mode passes" in check_contact(row, _stand_in)
    row = Contact("fake.trainer:Trainer.__init__", "trainer_mode", "assigns", assigns=("trainer_mode",))
    assert "no longer assigns self.trainer_mode" in check_contact(row, _stand_in)
    row = Contact("verl.workers.rollout.base:BaseRollout", "cpu_rollout", "registry", kind="dict")
    assert "not the dict registry" in check_contact(row)


def test_doctor_fails_naming_a_broken_contact(monkeypatch, capsys):
    from qwenlong_verl.cli import main

    gone = Contact("verl.trainer.ppo.v1.trainer_sync:PPOTrainerSync._step_twice", "trainer_mode", "overridden")
    monkeypatch.setattr(contacts, "CONTACTS", CONTACTS + (gone,))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] verl contact verl.trainer.ppo.v1.trainer_sync:PPOTrainerSync._step_twice" in out
    assert "PPOTrainerSync._step_twice is gone" in out
    for target in RESTATED.values():  # doctor checks the rules preflight restates, each on its own line
        assert re.search(rf"\[  ok\] verl contact {re.escape(target)} +preflight\.checks: ", out), target


def test_the_rules_preflight_restates_are_rows_that_hold():
    """Each rule ``preflight/checks.py`` restates from verl is a row carrying the rule's own expression, and holds on
    the installed verl (the vLLM server's row without importing vLLM, which this machine may lack)."""
    checks_source = (PACKAGE / "preflight" / "checks.py").read_text(encoding="utf-8")
    rows = {c.target: c for c in CONTACTS}
    for rule, target in RESTATED.items():
        assert rule in checks_source, f"preflight/checks.py no longer names {rule}: drop or update its row"
        row = rows[target]
        assert row.user == "preflight.checks" and row.source_has, row
        assert check_contact(row) is None
    assert rows[RESTATED["vLLMHttpServer._validate_configs"]].static
    assert "verl.workers.rollout.vllm_rollout.vllm_async_server" not in sys.modules


def test_every_verl_name_preflight_cites_has_a_row():
    """A preflight check that names verl code (``verl.x.y`` in its docstring) mirrors it: a row must watch it."""
    targets = [c.target.replace(":", ".") for c in CONTACTS]
    cited = sorted({m for p in (PACKAGE / "preflight").glob("*.py")
                    for m in re.findall(r"``(verl(?:\.\w+)+)``", p.read_text(encoding="utf-8"))})
    assert "verl.models.transformers.monkey_patch" in cited
    unwatched = [name for name in cited if not any(t == name or t.startswith(name + ".") for t in targets)]
    assert unwatched == [], f"add rows to qwenlong_verl/integration/contacts.py for {unwatched}"


def _relaxed(batch, max_token_len):  # a future verl whose micro-batching no longer asserts the budget
    return [batch] if max_token_len > 0 else []


def test_a_changed_rule_is_named():
    row = Contact("fake.seqlen:rearrange", "preflight.checks", "check_token_budgets restates its assert",
                  params=("batch", "max_token_len"), source_has=("assert max_token_len >= max_seq_len",))
    problem = check_contact(row, lambda target: _relaxed)
    assert problem.startswith("fake.seqlen:rearrange no longer contains 'assert max_token_len >= max_seq_len'")
    assert "update preflight.checks" in problem
    spaced = Contact("fake.seqlen:rearrange", "preflight.checks", "same rule, other line breaks",
                     source_has=("return [batch]  if\n   max_token_len > 0",))
    assert check_contact(spaced, lambda target: _relaxed) is None


SERVER = """raise ImportError("this module needs vLLM")


class Server:
    def __init__(self, config):
        self._validate_configs()

    def _validate_configs(self) -> None:
        if self.config.max_model_len {op} max_position_embeddings:
            raise ValueError("too long")
"""


def test_a_static_row_reads_the_file_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "fakeverl_static" / "rollout"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("raise ImportError('the package itself must not be imported')\n")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = "if self.config.max_model_len > max_position_embeddings:"
    row = Contact("fakeverl_static.rollout.server:Server._validate_configs", "preflight.checks", "restated",
                  static=True, source_has=(rule,))
    (package / "server.py").write_text(SERVER.format(op=">"))
    assert check_contact(row) is None
    assert check_contact(Contact("fakeverl_static.rollout.server:Server.__init__", "preflight.checks", "config",
                                 static=True, params=("config",), source_has=("self._validate_configs()",))) is None
    assert not [m for m in sys.modules if m.startswith("fakeverl_static")]
    (package / "server.py").write_text(SERVER.format(op=">="))  # verl changed its rule
    assert f"no longer contains {rule!r}" in check_contact(row)
    (package / "server.py").write_text(SERVER.format(op=">").replace("_validate_configs(self)", "_check(self)"))
    assert "is gone (LookupError" in check_contact(row) and "defines no '_validate_configs'" in check_contact(row)
    renamed = Contact("fakeverl_static.rollout.server:Server.__init__", "preflight.checks", "config", static=True,
                      params=("model_config",))
    assert "has no parameter(s) model_config" in check_contact(renamed)
