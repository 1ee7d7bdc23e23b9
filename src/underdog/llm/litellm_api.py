"""Providers without an OpenAI-compatible endpoint (Bedrock Converse, Anthropic, Gemini, Vertex) via litellm.

Optional: `pip install 'underdog[litellm]'`. `model` uses litellm's names, e.g.
`bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0`, `anthropic/claude-sonnet-4-5`, `gemini/gemini-2.0-flash`.
litellm's exceptions subclass the openai SDK's, so errors are translated the same way. `seed` and `stop` are
sent to every model that litellm says takes them (it raises for the others, so they are left out there).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # its bundled prices: no download at import
import litellm  # noqa: E402

from underdog.config import ModelSpec
from underdog.llm.base import BackendBase, Reply, Request
from underdog.llm.openai_api import api_key, translate_error


class LiteLLMBackend(BackendBase):
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self._params: set[str] | None = None

    def _supported(self) -> set[str]:
        """The OpenAI parameters litellm maps for this model."""
        if self._params is None:
            try:
                self._params = set(litellm.get_supported_openai_params(model=self.spec.model) or [])
            except Exception:  # noqa: BLE001 - an unknown model: send only the basics
                self._params = set()
        return self._params

    async def complete(self, request: Request) -> Reply:
        kwargs = {
            "model": self.spec.model, "messages": request.messages, "temperature": request.params.temperature,
            "top_p": request.params.top_p, "max_tokens": request.params.max_tokens, "num_retries": 0,
        }
        takes = self._supported()
        if request.params.seed is not None and "seed" in takes:
            kwargs["seed"] = request.params.seed
        if request.params.stop and "stop" in takes:
            kwargs["stop"] = request.params.stop
        if self.spec.base_url:
            kwargs["api_base"] = self.spec.base_url
        if self.spec.api_key_env or self.spec.base_url:  # else litellm reads the provider's own variables
            kwargs["api_key"] = api_key(self.spec)
        if request.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self.spec) from None
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return Reply(text=choice.message.content or "", finish_reason=choice.finish_reason,
                     input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                     output_tokens=getattr(usage, "completion_tokens", 0) or 0)
