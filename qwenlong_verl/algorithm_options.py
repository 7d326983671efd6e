"""Options of the ``qwenlong_grpo`` estimator and the ``qwenlong_dapo`` loss: plain dataclasses, no verl.

The estimator and the loss themselves live in the verl-facing wing (:mod:`qwenlong_verl.integration.advantage`,
:mod:`qwenlong_verl.integration.policy_loss`), which registers them with verl; their options are read and checked here
so the driver-side checks (``config_checks``, the Hydra guard, ``preflight``) need no verl.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from qwenlong_verl.config import QwenLongConfigError

STD_SCOPES = ("group", "task")


@dataclass(frozen=True)
class AdvantageOptions:
    """``qwenlong.advantage.*``."""

    std_scope: str = "group"
    epsilon: float = 1e-6

    def __post_init__(self) -> None:
        if self.std_scope not in STD_SCOPES:
            raise QwenLongConfigError(
                f"qwenlong.advantage.std_scope={self.std_scope!r}; expected one of {', '.join(STD_SCOPES)}"
            )
        if not isinstance(self.epsilon, int | float) or not self.epsilon > 0:
            raise QwenLongConfigError(f"qwenlong.advantage.epsilon={self.epsilon!r}; expected a number > 0")


_WHERE = "actor_rollout_ref.actor.policy_loss"


@dataclass
class DapoFields:
    """The extras of ``qwenlong_dapo``; each is a key of ``actor_rollout_ref.actor.policy_loss``. Declared once and
    shared by :class:`DapoOptions` (what the loss reads) and :class:`QwenLongPolicyLossConfig` (what Hydra builds)."""

    overlong_filter: bool = False
    max_response_length: int | None = None
    dual_clip: bool = True
    aepo: bool = False
    aepo_entropy_high: float | None = None
    aepo_entropy_low: float | None = None


@dataclass
class DapoOptions(DapoFields):
    """Validated ``qwenlong_dapo`` options, read from any ``policy_loss`` node."""

    def __post_init__(self) -> None:
        for name in ("overlong_filter", "dual_clip", "aepo"):
            if not isinstance(getattr(self, name), bool):
                raise QwenLongConfigError(f"{_WHERE}.{name}={getattr(self, name)!r}; expected true or false")
        if self.overlong_filter:
            n = self.max_response_length
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise QwenLongConfigError(
                    f"{_WHERE}.overlong_filter=true needs {_WHERE}.max_response_length (a positive int, the rollout's "
                    f"response budget), got {n!r}; e.g. "
                    f"++{_WHERE}.max_response_length=${{actor_rollout_ref.rollout.response_length}}"
                )
        if self.aepo:
            hi, lo = self.aepo_entropy_high, self.aepo_entropy_low
            for name, v in (("aepo_entropy_high", hi), ("aepo_entropy_low", lo)):
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                    raise QwenLongConfigError(
                        f"{_WHERE}.aepo=true needs {_WHERE}.{name} (entropy in nats per token, >= 0), got {v!r}"
                    )
            if lo > hi:
                raise QwenLongConfigError(
                    f"{_WHERE}.aepo_entropy_low={lo} is above {_WHERE}.aepo_entropy_high={hi}; the gate closes below "
                    "the low bound and opens above the high one"
                )

    @classmethod
    def from_policy_loss(cls, policy_loss: Any) -> DapoOptions:
        """Read our keys from any ``policy_loss`` node (our dataclass, verl's, a DictConfig or a dict)."""
        if policy_loss is None:
            return cls()
        get = policy_loss.get if isinstance(policy_loss, Mapping) or hasattr(policy_loss, "get") else None
        values = {}
        for f in fields(DapoFields):
            v = get(f.name, None) if get else getattr(policy_loss, f.name, None)
            if v is not None:
                values[f.name] = v
        return cls(**values)
