"""Hydra imports every module under ``hydra_plugins`` at start-up: this one registers what the recipes' sweeps need
in every Hydra app (verl's ``main_ppo`` and the compose API alike). The code is in ``qwenlong_verl.hydra``; this stub
only registers it, because Hydra finds plugins by listing this namespace package and instantiates a launcher only
from a class whose module lies under it.

* the ``${qwenlong.job_dir:...}`` resolver and its siblings (:func:`qwenlong_verl.hydra.sweep.register_resolver`);
* ``hydra/launcher=qwenlong_submitit_local`` (selected by ``+qwenlong_sweep=local``): the class below, whose
  behaviour (at most ``max_parallel`` jobs at once, a failed job reported after the others) is
  :class:`qwenlong_verl.hydra.launcher.BoundedLocalLauncher`.
"""

# Nothing here may raise: one failing module stops Hydra's whole plugin discovery.

try:
    from qwenlong_verl.hydra.sweep import register_resolver

    register_resolver()
except Exception:  # noqa: BLE001 - qwenlong_verl itself missing or broken: the search-path plugin reports it
    pass

try:
    # the module, not its classes: Hydra's scan registers every plugin class it finds among this module's names
    from qwenlong_verl.hydra import launcher as _launcher
except Exception:  # noqa: BLE001 - hydra-submitit-launcher missing or broken: Hydra then names the unknown launcher
    _launcher = None

if _launcher is not None:

    class QwenLongLocalLauncher(_launcher.BoundedLocalLauncher):
        """``hydra/launcher=qwenlong_submitit_local``: :class:`qwenlong_verl.hydra.launcher.BoundedLocalLauncher`
        under the name Hydra accepts (``hydra_plugins.…``, :data:`qwenlong_verl.hydra.sweep.QWENLONG_LOCAL_LAUNCHER`)."""

    _launcher.register_config()
