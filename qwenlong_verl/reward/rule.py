"""Rule-based answer matching by data_source family (QwenLong-L1 §2.4, notes §1.4).

Three families:

* ``qa`` (multihoprag, musique, hotpotqa, 2wikimqa, narrativeqa, qasper, frames): exact match, sub-exact match
  on whole words and token F1 after SQuAD normalisation extended to fold case and Latin diacritics and to split
  hyphenated words (:func:`normalize_answer`); the rule score is sub-EM by default, like the reference code. A
  hedge that lists several candidates (:func:`is_hedged`) is not a sub-EM match.
* ``math`` (docmath): numeric equivalence (:func:`numbers_match`) of the number that is the answer
  (:func:`answer_number`): a relative tolerance or correct rounding to the digits shown, fractions, percent and
  scale words, signs, currency and thousands separators; year-like integers exactly.
* ``choice`` (long_toc_choices): the option letter.

Model special-token text (``<|im_end|>``, ``</s>``, ...) ends the answer (:func:`strip_special_tokens`). Every
parser here takes arbitrary text and never raises; a missing answer scores 0.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
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
# The text of a model's control tokens when it reaches the answer as plain text (a decode without
# skip_special_tokens, a response file written by another tool, or a model that spells the token out):
# ChatML/Llama-3 style <|im_end|>, <|endoftext|>, <|eot_id|>; DeepSeek's full-width <｜end▁of▁sentence｜>;
# SentencePiece </s>; Gemma's <eos>, <end_of_turn>.
SPECIAL_TOKEN = re.compile(
    r"<\|[\w.\-▁]{1,40}\|>|<｜[^<>｜\n]{1,40}｜>|</s>|<eos>|<end_of_turn>|<start_of_turn>", re.IGNORECASE)


def strip_special_tokens(text: str) -> str:
    """``text`` without special-token text (:data:`SPECIAL_TOKEN`): markers that open it are skipped, and it is cut
    at the first marker after that.

    Rule: a control token ends the model's turn (``<|im_end|>``, ``</s>``) or starts another one
    (``<|im_start|>``), so nothing after it belongs to the answer; markers before any text (``<|im_start|>``
    assistant headers) carry no answer either. Text between is returned unchanged."""
    pos = 0
    while True:
        m = SPECIAL_TOKEN.search(text, pos)
        if m is None:
            return text[pos:]
        if text[pos:m.start()].strip():
            return text[pos:m.start()]
        pos = m.end()


def answer_region(response: str, mode: str = "require", think_end: str = THINK_END) -> str | None:
    """The part of ``response`` that holds the answer, special-token text removed (:func:`strip_special_tokens`).

    ``require``: the text after the last ``think_end``; None when it is absent (an unfinished or truncated
    reasoning scores 0, as in QwenLong-L1). ``optional``: after the last ``think_end`` if present, else all of it.
    ``off``: all of it."""
    text = response if isinstance(response, str) else ("" if response is None else str(response))
    if mode != "off":
        pos = text.rfind(think_end) if think_end else -1
        if pos < 0:
            if mode == "require":
                return None
        else:
            text = text[pos + len(think_end):]
    return strip_special_tokens(text)


def parse_final_answer(text: str | None) -> str | None:
    """The answer stated in ``text``: what follows the last "the answer is" (also "the final/correct answer is"),
    up to the end of that paragraph, without markdown emphasis, quotes or a final period; the whole stripped text
    when the phrase is absent. None for empty text."""
    if text is None:
        return None
    text = strip_special_tokens(str(text))
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
# Hyphens and dashes join words ("X-large", "1990–2000"); a slash is left to the punctuation rule (fused), because
# "A/B" usually names alternatives and "AC/DC" one thing.
_HYPHENS = re.compile(r"[\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
# Latin letters that carry their mark in the letter itself (NFKD leaves them whole)
_LATIN_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
                                "þ": "th", "Þ": "Th", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i"})


def _is_latin(ch: str) -> bool:
    code = ord(ch)
    return code < 0x250 or 0x1E00 <= code <= 0x1EFF or 0x2C60 <= code <= 0x2C7F or 0xA720 <= code <= 0xA7FF


def fold_text(text: str) -> str:
    """Case- and diacritic-folded ``text``: NFKD (full-width letters, ligatures), combining marks dropped only
    after a Latin base letter, a few Latin letters with built-in marks mapped (ø→o, ł→l, æ→ae), casefolded,
    recomposed (NFC).

    Why only Latin: "Zürich"/"Zurich" and "Gödel"/"Godel" are one name spelt two ways, but a mark on a Japanese
    kana (が/か), a Devanagari vowel sign or a Hebrew point makes a different word, so those are kept."""
    out: list[str] = []
    base_is_latin = False
    for ch in unicodedata.normalize("NFKD", text.translate(_LATIN_LETTERS)):
        if unicodedata.combining(ch):
            if base_is_latin:
                continue
        else:
            base_is_latin = ch.isalpha() and _is_latin(ch)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out).casefold())


def _strip_punctuation(text: str) -> str:
    # ASCII punctuation and symbols (SQuAD's string.punctuation) and every Unicode punctuation character
    return "".join(ch for ch in text if ch not in _ASCII_PUNCT and not unicodedata.category(ch).startswith("P"))


_ASCII_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str, hyphens: str = " ") -> str:
    """SQuAD normalisation (verl's ``search_r1_like_qa_em.normalize_answer``: lower case, no punctuation, no
    articles, single spaces) with three changes, each keeping different words different:

    * case and Latin diacritics folded (:func:`fold_text`): "Zürich" == "Zurich";
    * hyphens and dashes become ``hyphens``: a space by default, so "X-large" has the whole words "x" and "large"
      (SQuAD's fusing made it "xlarge", which matches neither); :func:`qa_score` also compares the fused form
      (``hyphens=""``), so "e-mail" still equals "email";
    * never empty for non-blank text: when article removal would leave nothing ("the", "A") the articles stay,
      and when punctuation removal would ("?!", "—") the folded text with collapsed spaces is returned instead,
      so two different answers never become equal by both becoming empty (SQuAD turns option "A", "the" and
      "..." into "")."""
    text = "" if text is None else str(text)
    folded = fold_text(text)
    no_punct = _strip_punctuation(_HYPHENS.sub(hyphens, folded))
    out = " ".join(_ARTICLES.sub(" ", no_punct).split())
    return out or " ".join(no_punct.split()) or " ".join(folded.split())


def exact_match(prediction: str, gold: str) -> float:
    """EM = 1 if the normalised prediction equals the normalised gold, with hyphens as spaces or fused
    (:func:`normalize_answer`), else 0; an empty prediction is 0."""
    return _em(_forms(prediction), _forms(gold))


def sub_exact_match(prediction: str, gold: str) -> float:
    """Sub-EM = 1 if the normalised gold occurs in the normalised prediction or vice versa, else 0.

    Containment is on whole words, not characters: the reference's character test gives "e" full marks against
    "Paris", and an empty prediction full marks against anything. An empty side scores 0. Hedges are not handled
    here (see :func:`qa_score`)."""
    return _sub_em(_forms(prediction), _forms(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 = 2PR/(P+R) over normalised tokens (P = common/|pred|, R = common/|gold|), the better of the
    hyphen-split and fused forms. As in HotpotQA's evaluator, a yes/no/noanswer gold only matches the same word
    exactly."""
    return _f1(_forms(prediction), _forms(gold))


# the same three on already-normalised (hyphen-split, hyphen-fused) pairs, so qa_score normalises each string once
_Forms = tuple[str, str]


def _forms(text: str | None) -> _Forms:
    if text is None or not str(text).strip():
        return ("", "")
    return normalize_answer(text, " "), normalize_answer(text, "")


def _em(p: _Forms, g: _Forms) -> float:
    return float(any(bool(a) and a == b for a, b in zip(p, g, strict=True)))


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def _sub_em(p: _Forms, g: _Forms) -> float:
    for a, b in zip(p, g, strict=True):
        aw, bw = a.split(), b.split()
        if _contains_words(aw, bw) or _contains_words(bw, aw):
            return 1.0
    return 0.0


def _f1_one(p: str, g: str) -> float:
    if (p in ("yes", "no", "noanswer") or g in ("yes", "no", "noanswer")) and p != g:
        return 0.0
    pt, gt = p.split(), g.split()
    common = sum((Counter(pt) & Counter(gt)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pt), common / len(gt)
    return 2 * precision * recall / (precision + recall)


def _f1(p: _Forms, g: _Forms) -> float:
    return max(_f1_one(a, b) for a, b in zip(p, g, strict=True))


# -- hedges ----------------------------------------------------------------------------------------------------------
# Alternatives offered side by side ("either A or B", "A or B", "neither A nor B", "A / B" with spaces)
_DISJUNCTION = re.compile(r"\b(?:either|or|neither|nor)\b|\band/or\b|(?<=\s)/(?=\s)", re.IGNORECASE)
# The model saying it does not know which ("I cannot tell", "not sure", "possibly", "one of")
_UNCERTAIN = re.compile(
    r"\b(?:can ?not|can't|cannot|unable to|impossible to)\s+(?:tell|determine|say|decide|be sure|know|identify)\b"
    r"|\bnot\s+(?:sure|certain|clear|possible to (?:tell|determine|say))\b|\b(?:unsure|uncertain|unclear|ambiguous)\b"
    r"|\b(?:do not|don't|doesn't|does not)\s+(?:know|say|specify|state)\b|\b(?:possibly|perhaps|maybe|probably)\b"
    r"|\b(?:might|could|may)\s+be\b|\bone of\b|\bno way to (?:tell|know)\b",
    re.IGNORECASE)
_AND = re.compile(r"\band\b|&", re.IGNORECASE)


def is_hedged(prediction: str | None, golds: Iterable[str] = ()) -> bool:
    """True when ``prediction`` offers several candidate answers instead of one.

    Rule: (a) it joins alternatives ("either", "or", "neither/nor", " / ") more often than every accepted answer
    does; or (b) it says it cannot tell (:data:`_UNCERTAIN`: "I cannot tell", "not sure", "possibly", "one of", …)
    and enumerates with "and"/"&" more often than every accepted answer does ("A, B and C; I cannot tell").
    Counting against the golds keeps answers whose gold itself has the words ("War or Peace") matchable. A single
    candidate with a doubt ("Paris; I am not sure") or a qualifier ("Paris, France") is not a hedge.

    Sub-EM accepts any prediction that holds the gold as a whole-word span, so without this rule listing every
    candidate would always score 1. The judge may still rescue a hedge that is genuinely one answer."""
    if not prediction:
        return False
    golds = [str(g) for g in golds]

    def count(pattern: re.Pattern[str], text: str) -> int:
        return len(pattern.findall(text))

    if count(_DISJUNCTION, prediction) > max((count(_DISJUNCTION, g) for g in golds), default=0):
        return True
    return (bool(_UNCERTAIN.search(prediction)) and not any(_UNCERTAIN.search(g) for g in golds)
            and count(_AND, prediction) > max((count(_AND, g) for g in golds), default=0))


def qa_score(prediction: str | None, golds: list[str], metric: str = "sub_em") -> RuleResult:
    """em, sub_em and f1 each take the max over the accepted answers; the rule score is ``metric`` of them
    (``em_or_sub_em`` = max(em, sub_em), QwenLong-L1's evaluation).

    A hedged prediction (:func:`is_hedged`, reported as ``hedged``) scores 0 on sub_em and f1 unless it is an
    exact match of an accepted answer: the gold being one of the listed candidates is not a match."""
    if not prediction or not prediction.strip():
        return RuleResult(0.0, {"em": 0.0, "sub_em": 0.0, "f1": 0.0, "hedged": 0.0})
    p = _forms(prediction)
    gs = [_forms(g) for g in golds]
    m = {"em": max(_em(p, g) for g in gs), "sub_em": max(_sub_em(p, g) for g in gs),
         "f1": max(_f1(p, g) for g in gs), "hedged": 0.0}
    if m["em"] < 1.0 and is_hedged(prediction, golds):
        m.update(sub_em=0.0, f1=0.0, hedged=1.0)
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
        (?:(?<![\d/.])(?P<fn>\d+)\s*/\s*(?P<fd>\d+)(?![\d/.])
         |(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE](?P<exp>[-+]?\d{1,3}))?)
        (?P<close>\))?\s*(?P<pct>%|\s?percent(?:age)?(?:\s+points?)?\b)?
        (?:\s*(?P<scale>thousand|million|billion|trillion|mn|mm|bn|tn|k|m|b)\b)?""",
    re.VERBOSE | re.IGNORECASE,
)
YEAR_RANGE = (1000, 2100)


@dataclass(frozen=True)
class ParsedNumber:
    value: float  # the number as written, sign applied, percent and scale NOT applied
    percent: bool
    scale: float  # multiplier of a scale word (1 if none)
    sig_digits: int | None = None  # significant digits shown ("0.0120" -> 3); None: exact (a fraction, a test value)
    resolution: float | None = None  # one unit of the last digit shown, in the units of value ("12.30" -> 0.01)
    plain_int: bool = False  # digits only: no separator, point, exponent, fraction, sign, currency, percent, scale
    has_point: bool = False  # written with a decimal point ("0.333"): visibly rounded at its last digit

    @property
    def year_like(self) -> bool:
        """A plain integer in :data:`YEAR_RANGE`: read as a year (or an identifier), compared exactly."""
        return self.plain_int and YEAR_RANGE[0] <= self.value <= YEAR_RANGE[1]


@dataclass(frozen=True)
class _Found:
    number: ParsedNumber
    start: int
    end: int


def _digits_info(num: str, exp: str | None) -> tuple[int, float]:
    """(significant digits, resolution) of a decimal literal such as "1,234.50" (5, 0.01) or "0.0012" (2, 1e-4).
    Trailing zeros of an integer count as significant: the conservative reading (a smaller rounding allowance)."""
    s = num.replace(",", "")
    whole, _, frac = s.partition(".")
    sig = len((whole + frac).lstrip("0"))
    return sig, 10.0 ** (int(exp or 0) - len(frac))


def find_numbers(text: str | None) -> list[_Found]:
    """Every finite number in ``text`` with its sign (``-``, ``−``, or accounting parentheses), currency symbol,
    thousands separators, exponent, fraction ("1/3"), percent sign or word and scale word, in order."""
    found: list[_Found] = []
    if not text:
        return found
    for m in _NUMBER.finditer(str(text)):
        try:
            if m.group("fn") is not None:
                den = float(m.group("fd"))
                if den == 0:
                    continue
                value, sig, res = float(m.group("fn")) / den, None, None
            else:
                value = float(m.group("num").replace(",", "") + (f"e{m.group('exp')}" if m.group("exp") else ""))
                sig, res = _digits_info(m.group("num"), m.group("exp"))
        except (ValueError, OverflowError):
            continue
        if not math.isfinite(value):
            continue
        negative = bool(m.group("neg") or (m.group("paren") and m.group("close")))
        if negative:
            value = -value
        scale = _SCALES.get((m.group("scale") or "").lower(), 1.0)
        plain = (m.group("num") is not None and m.group("num").isdigit() and not m.group("exp") and not negative
                 and not (m.group("cur") or m.group("cur2") or m.group("pct") or m.group("scale")))
        point = m.group("num") is not None and "." in m.group("num")
        found.append(_Found(ParsedNumber(value, bool(m.group("pct")), scale, sig, res, plain, point), m.start(),
                            m.end()))
    return found


def parse_number(text: str | None) -> ParsedNumber | None:
    """The first number in ``text`` (:func:`find_numbers`); None when there is no finite number."""
    found = find_numbers(text)
    return found[0].number if found else None


# Words that state the value ("is 5", "= 5", "an increase of 5", "by 5%", "amounts to 5"); approximators between
# the cue and the number are skipped.
_APPROX = r"(?:(?:approximately|approx\.?|about|around|roughly|nearly|almost|exactly|just|only|some|over|under|~)\s*)*"
_EQUALS_CUE = re.compile(r"(?:=|≈|==)\s*" + _APPROX + r"$", re.IGNORECASE)
_STATE_CUE = re.compile(
    r"(?:(?<!\d):|\b(?:is|was|are|were|be|been|equals?|equalled|equaled|totals?|totall?ed|amounts?\s+to|comes?\s+to"
    r"|reach(?:es|ed)?|by|(?:a|an|the)\s+(?:[a-z\-]+\s+){1,2}of))\s*" + _APPROX + r"$", re.IGNORECASE)
# Words that introduce a reference value rather than the answer ("from 10 to 12", "up from", "more than 3")
_CONTEXT_CUE = re.compile(
    r"\b(?:from|to|than|vs\.?|versus|compared\s+(?:to|with)|against|between|and|in|since|until|during|after"
    r"|before|of)\s*" + _APPROX + r"$", re.IGNORECASE)


def answer_number(text: str | None, years_are_answers: bool = False) -> ParsedNumber | None:
    """The number that is the answer when ``text`` holds several ("from 10 to 12, an increase of 2" -> 2).

    Rule: every number gets a rank from the words just before it, and the first number of the highest rank wins:

    3. after ``=``/``≈`` (the result of a shown computation: "22 - 10 = 12");
    2. after a stating cue ("is", "was", ":", "by", "amounts to", "a/an/the <noun> of": "an increase of 2"), or
       the number the text opens with ("$5 million, an increase of 20%": the answer phrase puts the answer first);
    1. any other number;
    0. a reference value: after "from", "to", "than", "vs", "between", "in", "since", "of", …, or inside
       parentheses ("12 (22 - 10)");
    -1. a year-like integer (:attr:`ParsedNumber.year_like`) when ``years_are_answers`` is false (the gold is not a
       year): "5 million by 2020" -> 5 million; when it is true (the gold is a year) a year-like integer ranks
       above all others: "founded in 1998, 3 years after the merger" -> 1998.

    One number: that number. None when there is none."""
    found = find_numbers(text)
    if len(found) <= 1:
        return found[0].number if found else None
    text = str(text)
    best: tuple[int, int] | None = None
    choice = found[0].number
    for i, f in enumerate(found):
        prefix = text[:f.start]
        depth = prefix.count("(") + prefix.count("[") - prefix.count(")") - prefix.count("]")
        before = prefix.rstrip(" \t*_`\"'$€£¥")
        if f.number.year_like:
            rank = 4 if years_are_answers else -1
        elif depth > 0:
            rank = 0
        elif _EQUALS_CUE.search(before):
            rank = 3
        elif _STATE_CUE.search(before) or not before.strip(" \t\r\n*_`\"':"):
            rank = 2
        elif _CONTEXT_CUE.search(before):
            rank = 0
        else:
            rank = 1
        key = (rank, -i)
        if best is None or key > best:
            best, choice = key, f.number
    return choice


def _candidates(n: ParsedNumber, percent_context: bool) -> set[float]:
    base = {n.value, n.value * n.scale}
    if percent_context:  # "12.5%" may be written 0.125, and 0.125 may stand for 12.5%
        base |= {v / 100 for v in base} | {v * 100 for v in base}
    return base


def _rounds_to(shown: ParsedNumber, shown_value: float, other: float, min_sig_digits: int) -> bool:
    """``shown`` (read as ``shown_value``) is ``other`` rounded to the digits ``shown`` writes, and writes at least
    ``min_sig_digits`` significant digits: |shown - other| <= half a unit of its last digit, relative to its size
    so that percent and scale readings keep the same precision."""
    if shown.sig_digits is None or shown.resolution is None or shown.sig_digits < min_sig_digits or shown.value == 0:
        return False
    half_unit = 0.5 * shown.resolution / abs(shown.value) * abs(shown_value)
    return abs(shown_value - other) <= half_unit * (1 + 1e-9)


def numbers_match(pred: ParsedNumber, gold: ParsedNumber, rel_tol: float = 1.5e-3, min_sig_digits: int = 3) -> bool:
    """pred ≈ gold. Rule, for some reading of each (as written; times its scale word; ×100 or ÷100 when either side
    is a percent):

    * equal, or ``|p - g| <= rel_tol * |g|`` (DocMath's relative tolerance); relative, so 0.0004 and 0 differ, and
      so do 0.0001 and 0.0004 (a fixed 3-decimal rounding made them equal);
    * or the prediction is the gold rounded to the digits the prediction shows, with at least ``min_sig_digits``
      significant digits (0.0123 for 0.01234, 1.23 million for 1,234,567, 0.333 for 1/3); or the gold, written
      with a decimal point and so visibly rounded, is the prediction rounded the same way (gold 0.333, answer
      "1/3"). A gold written as an integer is exact: 100.2 is not 100;
    * except that when both are plain integers and the gold is year-like ("2001" vs "2000"), only equality counts:
      a year off by one is a different year, though within 0.15 %."""
    if pred.plain_int and gold.plain_int and gold.year_like:
        return pred.value == gold.value
    pct = pred.percent or gold.percent
    for p in _candidates(pred, pct):
        for g in _candidates(gold, pct):
            if p == g or abs(p - g) <= rel_tol * abs(g):
                return True
            if _rounds_to(pred, p, g, min_sig_digits) or (gold.has_point and _rounds_to(gold, g, p, min_sig_digits)):
                return True
    return False


def _numbers_hedged(prediction: str, golds: list[str], rel_tol: float, min_sig_digits: int) -> bool:
    """A hedge (:func:`is_hedged`) whose numbers are not all the same value ("either 5 or 6"; "12.5%, or 0.125"
    names one value twice and is not a hedge)."""
    if not is_hedged(prediction, golds):
        return False
    nums = [f.number for f in find_numbers(prediction)]
    return any(not numbers_match(a, b, rel_tol, min_sig_digits) for a in nums for b in nums)


def math_score(prediction: str | None, golds: list[str], rel_tol: float = 1.5e-3,
               min_sig_digits: int = 3) -> RuleResult:
    """1 if the answer number of the prediction (:func:`answer_number`) matches the answer number of any accepted
    answer (:func:`numbers_match`); 0 for a hedge between different numbers; when neither side holds a number,
    falls back to exact match."""
    metrics = {"numeric": 0.0, "hedged": 0.0}
    if prediction and _numbers_hedged(prediction, golds, rel_tol, min_sig_digits):
        metrics.update(numeric=1.0, hedged=1.0)
        return RuleResult(0.0, metrics)
    for g in golds:
        gold = answer_number(g)
        if gold is None:
            if prediction and exact_match(prediction, g):
                return RuleResult(1.0, {**metrics, "numeric": float(parse_number(prediction) is not None)})
            continue
        pred = answer_number(prediction, years_are_answers=gold.year_like)
        if pred is None:
            continue
        metrics["numeric"] = 1.0
        if numbers_match(pred, gold, rel_tol, min_sig_digits):
            return RuleResult(1.0, metrics)
    metrics["numeric"] = float(parse_number(prediction) is not None)
    return RuleResult(0.0, metrics)


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
               rel_tol: float = 1.5e-3, min_sig_digits: int = 3) -> RuleResult:
    if family == QA:
        return qa_score(prediction, golds, qa_metric)
    if family == MATH:
        return math_score(prediction, golds, rel_tol, min_sig_digits)
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
