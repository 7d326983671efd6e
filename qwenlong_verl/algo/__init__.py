"""DAPO-style advantage estimator and policy loss, registered in verl's core_algos registries."""
