"""Loopback test helpers: `ServerThread` (uvicorn in a thread) and `ScriptedOpenAI`, a scripted
OpenAI-compatible server for tests and benchmarks (fault injection).

    fake = ScriptedOpenAI(reply=lambda messages: "ok", faults=["429:1", "500", "malformed"])
    # serve fake.app with uvicorn; each request takes the next fault, then the scripted reply.
    # reply_body=lambda body: ... replies from the whole request (its seed, params) instead of the messages.

Faults: "429" / "429:<retry-after s>", "500", "slow:<s>" (delay before replying), "malformed" (not JSON),
"401" (an OpenAI-style auth error that echoes the key it was given, as real servers partially do),
"echo:<status>" (an error of that HTTP status whose message echoes the key, as OpenAI's 400/401/403 do).
`model_faults` script `GET /v1/models` the same way.

For benchmarks: `latency` draws each request's delay (e.g. `lognormal_latency(0.5)`), `plausible_reply` answers
underdog's own prompts validly (topics, eval questions and their answer keys, question lists, Q&A pairs, JSON
verdicts, answers; also synthetic-data-kit's Q&A prompt, for the peer comparison), and `GET /_stats` reports how
many requests arrived, when request number `since` (default 0) and the last one arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

Reply = Callable[[list[dict[str, str]]], str]
Latency = Callable[[], float]


class ScriptedOpenAI:
    def __init__(self, reply: Reply | None = None, *, delay_s: float = 0.0, faults: list[str | None] | None = None,
                 model: str = "scripted", latency: Latency | None = None,
                 model_faults: list[str | None] | None = None,
                 reply_body: Callable[[dict[str, Any]], str] | None = None):
        self.reply = reply or (lambda messages: f"echo: {messages[-1]['content']}")
        self.reply_body = reply_body
        self.delay_s = delay_s
        self.latency = latency
        self.arrivals: list[float] = []  # time.time() of each chat request
        self.faults = list(faults or [])
        self.model_faults = list(model_faults or [])
        self.model = model
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models", response_model=None)
        async def models(request: Request) -> dict | Response:
            fault = self.model_faults.pop(0) if self.model_faults else None
            if fault and fault.startswith("echo:"):
                return _echo_key(request, int(fault.partition(":")[2]))
            return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "x"}]}

        @app.get("/_stats")
        async def stats(since: int = 0) -> dict:
            """Requests so far; arrival times of request number `since` (the first after a snapshot) and the last."""
            first, last = (self.arrivals[since], self.arrivals[-1]) if len(self.arrivals) > since else (None, None)
            return {"requests": self.requests, "first": first, "last": last}

        @app.post("/v1/chat/completions")
        @app.post("/openai/deployments/{deployment}/chat/completions")  # Azure OpenAI's path
        async def chat(request: Request) -> Response:
            self.requests += 1
            self.arrivals.append(time.time())
            body = await request.json()
            self.bodies.append(body | {"_path": request.url.path, "_query": str(request.url.query)})
            fault = self.faults.pop(0) if self.faults else None
            delay = self.delay_s + (self.latency() if self.latency else 0.0)
            if delay:
                await asyncio.sleep(delay)
            if fault:
                kind, _, arg = fault.partition(":")
                if kind == "429":
                    headers = {"retry-after": arg} if arg else {}
                    return _error(429, "Rate limit reached", "rate_limit_exceeded", headers)
                if kind == "500":
                    return _error(500, "internal error", "server_error")
                if kind == "slow":
                    await asyncio.sleep(float(arg or 5))
                if kind == "malformed":
                    return Response("{not json", media_type="application/json")
                if kind == "401":
                    return _echo_key(request, 401)
                if kind == "echo":
                    return _echo_key(request, int(arg))
            text = self.reply_body(body) if self.reply_body else self.reply(body["messages"])
            return JSONResponse({
                "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": sum(len(m["content"]) // 4 + 3 for m in body["messages"]),
                          "completion_tokens": max(1, len(text) // 4), "total_tokens": 0},
            })

        return app


def lognormal_latency(median_s: float = 0.5, sigma: float = 0.5, seed: int = 0) -> Latency:
    """Delays drawn from a lognormal distribution (median `median_s`; mean median * exp(sigma^2 / 2))."""
    rng = random.Random(seed)
    return lambda: rng.lognormvariate(math.log(median_s), sigma)


def plausible_reply(messages: list[dict[str, str]]) -> str:
    """A valid reply to each of underdog's prompts, varied by a hash of the request (deterministic)."""
    prompt = messages[-1]["content"]
    tag = hashlib.sha256(json.dumps(messages).encode()).hexdigest()[:8]
    if n := _count(r"Write (\d+) realistic questions", prompt):
        return json.dumps([f"How do I handle case {i} ({tag}) when I apply?" for i in range(n)])
    if n := _count(r"Write (\d+) question-answer pairs", prompt):
        return json.dumps([{"question": f"What does rule {i} ({tag}) require?",
                            "answer": f"Rule {i} requires a permit ({tag})."} for i in range(n)])
    if "Create question-answer pairs from this text" in prompt:  # synthetic-data-kit's Q&A prompt (the peer)
        return json.dumps([{"question": f"What does rule {i} ({tag}) require?",
                            "answer": f"Rule {i} requires a permit ({tag})."} for i in range(3)])
    if "Write the one question" in prompt or "Write one question" in prompt:
        return f"What do I need to do about case {tag}?"
    if "Categorize them" in prompt:  # topics
        return "1. Permits\n- food truck permits\n- building permits\n2. Records\n- birth certificates\n- deeds"
    if "Write ONE realistic question" in prompt:  # an eval set question
        return f"How much does permit {tag} cost, and where do I apply?"
    if "You write the answer key" in prompt:  # an eval set question's ground truth
        return json.dumps({"reference": f"Permit {tag} costs $45; apply at the Clerk office.",
                           "facts": ["$45", "Clerk office"]})
    if '"verdict"' in prompt:
        return json.dumps({"reason": "clearer", "verdict": "AB"[int(tag, 16) % 2]})
    return f"You need to file form {tag} with the city office; it takes about two weeks."


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": code, "code": code}}, status_code=status,
                        headers=headers)


def _echo_key(request: Request, status: int) -> JSONResponse:
    """An error whose message repeats the key the client sent (OpenAI does this for a wrong key)."""
    key = request.headers.get("authorization", "").removeprefix("Bearer ") or request.headers.get("api-key", "")
    return _error(status, f"Incorrect API key provided: {key}. You can find your API key at ...", "invalid_api_key")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """Runs an ASGI app with uvicorn on a loopback port in a background thread."""

    def __init__(self, app, port: int | None = None):  # type: ignore[no-untyped-def]
        import uvicorn

        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
