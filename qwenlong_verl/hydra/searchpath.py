"""Make Hydra see this package's recipes, in normal and editable installs alike.

Hydra finds search-path plugins by listing the ``hydra_plugins`` namespace package. A normal install puts
``hydra_plugins/qwenlong_verl_searchpath`` on ``sys.path`` and Hydra lists it. An editable install
(``pip install -e .``, how contributors install) maps packages through setuptools' import finder instead: the module
imports, but ``hydra_plugins.__path__`` is the finder's placeholder, which ``pkgutil`` cannot list, so Hydra never
sees the plugin and ``+recipe=`` is refused. :func:`ensure_searchpath_plugin` registers our plugins with Hydra directly
when its scan missed them (``Plugins.register`` is Hydra's API for that). verl entry points call it while ``import verl``
loads our plugins (before Hydra starts); ``doctor``, ``preflight`` and the tests call it before composing.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

SEARCHPATH_MODULE = "hydra_plugins.qwenlong_verl_searchpath.qwenlong_verl_searchpath"
SEARCHPATH_CLASS = "QwenLongVerlSearchPathPlugin"


def _ours(found) -> bool:
    return any(f"{c.__module__}.{c.__name__}" == f"{SEARCHPATH_MODULE}.{SEARCHPATH_CLASS}" for c in found)


def searchpath_plugin_discovered() -> bool:
    """Whether Hydra's plugin registry holds our search-path plugin (found by its scan, or registered)."""
    try:
        from hydra.core.plugins import Plugins
        from hydra.plugins.search_path_plugin import SearchPathPlugin

        return _ours(Plugins.instance().discover(SearchPathPlugin))
    except Exception as exc:  # noqa: BLE001
        logger.debug("hydra plugin discovery failed: %s", exc)
        return False


def ensure_searchpath_plugin() -> str | None:
    """Make sure Hydra knows our plugins (the search path, and any other plugin module in our ``hydra_plugins``
    package, e.g. the sweep launcher). Returns how: ``"scanned"`` (Hydra found them), ``"registered"`` (an editable
    install: registered here), or None when the plugin package cannot be imported at all."""
    if searchpath_plugin_discovered():
        return "scanned"
    try:
        import importlib
        import inspect
        import pkgutil

        from hydra.core.plugins import Plugins
        from hydra.plugins.plugin import Plugin

        package = importlib.import_module(SEARCHPATH_MODULE.rsplit(".", 1)[0])
        registry = Plugins.instance()
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__ and issubclass(cls, Plugin) and not inspect.isabstract(cls):
                    registry.register(cls)
    except Exception as exc:  # noqa: BLE001
        logger.debug("cannot register the plugins of %s: %s", SEARCHPATH_MODULE, exc)
        return None
    return "registered" if searchpath_plugin_discovered() else None
