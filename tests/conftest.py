"""Shared fixtures: a tiny local Qwen2 model, and a lock that keeps heavy verl runs one at a time.

Every test marked ``e2e`` holds the lock for its whole run (setup, call, teardown), taken before pytest-timeout's
timer starts: on a shared machine, waiting for another session's verl run is not this test hanging, so each e2e
module's ``pytest.mark.timeout`` bounds only its own work. ``pytest -m "not e2e"`` is the fast lane.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as _hypothesis_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

E2E_LOCK = Path(os.environ.get("QWENLONG_E2E_LOCK", "/tmp/qwenlong-verl-e2e.lock"))

# Hypothesis: random examples on a developer's machine (to find what nobody wrote down), the same examples every run
# in CI (.ci/run sets QWENLONG_HYPOTHESIS_PROFILE=ci): a CI result depends on the commit, not on the draw. A failure
# prints its example and the blob that replays it (@reproduce_failure).
_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("dev", print_blob=True)
_hypothesis_settings.load_profile(os.environ.get("QWENLONG_HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from qwenlong_verl.pipeline.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


_held = {"depth": 0, "file": None}  # the lock's open file while this process holds it, and how often it is entered


@contextlib.contextmanager
def hold_e2e_lock() -> Iterator[None]:
    """Hold the e2e lock (``flock`` on :data:`E2E_LOCK`), re-entrant within this process: the per-test hook below,
    the ``e2e_lock`` fixture and a module fixture that starts verl may all ask for it; only the outermost waits.
    (A second ``open`` + ``flock`` in the same process would wait on itself forever.)"""
    if _held["depth"] == 0:
        E2E_LOCK.parent.mkdir(parents=True, exist_ok=True)
        fh = open(E2E_LOCK, "w")  # noqa: SIM115 - closed below, when the outermost holder leaves
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"\nwaiting for {E2E_LOCK}: another pytest worker or session runs verl (the wait is outside this test's timeout)",
                  file=sys.__stderr__, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        _held["file"] = fh
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if _held["depth"] == 0:
            fh = _held["file"]
            _held["file"] = None
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """An e2e test takes the lock outside pytest-timeout's hook (``tryfirst``: this wrapper is the outermost), so
    its timeout starts once the lock is held and covers setup, call and teardown."""
    if item.get_closest_marker("e2e") is None:
        yield
        return
    with hold_e2e_lock():
        yield


E2E_FILE_SUFFIX = "_e2e.py"  # the files of the e2e tests: one xdist work unit (E2EFirstScheduling)


def pytest_collection_modifyitems(config, items):
    """Every e2e test carries its own finite ``pytest.mark.timeout``: a hung verl run must fail the test, not hang
    CI (``timeout(0)`` disables pytest-timeout, and the ini default was not chosen for it). Every e2e test lives in
    a ``*_e2e.py`` file (the scheduler below groups them by that name), and the e2e tests come first (a stable sort):
    with ``-n 2`` their worker starts on the suite's critical path at once."""
    unbounded, misplaced = [], []
    for item in items:
        if item.get_closest_marker("e2e") is None:
            continue
        if not item.nodeid.split("::", 1)[0].endswith(E2E_FILE_SUFFIX):
            misplaced.append(item.nodeid)
        mark = item.get_closest_marker("timeout")
        seconds = (mark.args[0] if mark.args else mark.kwargs.get("timeout")) if mark is not None else None
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            unbounded.append(item.nodeid)
    if unbounded:
        raise pytest.UsageError("e2e tests without a finite pytest.mark.timeout (add one, sized to the run): "
                                + ", ".join(unbounded))
    if misplaced:
        raise pytest.UsageError(f"e2e tests outside a *{E2E_FILE_SUFFIX} file (move them into one, so that xdist "
                                "runs them on one worker, one after another): " + ", ".join(misplaced))
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown (and unused) without the plugin
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with every ``*_e2e.py`` file in one work unit, queued first (``--no-loadscope-reorder``
    keeps the collection order, e2e first): one worker runs the verl trainer runs back to back, the critical path,
    while the other takes the unit test files. xdist's own loadfile reorders units by test count, which queued the
    few-test e2e files last: the unit tests finished first and the e2e files then ran one at a time, a worker
    waiting on the e2e lock."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class E2EFirstScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return "e2e" if path.endswith(E2E_FILE_SUFFIX) else path

    return E2EFirstScheduling(config, log)


@pytest.fixture
def e2e_lock():
    """Serialise verl trainer runs (2 cores: two at once slow both and can starve Ray). An e2e test already holds
    the lock (see :func:`pytest_runtest_protocol`); the fixture keeps a test without the marker safe too."""
    with hold_e2e_lock():
        yield


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory, tiny_model_dir):
    """Tiny model + synthetic DocQA train/val parquet shared by the end-to-end verl runs."""
    from e2e_utils import make_demo_data

    return make_demo_data(tmp_path_factory.mktemp("demo_data"), tiny_model_dir)
