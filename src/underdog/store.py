"""The project's SQLite database: reply cache, call log, and (later stages) runs, metrics, judgments, votes.

The schema grows through append-only, named migrations recorded in `_migrations` and applied on every open.
Later stages add their tables by appending to `MIGRATIONS`; never edit a migration that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration, named after the function."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_llm_cache(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY, provider TEXT, model TEXT,
            request TEXT NOT NULL, reply TEXT NOT NULL, created REAL NOT NULL)"""
    )


@migration
def m002_llm_calls(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY, time REAL NOT NULL, stage TEXT, role TEXT, provider TEXT, model TEXT,
            cache_key TEXT, cached INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
            latency_s REAL, cost_usd REAL, error TEXT)"""
    )
    db.execute("CREATE INDEX llm_calls_stage ON llm_calls(stage, model)")


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

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
            done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(db)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))

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
        with self._lock:
            self.db.close()

    # -- reply cache -------------------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.query("SELECT reply FROM llm_cache WHERE key = ?", (key,))
        return json.loads(row[0]["reply"]) if row else None

    def cache_put(self, key: str, provider: str, model: str, request: dict, reply: dict) -> None:
        self.execute(
            "INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?, ?, ?, ?)",
            (key, provider, model, json.dumps(request), json.dumps(reply), time.time()),
        )

    # -- call log ----------------------------------------------------------------------------------------
    def log_call(self, **fields: Any) -> None:
        fields.setdefault("time", time.time())
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        self.execute(f"INSERT INTO llm_calls ({names}) VALUES ({marks})", tuple(fields.values()))

    def spent_usd(self, stage: str | None = None) -> float:
        sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM llm_calls WHERE cached = 0"
        rows = self.query(sql + " AND stage = ?", (stage,)) if stage else self.query(sql)
        return float(rows[0][0])

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


@migration
def m101_data_checkpoints(db: sqlite3.Connection) -> None:
    """Finished work of an interrupted data job (e.g. `generate`), so a re-run continues where it stopped."""
    db.execute(
        """CREATE TABLE data_checkpoints (
            job TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (job, key))"""
    )


@migration
def m301_evaluate(db: sqlite3.Connection) -> None:
    """Answers of each candidate on each eval set, the judge's verdict cache, and every judging run."""
    db.execute(
        """CREATE TABLE answers (
            candidate_id TEXT NOT NULL, evalset TEXT NOT NULL, question_id TEXT NOT NULL, candidate TEXT,
            model TEXT, adapter TEXT, system_prompt TEXT, temperature REAL, top_p REAL, max_tokens INTEGER,
            question TEXT NOT NULL, answer TEXT NOT NULL, output_tokens INTEGER, error TEXT, created REAL NOT NULL,
            PRIMARY KEY (candidate_id, evalset, question_id))"""
    )
    db.execute(
        """CREATE TABLE judge_cache (
            key TEXT PRIMARY KEY, judge TEXT NOT NULL, verdict TEXT NOT NULL, scores TEXT, raw TEXT, error TEXT,
            created REAL NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE judge_results (
            id INTEGER PRIMARY KEY, created REAL NOT NULL, evalset TEXT NOT NULL,
            candidate TEXT NOT NULL, candidate_id TEXT NOT NULL, reference TEXT NOT NULL, reference_id TEXT NOT NULL,
            judges TEXT NOT NULL, rubric TEXT NOT NULL, n INTEGER, wins INTEGER, ties INTEGER, losses INTEGER,
            errors INTEGER, win_rate REAL, ci_low REAL, ci_high REAL, tie_share REAL, consistency REAL,
            mean_len_candidate REAL, mean_len_reference REAL, lc_win_rate REAL)"""
    )
    db.execute("CREATE INDEX judge_results_candidate ON judge_results(candidate, reference, evalset)")
    db.execute(
        """CREATE TABLE judgments (
            result_id INTEGER NOT NULL REFERENCES judge_results(id), question_id TEXT NOT NULL,
            judge TEXT NOT NULL, judge_order TEXT NOT NULL, verdict TEXT NOT NULL, winner TEXT NOT NULL,
            cache_key TEXT NOT NULL, cached INTEGER NOT NULL, error TEXT)"""
    )
    db.execute("CREATE INDEX judgments_result ON judgments(result_id, question_id)")


@migration
def m401_arena(db: sqlite3.Connection) -> None:
    """Blind voting arena: the answers shown, voters (audience or judge), open ballots, votes, LLM verdicts."""
    db.execute(
        """CREATE TABLE arena_items (
            question_id TEXT NOT NULL, candidate TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
            source TEXT, created REAL NOT NULL, PRIMARY KEY (question_id, candidate))"""
    )
    db.execute(
        """CREATE TABLE arena_voters (
            id TEXT PRIMARY KEY, csrf TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('audience', 'judge')),
            created REAL NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE arena_ballots (
            id TEXT PRIMARY KEY, voter_id TEXT NOT NULL REFERENCES arena_voters(id), question_id TEXT NOT NULL,
            shown_a TEXT NOT NULL, shown_b TEXT NOT NULL, created REAL NOT NULL)"""
    )
    db.execute("CREATE INDEX arena_ballots_voter ON arena_ballots(voter_id)")
    db.execute(
        """CREATE TABLE arena_votes (
            id INTEGER PRIMARY KEY, voter_id TEXT NOT NULL REFERENCES arena_voters(id), role TEXT NOT NULL,
            question_id TEXT NOT NULL, cand_1 TEXT NOT NULL, cand_2 TEXT NOT NULL CHECK (cand_1 < cand_2),
            shown_a TEXT NOT NULL, shown_b TEXT NOT NULL,
            choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'bad')),
            winner TEXT, ballot_id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
            UNIQUE (voter_id, question_id, cand_1, cand_2))"""
    )
    db.execute("CREATE INDEX arena_votes_pair ON arena_votes(question_id, cand_1, cand_2)")
    db.execute(
        """CREATE TABLE arena_llm_verdicts (
            question_id TEXT NOT NULL, cand_1 TEXT NOT NULL, cand_2 TEXT NOT NULL, winner TEXT, judge TEXT,
            created REAL NOT NULL, PRIMARY KEY (question_id, cand_1, cand_2))"""
    )


@migration
def m201_train_runs(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE train_runs (
            id TEXT PRIMARY KEY, status TEXT NOT NULL, dataset TEXT, base_model TEXT, hyperparameters TEXT,
            train_loss REAL, eval_loss REAL, overfit_flag INTEGER NOT NULL DEFAULT 0, overfit_reason TEXT,
            overfit_epoch REAL, error TEXT, sweep TEXT, created REAL, updated REAL)"""
    )


@migration
def m202_train_metrics(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE train_metrics (
            run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, split TEXT NOT NULL, loss REAL,
            learning_rate REAL)"""
    )
    db.execute("CREATE INDEX train_metrics_run ON train_metrics(run_id, split, step)")


@migration
def m302_judge_configs(db: sqlite3.Connection) -> None:
    """Each judging's jury configuration (only equal `config_id`s are comparable) and its grounded numbers:
    fact recall with its interval, refusal accuracy, and the rest (reference's recall, judge agreement) as JSON.
    Rows from before have NULLs here and stay readable."""
    for column in ("config_id TEXT", "judge_config TEXT", "fact_recall REAL", "fact_recall_low REAL",
                   "fact_recall_high REAL", "refusal_accuracy REAL", "grounded TEXT"):
        db.execute(f"ALTER TABLE judge_results ADD COLUMN {column}")
    db.execute("CREATE INDEX judge_results_config ON judge_results(config_id, reference, evalset)")
