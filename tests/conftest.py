"""Shared fixtures: a tiny local Qwen2 model, and a lock that keeps heavy verl runs one at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

E2E_LOCK = Path(os.environ.get("QWENLONG_E2E_LOCK", "/tmp/qwenlong-verl-e2e.lock"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from qwenlong_verl.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture
def e2e_lock():
    """Serialise verl trainer runs (2 cores: two at once slow both and can starve Ray)."""
    E2E_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(E2E_LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory, tiny_model_dir):
    """Tiny model + synthetic DocQA train/val parquet shared by the end-to-end verl runs."""
    from e2e_utils import make_demo_data

    return make_demo_data(tmp_path_factory.mktemp("demo_data"), tiny_model_dir)
