"""A ``cpu`` platform for verl's platform registry: device ``cpu``, collective backend gloo.

verl 0.9.1 ships platforms only for accelerators and falls back to ``nvidia`` on a CPU-only machine, so nothing in
``trainer.device=cpu`` reaches the workers (see the CPU probe report). This platform is registered always but is
inert unless selected: verl picks it only when ``VERL_PLATFORM=cpu`` (``is_platform_available`` is False otherwise, so
auto-detection never chooses it on a GPU machine). The two process-wide adjustments it needs are made in
:func:`activate`, which runs only once the platform is actually in use.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

logger = logging.getLogger(__name__)

PLATFORM_NAME = "cpu"


class CpuDeviceModule:
    """What verl calls on ``get_torch_device()``: ``torch.cpu`` plus CPU meanings of the CUDA-only calls."""

    # Memory statistics: a CPU has no device allocator to report on.
    def memory_allocated(self, *a: Any, **k: Any) -> int:
        return 0

    memory_reserved = max_memory_allocated = max_memory_reserved = memory_allocated

    def mem_get_info(self, *a: Any, **k: Any) -> tuple[int, int]:
        return (0, 0)

    def memory_stats(self, *a: Any, **k: Any) -> dict:
        return {}

    def reset_peak_memory_stats(self, *a: Any, **k: Any) -> None:
        return None

    reset_max_memory_allocated = reset_accumulated_memory_stats = empty_cache = ipc_collect = reset_peak_memory_stats

    def get_device_name(self, *a: Any, **k: Any) -> str:
        return "CPU"

    def is_initialized(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    # Checkpoint resume restores the RNG through the device module (CheckpointManager.load_rng_state): the CPU's
    # RNG is torch's default generator.
    get_rng_state = staticmethod(torch.get_rng_state)
    set_rng_state = staticmethod(torch.set_rng_state)

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)


_DEVICE_MODULE = CpuDeviceModule()
_ACTIVATED = False
_ACTIVATE_LOCK = threading.Lock()
_DUPLICATE_GLOO = "cpu:gloo,cpu:gloo"


def _register_cpu_engines() -> None:
    """Let verl's FSDP engines serve ``device='cpu'`` (verl registers them for cuda/npu only)."""
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp import transformer_impl as fsdp

    for model_type, cls in (("language_model", fsdp.FSDPEngineWithLMHead),
                            ("value_model", fsdp.FSDPEngineWithValueHead)):
        backends = EngineRegistry._engines.get(model_type, {})
        if all(PLATFORM_NAME in backends.get(b, {}) for b in ("fsdp", "fsdp2")):
            continue
        EngineRegistry.register(model_type=model_type, backend=["fsdp", "fsdp2"], device=PLATFORM_NAME)(cls)


def _wrap_init_process_group() -> None:
    """verl builds ``f"cpu:gloo,{device}:{backend}"``; on this platform that names cpu twice, which torch rejects."""
    import torch.distributed as dist

    original = dist.init_process_group
    if getattr(original, "_qwenlong_cpu", False):
        return

    def init_process_group(*args: Any, **kwargs: Any):
        if kwargs.get("backend") == _DUPLICATE_GLOO:
            kwargs["backend"] = "gloo"
        elif args and args[0] == _DUPLICATE_GLOO:
            args = ("gloo", *args[1:])
        return original(*args, **kwargs)

    init_process_group._qwenlong_cpu = True  # type: ignore[attr-defined]
    dist.init_process_group = init_process_group


def activate() -> None:
    """Make this process ready to train on the CPU platform. Idempotent; only called when the platform is in use."""
    global _ACTIVATED
    with _ACTIVATE_LOCK:
        if _ACTIVATED:
            return
        _wrap_init_process_group()
        _register_cpu_engines()
        _ACTIVATED = True
        logger.info("qwenlong-verl: CPU platform active in pid %d", os.getpid())


def selected() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """verl platform for CPU-only machines (tests, plugin development, the demo)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> Any:
        return _DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: only an explicit VERL_PLATFORM=cpu selects it.
        return selected()

    def current_device(self) -> str:
        # verl passes this straight to tensor.to(device=...); an int would mean accelerator 0.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        activate()

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        # Called right before verl initialises torch.distributed: the moment this platform is in real use.
        activate()
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        # verl's resource pools ask Ray for "GPU" bundles; the CPU overlay declares fake ones
        # (ray_kwargs.ray_init.num_gpus) so one trainer "GPU" means one process on the CPU.
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def use_cpu_platform() -> PlatformBase:
    """Select the CPU platform in this process, even if verl already resolved another one (driver side)."""
    from verl.plugin.platform import platform_manager

    os.environ["VERL_PLATFORM"] = PLATFORM_NAME
    current = platform_manager._current_platform
    if isinstance(current, PlatformCPU):
        return current
    platform = PlatformCPU()
    if current is None:
        platform_manager.set_platform(platform)
    else:
        # verl resolved its platform while importing (before Hydra parsed the overlay); replace it quietly.
        platform_manager._current_platform = platform
    return platform
