"""Local generation for the pipeline's eval stage on a CPU (or one GPU): HF transformers ``generate`` over held-out
DocQA rows, written as the response file that ``qwenlong-verl score`` reads.

On a cluster, serve the model with vLLM and use ``qwenlong-verl eval`` instead (the pipeline's ``--eval-endpoint``).
Run it as ``python -m qwenlong_verl.pipeline.generate --model DIR --data FILE --out responses.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenlong_verl.config import check_fields, option

logger = logging.getLogger(__name__)


@dataclass
class GenerateOptions:
    max_new_tokens: int = option(64, ge=1)
    temperature: float = option(0.0, ge=0)  # 0: greedy (a small held-out set is less noisy that way)
    top_p: float = option(1.0, gt=0, le=1)
    n_samples: int = option(1, ge=1)
    batch_size: int = option(16, ge=1)
    seed: int = 0
    limit: int | None = option(None, ge=1)

    def __post_init__(self) -> None:
        check_fields(self)


def generate_file(model_dir: str | Path, data: Sequence[str | Path], out: str | Path,
                  options: GenerateOptions = GenerateOptions()) -> int:
    """Generate ``n_samples`` responses per row of ``data`` (eval or verl RL layout) into ``out`` (JSONL rows
    ``{id, sample, data_source, question, ground_truth, response, prompt_tokens, response_tokens}``); returns the
    number of responses written."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from qwenlong_verl.evaluation.data import load_rows

    rows = load_rows([str(p) for p in data], limit=options.limit)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    torch.manual_seed(options.seed)
    jobs = [(row, k) for row in rows for k in range(options.n_samples)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with out.open("w", encoding="utf-8") as fh, torch.no_grad():
        for start in tqdm(range(0, len(jobs), options.batch_size), desc="generate", unit="batch"):
            chunk = jobs[start:start + options.batch_size]
            texts = [tok.apply_chat_template([{"role": "user", "content": row.user_message()}], tokenize=False,
                                             add_generation_prompt=True) for row, _ in chunk]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs: dict[str, Any] = {"max_new_tokens": options.max_new_tokens, "pad_token_id": tok.pad_token_id}
            if options.temperature > 0:
                kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
            else:
                kwargs.update(do_sample=False)
            gen = model.generate(**enc, **kwargs)[:, enc["input_ids"].shape[1]:]
            for (row, k), ids, mask in zip(chunk, gen, enc["attention_mask"], strict=True):
                ids = ids.tolist()
                if tok.eos_token_id in ids:  # the reward decodes up to EOS, as verl's rollout does
                    ids = ids[:ids.index(tok.eos_token_id) + 1]
                fh.write(json.dumps({
                    "id": row.id, "sample": k, "data_source": row.data_source, "question": row.question,
                    "ground_truth": list(row.answers), "response": tok.decode(ids, skip_special_tokens=True),
                    "prompt_tokens": int(mask.sum()), "response_tokens": len(ids),
                }, ensure_ascii=False) + "\n")
                written += 1
    logger.info("wrote %d responses (%d rows x %d samples) to %s", written, len(rows), options.n_samples, out)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="HF model folder")
    p.add_argument("--data", action="append", required=True, help="JSONL/parquet in the eval or verl RL layout")
    p.add_argument("--out", required=True, help="responses JSONL (input of `qwenlong-verl score`)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("-n", "--n-samples", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N rows of each file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        options = GenerateOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                                  n_samples=args.n_samples, batch_size=args.batch_size, seed=args.seed,
                                  limit=args.limit)
        generate_file(args.model, args.data, args.out, options)
    except (ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
