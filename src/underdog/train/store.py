"""The training tables: `train_runs` mirrors each run's manifest, `train_metrics` its losses per logged step.

The manifest (`runs/<id>/manifest.json`) is the record of truth; these tables are for queries (the leaderboard,
`underdog runs`, sweeps). The migrations kept their names when they moved here from `underdog/store.py`
(databases record the names), so a database made before opens unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from underdog.store import Store, insert_sql

RUN_COLUMNS = ("id", "status", "dataset", "base_model", "hyperparameters", "train_loss", "eval_loss", "overfit_flag",
               "overfit_reason", "overfit_epoch", "error", "sweep", "created", "updated", "method", "parent_run")
METRIC_COLUMNS = ("run_id", "step", "epoch", "split", "loss", "learning_rate", "reward_margin", "reward_accuracy")


def m201_train_runs(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE train_runs (
            id TEXT PRIMARY KEY, status TEXT NOT NULL, dataset TEXT, base_model TEXT, hyperparameters TEXT,
            train_loss REAL, eval_loss REAL, overfit_flag INTEGER NOT NULL DEFAULT 0, overfit_reason TEXT,
            overfit_epoch REAL, error TEXT, sweep TEXT, created REAL, updated REAL)"""
    )


def m202_train_metrics(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE train_metrics (
            run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, split TEXT NOT NULL, loss REAL,
            learning_rate REAL)"""
    )
    db.execute("CREATE INDEX train_metrics_run ON train_metrics(run_id, split, step)")


def m203_train_preferences(db: sqlite3.Connection) -> None:
    """Preference runs: the method (sft, dpo) and the run trained on, and the reward margin and accuracy that
    TRL's preference trainers log beside the loss (NULL for supervised runs)."""
    db.execute("ALTER TABLE train_runs ADD COLUMN method TEXT")
    db.execute("ALTER TABLE train_runs ADD COLUMN parent_run TEXT")
    db.execute("ALTER TABLE train_metrics ADD COLUMN reward_margin REAL")
    db.execute("ALTER TABLE train_metrics ADD COLUMN reward_accuracy REAL")


def put_run(store: Store, run: dict[str, Any], metrics: Sequence[dict[str, Any]]) -> None:
    """A run (a dict keyed by `RUN_COLUMNS`) and all its metrics (dicts keyed by `METRIC_COLUMNS`), replacing
    what was stored for that run, in one commit."""
    with store.transaction() as db:
        db.execute(insert_sql("train_runs", RUN_COLUMNS, "INSERT OR REPLACE"), run)
        db.execute("DELETE FROM train_metrics WHERE run_id = :id", {"id": run["id"]})
        db.executemany(insert_sql("train_metrics", METRIC_COLUMNS), [_metric_row(m) for m in metrics])


def put_metric(store: Store, metric: dict[str, Any]) -> None:
    """One logged loss of a run in progress (a dict keyed by `METRIC_COLUMNS`; a missing key is NULL)."""
    store.execute(insert_sql("train_metrics", METRIC_COLUMNS), _metric_row(metric))


def metrics_of(store: Store, run_id: str, after: int = 0) -> list[sqlite3.Row]:
    """rowid, step, epoch, split, loss, reward_margin, reward_accuracy (preference runs) of a run's logged losses
    stored after rowid `after`, in the order logged."""
    return store.query("SELECT rowid, step, epoch, split, loss, reward_margin, reward_accuracy FROM train_metrics "
                       "WHERE run_id = :id AND rowid > :after ORDER BY rowid", {"id": run_id, "after": after})


def metrics_version(store: Store, run_id: str) -> tuple[int, int]:
    """(count, newest rowid) of a run's logged losses: changes whenever a loss is logged or the run re-recorded."""
    row = store.query("SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM train_metrics WHERE run_id = :id",
                      {"id": run_id})[0]
    return int(row[0]), int(row[1])


def runs(store: Store) -> list[sqlite3.Row]:
    """Every recorded run (a `train_runs` row each), oldest first."""
    return store.query("SELECT * FROM train_runs ORDER BY created, id")


def _metric_row(metric: dict[str, Any]) -> dict[str, Any]:
    """A metric row with every column named (a supervised run has no reward margin or accuracy: NULL)."""
    return {column: metric.get(column) for column in METRIC_COLUMNS}
