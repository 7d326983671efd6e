"""Hydra glue, one package for every piece of this package that Hydra runs or that runs Hydra:

* ``compose``: the config ``main_ppo`` would run with (preflight, the pipeline's data stage, ``doctor``);
* ``searchpath``: Hydra finding the recipes (``+recipe=``), in editable installs too;
* ``callbacks``: the recipes' guard (``hydra.callbacks.qwenlong_guard``): multirun launcher refusal, a sweep job's
  status, stopping the run; the checks it runs are named in the recipes' YAML (``preflight.guard.guard_checks``);
* ``sweep``: a sweep job's folder, status file and the recipes' resolvers (``${qwenlong.job_dir:...}``, ...);
* ``sweep_causes``: the one line naming why a sweep job failed (redacted);
* ``launcher``: ``hydra/launcher=qwenlong_submitit_local``; Hydra takes launchers only from the ``hydra_plugins``
  namespace package, so ``hydra_plugins/qwenlong_verl_searchpath/`` holds the stubs Hydra discovers;
* ``sweep_report``: the table and plot of a finished sweep (``qwenlong-verl sweep-report``).

Every module in this package imports the real Hydra with absolute imports (``import hydra`` names the installed
``hydra-core``, not this package: Python 3 has no implicit relative imports). ``tests/test_import_boundary.py`` checks
that ``qwenlong_verl.hydra.compose`` reaches Hydra's own ``compose``.
"""
