"""How much memory a model needs before it is loaded, what a loaded one holds, and what is free for the next one.

The local backend (llm/local.py) asks `room_for_models` before loading a base model and evicts idle ones until the
new one fits. Free memory is the device's own (CUDA: `torch.cuda.mem_get_info`; CPU: psutil's available memory
when psutil is installed), capped by `$UNDERDOG_MODEL_MEMORY_GB` when set: the budget for the models loaded on one
device (counted from their weights, so it works the same on any machine).
"""

from __future__ import annotations

import os
from typing import Any

from underdog.errors import ConfigError

BUDGET_ENV = "UNDERDOG_MODEL_MEMORY_GB"


def budget_bytes() -> int | None:
    """The memory budget for loaded models per device from `$UNDERDOG_MODEL_MEMORY_GB` (None: not set)."""
    value = os.environ.get(BUDGET_ENV, "").strip()
    if not value:
        return None
    try:
        gb = float(value)
    except ValueError:
        raise ConfigError(f"${BUDGET_ENV}: expected a number of GB, got {value!r}") from None
    if gb <= 0:
        raise ConfigError(f"${BUDGET_ENV}: expected a positive number of GB, got {value!r}")
    return int(gb * 2**30)


def estimate_bytes(path: str, dtype: Any) -> int:
    """The weights of the causal LM at `path` in `dtype`, counted on an empty (meta) copy: nothing is read but
    its config (as train/memory.py's `model_shape` does)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        empty = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(t.numel() for t in (*empty.parameters(), *empty.buffers())) * dtype.itemsize


def held_bytes(model: Any) -> int:
    """What a loaded model (adapters included) holds in its parameters and buffers."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}  # tied weights count once
    return sum(t.numel() * t.element_size() for t in tensors.values())


def room_for_models(device: str, held: int) -> int | None:
    """Bytes free for one more model on `device`, given the `held` bytes of the models loaded there (None: no
    limit known, so nothing is evicted)."""
    free = _device_free_bytes(device)
    budget = budget_bytes()
    if budget is not None:
        free = budget - held if free is None else min(free, budget - held)
    return free


def _device_free_bytes(device: str) -> int | None:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)
