"""The project's SQLite database: the reply cache and call log here; each stage's tables in its own `store.py`.

The schema grows through append-only migrations, applied on every open in the order of `MIGRATIONS` and recorded
by function name in `_migrations`. The list's order, not the numbers in the names, is the order they run in
(m201 runs after m401: the numbers are the stage, the list is history). A stage's migration module is imported
only when a database that has not applied one of its migrations is opened. To change a schema, append a new
migration to the list; never edit, rename or reorder one that has shipped (databases record the names).
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple


class Step(NamedTuple):
    """One migration: the name recorded in `_migrations` and the `module:function` that applies it."""

    name: str
    target: str

    @classmethod
    def of(cls, target: str) -> Step:
        return cls(target.rpartition(":")[2], target)

    def load(self) -> Callable[[sqlite3.Connection], None]:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


# The schema's history, in the order it is applied.
MIGRATIONS: list[Step] = [Step.of(target) for target in (
    "underdog.store:m001_llm_cache",
    "underdog.store:m002_llm_calls",
    "underdog.data.store:m101_data_checkpoints",
    "underdog.evaluate.store:m301_evaluate",
    "underdog.arena.store:m401_arena",
    "underdog.train.store:m201_train_runs",
    "underdog.train.store:m202_train_metrics",
    "underdog.evaluate.store:m302_judge_configs",
    "underdog.arena.store:m402_arena_invites",
    "underdog.train.store:m203_train_preferences",
    "underdog.arena.store:m403_arena_vote_texts",
    "underdog.evaluate.store:m303_people_and_calibrations",
    "underdog.store:m003_llm_pending",
)]


def m001_llm_cache(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY, provider TEXT, model TEXT,
            request TEXT NOT NULL, reply TEXT NOT NULL, created REAL NOT NULL)"""
    )


def m002_llm_calls(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY, time REAL NOT NULL, stage TEXT, role TEXT, provider TEXT, model TEXT,
            cache_key TEXT, cached INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
            latency_s REAL, cost_usd REAL, error TEXT)"""
    )
    db.execute("CREATE INDEX llm_calls_stage ON llm_calls(stage, model)")


def m003_llm_pending(db: sqlite3.Connection) -> None:
    """Calls sent and not yet recorded: a row is written before a call is sent and deleted in the transaction
    that records its reply (or its failure). A row left by a process that is gone (kill -9, a crash) is a call
    that may have been paid for: `spent_usd` counts its estimate, `underdog usage` shows it."""
    db.execute(
        """CREATE TABLE llm_pending (
            id TEXT PRIMARY KEY, time REAL NOT NULL, process TEXT NOT NULL, pid INTEGER NOT NULL, stage TEXT,
            role TEXT, provider TEXT, model TEXT, cache_key TEXT, estimate_usd REAL NOT NULL)"""
    )


PENDING_COLUMNS = ("id", "time", "process", "pid", "stage", "role", "provider", "model", "cache_key",
                   "estimate_usd")


def this_process() -> str:
    """This process's name in `llm_pending`: its pid and a random tag (a later process may reuse the pid)."""
    pid = os.getpid()
    return _PROCESS.setdefault(pid, f"{pid}-{secrets.token_hex(4)}")


_PROCESS: dict[int, str] = {}


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def insert_sql(table: str, columns: Sequence[str], verb: str = "INSERT") -> str:
    """`INSERT INTO table (a, b) VALUES (:a, :b)` for rows given as dicts: adding a column breaks no caller."""
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"


def in_chunks(keys: Sequence[str], size: int = 500) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(`?, ?, ...` placeholders, keys) per chunk of `keys`, under SQLite's limit on parameters per statement."""
    for start in range(0, len(keys), size):
        chunk = tuple(keys[start:start + size])
        yield ", ".join("?" * len(chunk)), chunk


class Store:
    """A thread-safe handle on one SQLite file (WAL mode). Use `":memory:"` for tests."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self._migrate()
        self._worker: CacheWorker | None = None

    @property
    def worker(self) -> CacheWorker:
        """The thread that does the call path's cache reads, cache writes and call log in batches."""
        with self._lock:
            if self._worker is None:
                self._worker = CacheWorker(self)
            return self._worker

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
            done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
            for step in MIGRATIONS:
                if step.name not in done:
                    step.load()(db)
                    db.execute("INSERT INTO _migrations (name, applied) VALUES (?, ?)", (step.name, time.time()))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.db.execute(sql, params)

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def columns(self, table: str) -> list[str]:
        return [row["name"] for row in self.query(f"PRAGMA table_info({table})")]

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        with self._lock:
            self.db.close()

    # -- reply cache -------------------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.query("SELECT reply FROM llm_cache WHERE key = ?", (key,))
        return json.loads(row[0]["reply"]) if row else None

    def cache_get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The cached replies among `keys` (one query per 500 keys)."""
        found = {}
        for marks, chunk in in_chunks(keys):
            rows = self.query(f"SELECT key, reply FROM llm_cache WHERE key IN ({marks})", chunk)
            found.update({row["key"]: json.loads(row["reply"]) for row in rows})
        return found

    def cache_put(self, key: str, provider: str, model: str, request: dict, reply: dict) -> None:
        self.execute(CACHE_PUT, (key, provider, model, json.dumps(request), json.dumps(reply), time.time()))

    # -- call log ----------------------------------------------------------------------------------------
    def log_call(self, **fields: Any) -> None:
        self.execute(*_log_statement(fields))

    def spent_usd(self, stage: str | None = None) -> float:
        """Dollars paid (in `stage`, else in all), counting calls possibly paid (see `spending`)."""
        return sum(self.spending(stage))

    def spending(self, stage: str | None = None) -> tuple[float, float]:
        """(dollars paid, dollars possibly paid): the estimates (upper bounds) of calls another process sent and
        never recorded, most likely because it was killed while they were in flight."""
        scope = " AND stage = :stage" if stage else ""
        row = self.query(f"""SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM llm_calls WHERE cached = 0{scope}),
                                    (SELECT COALESCE(SUM(estimate_usd), 0) FROM llm_pending
                                     WHERE process != :process{scope})""",
                         {"stage": stage, "process": this_process()})[0]
        return float(row[0]), float(row[1])

    def pending_calls(self) -> list[dict[str, Any]]:
        """Calls sent and never recorded, per process, stage and model: {pid, alive, stage, model, calls,
        estimate_usd, since}. Those of a process that is gone were in flight when it died: possibly paid."""
        rows = self.query(
            """SELECT pid, stage, model, COUNT(*) AS calls, SUM(estimate_usd) AS estimate_usd, MIN(time) AS since
               FROM llm_pending GROUP BY process, stage, model ORDER BY since, stage, model""")
        return [dict(row) | {"alive": process_alive(row["pid"])} for row in rows]

    def usage(self) -> list[sqlite3.Row]:
        """Calls, cache hits, tokens, latency and cost per stage and model."""
        return self.query(
            """SELECT stage, model, COUNT(*) AS calls, SUM(cached) AS cached,
                      SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END) AS errors,
                      COALESCE(SUM(input_tokens), 0) AS input_tokens,
                      COALESCE(SUM(output_tokens), 0) AS output_tokens,
                      COALESCE(AVG(CASE WHEN cached = 0 THEN latency_s END), 0) AS mean_latency_s,
                      COALESCE(SUM(cost_usd), 0) AS cost_usd
               FROM llm_calls GROUP BY stage, model ORDER BY stage, model"""
        )

    def spend(self, since: float = 0.0) -> list[sqlite3.Row]:
        """stage, role, calls, paid (not cached) calls and dollars spent, per stage and role (calls made at or
        after `since`, epoch seconds)."""
        return self.query(
            """SELECT COALESCE(stage, '-') AS stage, COALESCE(role, '-') AS role, COUNT(*) AS calls,
                      SUM(1 - cached) AS paid, COALESCE(SUM(CASE WHEN cached = 0 THEN cost_usd END), 0) AS cost_usd
               FROM llm_calls WHERE time >= ? GROUP BY 1, 2 ORDER BY 1, 2""", (since,)
        )


CACHE_PUT = "INSERT OR REPLACE INTO llm_cache (key, provider, model, request, reply, created) VALUES (?, ?, ?, ?, ?, ?)"
PENDING_INSERT = insert_sql("llm_pending", PENDING_COLUMNS)


def _settled(pending: str | None) -> list[tuple[str, tuple]]:
    """The statement that deletes a call's pending row, if it has one."""
    return [("DELETE FROM llm_pending WHERE id = ?", (pending,))] if pending else []


def _log_statement(fields: dict[str, Any]) -> tuple[str, tuple]:
    fields.setdefault("time", time.time())
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    return f"INSERT INTO llm_calls ({names}) VALUES ({marks})", tuple(fields.values())


class CacheWorker:
    """Cache reads, cache writes and call-log rows done by one thread in batches, off the event loop.

    Each method returns a Future that completes once its batch is done: for a write, once the transaction that
    holds it has committed, so a caller that awaits it reports a paid reply only after it is durable (a kill -9
    afterwards loses nothing). Whatever queued while a batch ran goes into the next one: one query for all
    waiting reads, one transaction for all waiting writes.
    """

    def __init__(self, store: Store):
        self.store = store
        self._queue: queue.SimpleQueue[tuple[str, Any, Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="underdog-store", daemon=True)
        self._thread.start()

    def get(self, key: str) -> Future:
        """Future of the cached reply of `key` (a dict), or None."""
        return self._submit("get", key)

    def put(self, key: str, provider: str, model: str, request: dict, reply: dict, log: dict[str, Any],
            pending: str | None = None) -> Future:
        """Future done once the reply and its call-log row are committed together (and the call's `pending`
        row deleted in the same transaction)."""
        row = (key, provider, model, json.dumps(request), json.dumps(reply), time.time())
        return self._submit("write", [(CACHE_PUT, row), _log_statement(log), *_settled(pending)])

    def log(self, **fields: Any) -> Future:
        return self._submit("write", [_log_statement(fields)])

    def announce(self, pending: dict[str, Any]) -> Future:
        """Future done once a call's pending row (PENDING_COLUMNS) is committed: write it before sending."""
        return self._submit("write", [(PENDING_INSERT, pending)])

    def settle(self, pending: str) -> Future:
        """Future done once a call's pending row is deleted (the call failed for good: nothing to pay)."""
        return self._submit("write", _settled(pending))

    def write(self, statements: list[tuple[str, tuple | dict]]) -> Future:
        """Future done once these (sql, params) statements are committed together."""
        return self._submit("write", statements)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _submit(self, kind: str, payload: Any) -> Future:
        future: Future = Future()
        self._queue.put((kind, payload, future))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping and (item := self._queue.get()) is not None:
            batch = [item]
            while not self._queue.empty():
                if (more := self._queue.get()) is None:
                    stopping = True
                    break
                batch.append(more)
            self._do(batch)

    def _do(self, batch: list[tuple[str, Any, Future]]) -> None:
        reads = [(payload, future) for kind, payload, future in batch if kind == "get"]
        writes = [(payload, future) for kind, payload, future in batch if kind == "write"]
        for items, action in ((writes, self._write), (reads, self._read)):
            if not items:
                continue
            try:
                results = action([payload for payload, _ in items])
            except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
                for _, future in items:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(items, results, strict=True):
                future.set_result(result)

    def _read(self, keys: list[str]) -> list[dict[str, Any] | None]:
        found = self.store.cache_get_many(list(dict.fromkeys(keys)))
        return [found.get(key) for key in keys]

    def _write(self, statements: list[list[tuple[str, tuple | dict]]]) -> list[None]:
        with self.store.transaction() as db:
            for group in statements:
                for sql, params in group:
                    db.execute(sql, params)
        return [None] * len(statements)
