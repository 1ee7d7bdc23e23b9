"""OpenAI-compatible endpoints through the official `openai` SDK: OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp server, LM Studio, Together, Bedrock's OpenAI-compatible endpoint, and `underdog serve`.

The SDK's own retries are off (max_retries=0): the shared call path retries, so every attempt is counted,
rate-limited and logged in one place.
"""

from __future__ import annotations

import os

import openai

from underdog.config import ModelSpec
from underdog.errors import ModelError, redact, register_secret_env
from underdog.llm.base import OK, BackendBase, Reply, Request, RetryableError

NO_KEY = "not-needed"  # local servers (vLLM, Ollama, underdog serve) accept any key


def api_key(spec: ModelSpec) -> str:
    """The key from the environment variable named in the spec; never from the config file itself."""
    if not spec.api_key_env:
        return NO_KEY
    register_secret_env(spec.api_key_env)
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise ModelError(f"environment variable {spec.api_key_env} is not set (it should hold the API key)")
    return key


def retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header, when the server sent one."""
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None


def translate_error(exc: Exception, spec: ModelSpec) -> Exception:
    """Map an SDK exception to RetryableError (transient) or ModelError (fatal, one clear line)."""
    where = spec.base_url or "api.openai.com"
    if isinstance(exc, openai.RateLimitError):
        return RetryableError("HTTP 429 rate limited", retry_after(exc))
    if isinstance(exc, openai.APITimeoutError):
        return RetryableError(f"timed out waiting for {where}")
    if isinstance(exc, openai.APIConnectionError):
        return RetryableError(f"cannot reach {where} ({type(exc.__cause__ or exc).__name__})")
    if isinstance(exc, openai.AuthenticationError):
        hint = f"check {spec.api_key_env}" if spec.api_key_env else "set api_key_env in underdog.yaml"
        return ModelError(f"HTTP 401 unauthorized at {where}: {hint}")
    if isinstance(exc, openai.NotFoundError):
        return ModelError(f"HTTP 404 at {where}: model {spec.model!r} not found (or wrong base_url)")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code == 408:
            return RetryableError(f"HTTP {exc.status_code} server error", retry_after(exc))
        return ModelError(f"HTTP {exc.status_code} from {where}: {_short(redact(exc.message))}")
    if isinstance(exc, openai.APIResponseValidationError | ValueError | KeyError | IndexError | TypeError):
        return RetryableError(f"malformed reply from {where}")
    return exc


class OpenAIBackend(BackendBase):
    """Chat completions against any OpenAI-compatible `base_url`."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self._client: openai.AsyncOpenAI | None = None

    def make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.spec.base_url, api_key=api_key(self.spec), max_retries=0,
                                  timeout=self.spec.timeout_s)

    def check(self, timeout_s: float) -> str:
        """List the server's models: cheap, and it exercises the URL, the key and (Azure) the api_version."""
        client = self.make_client().with_options(timeout=timeout_s)

        async def probe() -> str:
            try:
                await client.models.list()
                return OK
            except Exception as exc:  # noqa: BLE001 - the reason is the answer
                return str(translate_error(exc, self.spec))
            finally:
                await client.close()

        import asyncio

        return asyncio.run(probe())

    async def complete(self, request: Request) -> Reply:
        self._client = self._client or self.make_client()
        params = request.params
        kwargs = {
            "model": self.spec.model, "messages": request.messages, "temperature": params.temperature,
            "top_p": params.top_p, "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.stop:
            kwargs["stop"] = params.stop
        if request.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        try:
            # The SDK's low-level post skips its per-field request transformation and, with a plain dict as
            # the result type, the pydantic model construction: together ~1 ms of CPU per request, the
            # bottleneck at high concurrency. Errors, auth, retries-off and Azure paths stay the SDK's.
            response = await self._client.post("/chat/completions", body=kwargs, cast_to=dict)
            choice = response["choices"][0]
            text = choice["message"].get("content") or ""
        except Exception as exc:  # noqa: BLE001 - translated into our two kinds
            raise translate_error(exc, self.spec) from None
        usage = response.get("usage") or {}
        return Reply(text=text, input_tokens=usage.get("prompt_tokens") or 0,
                     output_tokens=usage.get("completion_tokens") or 0, finish_reason=choice.get("finish_reason"))


class AzureOpenAIBackend(OpenAIBackend):
    """Azure OpenAI: `base_url` is the resource endpoint, `model` the deployment name."""

    def make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncAzureOpenAI(azure_endpoint=self.spec.base_url, api_version=self.spec.api_version,
                                       api_key=api_key(self.spec), max_retries=0, timeout=self.spec.timeout_s)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
