"""Models behind one small interface: `LLM(spec).chat(...)` / `.batch(...)` / `await .abatch(...)`.

Backends (local transformers, OpenAI-compatible APIs, Azure, litellm) implement `Backend.complete`; the shared
call path in `caller.py` adds caching, concurrency, rate limits, retries, timeouts, usage logging and budgets.
"""

from underdog.llm.base import Backend, Reply, Request, RetryableError
from underdog.llm.caller import LLM

__all__ = ["LLM", "Backend", "Reply", "Request", "RetryableError"]
