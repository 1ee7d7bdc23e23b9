"""The data stages' tables: checkpoints of interrupted jobs (migration and queries)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from underdog.store import Store, insert_sql

CHECKPOINT_COLUMNS = ("job", "key", "value", "created")
PUT_CHECKPOINT = insert_sql("data_checkpoints", CHECKPOINT_COLUMNS, "INSERT OR REPLACE")


def checkpoint_row(job: str, key: str, value: Any) -> dict[str, Any]:
    """The row of `PUT_CHECKPOINT` for one finished key of a job (its value as JSON)."""
    return {"job": job, "key": key, "value": json.dumps(value), "created": time.time()}


def put_checkpoints(store: Store, job: str, items: dict[str, Any]) -> None:
    with store.transaction() as db:
        db.executemany(PUT_CHECKPOINT, [checkpoint_row(job, key, value) for key, value in items.items()])


def checkpoints(store: Store, job: str) -> dict[str, Any]:
    """Key -> value of the finished work of `job`."""
    rows = store.query("SELECT key, value FROM data_checkpoints WHERE job = :job", {"job": job})
    return {row["key"]: json.loads(row["value"]) for row in rows}


def clear_checkpoints(store: Store, job: str) -> None:
    store.execute("DELETE FROM data_checkpoints WHERE job = :job", {"job": job})


def m101_data_checkpoints(db: sqlite3.Connection) -> None:
    """Finished work of an interrupted data job (e.g. `generate`), so a re-run continues where it stopped."""
    db.execute(
        """CREATE TABLE data_checkpoints (
            job TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (job, key))"""
    )
