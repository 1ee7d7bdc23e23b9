"""The one call path every model request goes through.

    llm = LLM(spec, store=project.store, role="teacher", stage="generate")
    reply = llm.chat("What permits does a food truck need?")
    replies = llm.batch([[{"role": "user", "content": q}] for q in questions], progress="answers")

Order of work per request: system prompt -> in-flight merge -> cache lookup -> concurrency slot -> budget check
-> pending row (committed before the call is sent) -> rate limit -> backend call with timeout -> retries with
exponential backoff (honouring Retry-After) -> cache write with its usage-log row, deleting the pending row in the
same transaction. A request identical to one already in flight (same cache key) waits for that one's reply
instead of making its own call. Cache reads and writes run on the store's worker thread in batches, off the
event loop; a reply is reported only once its cache write has committed, so a crashed or interrupted batch
resumes without paying twice. The calls a killed process had in flight keep their pending rows: budgets count
them as possibly paid, and `underdog usage` lists them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from underdog.config import ModelSpec
from underdog.errors import BudgetExceeded, ModelError, UnderdogError, redact
from underdog.llm.base import Message, Reply, Request, RetryableError
from underdog.llm.identity import cache_key, model_identity
from underdog.llm.runtime import Runtime, default_runtime
from underdog.progress import SILENT, Reporter
from underdog.store import Store, this_process

Prompt = str | Sequence[Message]
_PENDING_IDS = itertools.count()  # with this_process(), a pending row's id

class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart."""

    def __init__(self, requests_per_minute: float | None):
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        if not self.interval:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class LLM:
    """One configured model behind the shared call path. Cheap to create; backends are shared."""

    def __init__(self, spec: ModelSpec, store: Store | None = None, *, role: str | None = None,
                 stage: str | None = None, budget_usd: float | None = None,
                 stage_budget_usd: float | None = None, reporter: Reporter = SILENT, runtime: Runtime | None = None):
        self.spec = spec
        self.reporter = reporter
        self.runtime = runtime or default_runtime()
        self.store = store
        self.role = role
        self.stage = stage
        self.budget_usd = budget_usd
        self.stage_budget_usd = stage_budget_usd
        self.name = f"{spec.provider}:{spec.model}" + (f"+{spec.adapter}" if spec.adapter else "")
        self._identity = model_identity(spec)  # adapter weights hashed once per LLM
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter = RateLimiter(spec.requests_per_minute)
        self._reserved_usd = 0.0  # estimated cost of calls in flight, counted against budgets
        self.http_calls = 0  # uncached backend calls made by this object (tests and benchmarks read it)

    @property
    def backend(self) -> Any:
        return self.runtime.backend(self.spec)

    # -- public API -------------------------------------------------------------------------------------------
    def chat(self, prompt: Prompt, **params: Any) -> Reply:
        """One completion; raises ModelError when it fails for good."""
        return self.batch([prompt], errors="raise", **params)[0]

    def batch(self, prompts: Sequence[Prompt], *, errors: str = "raise", progress: str | None = None,
              json_mode: bool = False, samples: Sequence[int] | None = None, **params: Any) -> list[Reply]:
        """Completions for many prompts, concurrently (API) or batched (local). See `abatch`."""
        return self.runtime.run(self.abatch(prompts, errors=errors, progress=progress, json_mode=json_mode,
                                    samples=samples, **params))

    def score(self, prompts: Sequence[Prompt], options: Sequence[str], *, progress: str | None = None
              ) -> list[list[float]]:
        """For each prompt, the log-probability of each option as the reply (a local judge's verdict without
        parsing text), through the same cache, log and retries as completions. Raises ModelError when the
        backend cannot score."""
        if not self.backend.can_score:
            raise ModelError(f"{self.label} cannot score options (provider {self.spec.provider})")
        replies = self.runtime.run(self.abatch(prompts, progress=progress, options=tuple(options)))
        return [r.scores or [] for r in replies]

    async def achat(self, prompt: Prompt, **params: Any) -> Reply:
        return (await self.abatch([prompt], errors="raise", **params))[0]

    async def abatch(self, prompts: Sequence[Prompt], *, errors: str = "raise", progress: str | None = None,
                     json_mode: bool = False, samples: Sequence[int] | None = None,
                     options: tuple[str, ...] | None = None, **params: Any) -> list[Reply]:
        """Completions for many prompts, in order.

        Args:
            errors: "raise" re-raises the first failure after every other request finished (their replies
                are cached either way); "return" puts the message in `Reply.error` instead.
            progress: a label to report progress under (to this LLM's reporter: a bar in the CLI).
            json_mode: ask the server for a JSON object (where supported).
            samples: per-prompt sample index (best-of-n), so identical prompts get distinct cached replies.
            options: score these options instead of generating (see `score`).
            params: overrides of the spec's generation params (temperature, top_p, max_tokens, seed, stop).
        """
        gen = self.spec.with_params(**params).params
        requests = [Request(self._messages(p), gen, json_mode, samples[i] if samples else 0, options)
                    for i, p in enumerate(prompts)]
        reporter = self.reporter if progress else SILENT
        with reporter.task(progress or "", len(requests)) as task:

            async def one(request: Request) -> Reply:
                try:
                    return await self._call(request)
                finally:
                    task.advance()

            results = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
        replies = []
        for result in results:
            if isinstance(result, BaseException):
                if errors == "raise" or isinstance(result, BudgetExceeded) or not isinstance(result, Exception):
                    raise result
                result = Reply(text="", error=str(result))
            replies.append(result)
        return replies

    # -- the call path --------------------------------------------------------------------------------------
    def _messages(self, prompt: Prompt) -> list[Message]:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        if self.spec.system_prompt and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.spec.system_prompt})
        return messages

    def cache_key(self, request: Request) -> str:
        """The reply cache's key of `request` to this model (llm/identity.py)."""
        return cache_key(self._identity, request)

    async def _call(self, request: Request) -> Reply:
        key = self.cache_key(request)
        in_flight = self.runtime.in_flight
        flight = (id(self.store), key)
        if (leader := in_flight.get(flight)) is not None:
            reply = Reply(**(await asyncio.shield(leader)).to_cache(), cached=True)
            await self._log(key, reply)
            return reply
        in_flight[flight] = future = asyncio.get_running_loop().create_future()
        try:
            reply = await self._lookup_or_call(request, key)
        except BaseException as exc:
            _settle(future, exc)
            raise
        finally:
            del in_flight[flight]  # after the cache write committed: a later identical request hits the cache
        future.set_result(reply)
        return reply

    async def _lookup_or_call(self, request: Request, key: str) -> Reply:
        if self.store is not None and (hit := await asyncio.wrap_future(self.store.worker.get(key))) is not None:
            reply = Reply(**hit, cached=True)
            await self._log(key, reply)
            return reply
        self._semaphore = self._semaphore or asyncio.Semaphore(self.spec.concurrency)
        estimate = 0.0
        try:
            async with self._semaphore:
                estimate = self._check_budget(request)
                self._reserved_usd += estimate
                pending = await self._announce(key, estimate)
                try:
                    reply = await self._call_with_retries(request, key)
                except Exception:
                    await self._settle(pending)  # failed for good (and logged): nothing to pay
                    raise
            reply.cost_usd = self._cost(reply)
            if self.store is not None:
                await asyncio.wrap_future(self.store.worker.put(
                    key, self.spec.provider, self.spec.model, request.key_fields(), reply.to_cache(),
                    log=self._log_fields(key, reply), pending=pending))
        finally:
            self._reserved_usd -= estimate  # only once the cost is in the store's spend (or the call failed)
        return reply

    async def _announce(self, key: str, estimate: float) -> str | None:
        """Record that this call is about to be sent (a pending row, committed before it is): if this process
        dies before its reply is recorded, the call counts as possibly paid (`Store.spending`). Its id."""
        if self.store is None:
            return None
        pending = f"{this_process()}-{next(_PENDING_IDS)}"
        await asyncio.wrap_future(self.store.worker.announce({
            "id": pending, "time": time.time(), "process": this_process(), "pid": os.getpid(), "stage": self.stage,
            "role": self.role, "provider": self.spec.provider, "model": self.name, "cache_key": key,
            "estimate_usd": estimate}))
        return pending

    async def _settle(self, pending: str | None) -> None:
        if self.store is not None and pending is not None:
            await asyncio.wrap_future(self.store.worker.settle(pending))

    async def _call_with_retries(self, request: Request, key: str) -> Reply:
        attempts = self.spec.max_retries + 1
        for attempt in range(attempts):
            await self._limiter.wait()
            started = time.perf_counter()
            try:
                self.http_calls += 1
                async with asyncio.timeout(self._timeout_s):  # no extra task per call, unlike wait_for
                    reply = await (self.backend.score(request) if request.options else self.backend.complete(request))
                reply.latency_s = time.perf_counter() - started
                return reply
            except (RetryableError, TimeoutError) as exc:
                reason = str(exc) or f"no reply within {self.spec.timeout_s:g} s"
                if attempt + 1 == attempts:
                    await self._log(key, Reply(text="", latency_s=time.perf_counter() - started), error=reason)
                    raise ModelError(redact(f"{self.label}: {reason} (gave up after {attempts} attempts)")) from None
                retry_after = getattr(exc, "retry_after", None)
                backoff = min(0.5 * 2**attempt, 30.0) * (0.5 + random.random() / 2)
                await asyncio.sleep(retry_after if retry_after is not None else backoff)
            except UnderdogError as exc:
                await self._log(key, Reply(text=""), error=str(exc))
                raise type(exc)(redact(f"{self.label}: {exc}")) from None
        raise AssertionError("unreachable")

    @property
    def _timeout_s(self) -> float | None:
        """No timeout for backends that queue requests for batching: waiting in the queue is not a hang."""
        return None if self.backend.queues_requests else self.spec.timeout_s

    @property
    def label(self) -> str:
        return f"{self.role} ({self.name})" if self.role else self.name

    def _cost(self, reply: Reply) -> float:
        return (reply.input_tokens * (self.spec.price_per_1m_input or 0.0)
                + reply.output_tokens * (self.spec.price_per_1m_output or 0.0)) / 1e6

    def _check_budget(self, request: Request) -> float:
        """Refuse a call that could push spending past a budget; return its cost estimate (an upper bound:
        ~3 characters per token + 4 per message, and the full max_tokens)."""
        if self.store is None or not (self.spec.price_per_1m_input or self.spec.price_per_1m_output):
            return 0.0
        tokens_in = sum(len(m["content"]) // 3 + 4 for m in request.messages)
        estimate = self._cost(Reply(text="", input_tokens=tokens_in, output_tokens=request.params.max_tokens))
        for limit, scope in ((self.stage_budget_usd, self.stage), (self.budget_usd, None)):
            if limit is None:
                continue
            paid, possibly = self.store.spending(scope)
            spent = paid + possibly + self._reserved_usd
            if spent + estimate > limit:
                where = f"stage '{scope}'" if scope else "the project"
                maybe = f", up to ${possibly:.4f} of it possibly paid by calls a stopped process sent and never " \
                    "recorded (`underdog usage`)" if possibly else ""
                raise BudgetExceeded(
                    f"{where} would exceed its budget of ${limit:.2f} (spent ${spent:.4f}{maybe}, next call up to "
                    f"${estimate:.4f}); raise the budget in underdog.yaml to continue — finished work is kept"
                )
        return estimate

    async def _log(self, key: str, reply: Reply, error: str | None = None) -> None:
        if self.store is not None:
            await asyncio.wrap_future(self.store.worker.log(**self._log_fields(key, reply, error)))

    def _log_fields(self, key: str, reply: Reply, error: str | None = None) -> dict[str, Any]:
        return {"stage": self.stage, "role": self.role, "provider": self.spec.provider, "model": self.name,
                "cache_key": key, "cached": int(reply.cached), "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens, "latency_s": reply.latency_s,
                "cost_usd": 0.0 if reply.cached else reply.cost_usd, "error": redact(error) if error else None}


def _settle(future: asyncio.Future[Reply], exc: BaseException) -> None:
    """Hand a leader's failure to the requests waiting on it (and mark it seen, so none is left unretrieved)."""
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
        return
    future.set_exception(exc)
    future.exception()
