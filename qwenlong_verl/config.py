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


# -- bounds declared next to the fields ------------------------------------------------------------------------------
_OPERATORS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
SEED_MAX = 2**32 - 1  # numpy's and vLLM's seed range: the upper bound of every seed option (fields and argparse)

def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
           choices: tuple[Any, ...] | None = None, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None, hint: str | None = None) -> Any:
    """A dataclass field whose allowed values sit next to it: ``choices`` (None among them: null allowed), or a
    numeric range (``ge``/``gt`` lower, ``le``/``lt`` upper bound). A None value passes the range check (the field's
    type says whether None is allowed). ``hint`` is added to the error message. :func:`check_fields` reads them."""
    metadata = {k: v for k, v in (("choices", choices), ("ge", ge), ("gt", gt), ("le", le), ("lt", lt),
                                  ("hint", hint)) if v is not None}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_problem(f: dataclasses.Field, value: Any) -> str | None:
    """Why ``value`` breaks the bounds declared on ``f`` (``"must be ..., got ..."``), or None when it fits."""
    meta = f.metadata
    hint = f" ({meta['hint']})" if "hint" in meta else ""
    choices = meta.get("choices")
    if choices is not None:
        if value in choices and not (isinstance(value, bool) and not any(isinstance(c, bool) for c in choices)):
            return None
        named = tuple(c for c in choices if c is not None)
        null = " or null" if None in choices else ""
        return f"must be one of {named}{null}, got {value!r}{hint}"
    bounds = [(k, meta[k]) for k in ("ge", "gt", "le", "lt") if k in meta]
    if not bounds or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"must be a number, got {value!r}{hint}"
    ok = all({"ge": number >= b, "gt": number > b, "le": number <= b, "lt": number < b}[k] for k, b in bounds)
    if ok:
        return None
    lower = next(((k, b) for k, b in bounds if k in ("ge", "gt")), None)
    upper = next(((k, b) for k, b in bounds if k in ("le", "lt")), None)
    if lower and upper:
        want = (f"in {'[' if lower[0] == 'ge' else '('}{lower[1]}, {upper[1]}{']' if upper[0] == 'le' else ')'}")
    else:
        k, b = lower or upper  # type: ignore[misc]
        want = f"{_OPERATORS[k]} {b}"
    return f"must be {want}, got {value!r}{hint}"


def check_fields(obj: Any, where: str | None = None) -> None:
    """Check every field of dataclass ``obj`` against the bounds declared with :func:`option`; raise ValueError
    ``"<name> must be ..."`` (in a ``__post_init__``, which :func:`options_from` prefixes with the section), or with
    ``where``, :class:`QwenLongConfigError` ``"<where>.<name> must be ..."``."""
    for f in dataclasses.fields(obj):
        problem = field_problem(f, getattr(obj, f.name))
        if problem is None:
            continue
        if where is None:
            raise ValueError(f"{f.name} {problem}")
        raise QwenLongConfigError(f"{where}.{f.name} {problem}")
