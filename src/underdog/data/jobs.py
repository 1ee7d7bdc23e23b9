"""Resumable teacher work: checkpoints in the store, one progress bar per phase, provenance, name checks.

    checkpoint = Checkpoint(project.store, "generate:base:ab12")
    results = run_checkpointed(llm, {"key": prompt, ...}, checkpoint, "answers", handle=lambda key, reply: ...)

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
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from underdog.data.dataset import MANIFEST_FILE, dataset_dir
from underdog.data.prompts import PROMPT_VERSION
from underdog.errors import UnderdogError
from underdog.llm import LLM
from underdog.llm.base import Reply
from underdog.llm.caller import Prompt, progress_bar, run_sync
from underdog.store import Store


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
        rows = self.store.query("SELECT key, value FROM data_checkpoints WHERE job = ?", (self.job,))
        return {row["key"]: json.loads(row["value"]) for row in rows}

    def put_many(self, items: dict[str, Any]) -> None:
        with self.store.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO data_checkpoints VALUES (?, ?, ?, ?)",
                           [(self.job, k, json.dumps(v), time.time()) for k, v in items.items()])

    def clear(self) -> None:
        self.store.execute("DELETE FROM data_checkpoints WHERE job = ?", (self.job,))


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def check_new_name(root: Path, name: str) -> str:
    """`name` if it is a valid, unused dataset version name; else a one-line error before any paid call."""
    if not NAME.match(name):
        raise UnderdogError(f"dataset name {name!r}: use letters, digits and . _ + - (e.g. base+refusals)")
    if (dataset_dir(root, name) / MANIFEST_FILE).exists():
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
    results = checkpoint.done()
    todo = [k for k in prompts if k not in results]

    bar = progress_bar(label, len(prompts))
    task = bar.add_task(label, total=len(prompts), completed=len(prompts) - len(todo)) if bar else None

    async def one(key: str) -> None:
        reply = (await llm.abatch([prompts[key]], errors="return", **params))[0]
        results[key] = handle(key, reply)
        if reply.error:
            checkpoint.failures[key] = reply.error  # not checkpointed: the next run retries it
        else:
            checkpoint.put_many({key: results[key]})
        if bar:
            bar.advance(task)

    async def run_all() -> None:
        outcomes = await asyncio.gather(*(one(k) for k in todo), return_exceptions=True)
        for outcome in outcomes:  # e.g. BudgetExceeded: raised once every other request has finished
            if isinstance(outcome, BaseException):
                raise outcome

    with bar or nullcontext():
        if todo:
            run_sync(run_all())
    return {k: results[k] for k in prompts}


def provenance(llm: LLM | None, source: str, **fields: Any) -> dict[str, Any]:
    """The `meta` every example carries: where it came from, which teacher and prompt version, when."""
    meta = {"source": source, "teacher": llm.name if llm else None, "prompt_version": PROMPT_VERSION,
            "created": round(time.time(), 3)}
    return {**meta, **{k: v for k, v in fields.items() if v is not None}}
