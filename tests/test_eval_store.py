"""The generations file and run manifest: append, read back, torn and corrupt lines, changed settings."""

from __future__ import annotations

import json

import pytest

from qwenlong_verl.evaluation.store import EvalStoreError, GenerationStore


def records(n):
    return [{"id": f"r{i // 2}", "sample": i % 2, "response": "x" * 50, "score": float(i % 3 == 0)} for i in range(n)]


def test_append_and_load(tmp_path):
    store = GenerationStore(tmp_path / "out")
    assert store.load() == {}
    store.open()
    for r in records(6):
        store.append(r)
    store.close()
    got = store.load()
    assert sorted(got) == [(f"r{i}", s) for i in range(3) for s in (0, 1)]
    assert got[("r1", 0)]["response"] == "x" * 50
    slim = store.load(drop=("response",))
    assert "response" not in slim[("r1", 0)] and slim[("r1", 0)]["score"] == records(6)[2]["score"]


def test_torn_last_line_is_cut_and_appending_continues(tmp_path):
    store = GenerationStore(tmp_path)
    store.rewrite(records(4))
    with store.path.open("ab") as fh:
        fh.write(b'{"id": "r9", "sample": 0, "resp')
    assert len(store.load()) == 4
    assert store.path.read_bytes().endswith(b"\n")  # the torn bytes are gone
    store.open()
    store.append({"id": "r9", "sample": 0, "response": "y", "score": 1.0})
    store.close()
    assert len(store.load()) == 5 and all(json.loads(x) for x in store.path.read_text().splitlines())


def test_complete_last_line_without_newline_is_kept(tmp_path):
    store = GenerationStore(tmp_path)
    store.path.write_text(json.dumps(records(1)[0]))
    assert list(store.load()) == [("r0", 0)]
    assert store.path.read_text().endswith("\n")


def test_corrupt_line_in_the_middle_is_an_error(tmp_path):
    store = GenerationStore(tmp_path)
    lines = [json.dumps(r) for r in records(3)]
    lines[1] = '{"id": 5, "sample": "zero"}'
    store.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(EvalStoreError, match=r"generations.jsonl:2: corrupt line"):
        store.load()


def test_duplicate_key_keeps_the_later_record(tmp_path, caplog):
    store = GenerationStore(tmp_path)
    store.rewrite([{"id": "a", "sample": 0, "score": 0.0}, {"id": "a", "sample": 0, "score": 1.0}])
    assert store.load()[("a", 0)]["score"] == 1.0
    assert "second record for id='a' sample=0" in caplog.text


def test_manifest(tmp_path):
    store = GenerationStore(tmp_path)
    settings = {"model": "m", "temperature": 0.7, "scorer": {"judge_model": None}}
    store.check_manifest(settings)
    store.check_manifest(dict(settings))  # same settings: fine
    with pytest.raises(EvalStoreError, match=r"temperature: stored 0.7, now 1.0.*--force-resume"):
        store.check_manifest({**settings, "temperature": 1.0})
    store.check_manifest({**settings, "scorer": {"judge_model": "j"}}, ignore=("scorer",))
    store.check_manifest({**settings, "temperature": 1.0}, force=True)
    assert json.loads(store.manifest_path.read_text())["temperature"] == 1.0
