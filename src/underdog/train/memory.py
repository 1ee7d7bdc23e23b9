"""GPU memory estimate of a LoRA run before it starts, so a run that cannot fit is refused up front.

    total = weights + lora + activations + logits + overhead
    weights     = n_params * b                       (b = 2 bytes in bf16 on GPU, 4 in fp32)
    lora        = n_lora * 16                        (fp32 params 4 + grads 4 + AdamW moments 8)
    activations = tokens * hidden * layers * k * b   (k = 34 without gradient checkpointing, 2 with)
    logits      = tokens * vocab * (b + 10)          (the logits, their fp32 copy, softmax and gradient)
    overhead    = 1 GiB                              (CUDA context, allocator slack)
    tokens      = per_device_train_batch_size * max_input_length (the worst case of a packed batch)

k and the logits' 10 bytes were fitted to the peaks measured on an H200 with the plain stack
(`../shared/reference/gpu-baselines.md`: Llama-3.2-1B and Llama-3.1-8B shapes, LoRA r=16 on all linear layers,
with and without gradient checkpointing); the estimate is within 10% of all four, which
`tests/test_train_sweep.py` checks.

n_params comes from the model's config, instantiated on the meta device (no weights are read). The baselines
ran with lora_dropout=0; dropout keeps a masked copy of each adapted layer's input, a few GiB more on long
batches, which the 1 GiB overhead does not fully cover: leave some headroom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from underdog.errors import UnderdogError

GIB = 2**30


@dataclass
class MemoryEstimate:
    weights: float
    lora: float
    activations: float
    logits: float
    overhead: float = 1.0 * GIB

    @property
    def total_gb(self) -> float:
        return (self.weights + self.lora + self.activations + self.logits + self.overhead) / GIB

    def describe(self) -> str:
        parts = {"weights": self.weights, "LoRA+optimizer": self.lora, "activations": self.activations,
                 "logits": self.logits, "overhead": self.overhead}
        return f"~{self.total_gb:.1f} GiB (" + ", ".join(f"{k} {v / GIB:.1f}" for k, v in parts.items()) + ")"


def model_shape(model: str | Any) -> dict[str, Any]:
    """Parameter count and the shapes the estimate needs, from a model path or config alone (meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model) if isinstance(model, str) else model
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linear = {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    return {"n_params": sum(p.numel() for p in model.parameters()), "hidden": config.hidden_size,
            "layers": config.num_hidden_layers, "vocab": config.vocab_size,
            "max_positions": getattr(config, "max_position_embeddings", 1024),
            "linear": {name: (m.in_features, m.out_features) for name, m in linear.items()}}


def estimate(shape: dict[str, Any], *, lora_r: int, target_modules: list[str], batch_size: int, seq_len: int,
             bf16: bool = True, gradient_checkpointing: bool = False) -> MemoryEstimate:
    """Bytes a LoRA run needs on one device (see the module docstring for the formula)."""
    b = 2 if bf16 else 4
    n_lora = sum(lora_r * (i + o) for name, (i, o) in shape["linear"].items()
                 if name.rsplit(".", 1)[-1] in target_modules)
    tokens = batch_size * seq_len
    k = 2 if gradient_checkpointing else 34
    return MemoryEstimate(weights=shape["n_params"] * b, lora=n_lora * 16,
                          activations=tokens * shape["hidden"] * shape["layers"] * k * b,
                          logits=tokens * shape["vocab"] * (b + 10))


def device_memory_gb(device: str) -> float | None:
    """Total memory of a CUDA device in GiB (None on CPU)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    return torch.cuda.get_device_properties(index).total_memory / GIB


def check_fits(est: MemoryEstimate, limit_gb: float | None, what: str = "this run") -> None:
    """Refuse (UnderdogError) when the estimate exceeds the device memory limit."""
    if limit_gb is not None and est.total_gb > limit_gb:
        raise UnderdogError(f"{what} needs {est.describe()} but the largest device has {limit_gb:.1f} GiB: "
                            "lower per_device_train_batch_size / max_input_length, or set gradient_checkpointing")
