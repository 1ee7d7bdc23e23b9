"""GPU memory estimate of a LoRA run before it starts, so a run that cannot fit is refused up front.

    total = weights + lora + activations + dropout + logits + overhead
    weights     = n_params * b / shards              (b = 2 bytes in bf16/fp16 on GPU, 4 in fp32; FSDP shards)
    lora        = n_lora * 16 / shards               (fp32 params 4 + grads 4 + AdamW moments 8)
    activations = tokens * hidden * layers * k * b   (k = 34 without gradient checkpointing, 2 with)
    dropout     = tokens * sum(in_features of the adapted layers) * 1 byte, when lora_dropout > 0
                  (the kept-element mask of each adapter's dropout; one layer's worth with checkpointing)
    logits      = tokens * vocab * (b + 10)          (the logits, their fp32 copy, softmax and gradient)
    overhead    = 1 GiB                              (CUDA context, allocator slack)
    tokens      = per_device_train_batch_size * max_input_length (the worst case of a packed batch)

A run fits when the total is below the device's *free* memory (`torch.cuda.mem_get_info`: another process or an
earlier model may hold some) less a 5% margin, or below `device_memory_gb` when set. Every size is in GiB
(2**30 bytes) except `device_memory_gb`, which is in GB (10**9 bytes) as its name says, converted before comparing.

k and the logits' 10 bytes were fitted to the peaks measured on an H200 with the plain stack
(`../shared/reference/gpu-baselines.md`: Llama-3.2-1B and Llama-3.1-8B shapes, LoRA r=16 on all linear layers,
with and without gradient checkpointing); the estimate is within 10% of all four, which
`tests/test_train_sweep.py` checks.

n_params comes from the model's config, instantiated on the meta device (no weights are read). The baselines
ran with lora_dropout=0; the dropout term is derived, not fitted (about 4.8 GiB for the 8B shape at 4x1024 without
checkpointing): `bench/gpu_suite.sh` measures the estimate's error with the default dropout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from underdog.errors import UnderdogError

GIB = 2**30
GB = 10**9
MARGIN = 0.05  # share of the free device memory kept in reserve (fragmentation, allocator growth)


@dataclass
class MemoryEstimate:
    weights: float
    lora: float
    activations: float
    logits: float
    dropout: float = 0.0
    overhead: float = 1.0 * GIB

    @property
    def total_gb(self) -> float:
        """The total in GiB."""
        return (self.weights + self.lora + self.activations + self.dropout + self.logits + self.overhead) / GIB

    def describe(self) -> str:
        parts = {"weights": self.weights, "LoRA+optimizer": self.lora, "activations": self.activations,
                 "dropout masks": self.dropout, "logits": self.logits, "overhead": self.overhead}
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
             bf16: bool = True, gradient_checkpointing: bool = False, lora_dropout: float = 0.0,
             shards: int = 1) -> MemoryEstimate:
    """Bytes a LoRA run needs on one device (see the module docstring for the formula); `bf16` means 2-byte
    weights (bf16 or fp16), `shards` the FSDP processes the weights and LoRA state are split across."""
    b = 2 if bf16 else 4
    adapted = [(i, o) for name, (i, o) in shape["linear"].items() if name.rsplit(".", 1)[-1] in target_modules]
    n_lora = sum(lora_r * (i + o) for i, o in adapted)
    tokens = batch_size * seq_len
    k = 2 if gradient_checkpointing else 34
    masks = tokens * sum(i for i, _ in adapted) if lora_dropout > 0 else 0
    return MemoryEstimate(weights=shape["n_params"] * b / shards, lora=n_lora * 16 / shards,
                          activations=tokens * shape["hidden"] * shape["layers"] * k * b,
                          dropout=masks / shape["layers"] if gradient_checkpointing else masks,
                          logits=tokens * shape["vocab"] * (b + 10))


def device_memory_gb(device: str) -> float | None:
    """Free memory of a CUDA device in GiB, less the margin (None on CPU)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    free, _total = torch.cuda.mem_get_info(index)
    return free * (1 - MARGIN) / GIB


def configured_limit_gib(device_memory_gb: float | None) -> float | None:
    """`train.device_memory_gb` (GB, 10**9 bytes) in GiB."""
    return None if device_memory_gb is None else device_memory_gb * GB / GIB


def check_fits(est: MemoryEstimate, limit_gib: float | None, what: str = "this run") -> None:
    """Refuse (UnderdogError) when the estimate exceeds the device memory limit (GiB)."""
    if limit_gib is not None and est.total_gb > limit_gib:
        raise UnderdogError(f"{what} needs {est.describe()} but the device has {limit_gib:.1f} GiB free: "
                            "lower per_device_train_batch_size / max_input_length, or set gradient_checkpointing")
