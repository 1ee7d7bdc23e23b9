"""The evaluation tables: answers, the judge's verdict cache, judging runs and their judgments, the `people`
judge's fitted models and the calibrations of judges against votes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from underdog.store import Store, in_chunks, insert_sql

ANSWER_COLUMNS = ("candidate_id", "evalset", "question_id", "candidate", "model", "adapter", "system_prompt",
                  "temperature", "top_p", "max_tokens", "question", "answer", "output_tokens", "error", "created")
RESULT_COLUMNS = ("created", "evalset", "candidate", "candidate_id", "reference", "reference_id", "judges", "rubric",
                  "n", "wins", "ties", "losses", "errors", "win_rate", "ci_low", "ci_high", "tie_share",
                  "consistency", "mean_len_candidate", "mean_len_reference", "lc_win_rate", "config_id",
                  "judge_config", "fact_recall", "fact_recall_low", "fact_recall_high", "refusal_accuracy",
                  "grounded")
JUDGMENT_COLUMNS = ("result_id", "question_id", "judge", "judge_order", "verdict", "winner", "cache_key", "cached",
                    "error")
VERDICT_COLUMNS = ("key", "judge", "verdict", "raw", "created")
PEOPLE_MODEL_COLUMNS = ("version", "votes", "decisive", "accuracy", "accuracy_low", "accuracy_high", "model",
                        "created")
CALIBRATION_COLUMNS = ("created", "votes_version", "votes", "jury", "held_out", "held_out_low", "held_out_high",
                       "judges", "applied")


# -- answers ------------------------------------------------------------------------------------------------------
def put_answers(store: Store, rows: Sequence[dict[str, Any]]) -> None:
    """Store answers (dicts keyed by `ANSWER_COLUMNS`, `created` defaulting to now), replacing earlier ones."""
    now = time.time()
    with store.transaction() as db:
        db.executemany(insert_sql("answers", ANSWER_COLUMNS, "INSERT OR REPLACE"),
                       [{"created": now, **row} for row in rows])


def answers_of(store: Store, candidate_id: str, evalset: str) -> list[sqlite3.Row]:
    """question_id, question, answer, output_tokens, error of a candidate identity's answers on an eval set."""
    return store.query("SELECT question_id, question, answer, output_tokens, error FROM answers "
                       "WHERE candidate_id = :candidate_id AND evalset = :evalset",
                       {"candidate_id": candidate_id, "evalset": evalset})


def candidate_ids_of_adapter(store: Store, adapter: str) -> list[str]:
    """The candidate identities (any prompt or params) that answered with the adapter at path `adapter`."""
    return [r["candidate_id"] for r in store.query("SELECT DISTINCT candidate_id FROM answers WHERE adapter = :a",
                                                   {"a": adapter})]


# -- the judge's verdict cache ------------------------------------------------------------------------------------
def cached_verdicts(store: Store, keys: Sequence[str]) -> list[sqlite3.Row]:
    """key, verdict, raw of the cached verdicts among `keys`."""
    rows: list[sqlite3.Row] = []
    for marks, chunk in in_chunks(list(dict.fromkeys(keys))):
        rows += store.query(f"SELECT key, verdict, raw FROM judge_cache WHERE key IN ({marks})", chunk)
    return rows


def put_verdicts(store: Store, judge: str, verdicts: Sequence[tuple[str, str, str | None]]) -> None:
    """(key, verdict, raw) of one judge's new verdicts, in one commit (not one per verdict)."""
    now = time.time()
    with store.transaction() as db:
        db.executemany(insert_sql("judge_cache", VERDICT_COLUMNS, "INSERT OR REPLACE"),
                       [{"key": key, "judge": judge, "verdict": verdict, "raw": raw, "created": now}
                        for key, verdict, raw in verdicts])


# -- judging runs -------------------------------------------------------------------------------------------------
def record_judging(store: Store, result: dict[str, Any], judgments: Sequence[dict[str, Any]]) -> int:
    """One judging (a dict keyed by `RESULT_COLUMNS`, `created` defaulting to now) and its judgments (dicts keyed
    by `JUDGMENT_COLUMNS` but `result_id`) in one commit; returns the judging's id."""
    with store.transaction() as db:
        cursor = db.execute(insert_sql("judge_results", RESULT_COLUMNS), {"created": time.time(), **result})
        result_id = int(cursor.lastrowid or 0)
        db.executemany(insert_sql("judgments", JUDGMENT_COLUMNS), [{**j, "result_id": result_id} for j in judgments])
    return result_id


def judgings(store: Store, reference: str, evalset: str, unknown_config: str) -> list[sqlite3.Row]:
    """Every judging against `reference` on `evalset`, oldest first, with `config` (`unknown_config` for rows
    from before judge configurations were recorded)."""
    return store.query("SELECT *, COALESCE(config_id, :unknown) AS config FROM judge_results "
                       "WHERE reference = :reference AND evalset = :evalset ORDER BY id",
                       {"unknown": unknown_config, "reference": reference, "evalset": evalset})


def judgings_of(store: Store, candidate_ids: Sequence[str], name: str) -> list[sqlite3.Row]:
    """Every judging of the candidate identities `candidate_ids`, or of a candidate named `name`, oldest first."""
    rows = store.query("SELECT * FROM judge_results WHERE candidate = :name ORDER BY id", {"name": name})
    for marks, chunk in in_chunks(list(candidate_ids)):
        rows += store.query(f"SELECT * FROM judge_results WHERE candidate_id IN ({marks}) AND candidate != ?",
                            [*chunk, name])
    return sorted(rows, key=lambda r: r["id"])


def judge_configs(store: Store, reference: str, evalset: str, unknown_config: str) -> list[sqlite3.Row]:
    """config, judge_config, count and newest (id) per judge configuration used against `reference` on `evalset`,
    the one judged last, last."""
    return store.query("SELECT COALESCE(config_id, :unknown) AS config, judge_config, COUNT(*) AS count, "
                       "MAX(id) AS newest FROM judge_results WHERE reference = :reference AND evalset = :evalset "
                       "GROUP BY 1 ORDER BY newest",
                       {"unknown": unknown_config, "reference": reference, "evalset": evalset})


def judging(store: Store, result_id: int) -> sqlite3.Row | None:
    """One judging's `judge_results` row, or None."""
    rows = store.query("SELECT * FROM judge_results WHERE id = :id", {"id": result_id})
    return rows[0] if rows else None


def judgings_of_candidate(store: Store, candidate: str) -> list[sqlite3.Row]:
    """Every judging of `candidate` (by name), newest first."""
    return store.query("SELECT * FROM judge_results WHERE candidate = :candidate ORDER BY id DESC",
                       {"candidate": candidate})


def judgments_of(store: Store, result_id: int) -> list[sqlite3.Row]:
    """question_id, judge, judge_order, verdict, winner, cached, error of one judging's verdicts."""
    return store.query("SELECT question_id, judge, judge_order, verdict, winner, cached, error FROM judgments "
                       "WHERE result_id = :id ORDER BY rowid", {"id": result_id})


def all_judge_configs(store: Store, unknown_config: str) -> list[sqlite3.Row]:
    """config, judge_config, reference, evalset, count and newest (id) of every judge configuration used, newest
    last."""
    return store.query("SELECT COALESCE(config_id, :unknown) AS config, judge_config, reference, evalset, "
                       "COUNT(*) AS count, MAX(id) AS newest FROM judge_results GROUP BY 1, reference, evalset "
                       "ORDER BY newest", {"unknown": unknown_config})


def counts(store: Store) -> tuple[int, int]:
    """(judgings, judgments) recorded."""
    return (int(store.query("SELECT COUNT(*) FROM judge_results")[0][0]),
            int(store.query("SELECT COUNT(*) FROM judgments")[0][0]))


# -- the `people` judge's fitted models, and calibrations ----------------------------------------------------------
def put_people_model(store: Store, row: dict[str, Any]) -> None:
    """Store a fitted `people` model (a dict keyed by `PEOPLE_MODEL_COLUMNS`) under its version."""
    with store.transaction() as db:
        db.execute(insert_sql("people_models", PEOPLE_MODEL_COLUMNS, "INSERT OR REPLACE"), {"created": time.time(),
                                                                                            **row})


def people_model(store: Store, version: str) -> sqlite3.Row | None:
    rows = store.query("SELECT * FROM people_models WHERE version = ?", (version,))
    return rows[0] if rows else None


def put_calibration(store: Store, row: dict[str, Any]) -> int:
    """Record a calibration (a dict keyed by `CALIBRATION_COLUMNS`); returns its id."""
    with store.transaction() as db:
        return int(db.execute(insert_sql("calibrations", CALIBRATION_COLUMNS), {"created": time.time(), "applied": 0,
                                                                                **row}).lastrowid or 0)


def mark_applied(store: Store, calibration_id: int) -> None:
    store.execute("UPDATE calibrations SET applied = 1 WHERE id = ?", (calibration_id,))


def calibrations(store: Store) -> list[sqlite3.Row]:
    """Every calibration, newest first."""
    return store.query("SELECT * FROM calibrations ORDER BY id DESC")


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


def m302_judge_configs(db: sqlite3.Connection) -> None:
    """Each judging's jury configuration (only equal `config_id`s are comparable) and its grounded numbers:
    fact recall with its interval, refusal accuracy, and the rest (reference's recall, judge agreement) as JSON.
    Rows from before have NULLs here and stay readable."""
    for column in ("config_id TEXT", "judge_config TEXT", "fact_recall REAL", "fact_recall_low REAL",
                   "fact_recall_high REAL", "refusal_accuracy REAL", "grounded TEXT"):
        db.execute(f"ALTER TABLE judge_results ADD COLUMN {column}")
    db.execute("CREATE INDEX judge_results_config ON judge_results(config_id, reference, evalset)")


def m303_people_and_calibrations(db: sqlite3.Connection) -> None:
    """The `people` judge's fitted models, one per version (votes it was fitted on + its settings), with their
    held-out accuracy; and each `underdog calibrate`: the votes it used, every judge's and jury's agreement
    with them (JSON), and the jury that predicted held-out votes best."""
    db.execute(
        """CREATE TABLE people_models (
            version TEXT PRIMARY KEY, votes INTEGER NOT NULL, decisive INTEGER NOT NULL, accuracy REAL,
            accuracy_low REAL, accuracy_high REAL, model TEXT NOT NULL, created REAL NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE calibrations (
            id INTEGER PRIMARY KEY, created REAL NOT NULL, votes_version TEXT NOT NULL, votes INTEGER NOT NULL,
            jury TEXT NOT NULL, held_out REAL, held_out_low REAL, held_out_high REAL, judges TEXT NOT NULL,
            applied INTEGER NOT NULL DEFAULT 0)"""
    )
