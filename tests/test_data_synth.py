"""Synthetic DocQA: determinism, verifiable answers, length control, verl-compatible rows."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from qwenlong_verl.data.synth import DEFAULT_TOKENS_PER_WORD, KINDS, generate_docqa, write_rows


def _doc(row) -> str:
    content = row["prompt"][0]["content"]
    return content[content.index("<text>\n") + 7: content.index("\n</text>")]


def test_deterministic_by_seed():
    a = generate_docqa(8, min_tokens=300, max_tokens=2000, seed=3, kinds=KINDS)
    b = generate_docqa(8, min_tokens=300, max_tokens=2000, seed=3, kinds=KINDS)
    c = generate_docqa(8, min_tokens=300, max_tokens=2000, seed=4, kinds=KINDS)
    assert a == b
    assert [r["prompt"] for r in a] != [r["prompt"] for r in c]
    # row i does not depend on how many rows were asked for
    assert generate_docqa(3, min_tokens=300, max_tokens=2000, seed=3, kinds=KINDS) == a[:3]


def test_kinds_sources_and_layout():
    rows = generate_docqa(2 * len(KINDS), min_tokens=300, max_tokens=600, seed=0, kinds=KINDS, index_offset=100)
    assert [r["extra_info"]["kind"] for r in rows] == list(KINDS) * 2
    sources = {r["extra_info"]["kind"]: set() for r in rows}
    for r in rows:
        sources[r["extra_info"]["kind"]].add(r["data_source"])
    assert sources["numeric"] == {"docmath"}
    assert sources["choice"] == {"long_toc_choices"}
    assert sources["multihop"] == {"musique", "multihoprag"}
    assert [r["extra_info"]["index"] for r in rows] == list(range(100, 100 + 2 * len(KINDS)))
    for r in rows:
        assert r["reward_model"]["style"] == "rule"
        assert r["prompt"][0]["role"] == "user"
        content = r["prompt"][0]["content"]
        assert content.startswith("Please read the following text and answer the question below.")
        assert content.endswith('Format your response as follows: "Therefore, the answer is (insert answer here)".')
        assert r["extra_info"]["question"] in content
        assert "prompt_length" not in r  # no tokenizer given


def test_answers_are_verifiable_from_the_document():
    rows = generate_docqa(24, min_tokens=400, max_tokens=3000, seed=11, kinds=KINDS)
    for r in rows:
        doc, gt, q = _doc(r), r["reward_model"]["ground_truth"], r["extra_info"]["question"]
        kind = r["extra_info"]["kind"]
        if kind == "multihop":
            project = re.search(r"led the (\w+) project", q).group(1)
            person = re.search(rf"The {project} project was led by ([\w ]+?)\.", doc).group(1)
            assert re.search(rf"{person} was born in the city of (\w+)\.", doc).group(1) == gt
        elif kind == "numeric":
            company = re.search(r"of (\w+ Holdings)", q).group(1)
            years = [int(y) for y in re.findall(r"\b(\d{4})\b", q)]
            vals = {int(y): float(v.replace(",", "")) for y, v in
                    re.findall(rf"In (\d{{4}}), {company} reported [\w ]+? of ([\d,\.]+) million", doc)}
            a, b = vals[min(years)], vals[max(years)]
            expected = {"change from": b - a, "total": a + b}
            if "percentage" in q:
                want = (b - a) / a * 100
            elif "total" in q:
                want = expected["total"]
            else:
                want = expected["change from"]
            assert float(gt) == pytest.approx(round(want, 2), abs=1e-9)
        elif kind == "choice":
            company = re.search(r"Which city is (\w+ Group)", q).group(1)
            city = re.search(rf"{company} is headquartered in (\w+)\.", doc).group(1)
            assert re.search(rf"\({gt}\) (\w+)", q).group(1) == city
            for opt in re.findall(r"\([A-D]\) (\w+)", q):  # every option is a city of the document
                assert f"headquartered in {opt}." in doc
        elif kind in ("needle", "needle_dense"):
            assert re.findall(r"The access code is (\w+)\.", doc) == [gt]
            assert gt not in re.findall(r"The old code was (\w+)\.", doc)
        else:
            assert doc.startswith(f"The access code is {gt}.") and doc.endswith(f"The access code is {gt}.")


def test_needle_gets_harder_with_length():
    """More distractors in longer documents, so a length curriculum has something to order."""
    short = generate_docqa(20, min_tokens=150, max_tokens=200, seed=3, kinds=("needle",))
    long = generate_docqa(20, min_tokens=1500, max_tokens=2000, seed=3, kinds=("needle",))

    def distractors(rows):
        return sum(_doc(r).count("The old code was") for r in rows) / len(rows)

    assert 1 <= distractors(short) <= 4
    assert distractors(long) >= 5 * distractors(short)


def test_needle_dense_distractors_per_token_rise_with_length():
    """needle keeps the distractors per word flat; needle_dense makes a document twice as long carry about twice
    as many per word (so a long prompt is harder per token, not only longer)."""
    def per_word(kind: str, lo: int, hi: int) -> float:
        rows = generate_docqa(20, min_tokens=lo, max_tokens=hi, seed=4, kinds=(kind,))
        return sum(_doc(r).count("The old code was") / len(_doc(r).split()) for r in rows) / len(rows)

    flat_short, flat_long = per_word("needle", 150, 200), per_word("needle", 700, 800)
    dense_short, dense_long = per_word("needle_dense", 150, 200), per_word("needle_dense", 700, 800)
    assert flat_long == pytest.approx(flat_short, rel=0.35)
    assert dense_long >= 1.8 * dense_short and dense_long >= 1.5 * flat_long


def test_code_words_are_single_tokens_of_the_tiny_tokenizer(tiny_tokenizer):
    """The copy tasks answer with one token: a tiny model learns to copy it within the demo's budget."""
    from qwenlong_verl.data.synth import COPY_WORDS

    for word in COPY_WORDS:
        assert len(tiny_tokenizer.tokenize(f" is {word}.")) == 3, tiny_tokenizer.tokenize(f" is {word}.")


def test_lengths_follow_the_tokenizer(tiny_tokenizer):
    from verl.utils.tokenizer.tokenizer import normalize_token_ids

    rows = generate_docqa(6, min_tokens=300, max_tokens=12000, tokenizer=tiny_tokenizer, seed=5, kinds=KINDS)
    for r in rows:
        verl_len = len(normalize_token_ids(tiny_tokenizer.apply_chat_template(
            r["prompt"], add_generation_prompt=True, tokenize=True)))
        assert r["prompt_length"] == r["extra_info"]["prompt_length"] == verl_len
        target = r["extra_info"]["target_tokens"]
        assert abs(verl_len - target) <= max(20, 0.03 * target), (target, verl_len)


def test_long_documents_reach_60k(tiny_tokenizer):
    (row,) = generate_docqa(1, min_tokens=62000, max_tokens=62000, tokenizer=tiny_tokenizer, seed=1)
    assert 60000 < row["prompt_length"] < 64000


def test_length_distribution_without_tokenizer():
    rows = generate_docqa(200, min_tokens=300, max_tokens=60000, seed=2, length_dist="loguniform")
    targets = [r["extra_info"]["target_tokens"] for r in rows]
    assert min(targets) >= 300 and max(targets) <= 60000
    assert 6000 < sum(targets) / len(targets) < 18000  # log-uniform mean of [300, 60000] is ~11.3K
    words = len(_doc(rows[0]).split())
    assert abs(words * DEFAULT_TOKENS_PER_WORD - targets[0]) < 0.15 * targets[0] + 100


@pytest.mark.parametrize("kwargs,match", [
    (dict(kinds=("prose",)), "unknown kind"),
    (dict(min_tokens=500, max_tokens=100), "min_tokens"),
    (dict(length_dist="normal"), "length_dist"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_docqa(2, **kwargs)


def test_cli_writes_parquet_readable_by_verl(tmp_path, tiny_model_dir, tiny_tokenizer):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from qwenlong_verl.cli import main

    out = tmp_path / "synth.parquet"
    assert main(["synth", "--out", str(out), "-n", "6", "--min-tokens", "300", "--max-tokens", "800",
                 "--tokenizer", str(tiny_model_dir), "--kinds", "multihop,copy", "--seed", "7"]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 6 and (df["prompt_length"] > 0).all()
    cfg = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 100000, "filter_overlong_prompts": False,
                            "cache_dir": str(tmp_path / "cache")})
    ds = RLHFDataset(str(out), tiny_tokenizer, cfg)
    assert len(ds) == 6
    assert [ds[i]["index"] for i in range(6)] == list(range(6))
    jsonl = tmp_path / "synth.jsonl"
    write_rows(generate_docqa(2, min_tokens=300, max_tokens=400), str(jsonl))
    assert len(pd.read_json(jsonl, lines=True)) == 2


def test_code_copy_pretraining_trains_the_tiny_model_in_place(tmp_path, tiny_model_dir):
    import shutil

    from safetensors.torch import load_file

    from qwenlong_verl.pipeline.tiny_model import pretrain_code_copy

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    before = load_file(str(next(model.glob("*.safetensors"))))
    result = pretrain_code_copy(model, steps=30, docs=16, max_tokens=200)
    after = load_file(str(next(model.glob("*.safetensors"))))
    assert result["steps"] == 30 and result["loss_last"] < result["loss_first"]
    assert any(not before[k].equal(after[k]) for k in before)
    assert json.loads((model / "qwenlong_tiny.json").read_text())["pretrain_code_copy"] == result
