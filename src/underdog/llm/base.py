"""The backend interface and the request/reply types shared by all providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from underdog.config import GenerationParams

Message = dict[str, str]


@dataclass(frozen=True)
class Request:
    """One chat completion: messages, sampling params, optional JSON mode, and a sample index; or, with
    `options`, the log-probability of each option as the reply (backends that declare `can_score`).

    `sample` distinguishes otherwise identical requests (best-of-n) so each gets its own cache entry.
    """

    messages: list[Message]
    params: GenerationParams = field(default_factory=GenerationParams)
    json_mode: bool = False
    sample: int = 0
    options: tuple[str, ...] | None = None

    def key_fields(self) -> dict[str, Any]:
        fields = {
            "messages": self.messages,
            "params": self.params.model_dump(),
            "json_mode": self.json_mode,
            "sample": self.sample,
        }
        return fields | ({"options": list(self.options)} if self.options else {})


@dataclass
class Reply:
    """A model's answer plus what it cost. `error` is set (and `text` empty) when the call failed for good."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    cost_usd: float = 0.0
    error: str | None = None
    scores: list[float] | None = None  # per option, for a scoring request

    def to_cache(self) -> dict[str, Any]:
        cached = {
            "text": self.text,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "finish_reason": self.finish_reason,
        }
        return cached | ({"scores": self.scores} if self.scores is not None else {})


class RetryableError(Exception):
    """A transient failure (429, 5xx, timeout, malformed reply): the call path retries it."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Backend(Protocol):
    """What a provider implements. Raise RetryableError for transient faults, ModelError for fatal ones.

    Capabilities are declared, not guessed (as simonw/llm's `can_stream`): `BackendBase` gives the defaults.
    """

    queues_requests: bool  # requests wait in a local batch queue, so the call path sets no timeout
    can_score: bool  # score(request with options) -> Reply.scores, a log-probability per option
    can_stream: bool  # stream(request, cancel) -> text pieces, then the Reply

    async def complete(self, request: Request) -> Reply: ...

    async def score(self, request: Request) -> Reply:
        """`Reply.scores`: the log-probability of each of `request.options` as the reply (if `can_score`)."""
        ...

    def check(self, timeout_s: float) -> str:
        """"ok", or why the model cannot be used now, without spending tokens."""
        ...


class BackendBase:
    """Defaults for the declared capabilities: a plain remote chat model."""

    queues_requests = False
    can_score = False
    can_stream = False

    def check(self, timeout_s: float) -> str:
        return NOT_CHECKED


OK = "ok"
NOT_CHECKED = "not checked (no cheap probe for this provider)"
