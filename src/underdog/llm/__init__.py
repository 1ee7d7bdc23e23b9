"""Models behind one small interface: `LLM(spec).chat(...)` / `.batch(...)` / `await .abatch(...)`.

Backends (local transformers, OpenAI-compatible APIs, Azure, litellm) implement `Backend.complete`; the shared
call path in `caller.py` adds caching, concurrency, rate limits, retries, timeouts, usage logging and budgets.

    from underdog.llm import LLM, Backend, Reply, Request, RetryableError

A spec's identity (cache key, candidate id, judge identity) is in `identity.py`. Names are imported lazily
(`underdog.lazy`): importing the package loads nothing until a name is used.
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {"LLM": "caller", "Backend": "base", "Reply": "base", "Request": "base", "RetryableError": "base"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
