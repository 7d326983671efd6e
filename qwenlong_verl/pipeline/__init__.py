"""The QwenLong-L1 pipeline: warm-up SFT -> RL phase I -> difficulty file -> RL phase II (+ eval, report)."""
