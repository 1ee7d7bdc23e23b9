"""The evaluation tables: answers, the judge's verdict cache, judging runs and their judgments."""

from __future__ import annotations

import sqlite3


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
