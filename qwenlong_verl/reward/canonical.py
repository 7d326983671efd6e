"""One canonical form for what is string handling, not knowledge: LaTeX wrappers, number words, dates, units.

Every function here takes arbitrary text and never raises. They are used by :mod:`.rule` on both the answer and
the gold, so two spellings of one value compare equal and two values never do:

* :func:`plain_math` - ``\\boxed{..}``, ``\\text{..}``, ``\\frac{a}{b}``, ``a \\times 10^{k}``, superscript
  exponents, ``\\%``, ``\\$``, LaTeX thin spaces and ``{,}`` become plain text;
* :func:`words_to_digits` - "twenty-five" -> 25, "one hundred and twenty" -> 120, "twenty-first" -> 21st;
* :func:`find_dates` / :class:`DateValue` - a date in any common order, separator, ordinal or month name;
* :func:`units_after` / :func:`units_before` - currency symbols and names, length, mass, time and percentage-point
  units, each mapped to one id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------------------------
# LaTeX and typography
# ---------------------------------------------------------------------------------------------------------------
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPER_RUN = re.compile(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)")
_WRAPPER_CMD = re.compile(r"\\(?:boxed|text|textbf|textit|mathrm|mathbf|mathit|operatorname|fbox|mbox|emph)\s*\{")
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]*?)\s*\}\s*\{\s*([^{}]*?)\s*\}")
_FRAC_SHORT = re.compile(r"\\[dt]?frac\s*(\d)\s*(\d)")
_TIMES_POW = re.compile(
    r"(\d(?:[\d.,]*\d)?)\s*(?:\\times|\\cdot|×|·|\*|x)\s*10\s*\^\s*\{?\s*([-+−]?\d{1,3})\s*\}?")
_BARE_POW = re.compile(r"(?<![\d.])10\s*\^\s*\{?\s*([-+−]?\d{1,3})\s*\}?")
_DOLLAR_MATH = re.compile(r"\$\$?(?=\s*\\)|(?<=[}])\s*\$\$?|\\[()\[\]]")
_ESCAPED_DOLLAR = "\uE000"


def _unwrap_braces(text: str, pattern: re.Pattern[str]) -> str:
    """``\\cmd{inner}`` -> ``inner`` for every match of ``pattern`` (which ends at the opening brace), nesting
    respected; an unbalanced brace keeps the rest of the text."""
    for _ in range(8):
        m = pattern.search(text)
        if m is None:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        inner = text[m.end():i - 1] if depth == 0 else text[m.end():]
        text = text[:m.start()] + inner + (text[i:] if depth == 0 else "")
    return text


def plain_math(text: str) -> str:
    """``text`` with LaTeX and typographic number wrappers replaced by plain text.

    Rule: ``$``/``\\(``/``\\[`` math delimiters go; ``\\boxed{X}``, ``\\text{X}``, ``\\mathrm{X}`` -> ``X``;
    ``\\frac{a}{b}`` (``\\dfrac``, ``\\tfrac``) -> ``a/b``; ``a \\times 10^{k}``, ``a × 10³`` -> ``aek``; a bare
    ``10^{k}`` -> ``1ek``; ``\\%`` -> ``%``; ``\\$`` -> ``$`` (a currency sign, unlike a math delimiter); ``{,}`` ->
    ``,`` (a LaTeX comma); ``\\,``, ``\\;``, ``\\!``, ``~`` -> a thin space (a thousands separator between digit
    groups)."""
    if not text:
        return ""
    t = str(text).replace("\\$", _ESCAPED_DOLLAR)
    t = _DOLLAR_MATH.sub(" ", t)
    t = _unwrap_braces(t, _WRAPPER_CMD)
    for _ in range(3):
        t = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", t)
    t = _FRAC_SHORT.sub(lambda m: f"{m.group(1)}/{m.group(2)}", t)
    t = _SUPER_RUN.sub(lambda m: "10^" + m.group(1).translate(_SUPERSCRIPTS), t)
    t = _TIMES_POW.sub(lambda m: f"{m.group(1)}e{m.group(2).replace('−', '-')}", t)
    t = _BARE_POW.sub(lambda m: f"1e{m.group(1).replace('−', '-')}", t)
    t = t.replace("{,}", ",").replace("\\%", "%").replace("\\,", "\u2009").replace("\\;", "\u2009")
    t = t.replace("\\!", "").replace("~", " ").replace(_ESCAPED_DOLLAR, "$")
    return t


# ---------------------------------------------------------------------------------------------------------------
# Number words
# ---------------------------------------------------------------------------------------------------------------
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD_UNITS = ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
              "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
              "eighteenth", "nineteenth"]
_ORD_TENS = ["", "", "twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth",
             "ninetieth"]
CARDINALS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)} | {w: 10 * i for i, w in enumerate(_TENS) if w}
ORDINALS: dict[str, int] = ({w: i for i, w in enumerate(_ORD_UNITS) if i} | {w: 10 * i for i, w in enumerate(_ORD_TENS)
                                                                            if w} | {"hundredth": 100})
_MULTIPLIERS = {"hundred": 100, "thousand": 1000}
_NUMBER_WORD = "|".join(sorted([*CARDINALS, *ORDINALS, *_MULTIPLIERS], key=len, reverse=True))
_NUMBER_PHRASE = re.compile(
    rf"\b(?:{_NUMBER_WORD})(?:(?:\s+and\s+|[\s\-‐–]+)(?:{_NUMBER_WORD}))*\b", re.IGNORECASE)


def _ordinal_suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _phrase_value(words: list[str]) -> tuple[int, bool] | None:
    """(value, is_ordinal) of number words such as ["one", "hundred", "twenty", "first"]; None when the words do
    not form one number ("one two", "hundred" alone)."""
    total, current, ordinal, last = 0, None, False, None
    for w in words:
        if ordinal:
            return None  # nothing follows an ordinal word
        if w in CARDINALS or w in ORDINALS:
            value = CARDINALS.get(w, ORDINALS.get(w))
            ordinal = w in ORDINALS and w not in CARDINALS
            if value == 100 and ordinal:  # "hundredth"
                if current is None:
                    return None
                current *= 100
                last = "mult"
                continue
            if current is None:
                current = value
            elif last == "tens" and value < 10 and current % 10 == 0:
                current += value  # "twenty five"
            elif last == "mult" and current % 100 == 0 and value < 100:
                current += value  # "hundred twenty"
            else:
                return None  # "one two": two numbers
            last = "tens" if value >= 20 and value % 10 == 0 and value < 100 else "unit"
        elif w in _MULTIPLIERS:
            if current is None:
                return None
            if w == "hundred":
                if current >= 100:
                    return None
                current *= 100
            else:
                total += current * 1000
                current = 0
            last = "mult"
        else:
            return None
    if current is None:
        return None
    return total + current, ordinal


def words_to_digits(text: str) -> str:
    """``text`` with each maximal run of English number words written in digits: "twenty-five" -> "25", "one
    hundred and twenty" -> "120", "twenty-first" -> "21st", "third" -> "3rd". Runs that do not form one number stay
    as written. "million"/"billion" are scale words and are left to the number reader ("two million" ->
    "2 million")."""
    if not text:
        return ""

    def repl(m: re.Match[str]) -> str:
        words = [w.lower() for w in re.split(r"(?:\s+and\s+|[\s\-‐–]+)", m.group(0), flags=re.IGNORECASE) if w]
        read = _phrase_value(words)
        if read is None:
            return m.group(0)
        value, ordinal = read
        return f"{value}{_ordinal_suffix(value)}" if ordinal else str(value)

    return _NUMBER_PHRASE.sub(repl, str(text))


# ---------------------------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------------------------
MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_MONTH = r"(?P<{name}>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<{name}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{name}>[12]\d{{3}})"
_DATE_PATTERNS = [
    # 1990-03-03, 1990/3/3, 1990.03.03
    re.compile(r"(?<![\d.])(?P<y>[12]\d{3})[-/.](?P<m>[01]?\d)[-/.](?P<d>[0-3]?\d)(?![\d])"),
    # 03/04/1990, 3.4.1990, 3-4-1990: day-month or month-day
    re.compile(r"(?<![\d.])(?P<a>[0-3]?\d)[-/.](?P<b>[0-3]?\d)[-/.](?P<y>[12]\d{3})(?![\d])"),
    # 3 March 1990, 3rd of March, 1990, 3 Mar 1990, 3 March
    re.compile(r"\b" + _DAY.format(name="d") + r"\s+(?:of\s+)?" + _MONTH.format(name="m") + r"(?:,?\s+"
               + _YEAR.format(name="y") + r")?\b", re.IGNORECASE),
    # March 3, 1990, Mar. 3rd 1990, March 3
    re.compile(r"\b" + _MONTH.format(name="m") + r"\s+" + _DAY.format(name="d") + r"(?!\d)(?:,?\s+"
               + _YEAR.format(name="y") + r")?\b", re.IGNORECASE),
    # March 1990, March, 1990
    re.compile(r"\b" + _MONTH.format(name="m") + r",?\s+" + _YEAR.format(name="y") + r"\b", re.IGNORECASE),
    # a year alone
    re.compile(r"(?<![\d.,$€£¥])\b(?P<y>1[0-9]\d{2}|20\d{2}|2100)\b(?![.,]\d)(?!\s*%)"),
    # a month alone (full names; "may" only capitalised)
    re.compile(r"\b(?P<m>January|February|March|April|June|July|August|September|October|November|December|May)\b",
               re.IGNORECASE),
]


@dataclass(frozen=True)
class DateValue:
    """A calendar date with the parts the text gives (None: not given). ``alt``: the other reading of a numeric
    date whose day and month could be swapped (03/04/1990), None when the text leaves no doubt."""

    year: int | None
    month: int | None
    day: int | None
    start: int = 0
    end: int = 0
    alt: tuple[int | None, int | None, int | None] | None = None

    @property
    def parts(self) -> tuple[int | None, int | None, int | None]:
        return self.year, self.month, self.day

    def readings(self) -> list[tuple[int | None, int | None, int | None]]:
        return [self.parts] + ([self.alt] if self.alt and self.alt != self.parts else [])


def _valid(y: int | None, m: int | None, d: int | None) -> bool:
    return (m is None or 1 <= m <= 12) and (d is None or 1 <= d <= 31) and (y is None or 1000 <= y <= 2100)


def _day_from_ordinal_words(text: str) -> str:
    """"the fourteenth of July" -> "the 14th of July": ordinal words become digits so the date patterns read them."""
    return re.sub(r"\b(?:" + "|".join(sorted(ORDINALS, key=len, reverse=True)) + r")(?:[\s\-]+(?:"
                  + "|".join(_ORD_UNITS[1:10]) + r"))?\b",
                  lambda m: words_to_digits(m.group(0)), text, flags=re.IGNORECASE)


def find_dates(text: str | None) -> list[DateValue]:
    """Every date in ``text`` in order, the most specific reading of each place first (a full date is not also
    reported as its year). A month alone counts only when capitalised or for the full names other than "may"; a
    numeric day/month pair that could be read both ways carries ``alt``."""
    if not text:
        return []
    t = _day_from_ordinal_words(str(text)) if re.search(r"[a-z]", str(text), re.IGNORECASE) else str(text)
    taken: list[tuple[int, int]] = []
    out: list[DateValue] = []
    for k, pattern in enumerate(_DATE_PATTERNS):
        for m in pattern.finditer(t):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            g = m.groupdict()
            alt = None
            if k == 1:
                a, b, y = int(g["a"]), int(g["b"]), int(g["y"])
                first, second = (y, b, a), (y, a, b)  # day-month, month-day
                ok1, ok2 = _valid(*first), _valid(*second)
                if not (ok1 or ok2):
                    continue
                parts = first if ok1 else second
                if ok1 and ok2 and first != second:
                    alt = second
            else:
                if k == 6 and g["m"].lower() == "may" and not g["m"][0].isupper():
                    continue
                month = MONTHS.get(g["m"].lower()) if g.get("m") and not g["m"].isdigit() else (
                    int(g["m"]) if g.get("m") else None)
                parts = (int(g["y"]) if g.get("y") else None, month, int(g["d"]) if g.get("d") else None)
                if not _valid(*parts):
                    continue
            taken.append((m.start(), m.end()))
            out.append(DateValue(*parts, start=m.start(), end=m.end(), alt=alt))
    return sorted(out, key=lambda d: d.start)


def date_covers(text: str, date: DateValue) -> bool:
    """True when ``date`` is all of ``text`` but for punctuation, a weekday, "on"/"in"/"the" and similar filler:
    the text *is* a date (a gold "March 3, 1990"), not a sentence that holds one."""
    rest = (text[:date.start] + " " + text[date.end:]) if date.end else text
    rest = re.sub(r"\b(?:on|in|the|of|year|date|a\.?d\.?|c\.?e\.?|circa|c\.|monday|tuesday|wednesday|thursday|friday"
                  r"|saturday|sunday)\b", " ", rest, flags=re.IGNORECASE)
    return not re.search(r"\w", rest)


def compare_dates(pred: DateValue, gold: DateValue) -> str:
    """``matched`` when every part the gold gives is given alike by the answer (the answer may be more specific:
    "March 1990" for a gold "1990"); ``partial`` when the answer agrees but leaves out a part the gold gives (a year
    for a full date); ``ambiguous`` when only one of the answer's two day/month readings matches; else ``mismatch``.
    """
    def agrees(p: tuple[int | None, ...], g: tuple[int | None, ...]) -> str:
        missing = False
        for a, b in zip(p, g, strict=True):
            if b is None:
                continue
            if a is None:
                missing = True
            elif a != b:
                return "mismatch"
        return "partial" if missing else "matched"

    verdicts = {agrees(r, gold.parts) for r in pred.readings()}
    if verdicts == {"matched"}:
        return "matched"
    if "matched" in verdicts:
        return "ambiguous"
    return "partial" if "partial" in verdicts else "mismatch"


# ---------------------------------------------------------------------------------------------------------------
# Units and currencies
# ---------------------------------------------------------------------------------------------------------------
# unit words -> ids; "pounds" is money or mass, so it maps to both
_UNIT_WORDS: list[tuple[str, frozenset[str]]] = [
    (r"percentage\s+points?|pp|pts?|basis\s+points?|bps", frozenset({"pp"})),
    (r"us\s*dollars?|dollars?|usd|bucks", frozenset({"USD"})),
    (r"euros?|eur", frozenset({"EUR"})),
    (r"pounds?\s+sterling|gbp|sterling", frozenset({"GBP"})),
    (r"pounds?|lbs?", frozenset({"GBP", "lb"})),
    (r"yen|jpy", frozenset({"JPY"})),
    (r"yuan|rmb|cny|renminbi", frozenset({"CNY"})),
    (r"rupees?|inr", frozenset({"INR"})),
    (r"miles?\s+per\s+hour|mph", frozenset({"mph"})),
    (r"kilomet(?:er|re)s?\s+per\s+hour|km\s*/\s*h|kph|kmh", frozenset({"km/h"})),
    (r"met(?:er|re)s?\s+per\s+second|m\s*/\s*s", frozenset({"m/s"})),
    (r"knots?|kn", frozenset({"kn"})),
    (r"kilomet(?:er|re)s?|km", frozenset({"km"})),
    (r"miles?|mi", frozenset({"mi"})),
    (r"met(?:er|re)s?", frozenset({"m"})),
    (r"centimet(?:er|re)s?|cm", frozenset({"cm"})),
    (r"millimet(?:er|re)s?", frozenset({"mm"})),
    (r"feet|foot|ft", frozenset({"ft"})),
    (r"inch(?:es)?", frozenset({"in"})),
    (r"yards?|yd", frozenset({"yd"})),
    (r"kilograms?|kgs?", frozenset({"kg"})),
    (r"grams?|g", frozenset({"g"})),
    (r"tonnes?|metric\s+tons?", frozenset({"t"})),
    (r"tons?", frozenset({"t", "ton"})),
    (r"acres?", frozenset({"acre"})),
    (r"hectares?|ha", frozenset({"ha"})),
    (r"lit(?:er|re)s?", frozenset({"L"})),
    (r"gallons?|gal", frozenset({"gal"})),
    (r"hours?|hrs?", frozenset({"h"})),
    (r"minutes?|mins?", frozenset({"min"})),
    (r"seconds?|secs?", frozenset({"s"})),
    (r"days?", frozenset({"day"})),
    (r"weeks?", frozenset({"week"})),
    (r"months?", frozenset({"month"})),
    (r"years?|yrs?", frozenset({"year"})),
    (r"°\s*c|degrees?\s+c(?:elsius)?|celsius", frozenset({"C"})),
    (r"°\s*f|degrees?\s+f(?:ahrenheit)?|fahrenheit", frozenset({"F"})),
]
_UNIT_AFTER = re.compile(r"^\s*(?:(?P<w>" + "|".join(f"(?:{w})" for w, _ in _UNIT_WORDS) + r"))\b", re.IGNORECASE)
_UNIT_BEFORE = re.compile(r"(?P<w>\b(?:usd|us|eur|gbp|jpy|cny|rmb|inr|rs)\.?\s*\$?|us\$|[$€£¥₹])\s*$", re.IGNORECASE)
_SYMBOLS = {"$": frozenset({"USD"}), "us$": frozenset({"USD"}), "€": frozenset({"EUR"}), "£": frozenset({"GBP"}),
            "¥": frozenset({"JPY", "CNY"}), "₹": frozenset({"INR"}), "usd": frozenset({"USD"}),
            "us": frozenset({"USD"}), "eur": frozenset({"EUR"}), "gbp": frozenset({"GBP"}),
            "jpy": frozenset({"JPY"}), "cny": frozenset({"CNY"}), "rmb": frozenset({"CNY"}),
            "inr": frozenset({"INR"}), "rs": frozenset({"INR"})}


def units_after(text: str) -> frozenset[str]:
    """Unit ids of the unit word that ``text`` starts with ("km", "percentage points", "euros"); empty if none."""
    m = _UNIT_AFTER.match(text or "")
    if not m:
        return frozenset()
    word = m.group("w").lower()
    for pattern, ids in _UNIT_WORDS:
        if re.fullmatch(pattern, word, re.IGNORECASE):
            return ids
    return frozenset()


def units_before(text: str) -> frozenset[str]:
    """Currency ids of the currency sign or code that ``text`` ends with ("$", "US$", "EUR", "€"); empty if
    none."""
    m = _UNIT_BEFORE.search(text or "")
    if not m:
        return frozenset()
    key = re.sub(r"[\s.]", "", m.group("w").lower())
    if key.endswith("$") and key not in _SYMBOLS:
        key = key[:-1] or "$"
    return _SYMBOLS.get(key, frozenset())
