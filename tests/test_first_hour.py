"""Issue 24, a user's first hour: the recipe applies from any folder, preflight catches what would fail, nothing is
lost or leaked. Each test reproduces one report from the issue against the real CLI / real verl composition."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)


def _recipe_value(node: dict, dotted: str):
    for part in dotted.split("."):
        node = node[part]
    return node


def test_main_ppo_from_the_clone_root_composes_the_recipe():
    """`python -m` puts the clone root first on sys.path, so the source tree's qwenlong_verl is imported: it must
    carry the recipes itself, or Hydra silently composes stock verl (lr 1e-6, clip 0.2, vanilla, gae)."""
    proc = subprocess.run([str(PYTHON), "-m", "verl.trainer.main_ppo", "+recipe=qwenlong_phase2", "--cfg", "job"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    base = yaml.safe_load((ROOT / "qwenlong_verl" / "hydra_configs" / "recipe" / "qwenlong_base.yaml").read_text())
    for key in ("actor_rollout_ref.actor.optim.lr", "actor_rollout_ref.actor.clip_ratio_low",
                "actor_rollout_ref.actor.clip_ratio_high", "actor_rollout_ref.actor.policy_loss.loss_mode",
                "algorithm.adv_estimator"):
        assert _recipe_value(cfg, key) == _recipe_value(base, key), key
    assert cfg["algorithm"]["adv_estimator"] == "qwenlong_grpo"
    assert cfg["actor_rollout_ref"]["actor"]["policy_loss"]["loss_mode"] == "qwenlong_dapo"
    assert float(cfg["actor_rollout_ref"]["actor"]["optim"]["lr"]) == 2e-6
    assert cfg["qwenlong"]["recipe"] == "qwenlong_phase2"
    assert "recipe" not in cfg  # the stray key of an unresolved `+recipe=`


# -- preflight catches what would fail -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tiny_model_dir, tmp_path_factory) -> list[str]:
    """A CPU phase-I command line on the tiny model that preflight passes."""
    import pandas as pd

    root = tmp_path_factory.mktemp("first_hour")
    rows = pd.DataFrame({"data_source": ["hotpotqa"] * 2, "prompt_length": [150, 450],
                         "prompt": [[{"role": "user", "content": "q"}]] * 2,
                         "reward_model": [{"ground_truth": "a"}] * 2,
                         "extra_info": [{"index": 0, "split": "train"}, {"index": 1, "split": "train"}]})
    rows.to_parquet(root / "train.parquet")
    return ["+recipe=qwenlong_phase1", "+qwenlong_env=cpu", f"actor_rollout_ref.model.path={tiny_model_dir}",
            f"data.train_files={root / 'train.parquet'}", f"data.val_files={root / 'train.parquet'}"]


def _errors(report) -> list[str]:
    return [f.line() for f in report.findings if f.level == "error"]


def test_preflight_passes_the_small_run(small_run):
    from qwenlong_verl.preflight.all_checks import run_preflight

    report = run_preflight(small_run, network=False)
    assert report.ok, _errors(report)


@pytest.mark.parametrize("override, key, suggestion", [
    ("actor_rollout_ref.actor.policy_loss.loss_mode=qwenlong_dap", "actor_rollout_ref.actor.policy_loss.loss_mode",
     "qwenlong_dapo"),
    ("reward.reward_manager.name=qwenlongg", "reward.reward_manager.name", "qwenlong"),
    ("algorithm.adv_estimator=qwenlong_grp", "algorithm.adv_estimator", "qwenlong_grpo"),
    ("trainer.v1.trainer_mode=qwenlon", "trainer.v1.trainer_mode", "qwenlong"),
])
def test_preflight_refuses_names_verl_has_not_registered(small_run, override, key, suggestion):
    """verl looks these names up inside Ray workers, minutes into a run; preflight checks its registries."""
    from qwenlong_verl.preflight.all_checks import run_preflight

    errors = _errors(run_preflight(small_run + [override], network=False))
    named = [e for e in errors if e.startswith(f"{key}=")]
    assert named, errors
    assert "is not a registered" in named[0] and f"did you mean {suggestion!r}" in named[0]


def test_preflight_refuses_a_model_path_that_is_missing_or_a_file(small_run, tmp_path):
    from qwenlong_verl.preflight.all_checks import run_preflight

    missing = [a for a in small_run if "model.path" not in a] + [f"actor_rollout_ref.model.path={tmp_path}/nope"]
    errors = _errors(run_preflight(missing, network=False))
    assert any(e.startswith("actor_rollout_ref.model.path:") and "does not exist" in e for e in errors), errors
    (tmp_path / "model.safetensors").write_bytes(b"x")
    a_file = [a for a in small_run if "model.path" not in a] + [
        f"actor_rollout_ref.model.path={tmp_path / 'model.safetensors'}"]
    errors = _errors(run_preflight(a_file, network=False))
    assert any(e.startswith("actor_rollout_ref.model.path:") and "is a file" in e for e in errors), errors
    hub = [a for a in small_run if "model.path" not in a] + ["actor_rollout_ref.model.path=Qwen/Qwen2.5-7B-Instruct"]
    assert not [e for e in _errors(run_preflight(hub, network=False)) if "does not exist" in e]  # a hub name


def test_cpu_overlay_without_recipe_builds_the_qwenlong_reward_manager(small_run, tiny_tokenizer):
    """`+qwenlong_env=cpu reward.reward_manager.name=qwenlong` without a recipe: the overlay's overlong block must be
    complete, or verl's DAPO manager __init__ (in every reward worker) dies on `Key 'enable' is not in struct`."""
    from qwenlong_verl.hydra.compose import compose_main_ppo
    from qwenlong_verl.integration.reward_manager import QwenLongRewardManager
    from qwenlong_verl.preflight.all_checks import run_preflight

    args = [a for a in small_run if not a.startswith("+recipe=")] + [
        "reward.reward_manager.name=qwenlong", "algorithm.adv_estimator=grpo"]
    manager = QwenLongRewardManager(compose_main_ppo(args), tiny_tokenizer)  # verl's own __init__ checks
    assert manager.overlong_enabled and manager.overlong_buffer_cfg.len == 8
    report = run_preflight(args, network=False)
    assert not [e for e in _errors(report) if e.startswith("reward.")], _errors(report)


def test_preflight_names_an_incomplete_overlong_block(small_run):
    from qwenlong_verl.preflight.all_checks import run_preflight

    args = small_run + ["~reward.reward_kwargs.overlong_buffer_cfg.enable"]
    errors = _errors(run_preflight(args, network=False))
    assert any(e.startswith("reward.reward_kwargs:") and "overlong_buffer_cfg.enable" in e for e in errors), errors


# -- nothing is lost: outputs never replace inputs, devices or FIFOs -----------------------------------------------


def _cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    import os

    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run([str(PYTHON), "-m", "qwenlong_verl.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


def test_preflight_json_refuses_to_write_over_its_inputs(small_run, tiny_model_dir, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    args = [a for a in small_run if "model.path" not in a] + [f"actor_rollout_ref.model.path={model}"]
    train = next(a.split("=", 1)[1] for a in args if a.startswith("data.train_files="))
    for victim in (Path(train), model / "config.json"):
        before = victim.read_bytes()
        proc = _cli("preflight", "--no-network", "--json", str(victim), *args)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "--json" in proc.stderr and "is also an input" in proc.stderr
        assert victim.read_bytes() == before


def test_outputs_into_a_fifo_are_written_in_place(tmp_path):
    import os
    import threading

    from qwenlong_verl.outputs import OutputPathError, check_output, write_text

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="no process reads this FIFO"):
        write_text(fifo, "nobody listens\n")
    got: list[bytes] = []
    opened = threading.Event()

    def read_all() -> None:
        """A reader like a shell's `cat pipe`, which says when it has the FIFO open. O_NONBLOCK only so that the
        open returns before a writer comes (a blocking open would wait for one); reads then wait in poll()."""
        import select

        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        opened.set()
        data = b""
        try:
            waiter = select.poll()
            waiter.register(fd, select.POLLIN)
            while waiter.poll(10_000):  # Linux: no hang-up before a first writer has come and gone
                chunk = os.read(fd, 65536)
                if not chunk:  # the writer closed
                    break
                data += chunk
        finally:
            os.close(fd)
        got.append(data)

    reader = threading.Thread(target=read_all)
    reader.start()
    assert opened.wait(10)  # the reader opens first, as a shell's `cat pipe` would
    check_output(fifo, option="--json", suffixes=[".json"])
    write_text(fifo, '{"ok": true}\n')
    reader.join(10)
    assert got == [b'{"ok": true}\n']
    import stat

    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the FIFO, not a regular file put in its place
    assert os.listdir(tmp_path) == ["pipe.json"]  # no temporary file left beside it


def test_a_full_device_is_an_error_not_a_success(small_run, tmp_path):
    from qwenlong_verl.outputs import OutputPathError, write_json

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(OutputPathError, match="No space left"):
        write_json("/dev/full", {"a": 1})
    assert not Path("/dev/full").is_file()
    proc = _cli("preflight", "--no-network", "--json", "/dev/full", *small_run)
    assert proc.returncode != 0
    assert "/dev/full" in proc.stderr and "No space left" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_character_device_is_not_replaced_by_a_file(tmp_path):
    """`-o /dev/null` as root: os.replace would put a regular file where the device node was."""
    import os
    import stat

    from qwenlong_verl.outputs import write_jsonl

    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("mknod needs root")
    assert write_jsonl(null, [{"a": 1}]) == (1, 0)
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_a_symlinked_output_keeps_its_link(tmp_path):
    import os

    from qwenlong_verl.outputs import write_text

    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


# -- nothing leaked ------------------------------------------------------------------------------------------------


def test_preflight_masks_credentials_on_stdout_and_in_its_json(small_run, tmp_path):
    """A misspelt override carrying a key is quoted back by Hydra's error: stdout and --json show it masked."""
    report = tmp_path / "preflight.json"
    proc = _cli("preflight", "--no-network", "--json", str(report), *small_run,
                "trainer.wandb_api_key=wk-s3cret-77",  # no '+': Hydra refuses it and quotes the override
                "qwenlong.judge.base_url=http://alice:pw-s3cret@judge.example:8000/v1")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "wandb_api_key" in proc.stdout  # the finding is there...
    for text in (proc.stdout, proc.stderr, report.read_text()):
        assert "s3cret" not in text  # ...without the key or the password
