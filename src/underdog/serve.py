"""`underdog serve MODEL [--adapter DIR]`: an OpenAI-compatible server for a local model (+ PEFT adapter).

    underdog serve smollm2-135m --adapter runs/<run-id>/adapter --port 8000
    curl localhost:8000/v1/chat/completions -d '{"model": "smollm2-135m", "messages": [...]}'

Implements `/v1/models` and `/v1/chat/completions` (with `stream: true` as server-sent events). Concurrent
requests are batched by the local backend. Binds to 127.0.0.1 unless told otherwise.

One request cannot stall the server: `max_tokens` beyond the model's context is refused (400), so are more than
4 stop strings or one longer than 64 characters (each token's stop check reads only the reply's last few
tokens), a client that goes away stops its generation at the next token, at most `max_queue` requests are in
progress (503 beyond), and SIGTERM / Ctrl-C stop every generation at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from underdog.config import GenerationParams, ModelSpec
from underdog.errors import UnderdogError
from underdog.llm.base import Reply
from underdog.llm.base import Request as ChatRequest
from underdog.llm.local import LocalBackend

SEED_RANGE = (-(2**63), 2**64 - 1)  # OpenAI's int64, and torch's uint64
MAX_STOPS = 4  # as OpenAI allows
MAX_STOP_CHARS = 64  # each stop string; the stop check reads a tail of the reply about this long per token
DISCONNECT_POLL_S = 0.25


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
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1)

    @field_validator("stop")
    @classmethod
    def _bounded_stop(cls, stop: str | list[str] | None) -> str | list[str] | None:
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > MAX_STOPS:
            raise PydanticCustomError("stop", "at most {most} stop strings (got {got})",
                                      {"most": MAX_STOPS, "got": len(stops)})
        if bad := [len(s) for s in stops if not s or len(s) > MAX_STOP_CHARS]:
            raise PydanticCustomError("stop", "each stop string must have 1 to {most} characters (got {got})",
                                      {"most": MAX_STOP_CHARS, "got": bad[0]})
        return stop

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def params(self, max_tokens: int) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return GenerationParams(temperature=self.temperature, top_p=self.top_p, seed=self.seed, stop=stop,
                                max_tokens=max_tokens)


def _error(status: int, message: str, kind: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


def create_app(spec: ModelSpec, served_name: str | None = None, max_queue: int = 64) -> FastAPI:
    """The FastAPI app serving `spec` (provider local) under `served_name` (default: the model name).

    `app.state.backend` is the LocalBackend; set its `closing` event to stop every generation."""
    name = served_name or spec.model
    backend = LocalBackend(spec)
    app = FastAPI(title="underdog serve", version="1")
    app.state.backend = backend
    busy = {"requests": 0}

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        return _error(400, f"{'.'.join(str(p) for p in first['loc'][1:]) or 'body'}: {first['msg']}")

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "underdog"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatCompletionRequest, http: Request) -> JSONResponse | StreamingResponse:
        if body.model != name:
            return _error(404, f"model {body.model!r} not found (this server serves {name!r})", "not_found")
        if busy["requests"] >= max_queue:
            return _error(503, f"server busy: {max_queue} requests in progress, retry later", "server_busy",
                          {"retry-after": "1"})
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        room = await asyncio.to_thread(backend.room_for_reply, messages)
        wanted = body.requested_max_tokens
        if room is not None and room < 1:
            return _error(400, f"messages: the prompt leaves no room for a reply in the model's context (it is "
                               f"{1 - room} tokens too long); shorten it")
        if room is not None and (wanted or 0) > room:
            return _error(400, f"max_tokens: {wanted} is more than the model's context leaves for a reply "
                               f"({room} tokens after this prompt)")
        default = spec.params.max_tokens if room is None else min(spec.params.max_tokens, room)
        request = ChatRequest(messages, body.params(wanted or default))
        busy["requests"] += 1
        if body.stream:
            return StreamingResponse(_stream(backend, request, name, busy), media_type="text/event-stream")
        try:
            reply = await _unless_disconnected(http, backend.complete(request))
        except UnderdogError as exc:
            return _error(500, str(exc), "server_error")
        finally:
            busy["requests"] -= 1
        if reply is None:  # the client went away; nobody reads this
            return _error(499, "client closed the request")
        return JSONResponse(_completion(name, reply))

    return app


async def _unless_disconnected(http: Request, work: Awaitable[Reply]) -> Reply | None:
    """The reply, or None (and the work cancelled: its generation stops) when the client disconnects first."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if done:
            return task.result()
        if await http.is_disconnected():
            task.cancel()
            return None


def _completion(name: str, reply: Reply) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                     "finish_reason": reply.finish_reason}],
        "usage": {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                  "total_tokens": reply.input_tokens + reply.output_tokens},
    }


async def _stream(backend: LocalBackend, request: ChatRequest, name: str, busy: dict[str, int]) -> AsyncIterator[str]:
    """Server-sent events: one chunk per decoded piece of text, then the finish reason and [DONE]. A failed
    generation ends the stream with an error event; a client that goes away stops the generation."""
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"

    def event(delta: dict, finish: str | None = None) -> str:
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    cancel = threading.Event()
    try:
        pieces = await asyncio.to_thread(backend.stream, request, cancel)
        yield event({"role": "assistant", "content": ""})
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            if isinstance(piece, Reply):
                yield event({}, piece.finish_reason)
            elif piece:
                yield event({"content": piece})
        yield "data: [DONE]\n\n"
    except UnderdogError as exc:
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': 500}})}\n\n"
    finally:
        cancel.set()  # a client that went away (the generator is closed) stops the generation
        busy["requests"] -= 1


def serve(spec: ModelSpec, host: str = "127.0.0.1", port: int = 8000, served_name: str | None = None,
          max_queue: int = 64) -> None:
    """Load the model, then serve until interrupted (SIGINT/SIGTERM stop every generation at once)."""
    import uvicorn

    app = create_app(spec, served_name, max_queue)
    backend: LocalBackend = app.state.backend
    backend.loaded  # noqa: B018 - load before serving, so errors show first

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            backend.closing.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    Server(config).run()
