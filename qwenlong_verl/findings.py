"""One finding of a check on a run's config: its level, the config key it is about, what is wrong and the fix.

It sits at the top of the core, beside ``config.py``, because both sides of the verl boundary produce findings: the
verl-free checks in :mod:`qwenlong_verl.preflight` and verl's own start-up validation in
:mod:`qwenlong_verl.integration.config_validation`. Kept in ``preflight/``, the wing had to import ``preflight`` while
``preflight`` calls the wing, a loop between the two folders (``tests/test_import_boundary.py`` forbids it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """Args:
        level: ``error`` stops the run (preflight exits 1, the Hydra guard stops main_ppo); ``warning`` is printed;
            ``info`` shows a number the user should know (e.g. the vLLM KV-cache estimate).
        check: short name of the check (``sequence_parallel``, ``vllm_memory``, ...).
        key: the config key (or file) the finding is about.
        message: what is wrong (or the numbers), naming the values.
        fix: what to set instead; empty for ``info``.
    """

    level: Level
    check: str
    key: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = self.message if self.message.startswith(self.key) else f"{self.key}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]
