"""Judge verdict parsing (issue 13): the near-misses a small judge writes are read, and a reply that holds both
verdicts, a negated verdict or a question about the verdict is never a pass."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenlong_verl.reward.judge import fold_verdict_token, parse_verdict, verdict_probabilities

# -- the near-misses of a 1.5B judge, each written for both verdicts ---------------------------------------------------
NEAR_MISSES = [
    "VERDICT: [[{V}]]",
    "VERDICT: {V} (see above)",
    "Final verdict: {V}",
    "Both name the same city.\nVERDICT: {V}\nThe wording differs only in case.",
    "VERDICT: {V}<|im_end|>",
    "VERDICT: {V}</s>",
    "VERDICT: {V}<｜end▁of▁sentence｜>",
    "The candidate gives the city of the reference; VERDICT: {V}",
    "**Verdict:** **{V}**",
    "verdict: {v}",
    "My verdict is {V}.",
    "The two answers are compared.\n\n{V}",
    "Reasoning in one sentence.\n**{V}**.",
    "Judgement: {V}",
    "VERDICT - {V}",
]


@pytest.mark.parametrize("template", NEAR_MISSES)
@pytest.mark.parametrize("yes", [True, False])
def test_near_misses_are_read(template, yes):
    word = "YES" if yes else "NO"
    assert parse_verdict(template.format(V=word, v=word.lower())) is yes


@pytest.mark.parametrize(("text", "verdict"), [
    ("VERDICT: YES (equivalent)", True),
    ("VERDICT: NO (not equivalent)", False),
    ("VERDICT: YES (not equivalent)", None),  # the explanation contradicts the verdict
    ("There is no difference between them.\nVERDICT: YES", True),  # lower-case "no" in prose is not a verdict
    ("VERDICT: YES\nActually, no.", None),  # the sentence after the verdict takes it back
    ("VERDICT: YES\nOne.\nTwo.", None),  # more than one sentence after: not a final verdict
    ("YES, they are the same.", None),  # a capitalised word in a sentence does not decide
])
def test_explanations_after_the_verdict(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize("text", [
    "VERDICT: YES?", "Is the verdict YES?", "Should the verdict be YES", "VERDICT: NOT YES", "not YES",
    "The verdict is not YES.", "The verdict would not be YES", "VERDICT: YES or NO", "YES\nNO",
    "VERDICT: NO\nVERDICT: YES", "Verdict: maybe", "", "VERDICT:", "I can't decide. VERDICT: YES?\nVERDICT: NO?",
])
def test_no_pass(text):
    assert parse_verdict(text) is not True


# -- property: both words anywhere ------------------------------------------------------------------------------------
PROSE = [
    "The candidate names the same city.", "There is no difference in meaning.", "Both give the value 12.5%.",
    "The reference is more specific", "yes, the units differ but the value is the same.",
    "The candidate answer is Paris.", "They refer to one entity;", "No extra entity is named.", "\n", " ",
    "Reasoning: the two strings are compared", "(rounded)", "**Note**", "I compared both answers carefully.",
]
YES_FORMS = ["VERDICT: YES", "YES", "**YES**", "Verdict: yes", "Final verdict: YES", "[[YES]]", "VERDICT: [[YES]]",
             "\nYES\n", "My verdict is YES."]
NO_FORMS = [f.replace("YES", "NO").replace("yes", "no") for f in YES_FORMS]
NEGATED_YES = ["not YES", "NOT YES", "VERDICT: NOT YES", "The verdict is not YES.", "it isn't YES",
               "Verdict: not yes", "never YES"]
QUESTIONED_YES = ["VERDICT: YES?", "Is the verdict YES?", "YES?", "Should the verdict be YES", "Is it YES or not?"]
_prose = st.lists(st.sampled_from(PROSE), max_size=6)


def _place(pieces: list[str], inserts: list[tuple[int, str]]) -> str:
    out = list(pieces)
    for pos, text in sorted(inserts, key=lambda p: -p[0]):
        out.insert(min(pos, len(out)), text)
    return " ".join(out)


@settings(max_examples=500, deadline=None)
@given(prose=_prose, yes=st.sampled_from(YES_FORMS), no=st.sampled_from(NO_FORMS), i=st.integers(0, 6),
       j=st.integers(0, 6), tail=st.sampled_from(["", "<|im_end|>", "\n", "."]))
def test_both_verdicts_anywhere_is_never_a_verdict(prose, yes, no, i, j, tail):
    text = _place(prose, [(i, yes), (j, no)]) + tail
    assert parse_verdict(text) is None, text


@settings(max_examples=400, deadline=None)
@given(prose=_prose, bad=st.sampled_from(NEGATED_YES + QUESTIONED_YES), good=st.sampled_from(YES_FORMS),
       i=st.integers(0, 6), good_last=st.booleans())
def test_negated_or_questioned_verdict_is_never_a_pass(prose, bad, good, i, good_last):
    inserts = [(i, bad)] + ([(len(prose), good)] if good_last else [])
    text = _place(prose, inserts)
    assert parse_verdict(text) is not True, text


CLEAN_PROSE = [p for p in PROSE if "no" not in p.lower().split() and "yes" not in p.lower()]


BARE = {"YES", "**YES**", "[[YES]]"}  # "\nYES\n" ends its own line


@settings(max_examples=400, deadline=None)
@given(prose=_prose, form=st.sampled_from(list(zip(YES_FORMS, NO_FORMS, strict=True))), yes=st.booleans(),
       after=st.sampled_from(["", "\nBoth are the same value.", " (see above)", "<|im_end|>", ".", "\n\n"]))
def test_a_final_verdict_after_any_prose_is_read(prose, form, yes, after):
    """Prose (lower-case "no" included) then one verdict form at the end, then at most one neutral sentence: read.
    A bare word followed on its line by more text is no longer alone on its line: no verdict, never the opposite."""
    text = " ".join(prose) + "\n" + (form[0] if yes else form[1]) + after
    if form[0] in BARE and after == " (see above)":
        assert parse_verdict(text) is None, text
    else:
        assert parse_verdict(text) is yes, text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_never_raises(text):
    assert parse_verdict(text) in (True, False, None)
    assert parse_verdict(text + "\nVERDICT: YES") in (True, None)


# -- logprob helpers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("token", "folded"), [("YES", True), (" yes", True), ("Yes", True), ("**NO", False),
                                               (" No.", False), ("\nno", False), ("Y", None), ("Yesterday", None),
                                               ("The", None), ("", None), (None, None)])
def test_fold_verdict_token(token, folded):
    assert fold_verdict_token(token) is folded


def test_verdict_probabilities_fold_case_and_space():
    import math

    cands = [("YES", math.log(0.5)), (" yes", math.log(0.2)), ("Yes", math.log(0.1)), ("NO", math.log(0.1)),
             ("The", math.log(0.05)), ("YES", math.log(0.5))]  # a repeated token counts once
    p_yes, p_no = verdict_probabilities(cands)
    assert p_yes == pytest.approx(0.8) and p_no == pytest.approx(0.1)
    assert verdict_probabilities([("The", 0.0)]) == (0.0, 0.0)
    assert verdict_probabilities([("YES", float("-inf"))]) == (0.0, 0.0)
