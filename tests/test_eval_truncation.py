"""Middle truncation keeps the head and the tail of a prompt within the token budget of the real tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwenlong_verl.evaluation.data import PROMPT_TEMPLATE
from qwenlong_verl.evaluation.truncation import MiddleTruncator

WORDS = ["the", "answer", "is", "river", "1,234.5", "日本語", "héllo", "naïve", "\n\n", "—", "🙂", "x", "  "]


def n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def split_head_tail(original: str, out: str) -> tuple[str, str]:
    """The longest prefix of ``original`` that ``out`` starts with, and the rest (which must be a suffix)."""
    i = 0
    while i < min(len(original), len(out)) and original[i] == out[i]:
        i += 1
    return out[:i], out[i:]


def test_short_text_is_untouched(tiny_tokenizer):
    text = PROMPT_TEMPLATE.format(context="A short document.", question="What is it?")
    res = MiddleTruncator(tiny_tokenizer, 10_000)(text)
    assert res.text == text and not res.truncated
    assert res.original_tokens == res.tokens == n_tokens(tiny_tokenizer, text)


def test_disabled_keeps_text_but_counts(tiny_tokenizer):
    text = "word " * 500
    res = MiddleTruncator(tiny_tokenizer, 0)(text)
    assert res.text == text and not res.truncated and res.tokens == n_tokens(tiny_tokenizer, text)


def test_needs_tokenizer_and_a_sane_budget():
    with pytest.raises(ValueError, match="tokenizer"):
        MiddleTruncator(None, 100)
    with pytest.raises(ValueError, match="max_tokens=1"):
        MiddleTruncator(object(), 1)
    assert MiddleTruncator(None, 0)("abc").text == "abc"


def test_long_prompt_keeps_task_question_and_format_line(tiny_tokenizer):
    doc = " ".join(f"Sentence {i} of the filler text about the river valley." for i in range(3000))
    question = "In which city was the person who led the Kalo project born?"
    text = PROMPT_TEMPLATE.format(context=doc, question=question)
    budget = 2000
    res = MiddleTruncator(tiny_tokenizer, budget)(text)
    assert res.truncated and res.original_tokens == n_tokens(tiny_tokenizer, text) > 10 * budget
    assert res.tokens == n_tokens(tiny_tokenizer, res.text) <= budget
    assert res.tokens >= budget - 4  # the budget is used, not wasted
    assert res.text.startswith("Please read the following text and answer the question below.")
    assert res.text.endswith('Format your response as follows: "Therefore, the answer is (insert answer here)".')
    assert question in res.text
    head, tail = split_head_tail(text, res.text)
    assert text.endswith(tail)
    # about half of the budget on each side (the paper keeps max_len/2 tokens of each)
    assert abs(n_tokens(tiny_tokenizer, head) - budget / 2) <= 0.05 * budget
    assert abs(n_tokens(tiny_tokenizer, tail) - budget / 2) <= 0.05 * budget


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=300), budget=st.integers(2, 200),
       use_offsets=st.booleans())
def test_property_head_and_tail_within_budget(tiny_tokenizer, words, budget, use_offsets):
    text = " ".join(words)
    trunc = MiddleTruncator(tiny_tokenizer, budget)
    trunc._offsets = use_offsets  # also exercise the decode path used for slow tokenizers
    res = trunc(text)
    total = n_tokens(tiny_tokenizer, text)
    assert res.original_tokens == total
    assert res.tokens == n_tokens(tiny_tokenizer, res.text) <= budget
    if total <= budget:
        assert res.text == text and not res.truncated
        return
    assert res.truncated
    if use_offsets:
        # cut on the original text: a prefix of it followed by a suffix of it, nothing invented
        head, tail = split_head_tail(text, res.text)
        assert text.endswith(tail)
        assert len(head) + len(tail) < len(text)
        assert head or tail
