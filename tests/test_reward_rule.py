"""Rule scoring: answer extraction, QA / numeric / multiple-choice matching, family routing, parser robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import utf8_text

from qwenlong_verl.reward import rule
from qwenlong_verl.reward.judge import parse_verdict
from qwenlong_verl.reward.scoring import ScoreOptions, compute_score


# -- answer extraction -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "mode", "expected"),
    [
        ("<think>the answer is Rome</think>Therefore, the answer is **Paris**.", "require", "Paris"),
        ("<think>a</think>x</think> The answer is London", "require", "London"),  # the LAST </think>
        ("no think tag. The answer is Paris", "require", None),  # unfinished reasoning scores 0
        ("no think tag. The answer is Paris", "optional", "Paris"),
        ("<think>The answer is Rome</think>", "require", None),  # nothing after the reasoning
        ("<think>x</think>The answer is Rome</think>", "off", "Rome</think>"),
        ("<think>x</think>The final answer is: (B).\n\nExplanation: ...", "require", "(B)"),
        ("<think>x</think>Paris", "require", "Paris"),  # no "the answer is": the whole tail
        ("<think>x</think>THE ANSWER IS \"12.5%\".", "require", "12.5%"),
    ],
)
def test_extract_answer(response, mode, expected):
    assert rule.extract_answer(response, mode) == expected


def test_gold_answers_forms():
    assert rule.gold_answers("Paris") == ["Paris"]
    assert rule.gold_answers(["Paris", " Paris, France "]) == ["Paris", "Paris, France"]
    assert rule.gold_answers(12.5) == ["12.5"]
    assert rule.gold_answers("Reasoning... Therefore, the answer is 42.") == ["42"]
    assert rule.gold_answers("The correct answer is (C)") == ["(C)"]
    for bad in (None, "", [], ["", None], {"a": 1}):
        with pytest.raises(ValueError, match="ground truth"):
            rule.gold_answers(bad)


# -- QA ----------------------------------------------------------------------------------------------------------------
def test_qa_metrics():
    assert rule.exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert rule.exact_match("", "") == 0.0
    assert rule.sub_exact_match("It is Paris, France", "Paris") == 1.0
    assert rule.sub_exact_match("Paris", "Paris, France") == 1.0  # both directions, as in the reference
    # word containment, not characters: the reference's character test would give these full marks
    assert rule.sub_exact_match("e", "Paris") == 0.0
    assert rule.sub_exact_match("the", "Paris") == 0.0
    assert rule.sub_exact_match("Parisian cafe", "Paris") == 0.0
    assert rule.token_f1("new york city", "new york") == pytest.approx(0.8)
    assert rule.token_f1("yes it is", "yes") == 0.0  # yes/no golds need the exact word
    assert rule.token_f1("yes", "yes") == 1.0


def test_qa_score_takes_best_gold_and_metric():
    r = rule.qa_score("Paris France", ["London", "Paris"], "sub_em")
    assert r.score == 1.0 and r.metrics["em"] == 0.0 and r.metrics["sub_em"] == 1.0
    assert rule.qa_score("Paris France", ["Paris"], "em").score == 0.0
    assert rule.qa_score("Paris France", ["Paris"], "f1").score == pytest.approx(2 / 3)
    assert rule.qa_score(None, ["Paris"]).score == 0.0


# -- numbers -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pred", "gold", "ok"),
    [
        ("1,234,567", "1234567", True),
        ("$1,234.5 million", "1234500000", True),  # scale word applied
        ("1,234.5 million", "1234.5", True),  # or the number as written (gold in millions)
        ("12.5%", "0.125", True),
        ("12.5 percent", "12.5", True),
        ("0.125", "12.5%", True),
        ("-3.2", "-3.2", True),
        ("\u22123.2", "-3.2", True),  # unicode minus
        ("(3.2)", "-3.2", True),  # accounting negative
        ("3.2", "-3.2", False),  # the sign matters
        ("100.1", "100", True),  # within 0.15%
        ("100.2", "100", False),  # outside 0.15%
        ("0.0004", "0", False),  # relative, not 3-decimal rounding (which made them equal)
        ("2.5e3", "2500", True),
        ("about 42 units", "42", True),
        ("COVID-19", "19", True),  # a hyphen after a word is not a minus
        ("COVID-19 cases: 7", "7", True),  # the number stated after ":" is the answer, not the first one
        ("no number here", "42", False),
        ("", "42", False),
    ],
)
def test_numbers(pred, gold, ok):
    assert rule.math_score(pred, [gold]).score == float(ok)


def test_math_without_numbers_falls_back_to_exact_match():
    assert rule.math_score("Not applicable", ["not applicable"]).score == 1.0
    assert rule.math_score("maybe", ["not applicable"]).score == 0.0


# -- multiple choice ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pred", "letter"),
    [("(B)", "B"), ("B", "B"), ("B. Zurich", "B"), ("option c", "C"), ("[D]", "D"), ("Zurich", None),
     ("A lot of text", "A"), ("", None)],
)
def test_parse_option(pred, letter):
    assert rule.parse_option(pred) == letter


def test_choice_score():
    assert rule.choice_score("(B)", ["The correct answer is (B)"]).score == 1.0
    assert rule.choice_score("(B)", rule.gold_answers("The correct answer is (B)")).score == 1.0
    assert rule.choice_score("C", ["B"]).score == 0.0
    assert rule.choice_score("Zurich", ["B"]).score == 0.0


# -- routing -----------------------------------------------------------------------------------------------------------
def test_families_and_unknown_data_source():
    assert rule.resolve_family("hotpotqa") == rule.QA
    assert rule.resolve_family("DocMath") == rule.MATH
    assert rule.resolve_family("docmath_simpshort") == rule.MATH
    assert rule.resolve_family("long_toc_choices") == rule.CHOICE
    assert rule.resolve_family("mydata", {"mydata": "choice"}) == rule.CHOICE
    with pytest.raises(rule.UnknownDataSourceError, match="'gsm8k'"):
        rule.resolve_family("gsm8k")
    assert rule.resolve_family("gsm8k", default="math") == rule.MATH
    with pytest.raises(ValueError, match="unknown family 'code'"):
        rule.resolve_family("x", {"x": "code"})


def test_compute_score_custom_reward_function():
    out = compute_score("musique", "<think>..</think>The answer is Paris.", ["Paris", "City of Paris"])
    assert out["score"] == 1.0 and out["acc"] == 1.0 and out["judge_called"] == 0.0
    assert compute_score("musique", "The answer is Paris.", "Paris")["score"] == 0.0  # no </think>
    assert compute_score("musique", "The answer is Paris.", "Paris", answer_after_think="optional")["score"] == 1.0
    with pytest.raises(ValueError, match="'gsm8k'"):
        compute_score("gsm8k", "<think></think>4", "4")
    assert compute_score("gsm8k", "<think></think>4", "4", default_family="math")["score"] == 1.0
    with pytest.raises(ValueError, match="answer_after_think"):
        compute_score("musique", "x", "y", answer_after_think="sometimes")
    with pytest.raises(ValueError, match="reward_kwargs.bogus"):
        compute_score("musique", "x", "y", bogus=1)


def test_score_options_validation():
    with pytest.raises(ValueError, match="judge_families"):
        ScoreOptions(judge_families=["code"])
    with pytest.raises(ValueError, match="families.x"):
        ScoreOptions(families={"x": "nope"})


def test_extract_question():
    prompt = ("Please read the following text and answer the question below.\n\n<text>\nLong doc </text> inside\n"
              "</text>\n\nWho led the Falcon project?\n\nFormat your response as follows: \"Therefore, the answer is "
              "(insert answer here)\".")
    assert rule.extract_question(prompt) == "Who led the Falcon project?"
    assert rule.extract_question("x" * 10000, max_chars=100) == "x" * 100


# -- robustness: parsers never raise -----------------------------------------------------------------------------------
_text = utf8_text(300) | st.sampled_from(
    ["", "</think>", "the answer is", "(", "$-,.%", "1e999", "(((", "VERDICT: YES", "\x00", "1,2,3,,4.5.6e+"]
)


@settings(max_examples=300, deadline=None)
@given(response=_text, tail=_text, mode=st.sampled_from(["require", "optional", "off"]))
def test_parsers_never_raise(response, tail, mode):
    text = response + tail
    answer = rule.extract_answer(text, mode)
    assert answer is None or isinstance(answer, str)
    rule.parse_number(text)
    rule.parse_option(text)
    rule.extract_question(text)
    assert parse_verdict(text) in (True, False, None)
    for family in rule.FAMILIES:
        r = rule.rule_score(family, answer, ["42", "Paris", "(B)"])
        assert 0.0 <= r.score <= 1.0


@settings(max_examples=200, deadline=None)
@given(pred=_text, gold=_text.filter(lambda s: s.strip() != ""))
def test_rule_scores_bounded_for_any_gold(pred, gold):
    try:
        golds = rule.gold_answers(gold)
    except ValueError:
        return  # e.g. a gold that is only "the answer is": named error, not a crash
    for family in rule.FAMILIES:
        assert 0.0 <= rule.rule_score(family, pred, golds).score <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_number_roundtrip(x):
    text = f"{x:,.6f}"
    parsed = rule.parse_number(text)
    assert parsed is not None
    assert rule.numbers_match(parsed, rule.ParsedNumber(float(f"{x:.6f}"), False, 1.0))
