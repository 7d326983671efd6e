"""Rule-based answer matching by data_source family (QwenLong-L1 §2.4, notes §1.4).

Three families:

* ``qa`` (multihoprag, musique, hotpotqa, 2wikimqa, narrativeqa, qasper, frames): SQuAD-normalised exact match,
  sub-exact match and token F1; the rule score is sub-EM by default, like the reference code.
* ``math`` (docmath): numeric equivalence with a relative tolerance, percent/scale words, signs, currency and
  thousands separators.
* ``choice`` (long_toc_choices): the option letter.

Every parser here takes arbitrary text and never raises; a missing answer scores 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

QA, MATH, CHOICE = "qa", "math", "choice"
FAMILIES = (QA, MATH, CHOICE)

DEFAULT_FAMILIES: dict[str, str] = {
    "multihoprag": QA,
    "musique": QA,
    "hotpotqa": QA,
    "2wikimqa": QA,
    "narrativeqa": QA,
    "qasper": QA,
    "frames": QA,
    "docmath": MATH,
    "long_toc_choices": CHOICE,
}


class UnknownDataSourceError(ValueError):
    """A data_source has no rule family and no default family is configured."""


def resolve_family(data_source: str, overrides: Mapping[str, str] | None = None, default: str | None = None) -> str:
    """Family of ``data_source``: ``overrides`` first, then the built-in table, matched on the whole lower-cased
    name and then on its part before the first ``_``/``-``/``/`` (``docmath_simpshort`` -> ``docmath``); else
    ``default``; else :class:`UnknownDataSourceError` naming it."""
    name = str(data_source).strip()
    table = {**DEFAULT_FAMILIES, **{k.lower(): v for k, v in (overrides or {}).items()}}
    key = name.lower()
    candidates = [key, re.split(r"[_\-/]", key, maxsplit=1)[0]]
    for cand in candidates:
        if cand in table:
            family = table[cand]
            break
    else:
        if default is None:
            raise UnknownDataSourceError(
                f"unknown data_source {name!r}: no rule family for it (known: {', '.join(sorted(table))}); "
                "map it with qwenlong.reward.families.<data_source>=qa|math|choice or set "
                "qwenlong.reward.default_family"
            )
        family = default
    if family not in FAMILIES:
        raise ValueError(f"data_source {name!r} maps to unknown family {family!r}; families are {FAMILIES}")
    return family


# ---------------------------------------------------------------------------------------------------------------
# Answer extraction
# ---------------------------------------------------------------------------------------------------------------
THINK_END = "</think>"
_ANSWER_IS = re.compile(r"the\s+(?:final\s+|correct\s+)?answer\s+is", re.IGNORECASE)
_WRAPPERS = "*_`\"' \t\r\n:"


def answer_region(response: str, mode: str = "require", think_end: str = THINK_END) -> str | None:
    """The part of ``response`` that holds the answer.

    ``require``: the text after the last ``think_end``; None when it is absent (an unfinished or truncated
    reasoning scores 0, as in QwenLong-L1). ``optional``: after the last ``think_end`` if present, else all of it.
    ``off``: all of it."""
    text = response if isinstance(response, str) else ("" if response is None else str(response))
    if mode == "off":
        return text
    pos = text.rfind(think_end) if think_end else -1
    if pos < 0:
        return None if mode == "require" else text
    return text[pos + len(think_end):]


def parse_final_answer(text: str | None) -> str | None:
    """The answer stated in ``text``: what follows the last "the answer is" (also "the final/correct answer is"),
    up to the end of that paragraph, without markdown emphasis, quotes or a final period; the whole stripped text
    when the phrase is absent. None for empty text."""
    if text is None:
        return None
    text = str(text)
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        text = text[matches[-1].end():]
        text = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0] if text.strip() else ""
    previous = None
    while text != previous:  # peel "**(B)**." style wrappers and a final period, in any order
        previous = text
        text = text.strip().strip(_WRAPPERS).rstrip(".")
    return text or None


def extract_answer(response: str, mode: str = "require", think_end: str = THINK_END) -> str | None:
    """``parse_final_answer(answer_region(response, mode))``."""
    return parse_final_answer(answer_region(response, mode, think_end))


def gold_answers(ground_truth: object) -> list[str]:
    """Accepted answers as a list of strings: one string, a number, or a list/tuple/array of them. A gold
    written as "... the answer is X" is reduced to X. Raises ValueError when there is none."""
    if ground_truth is None:
        raise ValueError("ground truth is missing (None)")
    if isinstance(ground_truth, str | int | float):
        items: Iterable[object] = [ground_truth]
    elif isinstance(ground_truth, Mapping):
        raise ValueError(f"ground truth must be a string or a list of strings, got a mapping {dict(ground_truth)!r}")
    else:
        try:
            items = list(ground_truth)  # type: ignore[call-overload]
        except TypeError as exc:
            raise ValueError(f"ground truth must be a string or a list of strings, got {ground_truth!r}") from exc
    out = []
    for item in items:
        if item is None:
            continue
        s = str(item)
        parsed = parse_final_answer(s) if _ANSWER_IS.search(s) else s.strip()
        if parsed:
            out.append(parsed)
    if not out:
        raise ValueError(f"ground truth is empty: {ground_truth!r}")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Rule results
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class RuleResult:
    score: float  # the rule score used for the reward
    metrics: dict[str, float] = field(default_factory=dict)  # family-specific details (em, sub_em, f1, ...)


# -- QA ------------------------------------------------------------------------------------------------------------
_normalize = None


def normalize_answer(text: str) -> str:
    """SQuAD normalisation (lower case, no punctuation, no articles, single spaces): verl's
    ``search_r1_like_qa_em.normalize_answer``, imported on first use because importing verl loads this package's
    plugins, which import this module."""
    global _normalize
    if _normalize is None:
        from verl.utils.reward_score.search_r1_like_qa_em import normalize_answer as verl_normalize

        _normalize = verl_normalize
    return _normalize(text)


def exact_match(prediction: str, gold: str) -> float:
    """EM = 1 if normalize(prediction) == normalize(gold) (SQuAD normalisation), else 0; an empty prediction is 0."""
    return _em(normalize_answer(prediction), normalize_answer(gold))


def sub_exact_match(prediction: str, gold: str) -> float:
    """Sub-EM = 1 if the normalised gold occurs in the normalised prediction or vice versa, else 0.

    Containment is on whole words, not characters: the reference's character test gives "e" full marks against
    "Paris", and an empty prediction full marks against anything. An empty side scores 0."""
    return _sub_em(normalize_answer(prediction), normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 = 2PR/(P+R) over SQuAD-normalised tokens (P = common/|pred|, R = common/|gold|). As in HotpotQA's
    evaluator, a yes/no/noanswer gold only matches the same word exactly."""
    return _f1(normalize_answer(prediction), normalize_answer(gold))


# the same three on already-normalised text, so qa_score normalises each string once
def _em(p: str, g: str) -> float:
    return float(bool(p) and p == g)


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def _sub_em(p: str, g: str) -> float:
    pw, gw = p.split(), g.split()
    return float(_contains_words(pw, gw) or _contains_words(gw, pw))


def _f1(p: str, g: str) -> float:
    if (p in ("yes", "no", "noanswer") or g in ("yes", "no", "noanswer")) and p != g:
        return 0.0
    pt, gt = p.split(), g.split()
    common = sum((Counter(pt) & Counter(gt)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pt), common / len(gt)
    return 2 * precision * recall / (precision + recall)


def qa_score(prediction: str | None, golds: list[str], metric: str = "sub_em") -> RuleResult:
    """em, sub_em and f1 each take the max over the accepted answers; the rule score is ``metric`` of them
    (``em_or_sub_em`` = max(em, sub_em), QwenLong-L1's evaluation)."""
    if not prediction:
        return RuleResult(0.0, {"em": 0.0, "sub_em": 0.0, "f1": 0.0})
    p = normalize_answer(prediction)
    gs = [normalize_answer(g) for g in golds]
    m = {"em": max(_em(p, g) for g in gs), "sub_em": max(_sub_em(p, g) for g in gs),
         "f1": max(_f1(p, g) for g in gs)}
    if metric == "em_or_sub_em":
        return RuleResult(max(m["em"], m["sub_em"]), m)
    return RuleResult(m[metric], m)


# -- numbers (DocMath) ---------------------------------------------------------------------------------------------
_SCALES = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "mm": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9,
    "trillion": 1e12, "tn": 1e12,
}
_NUMBER = re.compile(
    r"""(?P<neg>(?<![\w.])[-\u2212\u2013])?\s*(?P<cur>[$\u20ac\u00a3\u00a5])?\s*(?P<paren>\()?\s*(?P<cur2>[$\u20ac\u00a3\u00a5])?
        (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE](?P<exp>[-+]?\d{1,3}))?
        (?P<close>\))?\s*(?P<pct>%|\s?percent(?:age)?(?:\s+points?)?\b)?
        (?:\s*(?P<scale>thousand|million|billion|trillion|mn|mm|bn|tn|k|m|b)\b)?""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedNumber:
    value: float  # the number as written, sign applied, percent and scale NOT applied
    percent: bool
    scale: float  # multiplier of a scale word (1 if none)


def parse_number(text: str | None) -> ParsedNumber | None:
    """The first number in ``text`` with its sign (``-``, ``−``, or accounting parentheses), currency symbol,
    thousands separators, exponent, percent sign or word, and scale word. None when there is no finite number."""
    if not text:
        return None
    for m in _NUMBER.finditer(str(text)):
        try:
            value = float(m.group("num").replace(",", "") + (f"e{m.group('exp')}" if m.group("exp") else ""))
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        if m.group("neg") or (m.group("paren") and m.group("close")):
            value = -value
        scale = _SCALES.get((m.group("scale") or "").lower(), 1.0)
        return ParsedNumber(value, bool(m.group("pct")), scale)
    return None


def _candidates(n: ParsedNumber, percent_context: bool) -> set[float]:
    base = {n.value, n.value * n.scale}
    if percent_context:  # "12.5%" may be written 0.125, and 0.125 may stand for 12.5%
        base |= {v / 100 for v in base} | {v * 100 for v in base}
    return base


def numbers_match(pred: ParsedNumber, gold: ParsedNumber, rel_tol: float = 1.5e-3, round_digits: int = 3) -> bool:
    """pred ≈ gold if, for some reading of each (as written; times its scale word; ×100 or ÷100 when either side
    is a percent), ``|p - g| <= rel_tol * |g|`` or ``round(p, round_digits) == round(g, round_digits)``."""
    pct = pred.percent or gold.percent
    for p in _candidates(pred, pct):
        for g in _candidates(gold, pct):
            if abs(p - g) <= rel_tol * abs(g) or round(p, round_digits) == round(g, round_digits):
                return True
    return False


def math_score(prediction: str | None, golds: list[str], rel_tol: float = 1.5e-3, round_digits: int = 3) -> RuleResult:
    """1 if the first number of the prediction matches the first number of any accepted answer
    (:func:`numbers_match`); when neither side holds a number, falls back to SQuAD exact match."""
    pred = parse_number(prediction)
    parsed_any = pred is not None
    for g in golds:
        gold = parse_number(g)
        if gold is None:
            if prediction and exact_match(prediction, g):
                return RuleResult(1.0, {"numeric": float(parsed_any)})
            continue
        if pred is not None and numbers_match(pred, gold, rel_tol, round_digits):
            return RuleResult(1.0, {"numeric": 1.0})
    return RuleResult(0.0, {"numeric": float(parsed_any)})


# -- multiple choice -----------------------------------------------------------------------------------------------
_OPTION_PATTERNS = (
    re.compile(r"[(\[]\s*([A-J])\s*[)\]]"),  # (B) or [B]
    re.compile(r"\b(?:option|choice)\s*:?\s*([A-J])\b", re.IGNORECASE),  # option B
    re.compile(r"^\W*([A-J])(?:[).:,]|\s|$)"),  # "B", "B.", "B) text" at the start
)


def parse_option(text: str | None) -> str | None:
    """The option letter (A-J) stated in ``text``: "(B)", "[B]", "option B", or a leading "B"/"B."/"B)". None
    otherwise."""
    if not text:
        return None
    for pattern in _OPTION_PATTERNS:
        m = pattern.search(str(text))
        if m:
            return m.group(1).upper()
    return None


def choice_score(prediction: str | None, golds: list[str]) -> RuleResult:
    """1 if the option letter of the prediction equals that of any accepted answer, else 0."""
    letter = parse_option(prediction)
    gold_letters = {parse_option(g) or g.strip().upper() for g in golds}
    return RuleResult(float(letter is not None and letter in gold_letters), {"option_found": float(letter is not None)})


def rule_score(family: str, prediction: str | None, golds: list[str], qa_metric: str = "sub_em",
               rel_tol: float = 1.5e-3, round_digits: int = 3) -> RuleResult:
    if family == QA:
        return qa_score(prediction, golds, qa_metric)
    if family == MATH:
        return math_score(prediction, golds, rel_tol, round_digits)
    if family == CHOICE:
        return choice_score(prediction, golds)
    raise ValueError(f"unknown rule family {family!r}; families are {FAMILIES}")


# ---------------------------------------------------------------------------------------------------------------
# Question for the judge
# ---------------------------------------------------------------------------------------------------------------
_FORMAT_MARK = re.compile(r"Format your response as follows", re.IGNORECASE)


def extract_question(prompt: str, max_chars: int = 4000) -> str:
    """The question inside a QwenLong-L1 prompt: the text after the last ``</text>`` and before "Format your
    response as follows". Without those markers, the last ``max_chars`` characters (the question usually ends a
    long-context prompt, and the judge must not receive the document)."""
    text = "" if prompt is None else str(prompt)
    pos = text.rfind("</text>")
    if pos >= 0:
        text = text[pos + len("</text>"):]
    m = _FORMAT_MARK.search(text)
    if m:
        text = text[:m.start()]
    text = text.strip()
    if len(text) > max_chars:
        text = text[-max_chars:]
    return text
