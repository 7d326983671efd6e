"""The GPU software stack this package is meant to run on: exactly what verl 0.9.1 pins in its own ``vllm`` and
``fsdp`` extras (our ``gpu`` extra is ``verl[vllm,fsdp]==0.9.1``). ``tests/test_gpu_stack.py`` reads verl's
installed metadata and fails when these numbers or the extra drift from it."""

from __future__ import annotations

from importlib import metadata

from qwenlong_verl.findings import Finding

VERL_GPU_EXTRAS = ("vllm", "fsdp")
# package -> version pinned by verl 0.9.1's extras
TESTED_STACK = {"vllm": "0.24.0", "torch": "2.11.0", "transformers": "5.9.0", "flash-attn": "2.8.3"}
# verl's flash-attn extra is named for its build: CUDA 13.0, torch 2.11 (NVIDIA driver >= 580 for CUDA 13.0)
CUDA = "13.0"


def stack_findings() -> list[Finding]:
    """On a GPU node: installed versions that differ from the tested stack (warnings; verl may still run)."""
    out = []
    for package, wanted in TESTED_STACK.items():
        try:
            have = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue  # missing packages are reported by check_gpu_environment
        if have.split("+")[0] != wanted:
            out.append(Finding("warning", "environment", package,
                               f"{package} {have} is installed; verl 0.9.1 is tested with {wanted}",
                               "pip install '.[gpu]' --no-build-isolation (verl's own pins)"))
    return out
