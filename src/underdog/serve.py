"""`underdog serve MODEL [--adapter DIR]`: an OpenAI-compatible server for a local model (+ PEFT adapter).

    underdog serve smollm2-135m --adapter runs/<run-id>/adapter --port 8000
    curl localhost:8000/v1/chat/completions -d '{"model": "smollm2-135m", "messages": [...]}'

Implements `/v1/models` and `/v1/chat/completions` (with `stream: true` as server-sent events). Concurrent
requests are batched by the local backend. Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from underdog.config import GenerationParams, ModelSpec
from underdog.errors import UnderdogError
from underdog.llm.base import Request as ChatRequest
from underdog.llm.local import LocalBackend


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class ChatCompletionRequest(BaseModel):
    """The OpenAI request fields this server reads; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1)

    def params(self, default_max_tokens: int) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return GenerationParams(temperature=self.temperature, top_p=self.top_p, seed=self.seed, stop=stop,
                                max_tokens=self.max_completion_tokens or self.max_tokens or default_max_tokens)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(spec: ModelSpec, served_name: str | None = None) -> FastAPI:
    """The FastAPI app serving `spec` (provider local) under `served_name` (default: the model name)."""
    name = served_name or spec.model
    backend = LocalBackend(spec)
    app = FastAPI(title="underdog serve", version="1")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        return _error(400, f"{'.'.join(str(p) for p in first['loc'][1:])}: {first['msg']}")

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "underdog"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatCompletionRequest) -> JSONResponse | StreamingResponse:
        if body.model != name:
            return _error(404, f"model {body.model!r} not found (this server serves {name!r})", "not_found")
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        request = ChatRequest(messages, body.params(spec.params.max_tokens))
        if body.stream:
            return StreamingResponse(_stream(backend, request, name), media_type="text/event-stream")
        try:
            reply = await backend.complete(request)
        except UnderdogError as exc:
            return _error(500, str(exc), "server_error")
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                         "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                      "total_tokens": reply.input_tokens + reply.output_tokens},
        })

    return app


async def _stream(backend: LocalBackend, request: ChatRequest, name: str) -> AsyncIterator[str]:
    """Server-sent events: one chunk per decoded piece of text, then [DONE]."""
    import torch
    from transformers import TextIteratorStreamer

    loaded = backend.loaded
    tok = loaded.tokenizer
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    ids = tok.apply_chat_template(request.messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True).to(loaded.device)
    params = request.params
    kwargs = {"max_new_tokens": params.max_tokens, "do_sample": params.temperature > 0, "streamer": streamer,
              "pad_token_id": tok.pad_token_id}
    if params.temperature > 0:
        kwargs.update(temperature=params.temperature, top_p=params.top_p)

    def run() -> None:
        with loaded.lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            loaded.model.generate(**ids, **kwargs)

    threading.Thread(target=run, daemon=True).start()
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"

    def event(delta: dict, finish: str | None = None) -> str:
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    yield event({"role": "assistant", "content": ""})
    iterator = iter(streamer)
    while (piece := await asyncio.to_thread(next, iterator, None)) is not None:
        if piece:
            yield event({"content": piece})
    yield event({}, "stop")
    yield "data: [DONE]\n\n"


def serve(spec: ModelSpec, host: str = "127.0.0.1", port: int = 8000, served_name: str | None = None) -> None:
    """Load the model, then serve until interrupted."""
    import uvicorn

    LocalBackend(spec).loaded  # noqa: B018 - load (process-wide cache) before serving, so errors show first
    uvicorn.run(create_app(spec, served_name), host=host, port=port, log_level="warning")
