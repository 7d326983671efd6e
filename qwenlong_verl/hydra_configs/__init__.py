"""Hydra config groups of qwenlong-verl, found via ``pkg://qwenlong_verl.hydra_configs``: recipe/, qwenlong_env/,
qwenlong_model/, qwenlong_rope/, qwenlong_sweep/, sft_recipe/."""
