"""Resumable teacher work: checkpoints in the store, one progress bar per phase, provenance, name checks.

    checkpoint = Checkpoint(project.store, "generate:base:ab12")
    results = run_checkpointed(llm, {"key": prompt, ...}, checkpoint, "answers", handle=lambda key, reply: ...)
    stream = Stream(llm, checkpoint, "questions and answers", total=700)   # calls that start further calls
    stream.run(main())   # main() awaits stream.ask(key, prompt, handle), e.g. an answer as soon as its question

Each reply is handled and its result written to the checkpoint the moment it arrives; a killed run re-runs only
the keys without a result (and the LLM reply cache makes even those free when their reply had already
arrived). Calls that failed for good are not checkpointed, so the next run retries them;
`checkpoint.raise_if_failed()` stops a command before it writes a dataset with holes (unless allowed).
`Checkpoint.clear()` after the dataset version is saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from underdog.data import store as tables
from underdog.data.prompts import PROMPT_VERSION
from underdog.errors import UnderdogError
from underdog.layout import MANIFEST_FILE, Layout
from underdog.llm import LLM
from underdog.llm.base import Reply
from underdog.llm.caller import Prompt
from underdog.progress import NoTask, Task
from underdog.store import Store

T = TypeVar("T")


class Checkpoint:
    """Key -> JSON value of finished work for one job, kept in the project's store."""

    def __init__(self, store: Store, job: str):
        self.store = store
        self.job = job
        self.failures: dict[str, str] = {}  # key -> error of calls that failed for good in this run

    def raise_if_failed(self, allow: bool = False) -> None:
        """Stop before writing a dataset with holes, unless told to (`--skip-failed`)."""
        if self.failures and not allow:
            first = next(iter(self.failures.values()))
            raise UnderdogError(f"{len(self.failures)} teacher call(s) failed (first: {first}); finished work is "
                                "kept: run the same command again to retry them, or add --skip-failed to write "
                                "the dataset without them")

    def done(self) -> dict[str, Any]:
        return tables.checkpoints(self.store, self.job)

    def put_many(self, items: dict[str, Any]) -> None:
        tables.put_checkpoints(self.store, self.job, items)

    async def aput(self, key: str, value: Any) -> None:
        """`put_many({key: value})` through the store's worker thread (batched, off the event loop)."""
        row = tables.checkpoint_row(self.job, key, value)
        await asyncio.wrap_future(self.store.worker.write([(tables.PUT_CHECKPOINT, row)]))

    def clear(self) -> None:
        tables.clear_checkpoints(self.store, self.job)


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def check_new_name(root: Path, name: str) -> str:
    """`name` if it is a valid, unused dataset version name; else a one-line error before any paid call."""
    if not NAME.match(name):
        raise UnderdogError(f"dataset name {name!r}: use letters, digits and . _ + - (e.g. base+refusals)")
    if (Layout(root).dataset_dir(name) / MANIFEST_FILE).exists():
        raise UnderdogError(f"dataset {name!r} already exists (versions are immutable; pick another --name)")
    return name


def fingerprint(recipe: Any) -> str:
    """A short stable hash of a recipe (so a changed recipe starts a fresh checkpoint)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_checkpointed(llm: LLM, prompts: dict[str, Prompt], checkpoint: Checkpoint, label: str,
                     handle: Callable[[str, Reply], Any], **params: Any) -> dict[str, Any]:
    """`handle(key, reply)` for every prompt not yet in the checkpoint; returns all results (old and new).

    All requests go out together through the shared call path (concurrent for APIs, gathered into batches for
    local models); each result is checkpointed the moment its reply arrives, and the bar advances per reply.
    """
    stream = Stream(llm, checkpoint, label, len(prompts))
    results = stream.run(gather_all(stream.ask(key, prompt, handle, **params) for key, prompt in prompts.items()))
    return dict(zip(prompts, results, strict=True))


class Stream:
    """Checkpointed calls that can start further calls as their replies arrive (pipelining), all through the
    LLM's one concurrency limit: e.g. each question is answered as soon as it exists, not after the last one.

    `ask` returns a key's checkpointed result without a call, or calls, handles the reply, and checkpoints the
    result (not a failure: the next run retries it) before returning it.
    """

    def __init__(self, llm: LLM, checkpoint: Checkpoint, label: str, total: int):
        self.llm = llm
        self.checkpoint = checkpoint
        self.done = checkpoint.done()
        self.label, self.total = label, total
        self.task: Task = NoTask()

    async def ask(self, key: str, prompt: Prompt, handle: Callable[[str, Reply], Any], **params: Any) -> Any:
        if key not in self.done:
            reply = (await self.llm.abatch([prompt], errors="return", **params))[0]
            result = handle(key, reply)
            if reply.error:
                self.checkpoint.failures[key] = reply.error
            else:
                await self.checkpoint.aput(key, result)
                self.done[key] = result
        else:
            result = self.done[key]
        self.task.advance()
        return result

    def expect(self, more: int) -> None:
        """Raise the bar's total by `more` calls found to be needed on the way."""
        if more:
            self.task.grow(more)

    def run(self, work: Awaitable[T]) -> T:
        """Run `work` (a coroutine using `ask`) on the shared loop, reporting progress to the LLM's reporter."""
        with self.llm.reporter.task(self.label, self.total) as self.task:
            return self.llm.runtime.run(work)


async def gather_all(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """Results in order; the first exception (e.g. BudgetExceeded) is raised once every other one finished."""
    outcomes = await asyncio.gather(*coroutines, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


def provenance(llm: LLM | None, source: str, **fields: Any) -> dict[str, Any]:
    """The `meta` every example carries: where it came from, which teacher and prompt version, when."""
    meta = {"source": source, "teacher": llm.name if llm else None, "prompt_version": PROMPT_VERSION,
            "created": round(time.time(), 3)}
    return {**meta, **{k: v for k, v in fields.items() if v is not None}}
