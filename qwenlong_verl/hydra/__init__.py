"""Hydra glue: composing main_ppo's config; search path, callbacks and sweeps move here too.

Every module in this package imports the real Hydra with absolute imports (``import hydra`` names the installed
``hydra-core``, not this package: Python 3 has no implicit relative imports). ``tests/test_import_boundary.py`` checks
that ``qwenlong_verl.hydra.compose`` reaches Hydra's own ``compose``.
"""
