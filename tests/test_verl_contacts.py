"""The table of verl contact points: every row holds on the installed verl 0.9.1, and a broken row (a renamed
method, a dropped parameter, an attribute no longer assigned) fails in ``doctor`` naming the contact."""

from __future__ import annotations

from qwenlong_verl.integration import contacts
from qwenlong_verl.integration.contacts import CONTACTS, Contact, check_all, check_contact


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
