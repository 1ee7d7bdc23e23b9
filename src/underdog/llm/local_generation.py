"""Generation on a loaded local model: a left-padded batch (one adapter per row), a streamed reply, and the
log-probabilities of fixed options (a local judge's verdict). Stop strings and cancellation end rows early.
Loading is `llm/local_models.py`; the backend and its batching queue are `llm/local.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from underdog.config import GenerationParams
from underdog.errors import ModelError
from underdog.llm.base import Message, Reply
from underdog.llm.local_models import LoadedModel, rows_adapter_args
from underdog.llm.stops import StopStrings, StreamCut, cut_at_stop


def prompt_ids(loaded: LoadedModel, messages: list[Message]) -> list[int]:
    return loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]


def context_length(loaded: LoadedModel) -> int | None:
    """How many tokens (prompt + reply) the model can attend to, when its config says."""
    return getattr(loaded.model.config, "max_position_embeddings", None)


def room_for_reply(loaded: LoadedModel, messages: list[Message]) -> int | None:
    """Tokens left for the reply after the prompt, within the model's context (None: unknown)."""
    context = context_length(loaded)
    return None if context is None else context - len(prompt_ids(loaded, messages))


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
    prompts = [prompt_ids(loaded, messages) for messages in batch]
    inputs = tok.pad({"input_ids": prompts}, return_tensors="pt").to(loaded.device)
    max_new = _max_new_tokens(loaded, prompts, params)
    rows = cancel or [threading.Event() for _ in batch]
    width = inputs["input_ids"].shape[1]
    kwargs = _generate_kwargs(loaded, params, max_new)
    stop = _stop_rows(rows, closing, _stop_strings(loaded, params, width))
    with loaded.lock, torch.inference_mode():
        _seed(params)
        out = loaded.model.generate(**inputs, **kwargs, **rows_adapter_args(views),
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
    prompt = prompt_ids(loaded, messages)
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
    stays at (options x option tokens x vocabulary) instead of the whole prompt's length. When every option is one
    token (a judge's "A", "B", "tie"), one pass over the prompt alone gives them all, instead of one row per option.
    """
    import torch

    prompt = prompt_ids(loaded, messages)
    tokens = [loaded.tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
    if all(len(t) == 1 for t in tokens):
        with loaded.lock, torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([prompt], device=loaded.device), logits_to_keep=1,
                                  **loaded.adapter_args(1)).logits
        logprobs = torch.log_softmax(logits[0, -1].float(), dim=-1)
        return [float(logprobs[t[0]]) for t in tokens]
    rows = [prompt + t for t in tokens]
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
