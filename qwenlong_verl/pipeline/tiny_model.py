"""Build a tiny Qwen2 policy and a locally trained byte-level BPE tokenizer; nothing comes from a model hub.

The tokenizer has Qwen's chat markers (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``) as special tokens and
``<think>``/``</think>`` as ordinary added tokens, so they survive ``decode(..., skip_special_tokens=True)`` the
way they do for R1-style models, and the reward's "answer after the last </think>" rule works on decoded text.
"""

from __future__ import annotations

import json
import logging
import random
import string
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]

# Qwen2.5-style ChatML. With add_generation_prompt the assistant turn is opened; the model writes
# "<think> ... </think> answer" itself.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelOptions:
    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 32768
    seed: int = 0


def _corpus(seed: int, n_lines: int = 3000) -> list[str]:
    """Text resembling the synthetic DocQA prompts: words, numbers, punctuation, the answer-format phrases."""
    rng = random.Random(seed)
    words = (
        "the a of and to in is was for on that with as by at from it this be are report company city river "
        "document question answer therefore please read following text below format your response as follows "
        "insert here what which who when where how many much total value percent million year born located "
        "option correct choice first second third born founded director capital population revenue profit "
        "think step because so then finally hence number of the answer is"
    ).split()
    # the copy task's code words, a line each: each becomes one token, as common words are in a real 150K vocabulary;
    # a tiny model can then learn to copy one token (a code split into 3-9 byte pieces it never learns to copy)
    from qwenlong_verl.data.synth import COPY_WORDS

    code_lines = [f"The access code is {word}." for word in COPY_WORDS for _ in range(40)]
    lines = [
        'Please read the following text and answer the question below.',
        'Format your response as follows: "Therefore, the answer is (insert answer here)".',
        "<think> I need to find it in the text. </think> Therefore, the answer is",
    ]
    lines += code_lines
    for _ in range(n_lines):
        k = rng.randint(4, 14)
        toks = []
        for _ in range(k):
            r = rng.random()
            if r < 0.15:
                toks.append(str(rng.randint(0, 99999)))
            elif r < 0.22:
                toks.append("".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(1, 3))))
            elif r < 0.3:
                toks.append(f"{rng.randint(0, 999)}.{rng.randint(0, 99)}%")
            else:
                toks.append(rng.choice(words).capitalize() if rng.random() < 0.1 else rng.choice(words))
        lines.append(" ".join(toks) + rng.choice([".", ",", "?", ":", ";", "!"]))
    return lines


def build_tokenizer(out_dir: str | Path, options: TinyModelOptions = TinyModelOptions()):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=options.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(options.seed), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.padding_side = "left"
    hf_tok.model_max_length = options.max_position_embeddings
    hf_tok.save_pretrained(str(out_dir))
    return hf_tok


def build_tiny_model(out_dir: str | Path, options: TinyModelOptions = TinyModelOptions()) -> Path:
    """Write a tokenizer and a randomly initialised Qwen2ForCausalLM to ``out_dir``; return the path."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out, options)
    torch.manual_seed(options.seed)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=options.hidden_size,
        intermediate_size=options.intermediate_size,
        num_hidden_layers=options.num_hidden_layers,
        num_attention_heads=options.num_attention_heads,
        num_key_value_heads=options.num_key_value_heads,
        max_position_embeddings=options.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(str(out), safe_serialization=True)
    GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.pad_token_id
    ).save_pretrained(str(out))
    (out / "qwenlong_tiny.json").write_text(json.dumps(options.__dict__, indent=1))
    logger.info("tiny Qwen2 model (%d params, vocab %d) written to %s",
                sum(p.numel() for p in model.parameters()), len(tok), out)
    return out


def pretrain_code_copy(model_dir: str | Path, *, steps: int = 400, docs: int = 400, min_tokens: int = 100,
                       max_tokens: int = 320, lr: float = 3e-3, batch_size: int = 8, seed: int = 0) -> dict:
    """Give the randomly initialised tiny model one skill before any QwenLong stage: copying a code word it saw
    earlier in a document. Real base models arrive with such skills; a random 140K-parameter model has none, and
    neither verl's SFT (whose loss is mostly the answer template, so the one code token is drowned out) nor a few
    RL steps teach it on 2 cores in minutes. Measured: after 1,300 SFT steps the code token's loss was still log 8.

    Plain next-token loss on raw ``copy`` documents ("The access code is W. ... The access code is W."), counted only
    on code words after their first occurrence: ``L = -mean_t log p(x_t | x_<t)`` over those positions. No chat
    template, question or answer format: SFT and RL still have to teach the task. Writes the weights back into
    ``model_dir`` and returns ``{steps, loss_first, loss_last, seconds}`` (also stored in ``qwenlong_tiny.json``).

    Args:
        model_dir: a folder written by :func:`build_tiny_model` (weights and tokenizer).
        steps: optimizer steps of ``batch_size`` documents.
        docs: synthetic documents to draw batches from (seed ``seed + 50``, kind ``copy``).
        min_tokens, max_tokens: document lengths in tokens.
    """
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from qwenlong_verl.data.synth import COPY_WORDS, generate_docqa

    t0 = time.monotonic()
    model_dir = Path(model_dir)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    codes = {tok.convert_tokens_to_ids(tok.tokenize(f" {w}"))[0] for w in COPY_WORDS}
    rows = generate_docqa(docs, min_tokens=min_tokens, max_tokens=max_tokens, tokenizer=tok, seed=seed + 50,
                          kinds=("copy",))
    sequences: list[tuple[list[int], int]] = []
    for row in rows:
        text = row["prompt"][0]["content"].split("<text>\n", 1)[1].split("\n</text>", 1)[0]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        first = next(i for i, t in enumerate(ids) if t in codes)
        sequences.append((ids, first + 1))
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        batch = rng.sample(sequences, batch_size)
        width = max(len(ids) for ids, _ in batch)
        inputs = torch.full((batch_size, width), tok.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for j, (ids, start) in enumerate(batch):
            inputs[j, :len(ids)] = torch.tensor(ids)
            mask[j, :len(ids)] = 1
            for i in range(start, len(ids)):
                if ids[i] in codes:
                    labels[j, i] = ids[i]
        loss = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.save_pretrained(str(model_dir), safe_serialization=True)
    k = max(1, min(20, steps // 5))
    result = {"steps": steps, "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
              "seconds": round(time.monotonic() - t0, 1)}
    meta_path = model_dir / "qwenlong_tiny.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta["pretrain_code_copy"] = result
    meta_path.write_text(json.dumps(meta, indent=1))
    logger.info("tiny model: code-copy pre-training, %d steps in %.1f s, loss %.3f -> %.3f", steps,
                result["seconds"], result["loss_first"], result["loss_last"])
    return result
