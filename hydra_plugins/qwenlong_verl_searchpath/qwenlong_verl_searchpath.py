"""Hydra search-path plugin: makes ``+recipe=qwenlong_phase1|qwenlong_phase2`` (and ``qwenlong_env``,
``sft_recipe``) resolvable in any Hydra app, verl's ``main_ppo`` and ``sft_trainer`` included. Hydra imports every
module under ``hydra_plugins`` at start-up, so this stays a few lines."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

SEARCH_PATH = "pkg://qwenlong_verl.hydra_configs"


class QwenLongVerlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="qwenlong-verl", path=SEARCH_PATH)
