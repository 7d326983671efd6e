"""Hypothesis strategies shared by several test files, so that "any text", "any JSON value" or "a plain word" mean
the same thing everywhere and a fix to one (say, a character class the generator missed) reaches every test.

Strategies used by one file only stay in that file.
"""

from __future__ import annotations

import string
from collections.abc import Collection

from hypothesis import strategies as st

# lone surrogates ("\ud83d", half an emoji) are what json.loads makes of a cut "\\ud83d" escape: readers, scorers and
# writers must survive them, so "any text" includes them on purpose
_ANY_CHAR = (st.characters(exclude_categories=())
             | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()))


def any_text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Text of any code points, lone surrogates included (as a JSON file can hold them).

    Args:
        max_size: most characters.
        min_size: fewest characters.
    """
    return st.text(alphabet=_ANY_CHAR, min_size=min_size, max_size=max_size)


def utf8_text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Text that encodes to UTF-8 (no lone surrogates): what a model or a tokenizer can produce.

    Args:
        max_size: most characters.
        min_size: fewest characters.
    """
    return st.text(alphabet=st.characters(codec="utf-8"), min_size=min_size, max_size=max_size)


def any_json(text: st.SearchStrategy[str] | None = None, max_leaves: int = 8) -> st.SearchStrategy[object]:
    """Any value ``json.loads`` can return (NaN too): nested lists and objects of null, bools, numbers and text.

    Args:
        text: the strategy for strings; default ``any_text(10)``.
        max_leaves: bound on the size of one value.
    """
    strings = text if text is not None else any_text(10)  # `text or ...` would ask a strategy for its truth value
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | strings
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
        max_leaves=max_leaves)


def ascii_words(min_size: int = 1, max_size: int = 8, exclude: Collection[str] = ()) -> st.SearchStrategy[str]:
    """Lowercase ASCII words, minus ``exclude`` (words the scorer reads specially: articles, hedges, list words).

    Args:
        min_size: fewest letters.
        max_size: most letters.
        exclude: words never drawn.
    """
    banned = frozenset(exclude)
    return st.text(alphabet=string.ascii_lowercase, min_size=min_size, max_size=max_size).filter(
        lambda w: w not in banned)


def non_year_ints(high: int) -> st.SearchStrategy[int]:
    """Integers in 1..``high`` that cannot be read as a year (1000-2100): the rule scorer treats those as dates.

    Args:
        high: the largest value.
    """
    return st.integers(1, high).filter(lambda n: not 1000 <= n <= 2100)
