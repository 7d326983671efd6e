"""The QwenLong-L1 pipeline: warm-up SFT -> RL phase I -> difficulty file -> RL phase II (+ eval, report).

``options`` (what a run needs, CPU-demo and paper defaults), ``runner`` (resumable stages with DONE markers),
``stages`` (the verl command lines and the hand-offs between stages), ``report`` (report.md/json, reward.png),
``generate`` (local HF generation for the eval stage), ``standin_judge`` (the CPU demo's judge server),
``pipeline.run_pipeline`` (all of it; ``qwenlong-verl pipeline`` on the command line).
"""
