"""Where model calls run: an event loop on its own thread, the backends built so far, the requests in flight.

    runtime = Runtime()                       # a Project owns one: project.runtime
    runtime.run(llm.abatch(prompts))          # synchronous callers wait here for a coroutine on the loop
    runtime.backend(spec)                     # one backend per model identity (two roles on one model share it)
    runtime.close()                           # stop the loop, drop the backends (also when garbage-collected)

Loaded local weights are shared by every runtime of the process (llm/local.py keeps one base model per device
with its adapters attached), so a second project in one process does not load a model twice.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from underdog.config import ModelSpec
from underdog.llm.base import Backend, Reply
from underdog.llm.registry import create_backend

T = TypeVar("T")
BACKEND_IDENTITY = {"provider", "model", "base_url", "api_key_env", "api_version", "adapter", "device", "batch_size",
                    "timeout_s"}


class Runtime:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._backends: dict[str, Backend] = {}
        # requests in flight, by (store, cache key): an identical request waits for the first one's reply
        self.in_flight: dict[tuple[int, str], asyncio.Future[Reply]] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this runtime's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = _new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="underdog-llm-loop", daemon=True).start()
                weakref.finalize(self, _stop, self._loop)
            return self._loop

    def backend(self, spec: ModelSpec) -> Backend:
        identity = spec.model_dump_json(include=BACKEND_IDENTITY)
        with self._lock:
            if identity not in self._backends:
                self._backends[identity] = create_backend(spec)
            return self._backends[identity]

    def close(self) -> None:
        """Stop the loop (after what it is running) and forget the backends."""
        with self._lock:
            loop, self._loop = self._loop, None
            self._backends.clear()
        if loop is not None:
            _stop(loop)


def _stop(loop: asyncio.AbstractEventLoop) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (it comes with uvicorn[standard]): less CPU per request at high concurrency."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_default: Runtime | None = None


def default_runtime() -> Runtime:
    """The runtime of models built outside a project (`LLM(spec)` in a script or a test)."""
    global _default
    if _default is None:
        _default = Runtime()
    return _default
