"""Which device a run trains on, in which precision and attention, and how GPU memory is handed back.

- **One GPU per process, never DataParallel.** Without `accelerate launch`, the transformers Trainer counts every
  visible GPU and wraps the model in `nn.DataParallel`, which splits a flattened `[1, T]` batch wrongly and is
  slower than DDP anyway. A run without a launcher is pinned to one GPU (`device: cuda:1` honoured by the Trainer,
  accelerate and the memory check alike); `underdog train --processes N` is how several GPUs train one run (DDP or
  FSDP through accelerate).
- **Precision by GPU generation** (`precision: auto`): bf16 from compute capability 8 (Ampere) on; fp16 with a
  gradient scaler below (T4, V100: bf16 is emulated and slow there); fp32 on CPU. flash-attn only from sm80.
- **Memory between runs**: with bf16, accelerate binds a wrapped `forward` to the model (a reference cycle), so the
  model outlives its run until the cycle collector runs; `release_memory` collects and empties the CUDA cache.
- **Sweep slots** are indices into the GPUs this process may use: an inherited `CUDA_VISIBLE_DEVICES=2,3` (SLURM,
  Kubernetes) maps slot 0 to physical GPU 2, not 0.
"""

from __future__ import annotations

import gc
import importlib.util
import os
from typing import Any

from underdog.errors import ConfigError


def launched() -> bool:
    """True inside `accelerate launch` / torchrun (one process per GPU, the process group owns the devices)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ


def training_device(requested: str | None) -> str:
    """The device of this process as `cpu` or `cuda:N`: `requested` ("cuda", "cuda:1", "cpu"), else CUDA when
    available; under a launcher, the process's local rank."""
    import torch

    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if not device.startswith("cuda"):
        return device
    if launched():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device if ":" in device else "cuda:0"


def device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def precision(device: str, requested: str = "auto") -> str:
    """`bf16`, `fp16` or `fp32` for a run on `device` (`auto`: bf16 from sm80, fp16 below, fp32 on CPU)."""
    if not device.startswith("cuda"):
        if requested == "fp16":
            raise ConfigError("train.precision: fp16 needs a CUDA GPU (use bf16 or fp32 on CPU)")
        return "fp32" if requested == "auto" else requested
    if requested != "auto":
        return requested
    return "bf16" if compute_capability(device) >= (8, 0) else "fp16"


def launch_precision(requested: str = "auto") -> str:
    """`accelerate launch --mixed_precision` for `train.precision` on this machine's GPUs (no, bf16 or fp16)."""
    import torch

    mode = precision("cuda:0" if torch.cuda.is_available() else "cpu", requested)
    return {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[mode]


def compute_capability(device: str) -> tuple[int, int]:
    import torch

    return tuple(torch.cuda.get_device_capability(device_index(device)))  # type: ignore[return-value]


def torch_dtype(mode: str) -> Any:
    """The dtype the frozen base weights are loaded in (LoRA weights stay fp32: PEFT upcasts adapters)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[mode]


def attention(device: str) -> str:
    """flash_attention_2 on an sm80+ GPU with the flash-attn package installed (varlen kernels: a packed batch
    costs what its examples cost apart), else PyTorch's sdpa with transformers' block-diagonal packed mask."""
    if not device.startswith("cuda") or not importlib.util.find_spec("flash_attn"):
        return "sdpa"
    return "flash_attention_2" if compute_capability(device) >= (8, 0) else "sdpa"


def pin_one_device(args: Any, device: str) -> None:
    """Make a Trainer built on `args` use exactly `device` and no DataParallel (outside a launcher).

    TrainingArguments counts every visible GPU (`n_gpu`) and places the model on cuda:0; both are set once, when
    the arguments resolve their device, so this overrides them after that resolution."""
    if launched():
        return
    args.device  # noqa: B018 - resolves (and caches) the arguments' device and n_gpu first
    args._n_gpu = min(args._n_gpu, 1)  # >1 would make the Trainer wrap the model in nn.DataParallel
    if device.startswith("cuda"):
        import torch

        target = torch.device("cuda", device_index(device))
        args.__dict__["_setup_devices"] = target  # the cached property behind `args.device`
        torch.cuda.set_device(target)  # accelerate places the model on the current CUDA device


def release_memory() -> None:
    """Collect reference cycles (the bf16 wrapped forward keeps a model alive) and return cached GPU memory."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def visible_gpus() -> list[str] | None:
    """The physical GPU ids of an inherited `CUDA_VISIBLE_DEVICES` (None when unset: all GPUs, numbered from 0)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def slot_visible_devices(slot: str) -> str:
    """`CUDA_VISIBLE_DEVICES` for a sweep subprocess pinned to `slot` (`cuda:N`, N counted among the GPUs this
    process sees)."""
    index = device_index(slot)
    visible = visible_gpus()
    if visible is None:
        return str(index)
    if index >= len(visible):
        raise ConfigError(f"sweep slot {slot} is beyond CUDA_VISIBLE_DEVICES={','.join(visible)}")
    return visible[index]
