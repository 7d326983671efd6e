"""Hydra config groups of qwenlong-verl: recipe/, qwenlong_env/, sft_recipe/ (found via pkg://qwenlong_verl.hydra_configs)."""
