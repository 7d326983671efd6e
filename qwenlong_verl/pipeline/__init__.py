"""The QwenLong-L1 pipeline: warm-up SFT -> RL phase I -> difficulty file -> RL phase II (+ eval, report).

``pipeline_options`` (what a run needs, CPU-demo and paper defaults), ``stage_runner`` (resumable stages with DONE
markers), ``stages`` (the verl command lines and the hand-offs between stages), ``run_report`` (report.md/json,
reward.png), ``generate`` (local HF generation for the eval stage), ``standin_judge`` (the CPU demo's judge server),
``tiny_model`` (the demo's tiny Qwen2 model and tokenizer, and its code-copy pre-training),
``run_all.run_pipeline`` (all of it; ``qwenlong-verl pipeline`` on the command line).
"""
