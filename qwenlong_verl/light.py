"""Keep verl out of the commands that do not need it.

``import verl`` loads every ``verl.plugins`` entry point, this package's included, and with them torch, Ray and verl's
engines: 4-6 s and seven warnings about missing accelerators and engines before ``qwenlong-verl score`` prints a
line. The rule scorer's SQuAD normalisation (:func:`qwenlong_verl.reward.rule.normalize_answer`) is verl's
``search_r1_like_qa_em.normalize_answer``, imported on first use; :func:`use_local_normalizer` gives the scorer the
same function, defined here, so scoring never imports verl. ``tests/test_reliability_imports.py`` checks that the two
agree and that score/eval/prepare/plan/synth leave verl unimported.
"""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def squad_normalize(s: str) -> str:
    """Lower case, no punctuation, no articles, single spaces: verl's ``normalize_answer``, character for
    character."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def use_local_normalizer() -> None:
    """Make the rule scorer use :func:`squad_normalize` instead of importing verl's (no-op when the scorer already
    has a normaliser or no longer imports verl's)."""
    from qwenlong_verl.reward import rule

    if getattr(rule, "_normalize", False) is None:
        rule._normalize = squad_normalize
