"""Middle truncation of over-long prompts to a token budget, as the QwenLong-L1 evaluation does.

REPO eval/utils/openai_api.py keeps the first and the last ``budget/2`` tokens of the prompt. The question and the
answer-format instruction sit at the end of the prompt and the task statement at the start, so cutting the middle of
the document loses the least. Here the cut is made on the original text at token boundaries (character offsets
from a fast tokenizer), so the kept head and tail are byte-identical to the input, and the joined text is
re-tokenized and shrunk until it fits: re-tokenizing across the seam can merge or split tokens differently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Truncated:
    text: str
    original_tokens: int  # tokens of the input text
    tokens: int  # tokens of ``text`` (re-tokenized)
    truncated: bool


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

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

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
