"""Middle truncation keeps the head and the tail of a prompt within the token budget of the real tokenizer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
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
    total = n_tokens(tiny_tokenizer, text)
    assert res.truncated and total > 10 * budget
    # cut from two windows: the original length is an estimate, flagged as such
    assert not res.original_exact and abs(res.original_tokens - total) <= 0.2 * total
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
    assert res.original_tokens == total or (not res.original_exact and res.original_tokens > budget)
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
        # at a tiny budget the shrink step (keep -= overshoot) can reach 0 when a character of several tokens
        # (CJK: 3 here) sits at the seam: "the 日本語" at budget 2 gives ""
        assert head or tail or budget < 8


# --- the windowed fast path gives the whole-text algorithm's result (issue 15, item 4) ------------------------------

FILLER = " ".join(f"word{i % 97} of the filler text" for i in range(3000))
HEAVY = [  # pieces that make pre-tokens run long or tokenize into several tokens per character
    " " * 400, "\n" * 300, " \n" * 150, "\t \t\n" * 60, "a" * 500, "=" * 300, "0123456789" * 40, "日本語の文章" * 80,
    "🙂🙃" * 100, "e\u0301" * 100, "ﬁ" * 50, "<think>", "</think>", "İstanbul" * 20, "\u200b" * 30, "x",
]


def reference(tok, budget: int, text: str):
    """The whole-text algorithm (what every prompt went through before the windowed path)."""
    return MiddleTruncator(tok, budget)._truncate_full(text)


def assert_same_as_reference(tok, budget: int, text: str):
    ref = reference(tok, budget, text)
    res = MiddleTruncator(tok, budget)(text)
    assert (res.text, res.tokens, res.truncated) == (ref.text, ref.tokens, ref.truncated)
    if res.original_exact:
        assert res.original_tokens == ref.original_tokens
    else:
        assert res.truncated and res.original_tokens > budget
    return res


def at_limit(tok, text: str, n: int) -> tuple[str, int]:
    """The shortest prefix of ``text`` with at least ``n`` tokens, and its token count (``n`` unless a character of
    several tokens straddles it)."""
    offsets = tok(text[:20 * n], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for end in range(offsets[n - 1][1], len(text)):
        got = n_tokens(tok, text[:end])
        if got >= n:
            return text[:end], got
    raise AssertionError("text too short")


DOCS = {
    "short": "A short document. What is it?",
    "far_over": PROMPT_TEMPLATE.format(context=FILLER, question="Where is item 7?"),
    "multibyte": "日本語のテキスト、🙂 émigré naïve — " * 900,
    "whitespace": ("x  \n\n   y\t\t" + " " * 37 + "\n" * 11) * 400,
    "one_long_word": "b" * 30000,
    "long_runs": "".join(HEAVY) * 6,
    "cjk_no_spaces": "长上下文推理强化学习框架" * 2500,
    "digits": "3.14159265358979323846 2,718,281 " * 1200,
    "added_tokens": ("<think>reason</think> answer " * 1500),
}


@pytest.mark.parametrize("budget", [2, 3, 16, 101, 1000, 4000])
@pytest.mark.parametrize("name", sorted(DOCS))
def test_windowed_equals_whole_text_on_a_table(tiny_tokenizer, name, budget):
    assert_same_as_reference(tiny_tokenizer, budget, DOCS[name])


@pytest.mark.parametrize("budget", [16, 500, 3000])
def test_at_and_around_the_limit(tiny_tokenizer, budget):
    for name in ("far_over", "multibyte", "whitespace", "long_runs"):
        at, limit = at_limit(tiny_tokenizer, DOCS[name], budget)
        assert limit - budget <= 3
        res = assert_same_as_reference(tiny_tokenizer, limit, at)
        assert res.text == at and not res.truncated and res.tokens == limit and res.original_exact
        assert_same_as_reference(tiny_tokenizer, limit - 1, at)  # one token over
        assert_same_as_reference(tiny_tokenizer, limit, DOCS[name][:len(at) + 1])
        # a window's cut edge at every kind of character: shift the document a character at a time
        for shift in range(0, 40, 7):
            assert_same_as_reference(tiny_tokenizer, budget, DOCS[name][shift:shift + 40 * budget])


SEGMENTS = [*WORDS, *HEAVY, "Sentence 12 of the filler text about the river valley. ", "\r\n", "'s", "'ll"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.lists(st.sampled_from(SEGMENTS), max_size=60), tail=st.lists(st.sampled_from(SEGMENTS), max_size=60),
       sep=st.sampled_from(["", " ", "\n", "  "]), middle=st.sampled_from([0, 300, 5000, 40000]),
       budget=st.sampled_from([2, 3, 7, 64, 250, 1000]))
def test_property_windowed_equals_whole_text(tiny_tokenizer, head, tail, sep, middle, budget):
    # random pieces at both ends, where the windows' cut edges and the seam fall; filler in between
    text = sep.join(head) + sep + FILLER[:middle] + sep + sep.join(tail)
    res = assert_same_as_reference(tiny_tokenizer, budget, text)
    event("windowed" if not res.original_exact else "whole text")


def test_long_text_is_cut_from_windows_not_tokenized_whole(tiny_tokenizer):
    text = DOCS["far_over"] * 10  # ~130K tokens
    seen: list[int] = []

    class Spy:
        is_fast = True
        backend_tokenizer = tiny_tokenizer.backend_tokenizer

        def __call__(self, texts, **kw):
            seen.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
            return tiny_tokenizer(texts, **kw)

    res = MiddleTruncator(Spy(), 4000)(text)
    assert res.truncated and res.tokens <= 4000 and not res.original_exact
    assert res.text == reference(tiny_tokenizer, 4000, text).text
    assert sum(seen) < len(text) / 10  # only the windows and the seam were tokenized
    assert abs(res.original_tokens - n_tokens(tiny_tokenizer, text)) < 0.1 * res.original_tokens


def test_tokenizer_without_pre_tokenizer_uses_the_whole_text(tiny_tokenizer):
    class NoPre:
        is_fast = True
        backend_tokenizer = type("B", (), {"pre_tokenizer": None})()

        def __call__(self, texts, **kw):
            return tiny_tokenizer(texts, **kw)

    res = MiddleTruncator(NoPre(), 100)(DOCS["far_over"])
    assert res.original_exact and res.original_tokens == n_tokens(tiny_tokenizer, DOCS["far_over"])
    assert res.text == reference(tiny_tokenizer, 100, DOCS["far_over"]).text


class _SpyBackend:
    """The Rust tokenizer, recording the lengths of the texts it is given."""

    def __init__(self, backend, seen: list[int]) -> None:
        self._backend = backend
        self._seen = seen

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def encode_batch(self, texts, **kw):
        self._seen.extend(len(t) for t in texts)
        return self._backend.encode_batch(texts, **kw)


def test_windows_go_straight_to_the_rust_tokenizer(tiny_tokenizer):
    # transformers' wrapper converts each window's encoding to Python lists under the GIL; the backend gives the
    # same offsets (checked on a probe), so the windows and the seam are tokenized by it directly
    text = DOCS["far_over"] * 10
    trunc = MiddleTruncator(tiny_tokenizer, 4000)
    assert trunc._backend is tiny_tokenizer.backend_tokenizer
    seen: list[int] = []
    trunc._backend = _SpyBackend(tiny_tokenizer.backend_tokenizer, seen)
    res = trunc(text)
    assert res.text == reference(tiny_tokenizer, 4000, text).text and not res.original_exact
    assert seen and sum(seen) < len(text) / 10
    # another caller left truncation switched on in the shared backend: the windows go through transformers' own
    # call, which switches it off again (the seam after it may then go to the backend)
    seen.clear()
    tiny_tokenizer.backend_tokenizer.enable_truncation(100)
    try:
        res = trunc(text)
    finally:
        tiny_tokenizer.backend_tokenizer.no_truncation()
    assert all(n < 1000 for n in seen) and res.text == reference(tiny_tokenizer, 4000, text).text


def test_backend_used_only_for_transformers_fast_tokenizers(tiny_tokenizer):
    class Wrapped:  # not a PreTrainedTokenizerFast: its __call__ may do more than the backend
        is_fast = True
        backend_tokenizer = tiny_tokenizer.backend_tokenizer

        def __call__(self, texts, **kw):
            return tiny_tokenizer(texts, **kw)

    assert MiddleTruncator(Wrapped(), 100)._backend is None
    assert MiddleTruncator(tiny_tokenizer, 0)._backend is None  # no truncation: whole-text counts only
