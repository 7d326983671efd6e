"""End to end on CPU: a small synthetic benchmark -> ``qwenlong-verl eval`` against scripted local OpenAI-compatible
servers (the model and the judge) -> a report with the accuracies the script implies; interruption and resume."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

from qwenlong_verl.cli import main
from qwenlong_verl.data.synth import generate_docqa, write_rows
from qwenlong_verl.evaluation.data import PROMPT_TEMPLATE, load_rows, split_template

BUDGET = 600  # --max-input-tokens in these tests
REPO = Path(__file__).resolve().parents[1]


def think(answer_line: str) -> str:
    return f"<think>Let me look it up in the text.</think>\n\n{answer_line}"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class Script:
    """Scripted model: the reply (or a cycle of replies) for each question, thread-safe."""

    def __init__(self) -> None:
        self.replies: dict[str, list[str]] = {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, question: str, *replies: str) -> None:
        self.replies[question] = list(replies)

    def __call__(self, messages: list[dict]) -> str:
        parts = split_template(messages[-1]["content"])
        assert parts is not None, "the eval prompt must follow the QwenLong-L1 template"
        question = parts[1]
        with self.lock:
            i = self.calls[question]
            self.calls[question] += 1
        replies = self.replies[question]
        return replies[i % len(replies)]


JUDGE_YES = {("NYC", "New York City")}


def judge_responder(messages: list[dict]) -> str:
    user = messages[-1]["content"]
    gold = re.search(r"^Reference answer: (.*)$", user, re.M).group(1)
    cand = re.search(r"^Candidate answer: (.*)$", user, re.M).group(1)
    return "They match.\nVERDICT: YES" if (cand, gold) in JUDGE_YES else "They differ.\nVERDICT: NO"


@pytest.fixture
def bench(tmp_path, tiny_tokenizer):
    """Three benchmarks in three files (two in the eval layout, one verl parquet from the synth generator)."""
    script = Script()
    long_doc = " ".join(f"Filler sentence number {i} about the harbor." for i in range(400))
    hotpot = [
        ("h0", "Who wrote Hamlet?", "Shakespeare", "Therefore, the answer is Shakespeare.", 1),
        ("h1", "Capital of France?", "Paris", "Therefore, the answer is Paris, France.", 1),  # sub-EM
        ("h2", "Largest US city?", "New York City", "Therefore, the answer is NYC.", 1),  # the judge says yes
        ("h3", "Who painted it?", "Monet", "Therefore, the answer is Manet.", 0),  # the judge says no
        ("h4", "Which river?", "Seine", "no think block: Therefore, the answer is Seine.", 0),  # no </think>
        ("h5", "Where is the harbor?", "Oslo", "Therefore, the answer is Oslo.", 1),  # long: truncated
    ]
    rows = []
    for rid, q, gold, reply, _ in hotpot:
        ctx = f"The harbor is in Oslo. {long_doc} The end." if rid == "h5" else f"A short note about {gold}."
        rows.append({"id": rid, "benchmark": "hotpotqa", "question": q, "context": ctx, "answers": [gold]})
        script.add(q, reply if rid == "h4" else think(reply))
    docmath = [
        ("d0", "Total revenue?", 12.5, "Therefore, the answer is 12.50.", 1),
        ("d1", "Units sold?", "1234", "Therefore, the answer is 1,234.", 1),
        ("d2", "Profit change?", "12", "Therefore, the answer is 13.", 0),
        ("d3", "Margin?", "44.9", "Therefore, the answer is 45.0.", 0),
    ]
    drows = []
    for rid, q, gold, reply, _ in docmath:
        drows.append({"id": rid, "data_source": "docmath", "question": q, "context": "Table: ...",
                      "answer": gold})
        script.add(q, think(reply))
    synth = generate_docqa(4, min_tokens=120, max_tokens=200, tokenizer=tiny_tokenizer, seed=5,
                           kinds=("multihop",))
    for s in synth:
        s["data_source"] = "musique"
        gold = s["reward_model"]["ground_truth"]
        # two samples per row: one right, one wrong -> accuracy 50, pass@2 100
        script.add(s["extra_info"]["question"], think(f"Therefore, the answer is {gold}."),
                   think("Therefore, the answer is Atlantis."))
    files = [write_jsonl(tmp_path / "hotpotqa.jsonl", rows), write_jsonl(tmp_path / "docmath.jsonl", drows)]
    write_rows(synth, str(tmp_path / "musique.parquet"))
    files.append(tmp_path / "musique.parquet")
    return script, files


def cli(gen: FakeOpenAIServer, files: list[Path], out: Path, tiny_model_dir: Path, *extra: str) -> int:
    args = ["eval", "--endpoint", f"http://127.0.0.1:{gen.port}", "--model", "tiny-ckpt", "--out", str(out),
            "--tokenizer", str(tiny_model_dir), "--max-input-tokens", str(BUDGET), "--max-tokens", "256",
            "--no-progress", "--concurrency", "4", "--retry-backoff", "0.01"]
    for f in files:
        args += ["--data", str(f)]
    return main(args + list(extra))


def test_end_to_end_report_and_rerun(tmp_path, bench, tiny_model_dir, tiny_tokenizer):
    script, files = bench
    out = tmp_path / "out"
    with FakeOpenAIServer(responder=script, latency_s=0.01) as gen, \
            FakeOpenAIServer(responder=judge_responder) as judge:
        rc = cli(gen, files, out, tiny_model_dir, "-n", "2", "--judge-endpoint", f"http://127.0.0.1:{judge.port}",
                 "--judge-model", "judge")
        assert rc == 0
        rep = json.loads((out / "report.json").read_text())
        b = rep["benchmarks"]
        assert rep["complete"] and rep["ks"] == [1, 2]
        assert b["hotpotqa"]["accuracy"] == pytest.approx(100 * 4 / 6, abs=0.01)
        assert b["hotpotqa"]["rule_accuracy"] == pytest.approx(50.0)
        assert b["hotpotqa"]["judge_share"] == pytest.approx(100 / 6, abs=0.01)
        assert b["hotpotqa"]["pass_at"]["2"] == pytest.approx(100 * 4 / 6, abs=0.01)
        assert b["docmath"]["accuracy"] == 50.0 and b["docmath"]["judge_share"] == 0.0
        assert b["musique"]["accuracy"] == 50.0 and b["musique"]["pass_at"]["2"] == 100.0
        assert rep["average"]["accuracy"] == pytest.approx((200 / 3 + 50 + 50) / 3, abs=0.01)
        assert rep["average"]["pass_at"]["2"] == pytest.approx((200 / 3 + 50 + 100) / 3, abs=0.01)
        # truncation: exactly the rows longer than the budget, under the real tokenizer
        rows = load_rows(files)
        too_long = {r.id for r in rows if len(tiny_tokenizer(r.user_message(), add_special_tokens=False)
                                                 ["input_ids"]) > BUDGET}
        assert too_long == {"h5"}
        assert b["hotpotqa"]["truncated_share"] == pytest.approx(100 / 6, abs=0.01)
        assert b["musique"]["truncated_share"] == 0.0
        # every request: the paper's sampling, the prompt within budget, the question kept
        bodies = gen.bodies()
        assert len(bodies) == 2 * len(rows) == gen.count
        for body in bodies:
            assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == \
                ("tiny-ckpt", 0.7, 0.95, 256)
            content = body["messages"][0]["content"]
            assert len(tiny_tokenizer(content, add_special_tokens=False)["input_ids"]) <= BUDGET
        assert gen.max_in_flight <= 4
        recs = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
        assert sorted((r["id"], r["sample"]) for r in recs) == sorted((r.id, s) for r in rows for s in (0, 1))
        h5 = next(r for r in recs if r["id"] == "h5")
        assert h5["input_truncated"] and h5["input_tokens"] > BUDGET >= h5["input_tokens_sent"]
        assert all(r["input_tokens_exact"] for r in recs if not r["input_truncated"])  # estimated only when cut
        assert all(r["response_tokens"] > 0 for r in recs)
        md = (out / "report.md").read_text()
        assert "| hotpotqa | 6 | 12 | 66.7 | 50.0 | 16.7 |" in md
        assert (out / "report.png").read_bytes().startswith(b"\x89PNG")

        # the same command again asks for nothing and reports the same
        gen.reset_counts()
        assert cli(gen, files, out, tiny_model_dir, "-n", "2", "--judge-endpoint",
                   f"http://127.0.0.1:{judge.port}", "--judge-model", "judge") == 0
        assert gen.count == 0
        assert json.loads((out / "report.json").read_text())["benchmarks"] == b


def test_rescore_adds_the_judge_without_regenerating(tmp_path, bench, tiny_model_dir):
    script, files = bench
    out = tmp_path / "out"
    with FakeOpenAIServer(responder=script) as gen, FakeOpenAIServer(responder=judge_responder) as judge:
        assert cli(gen, files[:1], out, tiny_model_dir) == 0
        assert json.loads((out / "report.json").read_text())["benchmarks"]["hotpotqa"]["accuracy"] == 50.0
        gen.reset_counts()
        judge_args = ["--judge-endpoint", f"http://127.0.0.1:{judge.port}/v1", "--judge-model", "judge"]
        # a different scorer on a stored run is refused unless the stored scores are recomputed
        assert cli(gen, files[:1], out, tiny_model_dir, *judge_args) == 2
        assert cli(gen, files[:1], out, tiny_model_dir, *judge_args, "--rescore") == 0
        assert gen.count == 0 and judge.count == 2  # h2 and h3: rule < 1 with an extracted answer
        rep = json.loads((out / "report.json").read_text())["benchmarks"]["hotpotqa"]
        assert rep["accuracy"] == pytest.approx(100 * 4 / 6, abs=0.01) and rep["judge_calls"] == 2


def test_failed_samples_are_retried_on_the_next_run(tmp_path, bench, tiny_model_dir, caplog):
    script, files = bench
    out = tmp_path / "out"
    broken = "Capital of France?"

    def flaky(messages):
        if split_template(messages[-1]["content"])[1] == broken:
            raise RuntimeError("model crashed")  # HTTP 500 every time
        return script(messages)

    with FakeOpenAIServer(responder=flaky, fail_first=2, garbage_first=3) as gen:
        assert cli(gen, files[:1], out, tiny_model_dir, "--max-retries", "3") == 1
        assert "1 generation request(s) failed (h1#0; last error:" in caplog.text and "Rerun the same command" in caplog.text
        rep = json.loads((out / "report.json").read_text())
        assert not rep["complete"] and [f["id"] for f in rep["failed"]] == ["h1"]
        assert rep["benchmarks"]["hotpotqa"]["samples"] == 5
        assert "Incomplete run" in (out / "report.md").read_text()
        gen.configure(responder=script, fail_first=0, garbage_first=0)
        gen.reset_counts()
        assert cli(gen, files[:1], out, tiny_model_dir) == 0
        assert gen.count == 1 and split_template(gen.bodies()[0]["messages"][0]["content"])[1] == broken
        assert json.loads((out / "report.json").read_text())["complete"]


def test_bad_input_and_changed_settings_exit_2(tmp_path, bench, tiny_model_dir, caplog):
    script, files = bench
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"benchmark": "b", "question": "q", "context": "c"}])
    unknown = write_jsonl(tmp_path / "unknown.jsonl",
                          [{"benchmark": "mystery", "question": "q", "context": "c", "answers": ["a"]}])
    script.add("q", think("Therefore, the answer is a."))
    with FakeOpenAIServer(responder=script) as gen, caplog.at_level(logging.ERROR):
        assert cli(gen, [bad], tmp_path / "o1", tiny_model_dir) == 2
        assert f"{bad}:1: missing 'answers'" in caplog.text
        assert cli(gen, [unknown], tmp_path / "o2", tiny_model_dir) == 2
        assert "unknown.jsonl:1 (id 'unknown:1'): unknown data_source 'mystery'" in caplog.text
        assert gen.count == 0  # nothing is asked before the whole input is checked
        assert cli(gen, [unknown], tmp_path / "o2", tiny_model_dir, "--family", "mystery=qa") == 0
        assert cli(gen, files[:1], tmp_path / "o3", tiny_model_dir) == 0
        caplog.clear()
        assert cli(gen, files[:1], tmp_path / "o3", tiny_model_dir, "--temperature", "1.0") == 2
        assert "temperature: stored 0.7, now 1.0" in caplog.text


def test_killed_run_resumes_without_losing_or_repeating(tmp_path, tiny_model_dir):
    """SIGKILL a running eval (plus a torn last line), resume it: every (row, sample) ends up in the file once,
    and the second run asks exactly for the samples the first did not finish."""
    rows = [{"id": f"r{i}", "benchmark": "hotpotqa" if i % 2 else "musique", "question": f"Question number {i}?",
             "context": f"Document {i}.", "answers": [f"ans{i}"]} for i in range(30)]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    answers = {r["question"]: think(f"Therefore, the answer is ans{i if i % 3 else 'wrong'}.")
               for i, r in enumerate(rows)}
    out = tmp_path / "out"
    gens = out / "generations.jsonl"

    def respond(messages):
        return answers[split_template(messages[-1]["content"])[1]]

    def asked(server):
        return Counter((split_template(b["messages"][0]["content"])[1], b["seed"]) for b in server.bodies())

    with FakeOpenAIServer(responder=respond) as gen:
        # the first 12 requests are answered; later ones stay in flight until the kill (and the rerun's release)
        gen.hold(lambda n: n >= 12)
        args = ["eval", "--endpoint", gen.base_url, "--model", "m", "--data", str(data), "--out", str(out),
                "--tokenizer", str(tiny_model_dir), "--max-input-tokens", str(BUDGET), "--no-progress",
                "--concurrency", "3", "-n", "2", "--seed", "100"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        log = tmp_path / "killed-run.log"
        with log.open("wb") as log_fh:  # a file, not a pipe: a full pipe would stall the child
            proc = subprocess.Popen([sys.executable, "-m", "qwenlong_verl.cli", *args], env=env,
                                    stdout=subprocess.DEVNULL, stderr=log_fh)
        try:
            # kill only while requests are out (received by the server, never answered): a kill in the gap
            # between writing a line and sending the next request would prove nothing
            assert gen.wait_held(3, timeout=120), log.read_text()  # --concurrency 3: every slot waits
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (gens.read_bytes().count(b"\n") if gens.exists() else 0) < 10:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        first = [json.loads(line) for line in gens.read_text().splitlines()]
        assert 10 <= len(first) < 60, "the kill must land mid-run"
        done1 = {(r["question"], 100 + r["sample"]) for r in first}
        asked1 = asked(gen)
        assert set(asked1) > done1  # requests were in flight when it died
        with gens.open("ab") as fh:  # and the process died while writing a line
            fh.write(b'{"id": "r29", "sample": 1, "respo')

        gen.release()
        gen.reset_counts()
        assert main(args) == 0
        asked2 = asked(gen)

    everything = {(r["question"], 100 + s) for r in rows for s in (0, 1)}
    assert not set(asked2) & done1, "a finished sample was asked again"
    assert set(asked2) == everything - done1 and max(asked2.values()) == 1
    final = [json.loads(line) for line in gens.read_text().splitlines()]
    assert Counter((r["id"], r["sample"]) for r in final) == Counter((r["id"], s) for r in rows for s in (0, 1))
    rep = json.loads((out / "report.json").read_text())
    assert rep["complete"] and rep["average"]["samples"] == 60
    # rows i % 3 == 0 are answered wrong: musique has even i (0, 6, 12, 18, 24 of 15 rows), hotpotqa odd i (5/15)
    assert rep["benchmarks"]["musique"]["accuracy"] == pytest.approx(100 * 10 / 15, abs=0.01)
    assert rep["benchmarks"]["hotpotqa"]["accuracy"] == pytest.approx(100 * 10 / 15, abs=0.01)


def test_convert_command(tmp_path, tiny_tokenizer):
    synth = generate_docqa(3, min_tokens=100, max_tokens=200, seed=1)
    src = tmp_path / "train.parquet"
    write_rows(synth, str(src))
    assert main(["eval-convert", str(src), str(tmp_path / "eval.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert [r["question"] for r in rows] == [s["extra_info"]["question"] for s in synth]
    assert all(PROMPT_TEMPLATE.format(context=r["context"], question=r["question"]) == s["prompt"][0]["content"]
               for r, s in zip(rows, synth, strict=True))
    assert main(["eval-convert", str(tmp_path / "missing.parquet"), str(tmp_path / "x.jsonl")]) == 2
