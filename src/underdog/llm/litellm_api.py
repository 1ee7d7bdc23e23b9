"""Providers without an OpenAI-compatible endpoint (Bedrock Converse, Anthropic, Gemini, Vertex) via litellm.

Optional: `pip install 'underdog[litellm]'`. `model` uses litellm's names, e.g.
`bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0`, `anthropic/claude-sonnet-4-5`, `gemini/gemini-2.0-flash`.
litellm's exceptions subclass the openai SDK's, so errors are translated the same way.
"""

from __future__ import annotations

import litellm

from underdog.config import ModelSpec
from underdog.llm.base import Reply, Request
from underdog.llm.openai_api import api_key, translate_error


class LiteLLMBackend:
    def __init__(self, spec: ModelSpec):
        self.spec = spec

    async def complete(self, request: Request) -> Reply:
        kwargs = {
            "model": self.spec.model, "messages": request.messages, "temperature": request.params.temperature,
            "top_p": request.params.top_p, "max_tokens": request.params.max_tokens, "num_retries": 0,
        }
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
