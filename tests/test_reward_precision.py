"""Reward precision first (issue 21): under max(rule, judge) a rule false accept can never be undone.

* two adversarial sets of R1-style responses, written by hand per principle (negation, revision, several
  candidates, a different entity or context, partial answers, dates, numbers, units, multiple choice, unfinished
  reasoning), each with wrong answers that must be rejected and right answers in varied forms that must be
  accepted: ``tests/data/rule_precision_cases.jsonl`` (written with the rule) and
  ``tests/data/rule_precision_holdout.jsonl`` (written afterwards, new phrasings, first measured before any fix);
* property tests: a mutation known to make an answer wrong never raises its score;
* every verdict carries a reason, in the scored rows, the reward function's result, the step metrics and the
  ``score`` command's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import ascii_words, non_year_ints

from qwenlong_verl.cli import main as cli_main
from qwenlong_verl.reward import canonical, lexicon, rule
from qwenlong_verl.reward.metrics import judge_step_metrics
from qwenlong_verl.reward.scoring import HybridScorer, ScoreOptions, compute_score

DATA = Path(__file__).parent / "data"
SETS = ["rule_precision_cases.jsonl", "rule_precision_holdout.jsonl"]
SOURCES = {"qa": "hotpotqa", "math": "docmath", "choice": "long_toc_choices"}


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _score(row: dict, mode: str = "require"):
    scorer = HybridScorer(ScoreOptions(answer_after_think=mode, qa_metric="em_or_sub_em"))
    return scorer.rule_only(SOURCES[row["family"]], row["response"], row["ground_truth"], row["question"])


ALL_ROWS = [(name, row) for name in SETS for row in _rows(name)]


@pytest.mark.parametrize(("name", "row"), ALL_ROWS,
                         ids=[f"{n.split('_')[-1][:-6]}-{r['id']}-{r['principle']}" for n, r in ALL_ROWS])
def test_adversarial_case(name, row):
    sample = _score(row)
    assert sample.rule_reason in rule.REASONS
    assert (sample.rule_reason == rule.MATCHED) == (sample.rule_score >= 1.0)
    assert sample.acc == row["expect"], (row["response"].split("</think>")[-1], row["ground_truth"],
                                         sample.extracted_answer, sample.rule_reason)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("mode", ["require", "optional"])
def test_acceptance_rates(name, mode):
    """The issue's acceptance bar on each set: false accepts <= 3 % of wrong answers, agreement >= 80 %."""
    rows = _rows(name)
    got = [_score(r, mode).acc for r in rows]
    wrong = [g for g, r in zip(got, rows, strict=True) if r["expect"] == 0]
    false_accepts = sum(wrong)
    agreement = sum(g == r["expect"] for g, r in zip(got, rows, strict=True)) / len(rows)
    assert len(wrong) >= 60 and false_accepts <= 0.03 * len(wrong), false_accepts
    assert agreement >= 0.8, agreement


# -- mutations that make an answer wrong never raise its score --------------------------------------------------------
# random capitalised names that are not one of the grammar words the rule reads (lexicon) nor a month or number
_RESERVED = (lexicon.STOP | lexicon.QUALIFIER_LEADS | lexicon.PREFIXES | lexicon.CLASS_NOUNS | lexicon.TITLES
             | lexicon.SCALE_WORDS | set(canonical.MONTHS) | set(canonical.CARDINALS) | set(canonical.ORDINALS)
             | {"nor", "either", "neither", "plus", "alternatively", "rather", "instead", "wait", "actually"})
_name = ascii_words(3, 8, exclude=_RESERVED).map(str.capitalize)
NEGATIONS = ["not {a}", "definitely not {a}", "{a} is wrong", "anything but {a}", "{b}, not {a}", "{b} rather than {a}",
             "it cannot be {a}", "{a} can be ruled out; {b}"]
SECOND = ["{a} or {b}", "{a}, {b} and {c}", "{a} and {b}", "{a}/{b}", "either {a} or {b}", "{a}; alternatively {b}",
          "{b} or {a}", "{a} as well as {b}"]
REVISE = ["{a}. Wait, actually it was {b}.", "{a}, or rather {b}", "{a}... no wait, {b}"]
_FORMS = ["{a}", "It is {a}.", "**{a}**", "{a} (see the third paragraph)", "{a}."]


def _qa(answer: str, gold: str) -> float:
    return rule.score_read(rule.QA, rule.read_answer(f"<think>r</think>Therefore, the answer is {answer}"),
                           [gold], "em_or_sub_em").score


@settings(max_examples=150, deadline=None)
@given(a=_name, b=_name, c=_name, form=st.sampled_from(_FORMS),
       mutation=st.sampled_from(NEGATIONS + SECOND + REVISE + ["New {a}", "Lake {a}", "{a} City", "{a}'s son"]))
def test_qa_mutations_never_raise_the_score(a, b, c, form, mutation):
    assume(len({a, b, c}) == 3)
    original = form.format(a=a)
    mutated = form.format(a=mutation.format(a=a, b=b, c=c))
    for gold in (a, b):
        assert _qa(mutated, gold) <= _qa(original, gold) or gold == b and mutation in REVISE + NEGATIONS, mutated
    assert _qa(original, a) == 1.0
    assert _qa(mutated, a) == 0.0, (mutated, a)


@settings(max_examples=150, deadline=None)
@given(x=non_year_ints(99999),
       y=non_year_ints(99999),
       pct=st.booleans(), mutation=st.sampled_from(["not {a}", "{a} or {b}", "{a}, {b} and {b}", "between {a} and {b}",
                                                    "{a}–{b}", "{b} rather than {a}", "{a}. Correction: it is {b}.",
                                                    "{a} is wrong; the total is {b}"]))
def test_numeric_mutations_never_raise_the_score(x, y, pct, mutation):
    assume(abs(x - y) > 0.01 * max(x, y))
    a, b = (f"{x}%", f"{y}%") if pct else (f"{x:,}", f"{y:,}")
    read = rule.read_answer(f"<think>r</think>Therefore, the answer is {mutation.format(a=a, b=b)}")
    assert rule.score_read(rule.MATH, rule.read_answer(f"<think>r</think>Therefore, the answer is {a}."),
                           [a]).score == 1.0
    assert rule.score_read(rule.MATH, read, [a]).score == 0.0, mutation.format(a=a, b=b)


@settings(max_examples=100, deadline=None)
@given(a=st.sampled_from("ABCDEFGH"), b=st.sampled_from("ABCDEFGH"), wrap=st.sampled_from(["({})", "{}", "**{}**",
                                                                                        "[{}]", "option {}"]),
       mutation=st.sampled_from(["not {a}; {b}", "{a} or {b}", "{a} and {b}", "{a}/{b}", "{a}. Wait, actually {b}.",
                                 "{b}, since {a} is wrong"]))
def test_choice_mutations_never_raise_the_score(a, b, wrap, mutation):
    assume(a != b)
    la, lb = wrap.format(a), wrap.format(b)
    ok = rule.score_read(rule.CHOICE, rule.read_answer(f"<think>r</think>The answer is {la}."), [a]).score
    bad = rule.score_read(rule.CHOICE, rule.read_answer(
        f"<think>r</think>The answer is {mutation.format(a=la, b=lb)}"), [a]).score
    assert ok == 1.0 and bad == 0.0


# -- canonical forms ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "parts"), [
    ("March 3, 1990", (1990, 3, 3)), ("3rd of March 1990", (1990, 3, 3)), ("1990-03-03", (1990, 3, 3)),
    ("14/07/1789", (1789, 7, 14)), ("the fourteenth of July, 1789", (1789, 7, 14)), ("Sept. 1939", (1939, 9, None)),
    ("in 1990", (1990, None, None)), ("June", (None, 6, None)),
])
def test_dates_have_one_canonical_form(text, parts):
    assert canonical.find_dates(text)[0].parts == parts


def test_day_month_order_that_could_be_either_is_ambiguous():
    d = canonical.find_dates("03/04/1990")[0]
    assert d.alt is not None
    assert canonical.compare_dates(d, canonical.find_dates("March 4, 1990")[0]) == "ambiguous"
    assert canonical.compare_dates(canonical.find_dates("05/05/1990")[0],
                                   canonical.find_dates("May 5, 1990")[0]) == "matched"


@pytest.mark.parametrize(("pred", "gold", "ok"), [
    ("1,234", "1234", True), ("1.234", "1234", False), ("1,234", "1.234", False), ("1.234.567", "1234567", True),
    ("1.234,5", "1234.5", True), ("3,5", "3.5", True), ("1 234 567", "1234567", True), ("1'234'567", "1234567", True),
    ("1,23,456", "123456", True), ("12\\,345", "12345", True), ("\\frac{3}{4}", "0.75", True),
    ("2.5 \\times 10^{3}", "2500", True), ("2.5 × 10⁴", "25000", True), ("twenty-one", "21", True),
    ("1,234 and 3,5", "1234", False),  # both conventions in one answer: "1,234" has no single reading
])
def test_number_literals(pred, gold, ok):
    assert rule.math_score(pred, [gold]).score == float(ok)


def test_math_reasons_name_the_mismatch():
    assert rule.math_score("$5 thousand", ["$5 million"]).reason == rule.WRONG_SCALE
    assert rule.math_score("0.125%", ["12.5%"]).reason == rule.WRONG_SCALE
    assert rule.math_score("40 km", ["40 miles"]).reason == rule.WRONG_UNIT
    assert rule.math_score("5 percentage points", ["5%"]).reason == rule.WRONG_UNIT
    assert rule.math_score("5 percentage points", ["5"]).reason == rule.MATCHED
    assert rule.math_score("not 12", ["12"]).reason == rule.NEGATED
    assert rule.math_score("12 or 15", ["12"]).reason == rule.HEDGED
    assert rule.math_score("no figure", ["12"]).reason == rule.UNPARSED


def test_sign_words_where_the_question_fixes_the_direction():
    change, decline = "What was the change in sales?", "By how much did sales decline?"
    assert rule.math_score("a decline of 4%", ["-4%"], question=change).score == 1.0
    assert rule.math_score("a decline of 4%", ["4%"], question=change).score == 0.0
    assert rule.math_score("a decline of 4%", ["4%"], question=decline).score == 1.0
    assert rule.math_score("4%", ["-4%"], question=change).score == 0.0
    assert rule.math_score("an increase of 4%", ["-4%"], question=change).score == 0.0


# -- unfinished reasoning ---------------------------------------------------------------------------------------------
CUT = ["<think>\nThe text says Geneva. So the answer is Geneva. Wait, let me check the",
       "Okay, the text names Geneva. So the answer is Geneva, but the second table lists"]


@pytest.mark.parametrize("response", CUT)
@pytest.mark.parametrize("mode", ["require", "optional"])
def test_cut_off_reasoning_is_not_scored(response, mode):
    sample = HybridScorer(ScoreOptions(answer_after_think=mode)).rule_only("hotpotqa", response, "Geneva")
    assert sample.score == 0.0 and sample.rule_reason == rule.UNFINISHED and sample.extracted_answer is None


def test_only_off_scores_inside_the_reasoning():
    sample = HybridScorer(ScoreOptions(answer_after_think="off")).rule_only("hotpotqa", CUT[1] + ".", "Geneva")
    assert sample.extracted_answer is not None
    assert rule.answer_region("The answer is Geneva.", "optional") == "The answer is Geneva."


# -- reasons everywhere -------------------------------------------------------------------------------------------------
def test_compute_score_reports_one_reason_key_per_reason():
    out = compute_score("hotpotqa", "<think>.</think>The answer is Oslo or Bergen.", "Oslo")
    assert out["score"] == 0.0 and out["reason_hedged"] == 1.0
    assert {k for k in out if k.startswith("reason_")} == {f"reason_{r}" for r in rule.REASONS}
    assert sum(out[f"reason_{r}"] for r in rule.REASONS) == 1.0


def test_step_metrics_carry_reason_shares():
    recs = [{"rule_reason": "matched", "score": 1.0}, {"rule_reason": "hedged"}, {"rule_reason": "hedged"},
            {"score": 0.0}]
    m = judge_step_metrics(recs)
    assert m["qwenlong/reward/reason/hedged"] == 0.5 and m["qwenlong/reward/reason/matched"] == 0.25


def test_score_command_prints_reason_counts(tmp_path, capsys):
    rows = [dict(r, data_source=SOURCES[r["family"]]) for r in _rows(SETS[1])[:40]]
    src = tmp_path / "rows.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out_rows, out_json = tmp_path / "scored.jsonl", tmp_path / "summary.json"
    assert cli_main(["score", str(src), "-o", str(out_rows), "--json", str(out_json), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "rule reasons:" in printed and "negated" in printed and "to the judge 0" in printed
    scored = [json.loads(line) for line in out_rows.read_text().splitlines()]
    assert all(r["rule_reason"] in rule.REASONS for r in scored)
    reasons = json.loads(out_json.read_text())["reasons"]["ALL"]
    assert sum(v for k, v in reasons.items() if k in rule.REASONS) == len(rows)
