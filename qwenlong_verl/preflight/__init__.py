"""GPU preflight: the checks verl makes only on GPU workers, and verl's own start-up validation, run in seconds on
any machine. ``qwenlong-verl preflight`` runs them all; the recipes' Hydra guard runs the cheap part before Ray."""
