"""YaRN for phase II, written where both of verl's model readers look: the model folder's ``config.json``.

Why not ``actor_rollout_ref.model.override_config.rope_scaling`` (what verl's docs suggest)? In verl 0.9.1 with
transformers 5 it cannot work, for two reasons found in verl's code:

1. ``HFModelConfig`` applies ``override_config`` with ``verl.utils.model.update_model_config``, which recurses into
   dict values with ``setattr``. Under transformers 5 ``config.rope_scaling`` is a property over the dict
   ``rope_parameters``, so the recursion does ``setattr(dict, "rope_type", ...)`` and the run dies building the model
   config (``AttributeError: 'dict' object has no attribute 'rope_type'``).
2. verl's vLLM server never forwards ``override_config`` to vLLM (its ``hf_overrides`` carry only quantisation),
   and it refuses ``rollout.max_model_len`` above the config's ``max_position_embeddings``. Rollouts past 32K would
   run without YaRN while the FSDP actor used it: log-probs of the two would disagree.

A derived model folder fixes both: its ``config.json`` carries the YaRN parameters and the raised
``max_position_embeddings`` (``original * factor``), every other file is a symlink to the source folder (no copy of
the weights). The actor (``AutoConfig``/``from_pretrained``), the vLLM rollout and later an eval server read the same
file. QwenLong-L1's README sets ``{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER = ".qwenlong_yarn.json"


class RopeScalingError(ValueError):
    """The source or destination folder is unusable; the message names the path and the fix."""


@dataclass(frozen=True)
class YarnSettings:
    """YaRN parameters. ``factor * original_max_position_embeddings`` is the context the model gets."""

    factor: float = 4.0
    original_max_position_embeddings: int = 32768

    def __post_init__(self) -> None:
        if not self.factor > 1:
            raise RopeScalingError(f"YaRN factor must be > 1, got {self.factor}")
        if self.original_max_position_embeddings < 1:
            raise RopeScalingError(f"original_max_position_embeddings must be >= 1, got "
                                   f"{self.original_max_position_embeddings}")

    @property
    def positions(self) -> int:
        return int(self.factor * self.original_max_position_embeddings)

    def declared_by(self, rope_scaling: dict[str, Any] | None, max_position_embeddings: int) -> bool:
        """Whether a model whose config declares ``rope_scaling`` (see :func:`declared_rope_scaling`) and
        ``max_position_embeddings`` already has exactly this YaRN."""
        rs = rope_scaling or {}
        return (rs.get("rope_type") == "yarn" and float(rs.get("factor", 0)) == float(self.factor)
                and int(rs.get("original_max_position_embeddings") or 0) == self.original_max_position_embeddings
                and max_position_embeddings >= self.positions)


def with_yarn(config: dict[str, Any], yarn: YarnSettings) -> dict[str, Any]:
    """``config`` (a parsed ``config.json``) with YaRN rope scaling and ``max_position_embeddings`` raised to
    ``original * factor`` (never lowered). A transformers-5 ``rope_parameters`` block keeps its ``rope_theta``;
    an older config gets the ``rope_scaling`` key that both transformers 5 and vLLM read."""
    out = dict(config)
    params = {"rope_type": "yarn", "factor": float(yarn.factor),
              "original_max_position_embeddings": int(yarn.original_max_position_embeddings)}
    if isinstance(out.get("rope_parameters"), dict):
        out["rope_parameters"] = {**out["rope_parameters"], **params}
        out.pop("rope_scaling", None)
    else:
        out["rope_scaling"] = params
    out["max_position_embeddings"] = max(int(out.get("max_position_embeddings") or 0), yarn.positions)
    return out


def declared_rope_scaling(config: dict[str, Any]) -> dict[str, Any] | None:
    """The rope scaling a parsed ``config.json`` declares, as one dict with ``rope_type`` (None for plain rope).

    transformers < 5 writes ``rope_scaling`` (key ``type`` or ``rope_type``); transformers 5 writes
    ``rope_parameters`` whose ``rope_type`` is ``default`` for plain rope."""
    raw = config.get("rope_scaling") or config.get("rope_parameters") or None
    if not isinstance(raw, dict):
        return None
    kind = raw.get("rope_type", raw.get("type"))
    if kind in (None, "default"):
        return None
    return {**raw, "rope_type": kind}


def has_yarn(config: dict[str, Any], yarn: YarnSettings) -> bool:
    """Whether ``config`` already declares these YaRN settings (either key spelling)."""
    return yarn.declared_by(declared_rope_scaling(config), int(config.get("max_position_embeddings") or 0))


def write_yarn_model(src: str | Path, dst: str | Path, yarn: YarnSettings = YarnSettings()) -> Path:
    """Make ``dst``: ``src`` with a YaRN ``config.json``, every other entry a symlink into ``src``.

    Idempotent: a ``dst`` this function made from the same ``src`` with the same settings is kept as it is (pipeline
    reruns). Any other existing ``dst`` is refused, never overwritten. Built in a temporary sibling folder and renamed
    into place, so an interrupted call leaves no half folder.

    Args:
        src: HF model folder (``config.json`` and weights), e.g. phase I's ``global_step_N/actor/huggingface``.
        dst: the folder to create; must not be ``src`` or inside it.
        yarn: the scaling to apply.

    Returns:
        ``dst`` as an absolute path.
    """
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    cfg_file = src / "config.json"
    if not cfg_file.is_file():
        raise RopeScalingError(f"{cfg_file} does not exist: pass the HF model folder (the one with config.json)")
    if dst == src or src in dst.parents:
        raise RopeScalingError(f"--out {dst} must be a new folder outside the source {src} (the source stays as is)")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RopeScalingError(f"{cfg_file} is not readable JSON: {exc}") from exc
    wanted = {"source": str(src), **asdict(yarn)}
    if dst.exists():
        try:
            made = json.loads((dst / MARKER).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            made = None
        if made == wanted:
            return dst
        raise RopeScalingError(f"{dst} already exists and was not made from {src} with factor {yarn.factor}, "
                               f"original {yarn.original_max_position_embeddings}; remove it or choose another --out")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        for entry in src.iterdir():
            if entry.name in ("config.json", MARKER):
                continue
            os.symlink(entry, tmp / entry.name, target_is_directory=entry.is_dir())
        (tmp / "config.json").write_text(json.dumps(with_yarn(config, yarn), indent=2) + "\n", encoding="utf-8")
        (tmp / MARKER).write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        os.rename(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst
