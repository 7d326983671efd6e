"""Hybrid reward: rule match by data_source family and an OpenAI-compatible LLM judge (verl-free; the wing's
``qwenlong`` reward manager, :mod:`qwenlong_verl.integration.reward_manager`, adds DAPO overlong shaping).

* :mod:`.rule` - answer extraction and the qa / math / choice rule scores (pure functions, never raise on text), over
  :mod:`.answer` (the committed answer, precision tests), :mod:`.canonical` (one form for numbers, units, dates,
  LaTeX) and :mod:`.lexicon` (closed word classes).
* :mod:`.judge` - ``JudgeOptions``, ``JudgeClient`` (async, bounded, deduplicated, retried), ``parse_verdict``.
* :mod:`.scoring` - ``ScoreOptions``, ``SampleScore``, ``HybridScorer`` and the verl ``custom_reward_function``
  entry points ``compute_score`` (rule only) and ``compute_score_with_judge``.
* :mod:`.metrics` - ``judge_step_metrics`` for the trainer's per-step logs; :mod:`.offline` - ``qwenlong-verl score``.
* :mod:`.judge_check` - known answer pairs judged in each mode and scored (``qwenlong-verl judge-check``).

Nothing is imported here: importing verl loads the plugins, whose reward manager imports :mod:`.rule`,
:mod:`.judge` and :mod:`.scoring`, so this package must stay importable without side effects.
"""
