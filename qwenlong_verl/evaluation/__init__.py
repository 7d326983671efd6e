"""Long-context DocQA evaluation against any OpenAI-compatible server.

The library entry: :func:`evaluate_endpoint` takes :class:`EndpointEvalOptions` (the options of ``qwenlong-verl
eval``) and returns an :class:`EvalResult` (report, paths, accuracy, counts, failures, ``complete``); see
:mod:`.api`. :func:`run_eval` (:mod:`.runner`) is the loop under it, for callers with their own client and scorer.

The names are loaded on first use (PEP 562), so importing a light submodule (``.bootstrap``, ``.data``) does not
import the HTTP client and the scorer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qwenlong_verl.evaluation.api import (
        EndpointEvalOptions,
        EvalSetupError,
        evaluate_endpoint,
        evaluate_endpoint_async,
    )
    from qwenlong_verl.evaluation.runner import EvalOptions, EvalResult, run_eval

_EXPORTS = {
    "EndpointEvalOptions": "api",
    "EvalSetupError": "api",
    "evaluate_endpoint": "api",
    "evaluate_endpoint_async": "api",
    "EvalOptions": "runner",
    "EvalResult": "runner",
    "run_eval": "runner",
}
__all__ = ["EndpointEvalOptions", "EvalOptions", "EvalResult", "EvalSetupError", "evaluate_endpoint",
           "evaluate_endpoint_async", "run_eval"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
