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

from qwenlong_verl.reward import lexicon
from qwenlong_verl.reward.answer import (
    Statement,
    answer_statements,
    has_negator,
    is_list,
    items,
    negated_at,
    top_level,
)
from qwenlong_verl.reward.canonical import (
    CARDINALS,
    ORDINALS,
    compare_dates,
    date_covers,
    find_dates,
    plain_math,
    units_after,
    units_before,
)
from qwenlong_verl.reward.canonical import words_to_digits as _words_to_digits

_NUMBER_WORDS = sorted({*CARDINALS, *ORDINALS} - {"zero"}, key=len, reverse=True)

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
    reasoning scores 0, as in QwenLong-L1). ``optional``: after the last ``think_end`` if present; without it, the
    whole response only when it never reasoned - it has no ``<think>`` and it is finished (:func:`_finished`) -
    else None: a response cut off inside its reasoning is not
    scored from that reasoning. ``off``: all of it, the explicit request to score whatever the text holds."""
    text = response if isinstance(response, str) else ("" if response is None else str(response))
    if mode != "off":
        pos = text.rfind(think_end) if think_end else -1
        if pos < 0:
            if mode == "require":
                return None
            if "<think>" in text or not _finished(strip_special_tokens(text)):
                return None
        else:
            text = text[pos + len(think_end):]
    return strip_special_tokens(text)


def _finished(text: str) -> bool:
    """A response that stopped on its own, not one cut by the length limit (which stops mid-sentence): it ends
    with closing punctuation (``. ! ? ) ] } * " '``); or it ends within 6 words of its last "the answer is"
    ("… The answer is Paris"); or, with no such phrase, it is one short phrase (at most 8 words, one line, no
    sentence inside: a bare "Paris")."""
    t = text.strip()
    if not t:
        return True
    if t[-1] in ".!?)]}*\"'`>":
        return True
    cues = list(_ANSWER_IS.finditer(t))
    if cues:
        return len(t[cues[-1].end():].split()) <= 6 and not re.search(r"[,;:]", t[cues[-1].end():])
    return "\n" not in t and len(t.split()) <= 8 and not re.search(r"[.!?;]\s", t)


@dataclass(frozen=True)
class AnswerRead:
    """What a response commits to: its answer statements in order (:func:`answer.answer_statements`), or the
    reason there is none (``unfinished``: no ``</think>`` where one is required; ``no_answer``: nothing after
    it)."""

    statements: tuple[Statement, ...]
    missing: str | None = None

    @property
    def answer(self) -> str | None:
        """The committed answer: the last statement."""
        return self.statements[-1].text if self.statements else None


def read_answer(response: str, mode: str = "require", think_end: str = THINK_END) -> AnswerRead:
    """The statements of the answer in ``response`` (see :func:`answer_region` for ``mode``)."""
    region = answer_region(response, mode, think_end)
    if region is None:
        return AnswerRead((), UNFINISHED)
    statements = tuple(answer_statements(region))
    return AnswerRead(statements, None if statements else NO_ANSWER)


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
    """The committed answer of ``response``: the last statement of :func:`read_answer` (after "the answer is",
    "Final answer:", ``\\boxed{}``; a revision "X. Wait, actually Y" commits to Y); None when there is none."""
    return read_answer(response, mode, think_end).answer


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
MATCHED, MISMATCH = "matched", "mismatch"
NEGATED, HEDGED, CONFLICTING = "negated", "hedged", "conflicting"
DIFFERENT_ENTITY, PARTIAL = "different_entity", "partial"
WRONG_UNIT, WRONG_SCALE, AMBIGUOUS = "wrong_unit", "wrong_scale", "ambiguous"
UNPARSED, NO_ANSWER, UNFINISHED = "unparsed", "no_answer", "unfinished"
# every reason a verdict can carry; the first is the only one that accepts
REASONS = (MATCHED, MISMATCH, NEGATED, HEDGED, CONFLICTING, DIFFERENT_ENTITY, PARTIAL, WRONG_UNIT, WRONG_SCALE,
           AMBIGUOUS, UNPARSED, NO_ANSWER, UNFINISHED)
# reasons that say the answer is wrong in form, whatever its words share with the gold (f1 is zeroed too)
_REJECTS = {NEGATED, HEDGED, CONFLICTING, DIFFERENT_ENTITY, PARTIAL, WRONG_UNIT, WRONG_SCALE, AMBIGUOUS}
# when several golds each reject, the reason shown is the first of these that occurs
_PRIORITY = (NEGATED, HEDGED, CONFLICTING, DIFFERENT_ENTITY, PARTIAL, WRONG_SCALE, WRONG_UNIT, AMBIGUOUS, MISMATCH,
             UNPARSED, NO_ANSWER, UNFINISHED)


@dataclass
class RuleResult:
    score: float  # the rule score used for the reward
    metrics: dict[str, float] = field(default_factory=dict)  # family-specific details (em, sub_em, f1, ...)
    reason: str = MISMATCH  # why: one of REASONS (``matched`` exactly when the answer was accepted)


def _first_reason(reasons: Iterable[str]) -> str:
    found = set(reasons)
    return next((r for r in _PRIORITY if r in found), MISMATCH)


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
    return unicodedata.normalize("NFC", drop_latin_marks(text).casefold())


def drop_latin_marks(text: str) -> str:
    """``text`` with :func:`fold_text`'s diacritic folding but its case kept (NFC): what the answer reader sees, so
    a combining mark inside a word ("t\u0300hree") does not split it in two at the mark."""
    out: list[str] = []
    base_is_latin = False
    for ch in unicodedata.normalize("NFKD", text.translate(_LATIN_LETTERS)):
        if unicodedata.combining(ch):
            if base_is_latin:
                continue
        else:
            base_is_latin = ch.isalpha() and _is_latin(ch)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


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


# -- QA verdict --------------------------------------------------------------------------------------------------------
# words of an answer: letters/digits joined by an apostrophe, a period ("U.S.") or a thousands comma; "&" is "and"
_WORD = re.compile(r"&|[^\W_]+(?:(?:['’.]|(?<=\d),(?=\d{3}(?!\d)))[^\W_]+)*")
_WORD_FUSED = re.compile(r"&|[^\W_]+(?:(?:['’.\-\u2010\u2011\u2012\u2013\u2014\u2212]|(?<=\d),(?=\d{3}(?!\d)))"
                         r"[^\W_]+)*")
_NORM_DROP = re.compile(r"['’.,\-\u2010\u2011\u2012\u2013\u2014\u2212]")
_MASK = "§"
_LEAD_IN = re.compile(
    r"^\s*(?:(?:(?:based\s+on|according\s+to|as\s+(?:stated|mentioned|shown|described|noted)\s+in|from|per|in)\s+"
    r"(?:the\s+)?(?:text|document|report|passage|article|table|context|information|data|above|given\s+\w+)[^,]{0,40}"
    r"|so|thus|therefore|hence|overall|finally|clearly|ultimately|in\s+(?:summary|conclusion|short))\s*,\s*)+",
    re.IGNORECASE)
_HEAD_END = re.compile(r"[,;:(\[\n]|\s[-–—]\s|(?:^|\s)(?:" + "|".join(
    r"\s+".join(w.split()) for w in lexicon.RELATIONS) + r")(?=\s)", re.IGNORECASE)
_YES_NO = ("yes", "no")


@dataclass(frozen=True)
class _Tok:
    norm: str  # folded, punctuation-free
    start: int
    end: int
    cap: bool  # written with an upper-case first letter
    possessive: bool  # written with 's


def _tokens(text: str, fused: bool = False) -> list[_Tok]:
    """Content words of ``text`` with their offsets (articles dropped, as in :func:`normalize_answer`)."""
    out: list[_Tok] = []
    # combining marks (a "b" with a separate grave accent) belong to their letter: read words on a shadow copy
    # where every mark is a letter, same length, and take each word from the text itself
    shadow = "".join("a" if unicodedata.category(c).startswith("M") else c for c in text)
    for m in (_WORD_FUSED if fused else _WORD).finditer(shadow):
        raw, poss = text[m.start():m.end()], False
        if len(raw) > 2 and raw[-2:].lower() in ("'s", "’s"):
            raw, poss = raw[:-2], True
        norm = "and" if raw == "&" else _NORM_DROP.sub("", fold_text(raw))
        if norm and norm not in ("a", "an", "the"):
            out.append(_Tok(norm, m.start(), m.end(), raw[:1].isupper(), poss))
    return out


def _spans(hay: list[_Tok], needle: list[_Tok]) -> list[tuple[int, int]]:
    n = len(needle)
    words = [t.norm for t in needle]
    return [(i, i + n) for i in range(len(hay) - n + 1) if n and [t.norm for t in hay[i:i + n]] == words]


def _spaced(text: str, a: _Tok, b: _Tok) -> bool:
    """``a`` and ``b`` are written next to each other with only spaces between (a hyphen joins the parts of one
    word, which are left whole: issue 13's "X-large" holds "X")."""
    between = text[a.end:b.start]
    return bool(between) and not between.strip() and "\n" not in between


def _head_end(masked: str) -> int:
    """Where the head of the answer ends: the first top-level comma, semicolon, colon, parenthesis, dash or
    relation word ("which", "near", "outside", "than", "north of", …) after an opening lead-in ("Based on the
    text, …"). What follows the head is a qualifier or context, never the answer itself."""
    lead = _LEAD_IN.match(masked)
    m = _HEAD_END.search(masked, lead.end() if lead else 0)
    return m.start() if m else len(masked)


def _mention_verdict(text: str, toks: list[_Tok], i: int, j: int, gold_toks: list[_Tok], head_end: int,
                     case_known: bool) -> str:
    """Why the gold's words at ``toks[i:j]`` are or are not the answer.

    Rule, in order: ``negated`` (:func:`answer.negated_at`); ``different_entity`` when the mention is not in the
    head of the answer (``Lyon, France`` for France; ``Versailles, just outside Paris`` for Paris), or when the
    words written next to it make another name: a name prefix before it (``New York``, ``Lake Victoria``, ``South
    Georgia``), a class noun after it in cased text (``Mexico City``, ``Jordan River``, ``Paris Agreement``; in
    all-lower-case text a class noun is read as an ordinary word) or a scale word after a number (``3 million``), a
    capitalised word after it that is not a place qualifier (``Georgia Tech``; ``Paris France`` stays Paris), a
    possessive (``Elizabeth's brother``), "<noun> of" (``the capital of France``; ``the city of Paris`` stays Paris),
    "a <noun> in" (``a college in Oxford``); else ``matched``."""
    start, end = toks[i].start, toks[j - 1].end
    if negated_at(text, start, end):
        return NEGATED
    if start >= head_end:
        return DIFFERENT_ENTITY
    if i > 0 and _spaced(text, toks[i - 1], toks[i]) and toks[i - 1].norm in lexicon.PREFIXES \
            and not any(t.norm in lexicon.PREFIXES for t in gold_toks[:1]):
        return DIFFERENT_ENTITY
    if j < len(toks) and _spaced(text, toks[j - 1], toks[j]):
        nxt = toks[j]
        if (nxt.norm in lexicon.SCALE_WORDS and toks[j - 1].norm[-1:].isdigit()) or (case_known and nxt.norm in lexicon.CLASS_NOUNS
                                               and nxt.start < head_end):
            return DIFFERENT_ENTITY
        if case_known and nxt.cap and nxt.start < head_end and nxt.norm not in lexicon.STOP \
                and nxt.norm not in lexicon.PLACE_QUALIFIERS and nxt.norm not in lexicon.TITLES:
            return DIFFERENT_ENTITY
    if toks[j - 1].possessive and not gold_toks[-1].possessive:
        return DIFFERENT_ENTITY
    if toks[i].norm[:1].isdigit():  # "a total of 5", "a population of 1200": a number is its own value
        return MATCHED
    if i >= 2 and toks[i - 1].norm == "of":
        noun = toks[i - 2]
        if noun.norm not in lexicon.SAME_AS_OF and noun.norm not in lexicon.STOP:
            return DIFFERENT_ENTITY
    if i >= 2 and toks[i - 1].norm in ("in", "at", "near", "from", "on", "by", "outside", "within"):
        noun = toks[i - 2]
        if noun.norm not in lexicon.STOP and noun.norm not in lexicon.SAME_AS_OF \
                and re.search(r"\b(?:a|an|the|one|some)\s+$", text[:noun.start], re.IGNORECASE):
            return DIFFERENT_ENTITY
    return MATCHED


def _several_candidates(masked: str, case_known: bool) -> bool:
    """True when the answer lists the gold beside another candidate (``Oslo, Bergen and Trondheim``, ``Oslo and
    Bergen``, ``Oslo/Bergen``, bullet lines, ``X; alternatively Y``): a list (:func:`answer.is_list`) with at least
    two candidate items, one without the gold. An item is a candidate unless it opens like a qualifier ("which",
    "its", "I", "not", "probably", "home to", …) or, in mixed-case text, holds no name or number (``Paris and its
    suburbs``); items after a qualifier explain the answer and are not counted."""
    if not is_list(masked):
        return False
    candidates, other = 0, False
    for item, _ in items(masked):
        words = item.split()
        if not words:
            continue
        if words[0].strip("*_\"'").lower() in lexicon.QUALIFIER_LEADS or _HEAD_END.match(" " + item.strip()):
            if candidates:
                break  # the rest explains the answer ("Paris, home to the Louvre and the Eiffel Tower")
            continue
        has_gold = _MASK in item
        toks = _tokens(item)
        if has_gold or any(t.norm[:1].isdigit() or (t.cap and t.norm not in lexicon.STOP) for t in toks) or (
                not case_known and any(t.norm not in lexicon.STOP for t in toks)):
            candidates += 1
            other = other or not has_gold
    return candidates >= 2 and other


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    out = list(text)
    for s, e in spans:
        out[s:e] = _MASK * (e - s)
    return "".join(out)


def _yes_no_verdict(pred: str, gold: str) -> str:
    """A yes/no gold: the answer's polar words. Both "yes" and "no" -> ``hedged``; the gold's word negated ("not
    yes") -> ``negated``; only the gold's -> ``matched``; else ``mismatch``. A "no" counts when it opens the answer
    or ends its clause ("No, …", "… is no."), not as a determiner ("no evidence")."""
    toks = _tokens(pred)
    polar: list[tuple[str, bool]] = []
    for k, t in enumerate(toks):
        if t.norm == "yes" or (t.norm == "no" and (k == 0 or not re.match(r"\s*\w", pred[t.end:]))):
            polar.append((t.norm, negated_at(pred, t.start, t.end)))
    said = {w for w, neg in polar if not neg}
    if len(said) > 1:
        return HEDGED
    if said == {gold}:
        return MATCHED
    if any(w == gold and neg for w, neg in polar):
        return NEGATED
    return MISMATCH


def _date_verdict(pred: str, gold_date) -> str | None:
    """A date gold (:func:`canonical.find_dates` covering the gold): compare the answer's date
    (:func:`canonical.compare_dates`): several different dates -> ``hedged`` (but for a dash range such as
    ``1990–2000``, left to the string rule); only negated dates -> ``negated``. None when the answer holds no
    date."""
    dates = find_dates(pred)
    if not dates:
        return None
    kept = [d for d in dates if not negated_at(pred, d.start, d.end)]
    if not kept:
        return NEGATED
    distinct = {d.readings()[0] for d in kept}
    if len(distinct) > 1:
        if len(kept) == 2 and re.fullmatch(r"\s*[-‐‑–—]\s*", pred[kept[0].end:kept[1].start]):
            return None
        return HEDGED
    return compare_dates(kept[0], gold_date)


def _list_items(text: str) -> set[str]:
    return {normalize_answer(t) for t, _ in items(text) if t.strip()}


def _qa_verdict(pred: str, gold: str) -> str:
    """The verdict of one answer against one gold (see :func:`qa_score`)."""
    pred, gold = plain_math(drop_latin_marks(pred)), plain_math(drop_latin_marks(gold))
    if _em(_forms(pred), _forms(gold)):
        return MATCHED
    if is_hedged(pred, [gold]):
        return HEDGED
    g_norm = normalize_answer(gold)
    if g_norm in _YES_NO:
        return _yes_no_verdict(pred, g_norm)
    g_dates = find_dates(gold)
    if len(g_dates) == 1 and date_covers(gold, g_dates[0]):
        verdict = _date_verdict(pred, g_dates[0])
        if verdict is not None:
            return verdict
    if re.search(r"\d", gold) or re.search(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", gold, re.IGNORECASE):
        pred, gold = _words_to_digits(pred), _words_to_digits(gold)
    if is_list(gold) and len(_list_items(gold)) >= 2 and _list_items(pred) == _list_items(gold):
        return MATCHED
    case_known = bool(re.search(r"[a-z]", pred)) and bool(re.search(r"[A-Z]", pred))
    for fused in (False, True):
        p_toks, g_toks = _tokens(pred, fused), _tokens(gold, fused)
        if not g_toks:
            return MISMATCH
        spans = _spans(p_toks, g_toks)
        if not spans:
            continue
        masked = _mask(pred, [(p_toks[i].start, p_toks[j - 1].end) for i, j in spans])
        if is_hedged(pred, [gold]) or _several_candidates(masked, case_known):
            return HEDGED
        head_end = _head_end(masked)
        verdicts = [_mention_verdict(pred, p_toks, i, j, g_toks, head_end, case_known) for i, j in spans]
        return MATCHED if MATCHED in verdicts else _first_reason(verdicts)
    return _partial_verdict(pred, gold)


def _partial_verdict(pred: str, gold: str) -> str:
    """The answer's content words are part of the gold's: ``matched`` when the gold words it leaves out are only a
    qualifier of the gold (after a comma or in parentheses: "Paris" for "Paris, France") or droppable class words
    ("the Pacific" for "Pacific Ocean", "Acme" for "Acme Inc."); ``partial`` when it leaves out part of the name
    ("Adams" for "John Adams", "Hastings" for "Battle of Hastings"); else ``mismatch``."""
    for fused in (False, True):
        p_toks = [t for t in _tokens(pred, fused) if t.norm not in lexicon.STOP]
        g_toks = _tokens(gold, fused)
        spans = _spans(g_toks, p_toks)
        if not p_toks or not spans:
            continue
        i, j = spans[0]
        qualifier_from = _HEAD_END.search(gold)
        cut = qualifier_from.start() if qualifier_from else len(gold)
        missing = [t for k, t in enumerate(g_toks) if not i <= k < j and t.start < cut]
        return MATCHED if all(t.norm in lexicon.DROPPABLE or t.norm in ("of",) for t in missing) else PARTIAL
    return MISMATCH


def qa_score(prediction: str | None, golds: list[str], metric: str = "sub_em") -> RuleResult:
    """em, sub_em and f1 each take the max over the accepted answers; the rule score is ``metric`` of them
    (``em_or_sub_em`` = max(em, sub_em), QwenLong-L1's evaluation).

    ``sub_em`` is 1 only for an answer a careful grader would accept (:func:`_qa_verdict`): an exact match, or the
    gold's words as the answer itself - not negated (``not Paris``), not one of several candidates (``Paris or
    Lyon``, ``Paris, Lyon and Nice``), not inside another name or as context (``New York`` for York, ``Lyon,
    France`` for France), not a part of the gold (``Adams`` for John Adams, ``1990`` for March 3, 1990). Dates
    compare in one canonical form, numbers with their number words, yes/no by polarity. ``reason`` says which;
    ``hedged`` is also a metric. A rejected answer scores 0 on f1 too."""
    if not prediction or not prediction.strip():
        return RuleResult(0.0, {"em": 0.0, "sub_em": 0.0, "f1": 0.0, "hedged": 0.0}, NO_ANSWER)
    p = _forms(prediction)
    gs = [_forms(g) for g in golds]
    verdicts = [_qa_verdict(prediction, g) for g in golds]
    reason = MATCHED if MATCHED in verdicts else _first_reason(verdicts)
    m = {"em": max(_em(p, g) for g in gs), "sub_em": float(reason == MATCHED),
         "f1": max(_f1(p, g) for g in gs), "hedged": float(reason == HEDGED)}
    if reason in _REJECTS:
        m["f1"] = 0.0
    if metric == "em":
        return RuleResult(m["em"], m, MATCHED if m["em"] else (reason if reason != MATCHED else MISMATCH))
    if metric == "em_or_sub_em":
        return RuleResult(max(m["em"], m["sub_em"]), m, reason)
    return RuleResult(m[metric], m, reason)


# -- numbers (DocMath) ---------------------------------------------------------------------------------------------
_SCALES = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "mm": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9,
    "trillion": 1e12, "tn": 1e12,
}
_THOUSANDS_MARKS = "'’\u2009\u202f\u00a0"
_NUMBER = re.compile(
    r"""(?P<neg>(?<![\w.])[-\u2212\u2013])?\s*(?P<cur>[$\u20ac\u00a3\u00a5\u20b9])?\s*(?P<paren>\()?\s*(?P<cur2>[$\u20ac\u00a3\u00a5\u20b9])?
        (?:(?<![\d/.,])(?P<mw>\d{1,3})\s+(?P<mn>\d+)\s*/\s*(?P<md>\d+)(?![\d/.])
         |(?<![\d/.])(?P<fn>\d+)\s*/\s*(?P<fd>\d+)(?![\d/.])
         |(?P<num>\d+(?:[,.'’\u2009\u202f\u00a0]\d+)*|\.\d+)(?:[eE](?P<exp>[-+]?\d{1,3}))?)
        (?P<close>\))?\s*(?P<pct>%|\s?per\s?cent(?:age)?\b(?!\s+points?))?
        (?:\s*(?P<scale>thousand|million|billion|trillion|mn|mm|bn|tn|k|m|b)\b)?""",
    re.VERBOSE | re.IGNORECASE,
)
# digit groups separated by plain spaces ("1 234 567"): joined with a thin space, which keeps every offset
_SPACE_GROUPS = re.compile(r"(?<![\d.,])(\d{1,3})((?: \d{3})+)(?!\d)")
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
    units: frozenset[str] = frozenset()  # stated unit or currency ids (canonical.units_after/units_before)
    points: bool = False  # "percentage points" / "pp" / "basis points"
    ambiguous: bool = False  # "1,234" / "1.234" in a text that uses both conventions: no single reading

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
    """(significant digits, resolution) of a decimal literal such as "1234.50" (5, 0.01) or "0.0012" (2, 1e-4).
    Trailing zeros of an integer count as significant: the conservative reading (a smaller rounding allowance)."""
    s = num.replace(",", "")
    whole, _, frac = s.partition(".")
    sig = len((whole + frac).lstrip("0"))
    return sig, 10.0 ** (int(exp or 0) - len(frac))


def number_convention(text: str) -> str:
    """Which decimal mark ``text`` uses, from its unambiguous literals: ``us`` (a point: "3.14", "1,234.5",
    "1,234,567"), ``eu`` (a comma: "3,5", "1.234,5", "1.234.567"), ``mixed`` when both appear; ``us`` when nothing
    tells (English text)."""
    us = eu = False
    for m in re.finditer(r"\d+(?:[.,]\d+)+", text or ""):
        lit = m.group(0)
        marks = [c for c in lit if c in ".,"]
        groups = re.split(r"[.,]", lit)
        if set(marks) == {".", ","}:
            us, eu = us or marks[-1] == ".", eu or marks[-1] == ","
        elif len(marks) >= 2:
            us, eu = us or marks[0] == ",", eu or marks[0] == "."
        elif len(groups[-1]) != 3 or groups[0] == "0":
            us, eu = us or marks[0] == ".", eu or marks[0] == ","
    return "mixed" if us and eu else "eu" if eu else "us"


def _valid_groups(groups: list[str], mark: str) -> bool:
    """Thousands groups: 1-3 digits then groups of 3 (or India's 2-digit groups before the last 3, for commas)."""
    if len(groups) == 1:
        return True
    if not 1 <= len(groups[0]) <= 3 or len(groups[-1]) != 3:
        return False
    middle = groups[1:-1]
    return all(len(g) == 3 for g in middle) or (mark == "," and all(len(g) == 2 for g in middle)
                                                and len(groups[0]) <= 2)


def _read_literal(lit: str, convention: str) -> tuple[str, str, bool] | None:
    """(integer digits, fraction digits, ambiguous) of a numeral written with any common separators; None when
    its grouping is not a number ("1,2,3", "3.3.1990").

    Rule: spaces, thin spaces and apostrophes only group thousands; when both "." and "," appear, the last one is
    the decimal mark; one kind repeated groups thousands; a single one followed by other than three digits (or
    after a leading 0) is the decimal mark ("3,5", "0,125"); a single one followed by exactly three digits ("1,234",
    "1.234") is read in the text's ``convention`` (:func:`number_convention`), and is ``ambiguous`` when the text
    uses both."""
    if lit.startswith("."):
        return "0", lit[1:], False
    marks = [c for c in lit if not c.isdigit()]
    if not marks:
        return lit, "", False
    kinds = {c for c in marks if c in ".,"}
    ambiguous = False
    decimal: str | None = None
    if len(kinds) == 2:
        decimal = marks[-1]
        if decimal not in ".," or marks.count(decimal) != 1:
            return None
    elif len(kinds) == 1:
        mark = next(iter(kinds))
        groups = re.split(r"[^\d]", lit)
        if marks.count(mark) >= 2:
            decimal = None
        elif any(c in _THOUSANDS_MARKS for c in marks) or len(groups[-1]) != 3 or groups[0] == "0":
            decimal = mark
        else:
            ambiguous = convention == "mixed"
            decimal = mark if (mark == ".") == (convention != "eu") else None
    if decimal is not None:
        if lit.rfind(decimal) != max(lit.rfind(c) for c in marks):
            return None
        whole, frac = lit[:lit.rfind(decimal)], lit[lit.rfind(decimal) + 1:]
    else:
        whole, frac = lit, ""
    whole_marks = {c for c in whole if not c.isdigit()}
    groups = re.split(r"[^\d]", whole)
    if len(whole_marks) > 1 or not _valid_groups(groups, next(iter(whole_marks), ",")):
        return None
    return "".join(groups), frac, ambiguous


def numeric_text(text: str | None) -> str:
    """``text`` prepared for reading numbers: LaTeX and superscripts made plain (:func:`canonical.plain_math`),
    number words written in digits when the text has no digits ("twenty-five percent"), digit groups separated by
    spaces joined with a thin space."""
    t = plain_math(str(text or ""))
    if not re.search(r"\d", t):
        t = _words_to_digits(t)
    return _SPACE_GROUPS.sub(lambda m: m.group(1) + m.group(2).replace(" ", "\u2009"), t)


def find_numbers(text: str | None) -> list[_Found]:
    """Every finite number in ``text`` (read as given; callers pass :func:`numeric_text`) with its sign (``-``,
    ``−``, or accounting parentheses), currency symbol or code, thousands separators of any common convention,
    decimal comma, exponent, fraction ("1/3", "3 1/2"), percent sign or word, percentage points, scale word and
    unit, in order."""
    found: list[_Found] = []
    if not text:
        return found
    text = str(text)
    convention = number_convention(text)
    for m in _NUMBER.finditer(text):
        ambiguous, frac = False, ""
        try:
            if m.group("md") is not None:
                den = float(m.group("md"))
                if den == 0:
                    continue
                value, sig, res = float(m.group("mw")) + float(m.group("mn")) / den, None, None
            elif m.group("fn") is not None:
                den = float(m.group("fd"))
                if den == 0:
                    continue
                value, sig, res = float(m.group("fn")) / den, None, None
            else:
                read = _read_literal(m.group("num"), convention)
                if read is None:
                    continue
                whole, frac, ambiguous = read
                canonical = whole + ("." + frac if frac else "")
                value = float(canonical + (f"e{m.group('exp')}" if m.group("exp") else ""))
                sig, res = _digits_info(canonical, m.group("exp"))
        except (ValueError, OverflowError):
            continue
        if not math.isfinite(value):
            continue
        negative = bool(m.group("neg") or (m.group("paren") and m.group("close")))
        if negative:
            value = -value
        scale = _SCALES.get((m.group("scale") or "").lower(), 1.0)
        units = set(units_after(text[m.end():]))
        for sign in (m.group("cur"), m.group("cur2")):
            if sign:
                units |= units_before(sign)
        if not (m.group("cur") or m.group("cur2")):
            units |= units_before(text[max(0, m.start() - 8):m.start()])
        points = "pp" in units
        units.discard("pp")
        plain = (m.group("num") is not None and m.group("num").isdigit() and not m.group("exp") and not negative
                 and not (m.group("cur") or m.group("cur2") or m.group("pct") or m.group("scale") or units or points))
        point = m.group("num") is not None and bool(frac)
        found.append(_Found(ParsedNumber(value, bool(m.group("pct")), scale, sig, res, plain, point,
                                         frozenset(units), points, ambiguous), m.start(), m.end()))
    return found


def parse_number(text: str | None) -> ParsedNumber | None:
    """The first number in ``text`` (:func:`find_numbers` of :func:`numeric_text`); None when there is none."""
    found = find_numbers(numeric_text(text))
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


def _answer_found(text: str, years_are_answers: bool = False) -> tuple[_Found | None, bool]:
    """(the number that is the answer in ``text``, whether some number was dropped as negated); see
    :func:`answer_number`."""
    all_found = find_numbers(text)
    found = [f for f in all_found if not negated_at(text, f.start, f.end)]
    dropped = len(found) < len(all_found)
    if len(found) <= 1:
        return (found[0] if found else None), dropped
    best: tuple[int, int] | None = None
    choice = found[0]
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
            best, choice = key, f
    return choice, dropped


def answer_number(text: str | None, years_are_answers: bool = False) -> ParsedNumber | None:
    """The number that is the answer when ``text`` holds several ("from 10 to 12, an increase of 2" -> 2).

    Rule: a negated number ("not 12 but 15", "15 rather than 12", "12 is wrong") is never the answer; every other
    number gets a rank from the words just before it, and the first number of the highest rank wins:

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
    found, _ = _answer_found(numeric_text(text), years_are_answers)
    return found.number if found else None


def _readings(n: ParsedNumber, other: ParsedNumber) -> set[float]:
    """The values ``n`` may stand for beside ``other``: as written and times its scale word (only the scaled value
    when both state a scale: "5 thousand" is not "5 million"); a percent also as a fraction (12.5% = 0.125) unless
    both are percents (then 0.125% is not 12.5%)."""
    base = {n.value * n.scale} if n.scale != 1 and other.scale != 1 else {n.value, n.value * n.scale}
    if n.percent and not other.percent:
        base |= {v / 100 for v in base}
    return base


def _rounds_to(shown: ParsedNumber, shown_value: float, other: float, min_sig_digits: int) -> bool:
    """``shown`` (read as ``shown_value``) is ``other`` rounded to the digits ``shown`` writes, and writes at least
    ``min_sig_digits`` significant digits: |shown - other| <= half a unit of its last digit, relative to its size
    so that percent and scale readings keep the same precision."""
    if shown.sig_digits is None or shown.resolution is None or shown.sig_digits < min_sig_digits or shown.value == 0:
        return False
    half_unit = 0.5 * shown.resolution / abs(shown.value) * abs(shown_value)
    return abs(shown_value - other) <= half_unit * (1 + 1e-9)


def _unit_conflict(pred: ParsedNumber, gold: ParsedNumber) -> bool:
    """Both state a unit or currency and they differ ("40 km" / "40 miles", "$300" / "300 euros"), or one states
    percentage points and the other a percent."""
    if pred.units and gold.units and not pred.units & gold.units:
        return True
    return (pred.points and gold.percent) or (gold.points and pred.percent)


def numbers_match(pred: ParsedNumber, gold: ParsedNumber, rel_tol: float = 1.5e-3, min_sig_digits: int = 3) -> bool:
    """pred ≈ gold. Rule, for some reading of each (:func:`_readings`: as written; times its scale word; a percent
    as a fraction):

    * never when a side is ambiguous (:attr:`ParsedNumber.ambiguous`) or the stated units differ
      (:func:`_unit_conflict`);
    * equal, or ``|p - g| <= rel_tol * |g|`` (DocMath's relative tolerance); relative, so 0.0004 and 0 differ, and
      so do 0.0001 and 0.0004 (a fixed 3-decimal rounding made them equal);
    * or the prediction is the gold rounded to the digits the prediction shows, with at least ``min_sig_digits``
      significant digits (0.0123 for 0.01234, 1.23 million for 1,234,567, 0.333 for 1/3); or the gold, written
      with a decimal point and so visibly rounded, is the prediction rounded the same way (gold 0.333, answer
      "1/3"). A gold written as an integer is exact: 100.2 is not 100;
    * except that when both are plain integers and the gold is year-like ("2001" vs "2000"), only equality counts:
      a year off by one is a different year, though within 0.15 %."""
    if pred.ambiguous or gold.ambiguous or _unit_conflict(pred, gold):
        return False
    if pred.plain_int and gold.plain_int and gold.year_like:
        return pred.value == gold.value
    for p in _readings(pred, gold):
        for g in _readings(gold, pred):
            if p == g or abs(p - g) <= rel_tol * abs(g):
                return True
            if _rounds_to(pred, p, g, min_sig_digits) or (gold.has_point and _rounds_to(gold, g, p, min_sig_digits)):
                return True
    return False


def _mismatch_reason(pred: ParsedNumber, gold: ParsedNumber, rel_tol: float, min_sig_digits: int) -> str:
    """Why two numbers differ: ``ambiguous``, ``wrong_unit``, ``wrong_scale`` (equal as written but for a stated
    scale word or percent sign: "$5 thousand" for "$5 million", "0.125%" for "12.5%"), else ``mismatch``."""
    if pred.ambiguous or gold.ambiguous:
        return AMBIGUOUS
    if _unit_conflict(pred, gold):
        return WRONG_UNIT
    bare_p = ParsedNumber(pred.value, False, 1.0, pred.sig_digits, pred.resolution)
    bare_g = ParsedNumber(gold.value, False, 1.0, gold.sig_digits, gold.resolution)
    if (pred.scale != gold.scale or (pred.percent and gold.percent and pred.value != gold.value)) and \
            numbers_match(bare_p, bare_g, rel_tol, min_sig_digits):
        return WRONG_SCALE
    if pred.percent and gold.percent and (numbers_match(ParsedNumber(pred.value * 100, False, 1.0), bare_g, rel_tol,
                                                        min_sig_digits)
                                          or numbers_match(bare_p, ParsedNumber(gold.value * 100, False, 1.0),
                                                           rel_tol, min_sig_digits)):
        return WRONG_SCALE
    return MISMATCH


_LIST_BETWEEN = re.compile(r"\s*(?:,|;|&|and|,\s*and|or|,\s*or|and/or|/|[-–—]|to|through)\s*", re.IGNORECASE)
_DECREASE_BEFORE = re.compile(
    r"\b(?:decreas(?:e|ed|es|ing)|declin(?:e|ed|es|ing)|drop(?:ped|s)?|f[ae]ll(?:en|s)?|reduc(?:ed|es|tion|ing)"
    r"|los[st]|loss(?:es)?|lower(?:ed)?|shr[au]nk|contract(?:ed|ion)|down|minus|deficit|negative)"
    r"(?:\s+(?:of|by|about|around|approximately|roughly|nearly|some|an|a))*\s*[$€£¥]?\s*$", re.IGNORECASE)
_DECREASE_AFTER = re.compile(r"^\s*(?:decrease|decline|drop|fall|reduction|loss|lower|less|down|deficit|shortfall)\b",
                             re.IGNORECASE)
_QUESTION_DECREASE = re.compile(r"\b(?:decreas|declin|drop|fall|fell|reduc|los[st]|shr[iau]nk|lower|shortfall)",
                                re.IGNORECASE)


def _signed_readings(found: _Found, text: str, question: str | None) -> list[ParsedNumber]:
    """The answer number with the sign its words give. A decrease word ("a decline of 8.3%", "fell by 8.3%", "8.3%
    lower") makes a positive number negative; when the question itself asks for a decrease ("By what percentage did
    revenue decline?") the direction is fixed and the magnitude is compared, so either sign counts."""
    n = found.number
    if question and _QUESTION_DECREASE.search(question):
        flipped = ParsedNumber(-n.value, n.percent, n.scale, n.sig_digits, n.resolution, False, n.has_point, n.units,
                               n.points, n.ambiguous)
        return [n, flipped]
    if n.value > 0 and (_DECREASE_BEFORE.search(text[:found.start]) or _DECREASE_AFTER.search(text[found.end:])):
        return [ParsedNumber(-n.value, n.percent, n.scale, n.sig_digits, n.resolution, False, n.has_point, n.units,
                             n.points, n.ambiguous)]
    return [n]


def _same_kind(a: ParsedNumber, b: ParsedNumber) -> bool:
    """Two numbers that could be alternatives for one answer: both percents or neither, the same stated units, both
    years or neither ("founded in 1998, 3 years after" names a year and a duration, not two candidates)."""
    return a.percent == b.percent and a.units == b.units and a.year_like == b.year_like


def _numbers_hedged(text: str, golds: list[str], rel_tol: float, min_sig_digits: int) -> bool:
    """Several different numbers offered as the answer.

    Rule: among the numbers outside parentheses and not negated, two different values (a restatement such as
    "12.5%, or 0.125" names one value) that are (a) joined as alternatives or a list or a range: ", ", "and", "or",
    "/", "to" (not after "from"), a dash (not a subtraction followed by "="): "12 or 15", "7.5%, 8.1% and 9.0%",
    "12–15", "between 12 and 15"; or (b) in an answer that says it is unsure ("it could be 15", "possibly")."""
    flat = top_level(text)
    found = [f for f in find_numbers(flat) if not negated_at(flat, f.start, f.end)]
    for a, b in zip(found, found[1:], strict=False):
        between = flat[a.end:b.start]
        dash_sign = not between.strip() and flat[b.start:b.end].lstrip()[:1] in "-−–"
        if not (_LIST_BETWEEN.fullmatch(between) or dash_sign) or not _same_kind(a.number, b.number):
            continue
        if numbers_match(a.number, b.number, rel_tol, min_sig_digits) or numbers_match(
                b.number, a.number, rel_tol, min_sig_digits):
            continue
        if (dash_sign or between.strip() in "-–—") and "=" in flat[b.end:]:
            continue  # "22 - 10 = 12": a computation
        if between.strip().lower() in ("to", "through") and re.search(r"\bfrom\s*[$€£¥]?$", flat[:a.start],
                                                                      re.IGNORECASE):
            continue  # "from 10 to 12": a change, not a range of answers
        return True
    if _UNCERTAIN.search(text) or is_hedged(text, golds):
        values = [f.number for f in found if not f.number.year_like]
        return any(not numbers_match(a, b, rel_tol, min_sig_digits) for a in values for b in values)
    return False


def math_score(prediction: str | None, golds: list[str], rel_tol: float = 1.5e-3, min_sig_digits: int = 3,
               question: str | None = None) -> RuleResult:
    """1 if the answer number of the prediction (:func:`answer_number`, negated numbers excluded, signed by its
    decrease words) matches the answer number of any accepted answer (:func:`numbers_match`); 0 for several
    different numbers (:func:`_numbers_hedged`, reason ``hedged``); when neither side holds a number, exact match.
    The reason of a miss is ``negated``, ``wrong_unit``, ``wrong_scale``, ``ambiguous``, ``unparsed`` (no number in
    the answer) or ``mismatch``."""
    metrics = {"numeric": 0.0, "hedged": 0.0}
    if not prediction or not str(prediction).strip():
        return RuleResult(0.0, metrics, NO_ANSWER)
    text = numeric_text(prediction)
    if _numbers_hedged(text, golds, rel_tol, min_sig_digits):
        metrics.update(numeric=1.0, hedged=1.0)
        return RuleResult(0.0, metrics, HEDGED)
    reasons: list[str] = []
    for g in golds:
        gold = answer_number(g)
        if gold is None:
            if exact_match(prediction, g):
                return RuleResult(1.0, {**metrics, "numeric": float(parse_number(prediction) is not None)}, MATCHED)
            reasons.append(MISMATCH)
            continue
        found, dropped = _answer_found(text, years_are_answers=gold.year_like)
        if found is None:
            reasons.append(NEGATED if dropped else UNPARSED)
            continue
        metrics["numeric"] = 1.0
        readings = _signed_readings(found, text, question)
        if any(numbers_match(r, gold, rel_tol, min_sig_digits) for r in readings):
            return RuleResult(1.0, metrics, MATCHED)
        reasons.append(_mismatch_reason(readings[0], gold, rel_tol, min_sig_digits))
    metrics["numeric"] = float(bool(find_numbers(text)))
    return RuleResult(0.0, metrics, _first_reason(reasons))


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


_LETTER = re.compile(
    r"[(\[{]\s*(?P<a>[A-Ja-j])\s*[)\]}]"  # (B) [b] {B}
    r"|\b(?:option|choice|letter)\s*[:\-]?\s*(?P<b>[A-Ja-j])\b(?![\w'’])"  # option b
    r"|\*\*\s*(?P<c>[A-Ja-j])\s*[.)]?\s*\*\*"  # **B**
    r"|(?<![\w'’.\-])(?P<d>[A-J])(?![\w'’\-])(?!\.\w)"  # a bare capital letter
    r"|^[\s*_\"']*(?P<e>[a-j])(?=\s*(?:[).:]|$))")  # a lone lower-case letter opening the answer: "b", "b)"
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[).:]\s+(.+?)\s*$", re.MULTILINE)


def question_options(question: str | None) -> dict[str, str]:
    """The options a question lists, one per line ("A. Oslo", "(B) Bergen", "C) Trondheim"): letter -> text."""
    return {m.group(1): m.group(2) for m in _OPTION_LINE.finditer(question or "")}


def option_letters(text: str | None, options: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """(the option letters ``text`` commits to, reason).

    Rule: letters in any casing and wrapper ("(b)", "[B]", "**B**", "option b", "\\boxed{B}", a lone "b." opening
    the answer, a bare capital letter - but not an article or pronoun "A"/"I" before a lower-case word); negated
    letters ("not (B)", "(C) is wrong", "except B") dropped. Without a letter, the option whose text the answer
    names (``options`` from the question) - ``hedged`` when it names several. A letter followed by another option's
    text ("B. Oslo" when Oslo is A) is ``conflicting``. No letter and no option text: ``unparsed``."""
    if not text:
        return [], NO_ANSWER
    t = plain_math(str(text))
    letters: list[tuple[str, int, int]] = []
    for m in _LETTER.finditer(t):
        key = next(k for k in "abcde" if m.group(k))
        letter = m.group(key)
        if key == "d" and letter in "AI" and re.match(r"\s+[a-z]", t[m.end():]):
            continue  # "A combination of …", "I think …"
        letters.append((letter.upper(), m.start(), m.end()))
    negated = {le for le, s, e in letters if negated_at(t, s, e)}
    kept = [(le, s, e) for le, s, e in letters if not negated_at(t, s, e)]
    said = list(dict.fromkeys(le for le, _, _ in kept))
    options = dict(options or {})
    if said:
        for le, _, e in kept:
            follow = normalize_answer(t[e:e + 200]).split()
            for other, body in options.items():
                words = normalize_answer(body).split()
                if other != le and words and follow[:len(words)] == words and \
                        normalize_answer(options.get(le, "")).split() != words:
                    return said, CONFLICTING
        return said, (HEDGED if len(said) > 1 else MATCHED)
    named = []
    for letter, body in options.items():
        words = _tokens(body)
        toks = _tokens(t)
        if any(not negated_at(t, toks[i].start, toks[j - 1].end) for i, j in _spans(toks, words)):
            named.append(letter)
    if named:
        return named, (HEDGED if len(named) > 1 else MATCHED)
    return [], (NEGATED if negated else UNPARSED)


def choice_score(prediction: str | None, golds: list[str], question: str | None = None) -> RuleResult:
    """1 if the prediction commits to exactly one option (:func:`option_letters`) and it is an accepted answer's
    letter, else 0 with the reason (``hedged`` for several letters, ``negated``, ``conflicting``, ``unparsed``,
    ``mismatch``)."""
    letters, reason = option_letters(prediction, question_options(question))
    gold_letters = set()
    for g in golds:
        found, _ = option_letters(g)
        gold_letters |= set(found[:1]) if found else {g.strip().upper()}
    found_one = float(bool(letters))
    if reason != MATCHED:
        return RuleResult(0.0, {"option_found": found_one, "hedged": float(reason == HEDGED)}, reason)
    ok = letters[0] in gold_letters
    return RuleResult(float(ok), {"option_found": found_one, "hedged": 0.0}, MATCHED if ok else MISMATCH)


def rule_score(family: str, prediction: str | None, golds: list[str], qa_metric: str = "sub_em",
               rel_tol: float = 1.5e-3, min_sig_digits: int = 3, question: str | None = None) -> RuleResult:
    """The rule verdict of one answer string: score, family metrics and ``reason`` (:data:`REASONS`). ``question``
    lets the rule read the options of a multiple-choice question and the direction a numeric question fixes."""
    if family == QA:
        return qa_score(prediction, golds, qa_metric)
    if family == MATH:
        return math_score(prediction, golds, rel_tol, min_sig_digits, question)
    if family == CHOICE:
        return choice_score(prediction, golds, question)
    raise ValueError(f"unknown rule family {family!r}; families are {FAMILIES}")


# an earlier statement rejected for one of these names another answer
_CONFLICTS = (MISMATCH, DIFFERENT_ENTITY, WRONG_UNIT, WRONG_SCALE, AMBIGUOUS)


def score_read(family: str, read: AnswerRead, golds: list[str], qa_metric: str = "sub_em", rel_tol: float = 1.5e-3,
               min_sig_digits: int = 3, question: str | None = None) -> RuleResult:
    """The verdict of a whole response (:func:`read_answer`): the committed answer scored by :func:`rule_score`.

    Rule: the last statement is the committed answer. When it is accepted but an earlier statement gave a different
    answer (a short one, at most 12 words and not negated, that the rule rejects as another value, entity, unit or
    scale) and the last does not revise it with a marker ("wait", "actually", "correction"), two answers stand: 0,
    ``conflicting``.
    No statement: 0 with the reason ``unfinished`` or ``no_answer``."""
    if not read.statements:
        empty = rule_score(family, None, golds, qa_metric, rel_tol, min_sig_digits, question)
        return RuleResult(0.0, empty.metrics, read.missing or NO_ANSWER)
    last = read.statements[-1]
    result = rule_score(family, last.text, golds, qa_metric, rel_tol, min_sig_digits, question)
    result.metrics["revised"] = float(last.revises)
    if result.score >= 1.0 and not last.revises:
        for earlier in read.statements[:-1]:
            if len(earlier.text.split()) > 12 or has_negator(earlier.text):
                continue  # talk, not an answer ("the answer is not stated directly, but …")
            r = rule_score(family, earlier.text, golds, qa_metric, rel_tol, min_sig_digits, question)
            if r.score < 1.0 and r.reason in _CONFLICTS:
                metrics = {k: (0.0 if k in ("sub_em", "em", "f1") else v) for k, v in result.metrics.items()}
                return RuleResult(0.0, metrics, CONFLICTING)
    return result


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
