"""Middle truncation of over-long prompts to a token budget, as the QwenLong-L1 evaluation does.

REPO eval/utils/openai_api.py keeps the first and the last ``budget/2`` tokens of the prompt. The question and the
answer-format instruction sit at the end of the prompt and the task statement at the start, so cutting the middle of
the document loses the least. Here the cut is made on the original text at token boundaries (character offsets
from a fast tokenizer), so the kept head and tail are byte-identical to the input, and the joined text is
re-tokenized and shrunk until it fits: re-tokenizing across the seam can merge or split tokens differently.

Speed: tokenizing a whole 120K-token document costs far more than the ``budget`` tokens that are kept. For a fast
tokenizer with a pre-tokenizer (every GPT/Qwen/Llama-3 style BPE), a text whose head and tail windows do not meet is
cut from two character windows only: a head window of about ``budget/2`` tokens plus a margin, a tail window
likewise, tokenized in one batch (outside the GIL). Tokens near a window's cut edge are not trusted (the last/first
``_EDGE_WORDS`` pre-tokens and ``_EDGE_CHARS`` characters: a pre-token that runs into the edge can tokenize
differently than in the whole text); a window that holds too few trusted tokens is doubled. The token count of the
cut text is the trusted head tokens before a pre-token boundary ``_SEAM_CHARS`` before the seam, plus a small
re-tokenized seam string (with context on both sides, its anchors checked to be token boundaries), plus the trusted
tail tokens after a boundary past the seam. The cut points and the kept text are then those of the whole-text
algorithm (``_truncate_full``, still used for short texts, slow tokenizers, tokenizers without a pre-tokenizer and
whenever an anchor check fails); ``tests/test_eval_truncation.py`` compares the two on adversarial documents. The
one thing not computed exactly is ``original_tokens`` of a cut text: it is estimated from the windows' token
density (``original_exact`` is False), as counting it would mean tokenizing the whole document again.

The windows and the seam go straight to the Rust tokenizer behind a transformers fast tokenizer (``_direct_backend``,
after a probe shows it gives transformers' ids and offsets): transformers' wrapper would convert every encoding into
Python lists of ids, masks and offsets under the GIL (~1 ms a 4K-token window), stalling the event loop that sends
the evaluation's requests while other prompts are truncated in threads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

_EDGE_WORDS = 2  # pre-tokens at a window's cut edge that are not trusted
_EDGE_CHARS = 128  # nor is anything within this many characters of it
_SEAM_CHARS = 48  # the seam string reaches at least this far from the cut on each side...
_SEAM_CONTEXT = 48  # ...plus this much context, tokenized but not counted
_MAX_GROWTH = 4  # window doublings before giving up and tokenizing the whole text


@dataclass(frozen=True)
class Truncated:
    text: str
    original_tokens: int  # tokens of the input text (an estimate when ``original_exact`` is False)
    tokens: int  # tokens of ``text`` (re-tokenized)
    truncated: bool
    original_exact: bool = True


def _has_pre_tokenizer(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and getattr(backend, "pre_tokenizer", None) is not None


_PROBE = "Probe: naïve 日本語 🙂 1,234.5\n\n  x\tend of the probe's text"


def _direct_backend(tokenizer: Any) -> Any | None:
    """The ``tokenizers.Tokenizer`` behind a transformers fast tokenizer, when calling it directly gives the same
    ids and character offsets (checked on a probe text); None otherwise (then every call goes through transformers).
    """
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:  # pragma: no cover - a fast tokenizer comes from transformers
        return None
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        return None
    backend = tokenizer.backend_tokenizer
    probe = _PROBE + "".join(str(t) for t in (getattr(tokenizer, "all_special_tokens", None) or [])[:4])
    try:
        enc = tokenizer([probe], add_special_tokens=False, return_offsets_mapping=True)
        direct = backend.encode_batch([probe], add_special_tokens=False)[0]
    except Exception:  # noqa: BLE001 - any surprise: use transformers' call, which is always right
        logger.debug("tokenizer backend probe failed; tokenizing through transformers", exc_info=True)
        return None
    same = (list(enc["input_ids"][0]) == list(direct.ids)
            and [tuple(o) for o in enc["offset_mapping"][0]] == [tuple(o) for o in direct.offsets])
    return backend if same else None


def _clean_boundary(offsets: list[tuple[int, int]], words: list[int | None], i: int) -> bool:
    """Whether a pre-token boundary separates token ``i - 1`` from token ``i`` (no shared character either)."""
    if i <= 0 or i >= len(offsets):
        return True
    w0, w1 = words[i - 1], words[i]
    return (w0 is None or w1 is None or w0 != w1) and offsets[i][0] >= offsets[i - 1][1]


def _edge_words(words: Any) -> set[int]:
    """The first ``_EDGE_WORDS`` distinct pre-token ids met in ``words``."""
    seen: set[int] = set()
    for w in words:
        if w is not None:
            seen.add(w)
            if len(seen) == _EDGE_WORDS:
                break
    return seen


def _is_boundary(offsets: list[tuple[int, int]], pos: int) -> bool:
    """Whether no token of ``offsets`` straddles character position ``pos``."""
    return all(end <= pos or start >= pos for start, end in offsets)


class MiddleTruncator:
    """Keep the head and tail of a text within ``max_tokens`` tokens of ``tokenizer`` (no special tokens added).

    ``max_tokens <= 0`` disables truncation (token counts are still taken when a tokenizer is given).
    """

    def __init__(self, tokenizer: Any | None, max_tokens: int) -> None:
        if max_tokens > 0 and tokenizer is None:
            raise ValueError("middle truncation needs a tokenizer (or max_tokens <= 0 to disable it)")
        if max_tokens == 1:
            raise ValueError("max_tokens=1 cannot hold both a head and a tail; use 0 to disable truncation")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._offsets = bool(getattr(tokenizer, "is_fast", False))
        self._windowed = self._offsets and _has_pre_tokenizer(tokenizer)
        self._backend = _direct_backend(tokenizer) if self._windowed and max_tokens > 0 else None
        self._split_special = bool(getattr(tokenizer, "split_special_tokens", False))
        self._chars_per_token = 4.0  # first guess for the window size; learnt from the windows seen

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode(self, texts: Sequence[str]) -> list[tuple[list[tuple[int, int]], list[int | None]]]:
        """(character offsets, word ids) of each text's tokens, no special tokens added."""
        be = self._backend
        # transformers resets truncation/padding/special-token splitting on each of its calls; another caller of
        # the shared tokenizer may have changed them since, and then its own call is the one that is right
        if (be is not None and be.truncation is None and be.padding is None
                and bool(getattr(be, "encode_special_tokens", False)) == self._split_special):
            return [(e.offsets, e.word_ids) for e in be.encode_batch(list(texts), add_special_tokens=False)]
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [(enc["offset_mapping"][i], enc.word_ids(i)) for i in range(len(texts))]

    def _cut(self, text: str, ids: list[int], offsets: list[tuple[int, int]] | None, keep: int) -> str:
        head_n = keep // 2 + keep % 2  # the odd token goes to the head, which holds the task statement
        tail_n = keep // 2
        if offsets is not None:
            head_end = offsets[head_n - 1][1] if head_n else 0
            tail_start = offsets[len(ids) - tail_n][0] if tail_n else len(text)
            # Byte-level BPE can give a multi-byte character to two tokens with overlapping offsets.
            tail_start = max(tail_start, head_end)
            return text[:head_end] + text[tail_start:]
        tok = self.tokenizer
        # A cut inside a multi-byte character decodes to U+FFFD: drop that partial character.
        head = tok.decode(ids[:head_n], skip_special_tokens=False).rstrip("\ufffd") if head_n else ""
        tail = tok.decode(ids[len(ids) - tail_n:], skip_special_tokens=False).lstrip("\ufffd") if tail_n else ""
        return head + tail

    def __call__(self, text: str) -> Truncated:
        if self.tokenizer is None:
            return Truncated(text, -1, -1, False)
        if self.max_tokens > 0 and self._windowed and self._offsets:
            res = self._truncate_windowed(text)
            if res is not None:
                return res
        return self._truncate_full(text)

    def _truncate_full(self, text: str) -> Truncated:
        """The reference algorithm: tokenize the whole text, cut at its token offsets, re-tokenize, shrink."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=self._offsets)
        ids = list(enc["input_ids"])
        n = len(ids)
        if self.max_tokens <= 0 or n <= self.max_tokens:
            return Truncated(text, n, n, False)
        offsets = [tuple(o) for o in enc["offset_mapping"]] if self._offsets else None
        keep = self.max_tokens
        while True:  # keep shrinks every round and "" fits any budget, so this ends
            out = self._cut(text, ids, offsets, keep)
            got = self.count(out)
            if got <= self.max_tokens:
                return Truncated(out, n, got, True)
            keep = max(0, keep - max(got - self.max_tokens, 1))

    def _truncate_windowed(self, text: str) -> Truncated | None:
        """The same result as ``_truncate_full`` from a head and a tail window; None when it cannot tell."""
        budget = self.max_tokens
        head_need, tail_need = budget // 2 + budget % 2, budget // 2
        n_chars = len(text)
        cpt = self._chars_per_token
        for _ in range(_MAX_GROWTH):
            h_chars = int((head_need + 8) * cpt * 1.1) + 2 * _EDGE_CHARS
            t_chars = int((tail_need + 8) * cpt * 1.1) + 2 * _EDGE_CHARS
            if h_chars + t_chars >= n_chars:
                return None  # the windows would meet: the whole text is about as cheap
            base = n_chars - t_chars
            (h_off, h_words), (t_off, t_words) = self._encode([text[:h_chars], text[base:]])
            h_ok = self._trusted_head(h_off, h_words, h_chars)
            t_from = self._trusted_tail_start(t_off, t_words)
            self._chars_per_token = max(0.25, (h_chars + t_chars) / max(1, len(h_off) + len(t_off)))
            if h_ok > head_need and len(t_off) - t_from >= tail_need:
                break
            cpt = max(cpt, self._chars_per_token) * 2
        else:
            return None
        # the whole text has at least h_ok + (len(t_off) - t_from) > budget tokens: it is cut
        estimate = max(budget + 1, round(n_chars * (len(h_off) + len(t_off)) / (h_chars + t_chars)))
        keep = budget
        while True:
            head_n, tail_n = keep // 2 + keep % 2, keep // 2
            head_end = h_off[head_n - 1][1] if head_n else 0
            k0 = len(t_off) - tail_n
            tail_start = base + t_off[k0][0] if tail_n else n_chars
            got = self._spliced_count(text, h_off, h_words, head_n, head_end, t_off, t_words, k0, base,
                                      tail_start)
            if got is None:
                return None
            if got <= budget:
                return Truncated(text[:head_end] + text[tail_start:], estimate, got, True, original_exact=False)
            keep = max(0, keep - max(got - budget, 1))

    @staticmethod
    def _trusted_head(offsets: list[tuple[int, int]], words: list[int | None], window: int) -> int:
        """How many leading tokens of a head window are far enough from its cut edge to be the text's own."""
        limit = window - _EDGE_CHARS
        edge_words = _edge_words(reversed(words))
        n = 0
        for (_, end), w in zip(offsets, words, strict=True):
            if end > limit or (w is not None and w in edge_words):
                break
            n += 1
        return n

    @staticmethod
    def _trusted_tail_start(offsets: list[tuple[int, int]], words: list[int | None]) -> int:
        """Index of the first token of a tail window far enough from its cut edge to be the text's own."""
        edge_words = _edge_words(words)
        for i, ((start, _), w) in enumerate(zip(offsets, words, strict=True)):
            if start >= _EDGE_CHARS and (w is None or w not in edge_words):
                return i
        return len(offsets)

    def _spliced_count(self, text: str, h_off: list[tuple[int, int]], h_words: list[int | None], head_n: int,
                       head_end: int, t_off: list[tuple[int, int]], t_words: list[int | None], k0: int, base: int,
                       tail_start: int) -> int | None:
        """Tokens of ``text[:head_end] + text[tail_start:]``: trusted head tokens up to a boundary before the seam,
        the re-tokenized seam, trusted tail tokens from a boundary after it. None if an anchor is not a boundary."""
        a_idx = head_n  # head tokens [0, a_idx) are counted as they are
        while a_idx > 0 and not (_clean_boundary(h_off, h_words, a_idx)
                                 and head_end - h_off[a_idx][0] >= _SEAM_CHARS):
            a_idx -= 1
        a = h_off[a_idx][0] if a_idx else 0
        b_idx = k0  # tail tokens [b_idx, len) are counted as they are
        while b_idx < len(t_off) and not (_clean_boundary(t_off, t_words, b_idx)
                                          and base + t_off[b_idx][0] - tail_start >= _SEAM_CHARS):
            b_idx += 1
        n_chars = len(text)
        b = base + t_off[b_idx][0] if b_idx < len(t_off) else n_chars
        a0 = max(0, a - _SEAM_CONTEXT)
        b1 = min(n_chars, b + _SEAM_CONTEXT)
        seam = text[a0:head_end] + text[tail_start:b1]
        p_a = a - a0
        p_b = (head_end - a0) + (b - tail_start)
        offsets = self._encode([seam])[0][0]
        if not (_is_boundary(offsets, p_a) and _is_boundary(offsets, p_b)):
            return None
        middle = sum(1 for s, _ in offsets if p_a <= s < p_b)
        return a_idx + middle + (len(t_off) - b_idx)
