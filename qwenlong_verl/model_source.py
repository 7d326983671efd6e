"""Where a model or tokenizer named by the user comes from: a local folder, or a hub name such as ``org/name``.

Evaluation (``--tokenizer``, or ``--model`` as the tokenizer), the data commands (``prepare``, ``synth``) and
``preflight`` (``actor_rollout_ref.model.path``) all take such a name. They share one rule for telling a path from a
hub name (:func:`looks_like_path`), so a mistyped local path is named as missing instead of being sent to the hub,
and one loader (:func:`load_tokenizer`) whose failure is one line naming the option that gave the name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class TokenizerLoadError(ValueError):
    """The tokenizer named by an option does not load; the message names the option, the name and the cause.

    ``exit_code`` is what a command exits with (2: the user gave a bad value)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def looks_like_path(name: str) -> bool:
    """A local path rather than a hub id (``org/name``): absolute, relative with ./ or ../, ~, or several parts.

    Args:
        name: the model or tokenizer as the user gave it.

    Returns:
        True when ``name`` can only mean a local path (so a missing one is an error, not a hub download).
    """
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def load_tokenizer(name: str, option: str = "--tokenizer") -> Any:
    """``AutoTokenizer.from_pretrained(name)``, failing in one line that names the option and the path.

    Args:
        name: a local folder (``~`` expanded) or a hub name.
        option: the option or config key that gave ``name``, quoted in the error message.

    Returns:
        The loaded tokenizer.

    Raises:
        TokenizerLoadError: ``name`` is a path that does not exist, a file, or a folder/hub name transformers
            cannot load a tokenizer from.
    """
    path = Path(name).expanduser()
    if looks_like_path(name) and not path.exists():
        raise TokenizerLoadError(f"{option} {name!r}: no such folder (give the model or tokenizer folder, or a hub "
                                 "name)")
    if path.exists() and not path.is_dir():
        raise TokenizerLoadError(f"{option} {name!r} is a file; give the folder that holds tokenizer_config.json")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path) if path.exists() else name)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... with multi-line messages
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.debug("tokenizer load failed", exc_info=True)
        raise TokenizerLoadError(f"{option} {name!r}: cannot load a tokenizer ({first[:300]})") from exc
