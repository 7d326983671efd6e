"""Hybrid reward: rule match by data_source family, an OpenAI-compatible LLM judge, DAPO overlong shaping.

* :mod:`.rule` - answer extraction and the qa / math / choice rule scores (pure functions, never raise on text).
* :mod:`.judge` - ``JudgeOptions``, ``JudgeClient`` (async, bounded, deduplicated, retried), ``parse_verdict``.
* :mod:`.scoring` - ``ScoreOptions``, ``SampleScore``, ``HybridScorer`` and the verl ``custom_reward_function``
  entry points ``compute_score`` (rule only) and ``compute_score_with_judge``.
* :mod:`.manager` - the ``qwenlong`` reward manager of verl's reward loop (imported by the plugin loader).
* :mod:`.metrics` - ``judge_step_metrics`` for the trainer's per-step logs; :mod:`.offline` - ``qwenlong-verl score``.

Nothing is imported here: importing verl loads the plugins, which import :mod:`.manager`, so this package must stay
importable without side effects.
"""
