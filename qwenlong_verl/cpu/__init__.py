"""A scoped CPU backend for verl 0.9.1: a ``cpu`` platform on gloo and an HF-transformers rollout replica.

Nothing here acts unless selected: the platform only when ``VERL_PLATFORM=cpu`` (the ``qwenlong_env=cpu`` overlay
sets it), the rollout only when ``actor_rollout_ref.rollout.name=hf``.
"""
