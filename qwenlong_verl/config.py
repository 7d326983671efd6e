"""The one place that reads the ``qwenlong:`` block of a verl config.

verl's dataclass configs reject unknown keys, so every option of this package lives under one top-level
``qwenlong:`` key that the recipes add. Each subsystem describes its options as a dataclass and builds it with
:func:`options_from`, which names the offending key when a value is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")


class QwenLongConfigError(ValueError):
    """A ``qwenlong.*`` option is missing, unknown or inconsistent; the message names it."""


def qwenlong_section(config: Any, *path: str) -> dict[str, Any]:
    """Return ``config.qwenlong.<path>`` as a plain dict ({} when absent)."""
    node: Any = config
    for key in ("qwenlong", *path):
        if node is None:
            return {}
        if isinstance(node, DictConfig):
            node = node.get(key)
        elif isinstance(node, Mapping):
            node = node.get(key)
        else:
            node = getattr(node, key, None)
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def options_from(cls: type[T], values: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys raise an error naming ``where.<key>``."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise QwenLongConfigError(
            f"unknown option(s) {', '.join(f'{where}.{k}' for k in unknown)}; known: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name not in values:
            continue
        v = values[name]
        sub = f.type if isinstance(f.type, type) else None
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(v, Mapping):
            v = options_from(sub, v, f"{where}.{name}")
        kwargs[name] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise QwenLongConfigError(f"{where}: {exc}") from exc
