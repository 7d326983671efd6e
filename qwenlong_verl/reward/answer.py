"""Reading the committed answer of a response, and the text-level tests of precision the rule applies to it.

A careful grader reads the answer a response commits to, not every string it mentions. This module holds the
parts of that reading that do not depend on the answer family:

* :func:`answer_statements` - every place the response states its answer ("the answer is", "Final answer:",
  ``\\boxed{}``, "Answer:"), with whether it revises an earlier one ("X. Wait, actually Y");
* :func:`negated_at` - whether a span of the answer is negated or named only to be rejected ("not X", "X rather
  than Y", "X is wrong");
* :func:`items` - the top-level items of an answer (what a list, "and", "or", a slash or bullets join), for the
  several-candidates test.

Everything takes arbitrary text and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------------------------
# Statements of the answer
# ---------------------------------------------------------------------------------------------------------------
_CUE = re.compile(
    r"(?P<cue>\bthe\s+(?:final\s+|correct\s+|right\s+|best\s+)?answer\s+(?:is|would\s+be|should\s+be|must\s+be|=)"
    r"|\*\*\s*final\s+answer\s*[:：]?\s*\*\*\s*[:：]?|\bfinal\s+answer\s*(?:\*\*)?\s*[:：]|(?<![\w])answer\s*(?:\*\*)?"
    r"\s*[:：]|\bfinal\s+answer\b\s*(?=\n))"
    r"|(?P<box>\\boxed\s*\{)",
    re.IGNORECASE)
# A sentence or phrase that takes back what came before it.
REVISION = re.compile(
    r"(?:^|(?<=[,;:.…—(])\s*)(?:wait|actually|hmm+|oops|sorry|correction|on\s+(?:second|further)\s+"
    r"(?:thought|reflection|look)|scratch\s+that|i\s+mean|or\s+rather|no\s+wait|no,\s*wait|hold\s+on|let\s+me\s+"
    r"(?:correct|reconsider|re-?check|double[-\s]check|fix)|i\s+made\s+(?:a|an)\s+(?:mistake|error)|that(?:'s|\s+is)"
    r"\s+(?:wrong|incorrect)|no,)(?=[\s,;:.!…—]|$)",
    re.IGNORECASE)
# Words that open a committed answer without being part of it.
_LEAD = re.compile(
    r"^(?:\s*(?:so|thus|then|therefore|hence|instead|rather|actually|in\s+fact|indeed|ok(?:ay)?|well|it(?:'s|’s|\s+is"
    r"|\s+was|\s+should\s+be|\s+must\s+be)|that(?:'s|’s|\s+is|\s+was)|this\s+is|the\s+(?:correct\s+|right\s+|real\s+"
    r"|final\s+)?(?:answer|one)\s+(?:is|was)|i\s+(?:think|believe)|i'm\s+(?:sure|confident)(?:\s+that)?)\b[\s,:]*)+",
    re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]*_]*\s+(?=[\"'(*_]*[A-Z0-9(\\$])|\n\s*\n")
# abbreviations and initials whose period does not end a sentence
_NO_END = re.compile(r"(?:\b(?:mr|mrs|ms|dr|prof|st|mt|ft|jr|sr|vs|no|fig|vol|inc|ltd|co|corp|jan|feb|mar|apr|jun|jul"
                     r"|aug|sep|sept|oct|nov|dec|u\.s|u\.k|e\.g|i\.e|approx|ca|etc)|\b[A-Za-z])\.$", re.IGNORECASE)


_ECHO = frozenset("the final answer is correct therefore so thus".split())


@dataclass(frozen=True)
class Statement:
    """One statement of the answer. ``revises``: it follows a revision marker ("wait", "actually", "correction")
    after an earlier statement, so it replaces it instead of standing beside it."""

    text: str
    start: int
    revises: bool = False


def _first_sentence(text: str) -> tuple[str, int]:
    """(the first sentence of ``text``, where the rest starts). A list that follows a colon on the next lines
    belongs to the sentence; a period after an abbreviation or an initial does not end it."""
    pos = 0
    while True:
        m = _SENTENCE_END.search(text, pos)
        if m is None:
            return text, len(text)
        head = text[:m.start()].rstrip("\"')]*_ ")
        if m.group(0).strip() == "" and "\n" in m.group(0):  # a blank line always ends it
            return text[:m.start()], m.end()
        if _NO_END.search(head):
            pos = m.end()
            continue
        return text[:m.start()], m.end()


def _box_end(text: str, start: int) -> int:
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return i


def strip_lead(text: str) -> str:
    """``text`` without words that open an answer ("so", "it is", "I think", "the answer is") and without
    markdown emphasis, quotes, a colon or a final period around it."""
    previous = None
    t = text
    while t != previous:
        previous = t
        t = _LEAD.sub("", t.strip()).strip().strip("*_`\"' \t\r\n:").rstrip(".")
    return t


def _after_revision(text: str) -> str:
    """What a revision sentence commits to: after its last clause separator when what precedes is only the
    marker and talk ("Wait, I forgot the returns; the total is 38" -> "the total is 38")."""
    t = REVISION.sub(" ", text).strip(" ,;:.!…—-")
    parts = [p for p in re.split(r"[;:]\s+|,\s+(?=\S)", t) if p.strip()]
    return strip_lead(parts[-1]) if parts else ""


def answer_statements(region: str) -> list[Statement]:
    """Every statement of the answer in ``region`` (the text after the reasoning), in order.

    Rule: a statement starts after a cue ("the answer is", "the final/correct answer is", "Final answer:",
    "**Final Answer**", "Answer:") and runs to the end of its sentence (a list on the following lines after a colon
    is part of it), or is the content of ``\\boxed{...}``. A statement that only repeats a cue (``**Final
    Answer**`` followed by "the answer is X") is dropped. Inside a statement, a revision marker after some answer
    text ("X, or rather Y", "X... actually Y") ends that answer: the text after the marker is a new statement that
    revises it. After the last statement, a sentence that opens with a revision marker ("Wait, actually it was Y.")
    is a revising statement too. Without any cue the whole region is one statement (a bare "Paris")."""
    text = region or ""
    out: list[Statement] = []
    cues = list(_CUE.finditer(text))
    covered_until = -1
    for i, m in enumerate(cues):
        if m.start() < covered_until:
            continue
        if m.group("box"):
            end = _box_end(text, m.end())
            body = text[m.end():end - 1] if end <= len(text) and text[end - 1:end] == "}" else text[m.end():end]
            covered_until = end
            _add(out, body, m.start(), _between(text, out, m.start()))
            continue
        rest = text[m.end():]
        nxt = cues[i + 1].start() - m.end() if i + 1 < len(cues) else len(rest)
        lead = re.match(r"[\s:*_]*", rest).end()
        sentence, _ = _first_sentence(rest[lead:])
        body = sentence if lead + len(sentence) <= nxt else rest[lead:nxt]
        if re.search(r"[:：]\s*$", body.strip()):  # "one of the following:" and a list on the next lines
            block = re.split(r"\n\s*\n", rest[lead:], maxsplit=1)[0]
            body = block if len(block) > len(body) else body
        _add(out, body, m.end() + lead, _between(text, out, m.start()))
    if not cues:
        _add(out, text, 0, "")
    # a sentence after the last statement that takes it back
    if out:
        tail_start = out[-1].start + len(out[-1].text)
        for sentence in _sentences(text[tail_start:]):
            if REVISION.match(sentence.strip()) and _after_revision(sentence):
                out.append(Statement(_after_revision(sentence), tail_start, revises=True))
    return [s for s in out if s.text]


def _sentences(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        sentence, nxt = _first_sentence(text[pos:])
        out.append(sentence)
        if nxt <= 0:
            break
        pos += nxt
    return out


def _between(text: str, out: list[Statement], cue_start: int) -> str:
    """The text between the last statement so far and a new cue (where a revision marker would stand)."""
    if not out:
        return ""
    return text[out[-1].start + len(out[-1].text):cue_start]


def _add(out: list[Statement], body: str, start: int, between: str) -> None:
    """Append ``body`` as a statement, split at inline revision markers; drop one that is only a cue's echo."""
    body = body.strip()
    revises = bool(out) and bool(REVISION.search(between))
    pieces: list[str] = []
    pos = 0
    for m in REVISION.finditer(body):
        head = body[pos:m.start()]
        if strip_lead(head):
            pieces.append(head)
            pos = m.start()
    pieces.append(body[pos:])
    for k, piece in enumerate(pieces):
        committed = strip_lead(piece) if k == 0 else _after_revision(piece)
        if not re.search(r"\w", committed) or _CUE.fullmatch(committed.strip()):
            continue
        if all(w.lower() in _ECHO for w in re.findall(r"\w+", committed)):
            continue  # only a cue's words ("**Final Answer**" before "the answer is X")
        out.append(Statement(committed, start, revises=revises or k > 0))


# ---------------------------------------------------------------------------------------------------------------
# Negation
# ---------------------------------------------------------------------------------------------------------------
_NEGATOR = (r"not|never|no|neither|nor|without|except|excluding|isn't|wasn't|aren't|weren't|doesn't|didn't|don't"
            r"|can't|cannot|couldn't|won't|wouldn't|shouldn't|hardly|other\s+than|rather\s+than|instead\s+of"
            r"|as\s+opposed\s+to|(?:anything|anyone|anybody|anywhere|anytime|all)\s+but|apart\s+from|in\s+place\s+of"
            r"|rul(?:e|es|ed|ing)\s+out|exclud(?:e|es|ed)|eliminat(?:e|es|ed)|none\s+of|rejects?|rejected|unlike")
_PRE_NEGATION = re.compile(r"(?:^|[^\w'])(?:" + _NEGATOR + r")(?:[^\w']|$)", re.IGNORECASE)
_COPULA = r"(?:is|was|are|were|be|been|seems?|appears?|looks?|would\s+be|can\s+be|could\s+be|must\s+be|may\s+be" \
          r"|might\s+be|should\s+be|'s|’s)"
_POST_NEGATION = re.compile(
    r"^[\s\"'*_)\]]*(?:(?:,|and|or|&)\s*[^\s,]+\s*){0,4}?"  # coordinated subjects: "(A) and (C) are ruled out"
    r"(?:" + _COPULA + r"\s+(?:\w+\s+){0,2}?(?:but\s+)?|(?:can|could|must|should|may)\s+(?:be\s+)?"
    r"|has\s+been\s+|had\s+been\s+)(?:not\b|never\b|n't\b|incorrect|wrong|false|invalid|excluded|ruled\s+out|eliminated"
    r"|rejected|a\s+distractor|unlikely|implausible|impossible|mistaken|a\s+mistake|an\s+error)"
    r"|^[\s\"'*_]*(?:isn't|wasn't|aren't|weren't|can't|cannot|couldn't)\b", re.IGNORECASE)
# what ends the scope of a negation
_CLAUSE_END = re.compile(r"[.;:!?\n(),—–]|\s-\s|(?<!anything\s)(?<!anyone\s)(?<!anybody\s)(?<!\ball\s)\bbut\b|\b(?:however|though|although|whereas|while|so|instead|yet|and\s+"
                         r"so|therefore|thus|hence)\b", re.IGNORECASE)

# after a span, parentheses may wrap a coordinated subject ("(A) and (C) are ruled out")
_CLAUSE_END_AFTER = re.compile(_CLAUSE_END.pattern.replace("(),", ","), re.IGNORECASE)


def negated_at(text: str, start: int, end: int) -> bool:
    """True when the span ``text[start:end]`` is negated or named only to be rejected.

    Rule: in the span's clause (clauses end at ``. ; , ( ) —`` and at "but", "however", "so", …), a negator
    ("not", "never", "no", "neither/nor", "without", "except", "rather than", "instead of", "as opposed to",
    "anything but", "other than", "ruled out", "unlike", "versus", n't-verbs) stands before it; or it is the
    subject of a rejection ("X is not …", "X is wrong/incorrect/ruled out/a distractor", "X can be excluded")."""
    before = text[:start]
    cut = max((m.end() for m in _CLAUSE_END.finditer(before)), default=0)
    clause_before = before[cut:]
    if _PRE_NEGATION.search(clause_before):
        return True
    after = text[end:]
    stop = _CLAUSE_END_AFTER.search(after)
    clause_after = after[:stop.start()] if stop else after
    # "is tempting but wrong": the rejection may follow one "but" of its own clause
    if stop and stop.group(0).lower() == "but":
        nxt = _CLAUSE_END_AFTER.search(after, stop.end())
        clause_after = after[:nxt.start()] if nxt else after
    return bool(_POST_NEGATION.search(clause_after))


def has_negator(text: str) -> bool:
    return bool(_PRE_NEGATION.search(text or ""))


# ---------------------------------------------------------------------------------------------------------------
# Items of an answer
# ---------------------------------------------------------------------------------------------------------------
_ITEM_SPLIT = re.compile(r"\s*(?:;|,\s*(?:and|or|&)\s+|,|\band/or\b|\band\b|&|\bas\s+well\s+as\b|\balong\s+with\b"
                         r"|\btogether\s+with\b|\bplus\b|\bor\b|(?<=[\w§])/(?=[\w§])|\s/\s|\n\s*(?:[-*•]|\d+[.)])?\s*"
                         r"|\balternatively\b)\s*", re.IGNORECASE)
_LIST_JOIN = re.compile(r"\band\b|&|\bas\s+well\s+as\b|\balong\s+with\b|\btogether\s+with\b|\bplus\b"
                        r"|\n\s*(?:[-*•]|\d+[.)])\s*\S|;|\balternatively\b|(?<=[\w§])/(?=[\w§])", re.IGNORECASE)


def top_level(text: str) -> str:
    """``text`` with everything inside parentheses or brackets blanked (same length): asides are not items."""
    out, depth = [], 0
    for ch in text:
        if ch in "([":
            depth += 1
        if depth:
            out.append(" ")
        else:
            out.append(ch)
        if ch in ")]" and depth:
            depth -= 1
    return "".join(out)


def items(text: str) -> list[tuple[str, int]]:
    """The top-level items of ``text`` with their offsets: what ``;``, ``,``, "and", "or", "&", "as well as",
    "along with", "plus", "/", "alternatively" and bullet lines separate (parentheses are asides, not items)."""
    flat = top_level(text)
    out, pos = [], 0
    for m in _ITEM_SPLIT.finditer(flat):
        if m.start() > pos or m.end() > pos:
            out.append((text[pos:m.start()], pos))
            pos = m.end()
    out.append((text[pos:], pos))
    return [(t, p) for t, p in out if t.strip()]


def is_list(text: str) -> bool:
    """True when ``text`` joins its items as a list: "and", "&", ";", "as well as", "plus", a slash between words,
    bullet lines, or three or more comma items. Two items joined by a single comma are an apposition ("Paris,
    France"), not a list."""
    flat = top_level(text)
    return bool(_LIST_JOIN.search(flat)) or len([t for t in flat.split(",") if t.strip()]) >= 3
