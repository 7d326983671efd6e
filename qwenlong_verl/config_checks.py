"""Driver-side checks of every ``qwenlong.*`` option, before Ray starts (called by the recipes' Hydra guard).

Without them a typo (``qwenlong.judge.base_url=not-a-url``, ``qwenlong.reward.qa_metric=bogus``, an unknown
``qwenlong.judge.*`` key, ``max_concurrency=0``) surfaces only inside a Ray worker, after the cluster is up, or not
at all: training never stops because of the judge, so a bad judge URL silently gives a rule-only run.

* :func:`check_qwenlong_options`: unknown keys (top level and in each section), each value's type against the
  option dataclass, and the dataclass's own range and enum checks; ``qwenlong.judge.base_url`` syntax.
* :func:`probe_judge`: one cheap request to an active judge (``GET <base_url>/models``, a few seconds at most); an
  unreachable judge stops the run with the fix, unless the user opted into rule-only (``qwenlong.judge.enabled=
  false``) or turned the probe off (``QWENLONG_JUDGE_PROBE=0``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qwenlong_verl.config import QwenLongConfigError, check_fields, options_from, qwenlong_section

logger = logging.getLogger(__name__)

# top-level keys that are markers or read by other parts of the package rather than by an option dataclass
MARKER_KEYS = {"recipe_loaded", "recipe", "backend"}
PROBE_ENV = "QWENLONG_JUDGE_PROBE"


def option_sections() -> dict[str, type]:
    """``qwenlong.<section>`` -> the dataclass that reads it (imported lazily: no verl, no torch)."""
    from qwenlong_verl.algorithm_options import AdvantageOptions
    from qwenlong_verl.reward.judge import JudgeOptions
    from qwenlong_verl.reward.scoring import ScoreOptions
    from qwenlong_verl.sampling.options import CurriculumOptions, DifficultyOptions, RetrospectiveOptions

    return {"curriculum": CurriculumOptions, "retrospective": RetrospectiveOptions, "difficulty": DifficultyOptions,
            "advantage": AdvantageOptions, "reward": ScoreOptions, "judge": JudgeOptions}


def packaged_top_level_keys() -> set[str]:
    """Keys under ``qwenlong:`` in any packaged config group (recipes and overlays, e.g. ``qwenlong.rope``): they are
    read by the part of the package that ships them."""
    keys: set[str] = set()
    roots: list[Any] = []
    try:
        from importlib import resources

        roots.append(resources.files("qwenlong_verl.hydra_configs"))
    except (ModuleNotFoundError, TypeError):
        pass
    roots.append(Path(__file__).resolve().parent / "hydra_configs")  # a source checkout
    for root in roots:
        try:
            groups = [g for g in root.iterdir() if g.is_dir()]
        except (FileNotFoundError, NotADirectoryError, OSError):
            continue
        for group in groups:
            for f in group.iterdir():
                if not f.name.endswith(".yaml"):
                    continue
                inside = False
                for line in f.read_text(encoding="utf-8").splitlines():
                    if re.match(r"^qwenlong:\s*(#.*)?$", line):
                        inside = True
                    elif inside and re.match(r"^\S", line):
                        inside = False
                    elif inside and (m := re.match(r"^  ([A-Za-z_][A-Za-z0-9_]*)\s*:", line)):
                        keys.add(m.group(1))
    return keys


# -- type check against the dataclass annotations --------------------------------------------------------------------
def _accepts(annotation: Any, value: Any) -> bool | None:
    """Whether ``value`` fits ``annotation`` (a type or a string such as ``"int | None"``); None when unknown."""
    if isinstance(annotation, str):
        parts = [p.strip() for p in annotation.split("|")]
    else:
        args = typing.get_args(annotation)
        parts = [getattr(a, "__name__", str(a)) for a in args] if args else [getattr(annotation, "__name__", "")]
    verdicts = []
    for part in parts:
        base = part.split("[", 1)[0].strip()
        if base in ("None", "NoneType"):
            verdicts.append(value is None)
        elif base == "bool":
            verdicts.append(isinstance(value, bool))
        elif base == "int":
            verdicts.append(isinstance(value, int) and not isinstance(value, bool))
        elif base == "float":
            verdicts.append(isinstance(value, int | float) and not isinstance(value, bool))
        elif base == "str":
            verdicts.append(isinstance(value, str))
        elif base in ("dict", "Mapping"):
            verdicts.append(isinstance(value, Mapping))
        elif base in ("list", "Sequence", "tuple"):
            verdicts.append(isinstance(value, list | tuple))
        else:
            return None  # a nested dataclass or a type this check does not know: the dataclass decides
    return any(verdicts)


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def check_types(cls: type, values: Mapping[str, Any], where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, value in values.items():
        f = fields.get(name)
        if f is None:
            continue  # options_from names unknown keys
        ok = _accepts(f.type, value)
        if ok is False:
            raise QwenLongConfigError(f"{where}.{name}={value!r} has type {type(value).__name__}; expected "
                                      f"{_type_name(f.type)}")


def check_url(value: Any, where: str) -> None:
    from qwenlong_verl.openai_client import http_url_error

    if value is None:
        return
    error = http_url_error(str(value))
    if error and error[0] == "invalid":
        raise QwenLongConfigError(f"{where}={value!r} is not a valid URL ({error[1]})")
    if error:
        raise QwenLongConfigError(f"{where}={value!r} is not an http(s) URL with a host; expected e.g. "
                                  "http://JUDGE_HOST:8000/v1 (or null for a rule-only run)")


def check_qwenlong_options(config: Any) -> None:
    """Every ``qwenlong.*`` option: known key, right type, in range; raises :class:`QwenLongConfigError` naming it."""
    root = config.get("qwenlong") if hasattr(config, "get") else None
    if root is None:
        return
    try:
        block = qwenlong_section(config)
    except Exception as exc:  # an interpolation that does not resolve, a value of the wrong shape
        raise QwenLongConfigError(f"qwenlong: cannot read the block ({exc})") from exc
    if not isinstance(block, Mapping):
        raise QwenLongConfigError(f"qwenlong must be a mapping of options, got {type(block).__name__}")
    sections = option_sections()
    known = set(sections) | MARKER_KEYS | packaged_top_level_keys()
    unknown = sorted(set(block) - known)
    if unknown:
        raise QwenLongConfigError(f"unknown option(s) {', '.join(f'qwenlong.{k}' for k in unknown)}; known: "
                                  f"{', '.join(sorted(known))}")
    for name, cls in sections.items():
        values = block.get(name)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise QwenLongConfigError(f"qwenlong.{name} must be a mapping of options, got {values!r}")
        check_types(cls, values, f"qwenlong.{name}")
        options = options_from(cls, values, f"qwenlong.{name}")  # unknown keys, the dataclass's own checks
        check_fields(options, where=f"qwenlong.{name}")  # the bounds on the fields, also where checked later
    judge = block.get("judge") or {}
    check_url(judge.get("base_url"), "qwenlong.judge.base_url")


def probe_server(base_url: str, timeout_s: float = 3.0, api_key_env: str | None = None) -> str | None:
    """Why an OpenAI-compatible server at ``base_url`` (``.../v1``) cannot be reached, or None when it answers.

    Args:
        base_url: ``http://host:port/v1`` or ``.../v1/chat/completions``.
        timeout_s: Bound on connecting and on the reply (seconds).
        api_key_env: Name of the variable holding the key training sends; None: no key.

    One ``GET`` of :func:`qwenlong_verl.openai_client.list_models`: no model work, the judge client's route."""
    from qwenlong_verl.openai_client import list_models

    return list_models(base_url, timeout_s=timeout_s, api_key_env=api_key_env)[0]


def probe_judge(config: Any, timeout_s: float = 3.0) -> list[str] | None:
    """One ``GET <base_url>/models`` to an active judge (:func:`qwenlong_verl.openai_client.list_models`, with the
    judge's key and route); an unreachable judge stops the run with the fix, unless the user opted into rule-only
    (``enabled=false``) or turned the probe off.

    Args:
        config: The run's config (the ``qwenlong.judge`` section is read).
        timeout_s: Bound on connecting and on the reply (seconds).

    Returns:
        The model ids the judge lists ([] when it answers without a list), or None when nothing was probed.
    """
    if os.environ.get(PROBE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    judge = qwenlong_section(config, "judge")
    from qwenlong_verl.reward.judge import JudgeOptions

    opts = options_from(JudgeOptions, judge, "qwenlong.judge")
    if not opts.active or not opts.base_url:
        return None
    from qwenlong_verl.openai_client import list_models
    from qwenlong_verl.redaction import redact_url

    reason, served = list_models(opts.base_url, timeout_s=timeout_s, api_key_env=opts.api_key_env)
    if reason is not None:
        raise QwenLongConfigError(
            f"qwenlong.judge.base_url={redact_url(opts.base_url)!r}: the judge is unreachable ({reason}). Start it "
            "(recipes/serve_judge.sh) or fix the URL; for a rule-only run set qwenlong.judge.enabled=false (or "
            f"base_url=null); to skip this check set {PROBE_ENV}=0")
    logger.info("judge at %s answers", redact_url(opts.base_url))
    return served
