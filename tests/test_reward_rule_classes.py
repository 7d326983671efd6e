"""Rule scoring by error class (issue 13): each test is written from a class of mistakes, not one string.

* hyphens and diacritics: "X-large" holds the whole word "X", "Zürich" is "Zurich", different words stay different;
* hedges: an answer that lists several candidates is not a match;
* model special-token text ends the answer;
* numbers: relative comparison at small magnitudes, fractions, year-like integers exactly, and the number that is
  the answer when the sentence holds several;
* no normalisation makes two different non-empty answers equal by emptying them.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import ascii_words, non_year_ints, utf8_text

from qwenlong_verl.reward import rule
from qwenlong_verl.reward.answer import has_negator

ARTICLES = {"a", "an", "the"}
# lowercase ASCII words that are not articles, not hedge / list words and not negators: "no-c" rejects "c" (the
# rule's negation, answer.negated_at), which is right, and not the hyphen property these tests state
_word = ascii_words(1, 8, exclude=ARTICLES | {"or", "either", "neither", "nor", "and", "maybe", "perhaps", "possibly",
                                                "probably", "unsure", "uncertain", "unclear", "ambiguous"}
                    ).filter(lambda w: not has_negator(w))


def qa(pred: str, gold: str | list[str], metric: str = "sub_em") -> float:
    return rule.qa_score(pred, [gold] if isinstance(gold, str) else gold, metric).score


# -- hyphens ---------------------------------------------------------------------------------------------------------
HYPHENS = ["-", "\u2010", "\u2011", "\u2013", "\u2014", "\u2212"]


@settings(max_examples=150, deadline=None)
@given(a=_word, b=_word, dash=st.sampled_from(HYPHENS))
def test_hyphenated_term_holds_its_parts_as_whole_words(a, b, dash):
    assume(a != b)
    joined = f"{a}{dash}{b}"
    # the parts are whole words of the hyphenated term, exactly as they are of "a b"
    assert qa(joined, a) == qa(f"{a} {b}", a) == 1.0
    assert qa(joined, b) == 1.0
    assert rule.exact_match(joined, f"{a} {b}") == 1.0
    # the fused spelling is the same term ("e-mail" / "email") ...
    assert rule.exact_match(joined, a + b) == 1.0
    # ... but a fused word is not two words ("x large" vs "xlarge"), and a prefix is not a part
    assert rule.exact_match(f"{a} {b}", a + b) == 0.0
    if len(a) > 1 and a[:-1] != b:
        assert qa(joined, a[:-1]) == 0.0


@pytest.mark.parametrize(("pred", "gold"), [("X-large", "X"), ("Jean-Paul Sartre", "Sartre"),
                                            ("the Austro-Hungarian Empire", "Austro"), ("1990–2000", "2000")])
def test_hyphen_examples(pred, gold):
    assert qa(pred, gold) == 1.0


# -- diacritics ------------------------------------------------------------------------------------------------------
LATIN_MARKS = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030a", "\u030c", "\u0327", "\u0328"]


@settings(max_examples=150, deadline=None)
@given(word=_word, marks=st.lists(st.tuples(st.integers(0, 7), st.sampled_from(LATIN_MARKS)), max_size=3),
       upper=st.booleans())
def test_latin_diacritics_and_case_are_folded(word, marks, upper):
    chars = list(word)
    for pos, mark in marks:
        chars[pos % len(chars)] += mark
    accented = unicodedata.normalize("NFC", "".join(chars))
    if upper:
        accented = accented.upper()
    assert rule.exact_match(accented, word) == 1.0
    assert qa(f"It is {accented}", word) == 1.0


@pytest.mark.parametrize(("a", "b"), [("Zürich", "Zurich"), ("São Paulo", "Sao Paulo"), ("Łódź", "Lodz"),
                                      ("Ærøskøbing", "Aeroskobing"), ("GÖDEL", "Godel"), ("Ｐａｒｉｓ", "Paris"),
                                      ("Straße", "strasse")])
def test_diacritic_examples(a, b):
    assert rule.exact_match(a, b) == 1.0


@pytest.mark.parametrize(("a", "b"), [
    ("が", "か"),  # a voiced kana is another syllable
    ("कि", "क"),  # a Devanagari vowel sign changes the word
    ("ä", "ae"),  # folding is not transliteration
    ("resume", "resumes"),
])
def test_marks_that_make_different_words_are_kept(a, b):
    assert rule.exact_match(a, b) == 0.0


# -- emptying --------------------------------------------------------------------------------------------------------
_any_text = utf8_text(20, min_size=1)


@settings(max_examples=400, deadline=None)
@given(text=_any_text, hyphens=st.sampled_from([" ", ""]))
def test_normalisation_never_empties_a_non_blank_answer(text, hyphens):
    if text.strip():
        assert rule.normalize_answer(text, hyphens) != ""


@settings(max_examples=400, deadline=None)
@given(a=_any_text, b=_any_text)
def test_no_match_by_emptying(a, b):
    """Two answers that match have the same non-empty normal form: equality is never two empty strings."""
    assume(a.strip() and b.strip())
    if rule.exact_match(a, b):
        forms = {(rule.normalize_answer(a, h), rule.normalize_answer(b, h)) for h in (" ", "")}
        assert any(x == y != "" for x, y in forms)
    if rule.fold_text(" ".join(a.split())) != rule.fold_text(" ".join(b.split())):
        # different texts of only punctuation, symbols and articles never match
        def only_filler(t: str) -> bool:
            words = "".join(c if c.isalnum() else " " for c in t).split()
            return all(w.lower() in ARTICLES for w in words)

        if only_filler(a) and only_filler(b):
            assert qa(a, b) == 0.0 and rule.exact_match(a, b) == 0.0


@pytest.mark.parametrize(("a", "b", "same"), [("A", "a", 1.0), ("A", "B", 0.0), ("the", "a", 0.0), ("?", "!", 0.0),
                                              ("—", "...", 0.0), ("The", "the", 1.0), ("...", "...", 1.0)])
def test_article_and_punctuation_only_answers(a, b, same):
    assert rule.exact_match(a, b) == same
    assert qa(a, b) == same


# -- hedges ----------------------------------------------------------------------------------------------------------
HEDGES = [
    "either {g} or {d}", "{d} or {g}", "{g} or {d}", "{g}, {d}, or {e}", "{d} / {g}", "neither {d} nor {g}",
    "{d}, {g} and {e}; I cannot tell", "possibly {g} and {d}", "It could be {d} and {g}",
    "{g} and {d} (I am not sure which)", "{g}, {d} & {e} - the text does not say",
]
NOT_HEDGES = ["{g}", "It is {g}", "{g}; I am not sure", "{g}, probably", "I think {g}", "{g} (see the 2nd paragraph)"]


@settings(max_examples=100, deadline=None)
@given(g=_word, d=_word, e=_word, template=st.sampled_from(HEDGES), metric=st.sampled_from(["sub_em", "f1",
                                                                                            "em_or_sub_em"]))
def test_hedged_answers_are_not_a_match(g, d, e, template, metric):
    assume(len({g, d, e}) == 3)
    pred = template.format(g=g, d=d, e=e)
    r = rule.qa_score(pred, [g], metric)
    assert r.score == 0.0 and r.metrics["hedged"] == 1.0
    assert rule.math_score(template.format(g="5", d="6", e="7"), ["5"]).score == 0.0


@settings(max_examples=100, deadline=None)
@given(g=_word, template=st.sampled_from(NOT_HEDGES))
def test_one_candidate_with_doubt_or_context_still_matches(g, template):
    assert qa(template.format(g=g), g) == 1.0


def test_hedge_words_in_the_gold_itself():
    assert qa("War or Peace", "War or Peace") == 1.0
    assert qa("the novel War or Peace", "War or Peace") == 1.0
    assert qa("War or Peace, or Anna Karenina", "War or Peace") == 0.0
    assert qa("Tom and Jerry; not sure", "Tom and Jerry") == 1.0
    # any gold of a list: a hedge against one accepted answer is still a hedge
    assert qa("Paris or Lyon", ["Paris", "City of Light"]) == 0.0


def test_numeric_restatements_are_not_hedges():
    assert rule.math_score("12.5%, or 0.125", ["12.5%"]).score == 1.0
    assert rule.math_score("1/3 (or about 0.333)", ["0.333"]).score == 1.0
    assert rule.math_score("either 12.5% or 13%", ["12.5%"]).score == 0.0


# -- special tokens --------------------------------------------------------------------------------------------------
SPECIAL = ["<|im_end|>", "<|endoftext|>", "</s>", "<｜end▁of▁sentence｜>", "<|eot_id|>", "<|end|>", "<eos>",
           "<end_of_turn>", "<|im_end|><|endoftext|>"]


@settings(max_examples=150, deadline=None)
@given(answer=st.sampled_from(["Paris", "12.5%", "(B)", "Jean-Paul Sartre", "1/3"]), token=st.sampled_from(SPECIAL),
       gap=st.sampled_from(["", " ", "\n", ".", ". "]),
       after=st.sampled_from(["", "\n", "\n<|im_start|>user\nthe answer is Rome", " garbage"]))
def test_special_token_text_ends_the_answer(answer, token, gap, after):
    response = f"<think>reasoning</think>Therefore, the answer is {answer}{gap}{token}{after}"
    assert rule.extract_answer(response) == answer
    clean = f"<think>reasoning</think>Therefore, the answer is {answer}"
    for family in rule.FAMILIES:
        assert (rule.rule_score(family, rule.extract_answer(response), [answer]).score
                == rule.rule_score(family, rule.extract_answer(clean), [answer]).score)


def test_special_tokens_before_the_answer_are_skipped():
    assert rule.extract_answer("<think>x</think><|im_start|>The answer is Paris<|im_end|>") == "Paris"
    assert rule.extract_answer("<think>x</think><|im_end|>") is None
    assert rule.strip_special_tokens("no marker") == "no marker"


# -- numbers: small magnitudes ---------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(x=st.floats(min_value=1e-7, max_value=1e-2), factor=st.floats(min_value=1.01, max_value=10))
def test_small_magnitudes_are_compared_relatively(x, factor):
    a, b = f"{x:.3g}", f"{x * factor:.3g}"
    assume(float(a) != float(b))
    assert rule.math_score(a, [b]).score == 0.0
    assert rule.math_score(a, ["0"]).score == 0.0 and rule.math_score("0", [a]).score == 0.0
    assert rule.math_score(a, [a]).score == 1.0


@pytest.mark.parametrize(("pred", "gold", "ok"), [
    ("0.0004", "0", False), ("0", "0.0004", False), ("0.0001", "0.0004", False), ("0.0004", "0.0004", True),
    ("0.0123", "0.01234", True),  # rounded to the 3 significant digits it shows
    ("0.012", "0.01234", False),  # 2 significant digits are not enough
    ("1.23 million", "1,234,567", True), ("12.35", "12.3456", True),
    ("100.2", "100", False),  # an integer gold is exact: 0.2 % off
    ("0.00040", "0.0004", True), ("4e-4", "0.0004", True),
])
def test_small_magnitude_examples(pred, gold, ok):
    assert rule.math_score(pred, [gold]).score == float(ok)


# -- numbers: fractions ----------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 99), d=st.integers(2, 99))
def test_fraction_equals_its_decimal(n, d):
    value = n / d
    assert rule.math_score(f"{n}/{d}", [f"{value:.4g}"]).score == 1.0  # gold rounded to 4 significant digits
    assert rule.math_score(f"{value:.4g}", [f"{n}/{d}"]).score == 1.0
    assert rule.math_score(f"{n}/{d}", [f"{value * 1.01 + 0.01:.4g}"]).score == 0.0


@pytest.mark.parametrize(("pred", "gold", "ok"), [
    ("1/3", "0.333", True), ("0.3333", "1/3", True), ("2/3", "66.67%", True), ("1/4", "0.25", True),
    ("1/3", "0.25", False), ("3/4/2020", "0.75", False),  # a date is not a fraction
])
def test_fraction_examples(pred, gold, ok):
    assert rule.math_score(pred, [gold]).score == float(ok)


# -- numbers: years --------------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(year=st.integers(1000, 2100), delta=st.integers(-3, 3))
def test_year_like_integers_are_compared_exactly(year, delta):
    assert rule.math_score(str(year + delta), [str(year)]).score == float(delta == 0)
    assert rule.math_score(f"In {year + delta}.", [str(year)]).score == float(delta == 0)


def test_non_year_integers_keep_the_tolerance():
    assert rule.math_score("100001", ["100000"]).score == 1.0  # 0.001 %: a count, not a year
    assert rule.math_score("2,001", ["2,000"]).score == 1.0  # thousands separator: an amount
    assert rule.math_score("2001.0", ["2000.0"]).score == 1.0  # written with a point: an amount


# -- numbers: the number that is the answer --------------------------------------------------------------------------
_num = non_year_ints(10_000)


@settings(max_examples=200, deadline=None)
@given(a=_num, b=_num, c=_num, template=st.sampled_from([
    "from {a} to {b}, an increase of {c}", "{a} - {b} = {c}", "{c}, up from {a}", "{c} (from {a} to {b})",
    "an increase of {c}, from {a} to {b}", "The difference is {c} ({a} - {b})", "{c} more than {a}",
    "it rose by {c} from {a}", "Revenue of {a} vs {b}: {c}", "{c} million by 2020",
]))
def test_the_number_that_is_the_answer(a, b, c, template):
    assume(len({a, b, c}) == 3 and min(abs(a - c), abs(b - c)) > 0.01 * c)
    text = template.format(a=a, b=b, c=c)
    found = rule.answer_number(text)
    assert found is not None and found.value == c, text
    assert rule.math_score(text, [str(c)]).score == 1.0
    assert rule.math_score(text, [str(a)]).score == 0.0


def test_years_are_answers_when_the_gold_is_a_year():
    assert rule.math_score("It was founded in 1998, 3 years after the merger", ["1998"]).score == 1.0
    assert rule.math_score("5 million by 2020", ["2020"]).score == 1.0
