"""SFT conversion: triplets / verl rows -> verl's multi-turn ``messages`` layout, read back by verl's own
``MultiTurnSFTDataset`` with the tiny tokenizer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qwenlong_verl.data.sft import (
    SFTConversionOptions,
    SFTDataError,
    assistant_message,
    check_template_keeps_reasoning,
    convert_files,
    convert_rows,
    evidence_sentences,
    load_triplets,
)
from qwenlong_verl.data.synth import PROMPT_TEMPLATE, generate_docqa, write_rows


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TRIPLET = {"id": "t1", "data_source": "musique", "question": "Where was Ada born?",
           "context": "Filler text here. Ada Varn was born in Kelmor. More filler.", "answers": ["Kelmor"],
           "reasoning": "The document says Ada Varn was born in Kelmor."}


def test_triplet_becomes_user_prompt_and_r1_style_answer(tmp_path):
    rows = load_triplets([_jsonl(tmp_path / "t.jsonl", [TRIPLET])])
    records, stats = convert_rows(rows)
    (rec,) = records
    user, assistant = rec["messages"]
    assert user == {"role": "user", "content": PROMPT_TEMPLATE.format(document=TRIPLET["context"],
                                                                      question=TRIPLET["question"])}
    assert assistant["role"] == "assistant"
    assert assistant["content"] == ("<think>\nThe document says Ada Varn was born in Kelmor.\n</think>\n\n"
                                    "Therefore, the answer is Kelmor.")
    assert rec["data_source"] == "musique" and rec["id"] == "t1" and rec["reasoning_source"] == "column"
    assert stats.as_dict()["rows_out"] == 1


def test_answer_is_what_the_reward_extracts():
    from qwenlong_verl.reward.rule import extract_answer

    text = assistant_message("Kelmor Hall", "It mentions Ada and the answer is not Brel.", SFTConversionOptions())
    assert extract_answer(text, "require") == "Kelmor Hall"


def test_verl_rows_take_reasoning_from_extra_info(tmp_path):
    rows = generate_docqa(2, min_tokens=120, max_tokens=200, seed=3, kinds=("copy",))
    rows[0]["extra_info"]["reasoning"] = "It is stated twice."
    rows[1]["extra_info"]["reasoning"] = "Also stated."
    path = tmp_path / "rl.parquet"
    write_rows(rows, str(path))
    records, _ = convert_rows(load_triplets([path]))
    assert records[0]["messages"][0]["content"] == rows[0]["prompt"][0]["content"]  # the RL prompt verbatim
    assert records[0]["messages"][1]["content"].startswith("<think>\nIt is stated twice.\n</think>")
    assert records[0]["messages"][1]["content"].endswith(f"the answer is {rows[0]['reward_model']['ground_truth']}.")


def test_missing_reasoning_is_an_error_naming_the_row(tmp_path):
    row = {**{k: v for k, v in TRIPLET.items() if k != "reasoning"}, "id": "t2"}
    rows = load_triplets([_jsonl(tmp_path / "t.jsonl", [TRIPLET, row])])
    with pytest.raises(SFTDataError, match=r"t\.jsonl:2.*reasoning"):
        convert_rows(rows)


def test_evidence_reasoning_quotes_the_sentences_that_state_the_answer(tmp_path):
    rows = generate_docqa(4, min_tokens=150, max_tokens=250, seed=5, kinds=("copy", "multihop", "choice", "numeric"))
    path = tmp_path / "synth.parquet"
    write_rows(rows, str(path))
    records, stats = convert_rows(load_triplets([path]), SFTConversionOptions(reasoning="evidence"))
    by_kind = {r["extra_info"]["kind"]: (r, rec) for r, rec in zip(rows, records, strict=True)}
    copy_row, copy_rec = by_kind["copy"]
    assert f"The text states: The access code is {copy_row['reward_model']['ground_truth']}." in \
        copy_rec["messages"][1]["content"]
    mh_row, mh_rec = by_kind["multihop"]
    assert f"was born in the city of {mh_row['reward_model']['ground_truth']}." in mh_rec["messages"][1]["content"]
    ch_row, ch_rec = by_kind["choice"]  # a letter answer is looked up through its option
    assert "is headquartered in" in ch_rec["messages"][1]["content"]
    # numeric answers are computed, never stated: the reasoning falls back to the question, and is counted
    assert stats.no_evidence == [f"docmath:{by_kind['numeric'][0]['extra_info']['index']}"]


def test_evidence_sentences_match_whole_words_only():
    doc = "The codex is amberlight. The access code is amber. Then the access code is amber again!"
    assert evidence_sentences(doc, "q", "amber", limit=5) == ["The access code is amber.",
                                                              "Then the access code is amber again!"]
    assert evidence_sentences(doc, "Which?\n(A) x\n(B) amber", "B", limit=1) == ["The access code is amber."]
    assert evidence_sentences(doc, "q", "missing") == []


def test_too_long_prompts_are_left_out_and_counted(tmp_path, tiny_tokenizer):
    rows = generate_docqa(6, min_tokens=150, max_tokens=600, tokenizer=tiny_tokenizer, seed=7, kinds=("copy",))
    path = tmp_path / "synth.parquet"
    write_rows(rows, str(path))
    limit = 350
    records, stats = convert_rows(load_triplets([path]), SFTConversionOptions(reasoning="evidence",
                                                                             max_prompt_tokens=limit), tiny_tokenizer)
    too_long = {f"multihoprag:{r['extra_info']['index']}" for r in rows if r["prompt_length"] > limit}
    assert too_long and set(stats.too_long) == too_long
    assert len(records) == len(rows) - len(too_long)
    assert all(r["prompt_length"] <= limit for r in records)
    with pytest.raises(ValueError, match="tokenizer"):
        convert_rows(load_triplets([path]), SFTConversionOptions(reasoning="evidence", max_prompt_tokens=10))


def test_template_check_catches_a_template_that_drops_reasoning(tiny_tokenizer):
    record = {"id": "x", "messages": [{"role": "user", "content": "q"},
                                      {"role": "assistant", "content": assistant_message("A", "why", SFTConversionOptions())}]}
    check_template_keeps_reasoning(tiny_tokenizer, record)  # the tiny ChatML template keeps it
    saved = tiny_tokenizer.chat_template
    # DeepSeek-R1-Distill style: assistant content is cut to the text after </think>
    tiny_tokenizer.chat_template = (
        "{% for m in messages %}{% set c = m['content'] %}{% if m['role'] == 'assistant' and '</think>' in c %}"
        "{% set c = c.split('</think>')[-1] %}{% endif %}<|im_start|>{{ m['role'] }}\n{{ c }}<|im_end|>\n"
        "{% endfor %}")
    try:
        with pytest.raises(SFTDataError, match="removes the thinking part"):
            check_template_keeps_reasoning(tiny_tokenizer, record)
    finally:
        tiny_tokenizer.chat_template = saved


def test_verl_multiturn_sft_dataset_reads_the_output(tmp_path, tiny_model_dir, tiny_tokenizer):
    """verl's own SFT dataset tokenises the file; the loss mask covers exactly the assistant turn."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    rows = generate_docqa(3, min_tokens=150, max_tokens=250, tokenizer=tiny_tokenizer, seed=9, kinds=("copy",))
    src = tmp_path / "synth.parquet"
    write_rows(rows, str(src))
    out = tmp_path / "sft.parquet"
    stats = convert_files([src], out, SFTConversionOptions(reasoning="evidence"), tiny_tokenizer)
    assert stats.rows_out == 3 and list(pd.read_parquet(out).columns)[:1] == ["messages"]
    ds = MultiTurnSFTDataset(parquet_files=[str(out)], tokenizer=tiny_tokenizer,
                             config=OmegaConf.create({"max_length": 1024, "messages_key": "messages",
                                                      "pad_mode": "no_padding", "truncation": "error"}))
    item = ds[0]
    ids, mask = item["input_ids"], item["loss_mask"].bool()
    trained = tiny_tokenizer.decode(ids[mask])
    assert "The text states: The access code is" in trained
    assert trained.rstrip().endswith(f"the answer is {rows[0]['reward_model']['ground_truth']}.<|im_end|>")
    assert "Please read the following text" not in trained  # the prompt carries no loss
