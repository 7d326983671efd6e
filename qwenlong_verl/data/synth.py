"""Synthetic long-context DocQA in the DocQA-RL-1.6K layout, deterministic by seed.

Each example is one document of a chosen token length (a few hundred to 60K+ tokens) made of neutral filler
sentences with a handful of *facts* placed at random positions, plus a question whose answer the rule scorer can
verify:

* ``multihop`` (``data_source`` ``musique`` / ``multihoprag``): a two-hop chain "P was led by X" + "X was born in
  C"; the question asks for C given P. Distractor chains of the same shape are placed in the same document.
* ``numeric`` (``docmath``): two yearly figures of one company among distractor companies; the answer is their
  difference, sum or percent change, rounded to 2 decimals.
* ``choice`` (``long_toc_choices``): "Which city is company K headquartered in?" with four options, all of them
  cities of companies that appear in the document; the answer is the option letter.
* ``copy`` (``multihoprag``): an easy control: the document states "The access code is W." verbatim near its start
  and end (W from a small word list), and the question asks for the code. Used for learning checks.
* ``needle`` (``multihoprag``): the copy task made harder by length: "The access code is W." appears once, at a
  random depth, among distractor sentences "The old code was V." (V another code word), one per ~``NEEDLE_WORDS_PER
  _DISTRACTOR`` words of document. A longer document has more distractors and its answer lies deeper on average, so
  a length curriculum has something to do.
* ``needle_dense`` (``multihoprag``): ``needle`` whose distractor *density* rises with length: about
  ``n_words**2 / (NEEDLE_WORDS_PER_DISTRACTOR * NEEDLE_DENSE_REF_WORDS)`` distractors, so a document twice as long
  has four times the distractors (twice as many per token), up to twice ``needle``'s density. In ``needle`` each token carries the same chance of a
  distractor, and a model that copies the right sentence is about as good at any length; here a long document is
  harder per token as well as longer, so length really is the difficulty.

Rows are verl RL rows: ``data_source``, ``prompt`` (one user message in the QwenLong-L1 template), ``ability``,
``reward_model: {style: rule, ground_truth}``, ``extra_info: {index, split, kind, question, answer, target_tokens,
seed}``, and ``prompt_length`` (also in ``extra_info``) when a tokenizer is given: the length of the chat-templated
prompt with the generation prompt, exactly what verl's ``filter_overlong_prompts`` measures.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

KINDS = ("multihop", "numeric", "choice", "copy", "needle", "needle_dense")
DEFAULT_KINDS = ("multihop", "numeric", "choice")

PROMPT_TEMPLATE = (
    "Please read the following text and answer the question below.\n\n<text>\n{document}\n</text>\n\n{question}\n\n"
    'Format your response as follows: "Therefore, the answer is (insert answer here)".'
)

# Tokens per whitespace word of the filler text under a typical 150K-vocabulary BPE (Qwen2.5): used for the target
# length when no tokenizer is given. With a tokenizer the ratio is measured instead.
DEFAULT_TOKENS_PER_WORD = 1.3

_FILLER_WORDS = (
    "the committee reviewed annual report schedule district council archive record meeting members agreed "
    "proposal budget season harvest market river valley northern southern eastern western office staff "
    "program public library museum garden bridge station railway harbor village town road field survey "
    "weather winter summer spring autumn morning evening during after before while although because "
    "several many most some few various local regional national early later recent previous following "
    "noted described discussed considered approved delayed planned finished started continued returned "
    "visitors residents workers students teachers farmers engineers officials volunteers travellers "
    "building project collection exhibition festival tradition history landscape climate community"
).split()
_SYLLABLES = (
    "ka lo mi ra ten vo su lin da mar el or an is bel cor fen gar hal jor kel lum nor pel quin ros sal tor "
    "ul var wen yor zan bri cal dor fal gen hur"
).split()
COPY_WORDS = ("amber", "cobalt", "crimson", "emerald", "indigo", "ivory", "scarlet", "violet")
_DATA_SOURCES = {"multihop": ("musique", "multihoprag"), "numeric": ("docmath",), "choice": ("long_toc_choices",),
                 "copy": ("multihoprag",), "needle": ("multihoprag",), "needle_dense": ("multihoprag",)}
NEEDLE_WORDS_PER_DISTRACTOR = 60
NEEDLE_DENSE_REF_WORDS = 300  # needle_dense: at this many words it has needle's density; 4x the words, 4x the density


@dataclass(frozen=True)
class _Example:
    kind: str
    data_source: str
    facts: list[str]  # sentences placed at random positions in the document
    question: str
    answer: str
    head_tail: str | None = None  # sentence placed at the very start and end (copy kind)


def _name(rng: random.Random, parts: int, used: set[str]) -> str:
    while True:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(parts)).capitalize()
        if name not in used:
            used.add(name)
            return name


def _multihop(rng: random.Random, data_source: str) -> _Example:
    used: set[str] = set()
    chains = [(_name(rng, 2, used), f"{_name(rng, 2, used)} {_name(rng, 3, used)}", _name(rng, 3, used))
              for _ in range(4)]
    facts = []
    for project, person, city in chains:
        facts.append(f"The {project} project was led by {person}.")
        facts.append(f"{person} was born in the city of {city}.")
    project, _, city = chains[0]
    question = f"In which city was the person who led the {project} project born?"
    return _Example("multihop", data_source, facts, question, city)


def _fmt(x: float) -> str:
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _numeric(rng: random.Random, data_source: str) -> _Example:
    used: set[str] = set()
    companies = [_name(rng, 3, used) + " Holdings" for _ in range(3)]
    metric = rng.choice(["revenue", "operating profit", "research spending"])
    y1 = rng.randint(2005, 2022)
    y2 = y1 + 1
    facts = []
    values: dict[tuple[str, int], float] = {}
    for c in companies:
        for y in (y1, y2):
            v = round(rng.uniform(50, 5000), 1)
            values[(c, y)] = v
            facts.append(f"In {y}, {c} reported {metric} of {v:,.1f} million dollars.")
    target = companies[0]
    a, b = values[(target, y1)], values[(target, y2)]
    op = rng.choice(["difference", "sum", "percent"])
    if op == "difference":
        question = f"By how many million dollars did the {metric} of {target} change from {y1} to {y2}?"
        answer = _fmt(round(b - a, 2))
    elif op == "sum":
        question = f"What was the total {metric} of {target} in {y1} and {y2} combined, in million dollars?"
        answer = _fmt(round(a + b, 2))
    else:
        question = (f"By what percentage did the {metric} of {target} change from {y1} to {y2}? "
                    "Give the percentage rounded to two decimals.")
        answer = _fmt(round((b - a) / a * 100.0, 2))
    return _Example("numeric", data_source, facts, question, answer)


def _choice(rng: random.Random, data_source: str) -> _Example:
    used: set[str] = set()
    pairs = [(_name(rng, 2, used) + " Group", _name(rng, 3, used)) for _ in range(4)]
    facts = [f"{company} is headquartered in {city}." for company, city in pairs]
    company, city = pairs[0]
    options = [c for _, c in pairs]
    rng.shuffle(options)
    letters = "ABCD"
    listing = "\n".join(f"({letters[i]}) {opt}" for i, opt in enumerate(options))
    question = f"Which city is {company} headquartered in?\n{listing}\nAnswer with the letter of the correct option."
    return _Example("choice", data_source, facts, question, letters[options.index(city)])


def _copy(rng: random.Random, data_source: str) -> _Example:
    word = rng.choice(COPY_WORDS)
    sentence = f"The access code is {word}."
    return _Example("copy", data_source, [], "What is the access code?", word, head_tail=sentence)


def _needle(rng: random.Random, data_source: str, n_words: int, dense: bool = False) -> _Example:
    word = rng.choice(COPY_WORDS)
    others = [w for w in COPY_WORDS if w != word]
    count = n_words / NEEDLE_WORDS_PER_DISTRACTOR
    if dense:  # capped at twice needle's density (from 600 words on), so the document length stays calibrated
        count = min(count * n_words / NEEDLE_DENSE_REF_WORDS, 2 * count)
    distractors = [f"The old code was {rng.choice(others)}." for _ in range(max(1, int(count)))]
    kind = "needle_dense" if dense else "needle"
    return _Example(kind, data_source, [f"The access code is {word}.", *distractors], "What is the access code?", word)


_BUILDERS = {"multihop": _multihop, "numeric": _numeric, "choice": _choice, "copy": _copy}


def _filler_pool(seed: int, size: int = 4096) -> list[str]:
    rng = random.Random(f"filler-{seed}")
    pool = []
    for _ in range(size):
        words = rng.choices(_FILLER_WORDS, k=rng.randint(8, 18))
        pool.append(" ".join(words).capitalize() + ".")
    return pool


def _sentences(rng: random.Random, ex: _Example, pool: Sequence[str], n_words: int) -> tuple[list[str], set[int]]:
    """Filler sentences with the facts at random positions; returns the list and the positions of the facts."""
    avg_words = sum(len(s.split()) for s in pool[:256]) / 256
    fact_words = sum(len(f.split()) for f in ex.facts)
    n_sent = max(2, int((n_words - fact_words) / avg_words))
    sentences = rng.choices(pool, k=n_sent)
    for fact in ex.facts:
        sentences.insert(rng.randint(0, len(sentences)), fact)
    if ex.head_tail:
        sentences = [ex.head_tail, *sentences, ex.head_tail]
    fixed = {i for i, s in enumerate(sentences) if s in ex.facts or s == ex.head_tail}
    return sentences, fixed


def _resize(rng: random.Random, sentences: list[str], fixed: set[int], pool: Sequence[str], k: int) -> list[str]:
    """Add (k > 0) or remove (k < 0) filler sentences at random positions, keeping the facts."""
    if k > 0:
        out = list(sentences)
        for s in rng.choices(pool, k=k):
            out.insert(rng.randint(1 if fixed else 0, max(1, len(out) - 1)), s)
        return out
    removable = [i for i in range(len(sentences)) if i not in fixed]
    drop = set(rng.sample(removable, min(-k, max(0, len(removable) - 1))))
    return [s for i, s in enumerate(sentences) if i not in drop]


def _join(sentences: Sequence[str]) -> str:
    # paragraphs of ~8 sentences, like a real document
    return "\n\n".join(" ".join(sentences[i:i + 8]) for i in range(0, len(sentences), 8))


def build_prompt(document: str, question: str) -> list[dict[str, str]]:
    """The QwenLong-L1 DocQA prompt (paper Table 1) as a one-message chat."""
    return [{"role": "user", "content": PROMPT_TEMPLATE.format(document=document, question=question)}]


def _target_lengths(rng: random.Random, n: int, min_tokens: int, max_tokens: int, length_dist: str) -> list[int]:
    if length_dist == "uniform":
        return [rng.randint(min_tokens, max_tokens) for _ in range(n)]
    if length_dist == "loguniform":
        lo, hi = math.log(min_tokens), math.log(max_tokens)
        return [int(round(math.exp(rng.uniform(lo, hi)))) for _ in range(n)]
    raise ValueError(f"length_dist must be 'uniform' or 'loguniform', got {length_dist!r}")


def _tokens_per_word(tokenizer, pool: Sequence[str]) -> float:
    sample = " ".join(pool[:400])
    n_tok = len(tokenizer(sample, add_special_tokens=False)["input_ids"])
    return n_tok / len(sample.split())


def generate_docqa(
    n: int,
    *,
    min_tokens: int = 500,
    max_tokens: int = 4000,
    tokenizer: Any = None,
    seed: int = 0,
    kinds: Sequence[str] = DEFAULT_KINDS,
    length_dist: str = "uniform",
    index_offset: int = 0,
    split: str = "train",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Generate ``n`` DocQA rows whose prompts are about ``min_tokens``..``max_tokens`` tokens long.

    Kinds are assigned round-robin (row i gets ``kinds[i % len(kinds)]``), target lengths are drawn from
    ``length_dist`` (``uniform`` or ``loguniform``), and everything is a function of ``seed`` alone. With a
    ``tokenizer`` the document length is calibrated against it (one correction pass, a second where still > 3 % off) and the exact chat-templated
    prompt length is stored as ``prompt_length``; without one, lengths assume ~1.3 tokens per word.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 < min_tokens <= max_tokens:
        raise ValueError(f"need 0 < min_tokens <= max_tokens, got min_tokens={min_tokens} max_tokens={max_tokens}")
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"unknown kind(s) {bad or kinds!r}; known: {', '.join(KINDS)}")
    rng = random.Random(seed)
    pool = _filler_pool(seed)
    targets = _target_lengths(rng, n, min_tokens, max_tokens, length_dist)
    tpw = _tokens_per_word(tokenizer, pool) if tokenizer is not None else DEFAULT_TOKENS_PER_WORD
    # a fixed overhead for the template, question and chat markers (measured once with a tokenizer)
    overhead = 0
    if tokenizer is not None:
        from qwenlong_verl.data.prepare import prompt_lengths

        overhead = prompt_lengths(tokenizer, [build_prompt("", "What is it?")])[0]

    rows: list[dict[str, Any]] = []
    iterator = range(n)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="synth docqa", unit="doc")
    for i in iterator:
        kind = kinds[i % len(kinds)]
        ex_rng = random.Random(f"{seed}-{i}")  # per-row stream: row i does not depend on rows < i
        sources = _DATA_SOURCES[kind]
        want_words = max(20, int((targets[i] - overhead) / tpw))
        source = sources[i // len(kinds) % len(sources)]
        if kind in ("needle", "needle_dense"):
            ex = _needle(ex_rng, source, want_words, dense=kind == "needle_dense")
        else:
            ex = _BUILDERS[kind](ex_rng, source)
        sentences, fixed = _sentences(ex_rng, ex, pool, want_words)
        prompt = build_prompt(_join(sentences), ex.question)
        row: dict[str, Any] = {
            "data_source": ex.data_source,
            "prompt": prompt,
            "ability": "long_context_qa",
            "reward_model": {"style": "rule", "ground_truth": ex.answer},
            "extra_info": {
                "index": index_offset + i,
                "split": split,
                "kind": kind,
                "question": ex.question,
                "answer": ex.answer,
                "target_tokens": targets[i],
                "seed": seed,
            },
        }
        if tokenizer is not None:
            from qwenlong_verl.data.prepare import prompt_lengths

            length = prompt_lengths(tokenizer, [prompt])[0]
            # a correction pass: filler tokenises a little differently in context than in the calibration sample;
            # a second one only where the first is still > 3 % off (many short fact sentences skew its estimate)
            for tolerance in (max(8, 0.01 * targets[i]), max(20, 0.03 * targets[i])):
                if abs(length - targets[i]) <= tolerance:
                    break
                per_sentence = max(1.0, (length - overhead) / max(1, len(sentences)))
                k = int(round((targets[i] - length) / per_sentence))
                if k:
                    sentences = _resize(ex_rng, sentences, fixed, pool, k)
                    prompt = build_prompt(_join(sentences), ex.question)
                    row["prompt"] = prompt
                    length = prompt_lengths(tokenizer, [prompt])[0]
            row["prompt_length"] = length
            row["extra_info"]["prompt_length"] = length
        rows.append(row)
    logger.info("generated %d synthetic DocQA rows (kinds %s, seed %d)", n, ",".join(kinds), seed)
    return rows


def write_rows(rows: list[dict[str, Any]], path: str) -> None:
    """Write rows as parquet (``.parquet``) or JSON lines (``.jsonl``/``.json``)."""
    import pandas as pd

    from qwenlong_verl.outputs import atomic_path

    if not str(path).endswith((".parquet", ".jsonl", ".json")):
        raise ValueError(f"output {path!r}: use a .parquet or .jsonl file name")
    if not rows:
        raise ValueError(f"output {path!r}: no rows to write")
    df = pd.DataFrame(rows)
    with atomic_path(path) as tmp:  # a complete file or none: never half of one
        if str(path).endswith(".parquet"):
            df.to_parquet(tmp, index=False)
        else:
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
