"""The data stages' tables: checkpoints of interrupted jobs (migration and queries)."""

from __future__ import annotations

import sqlite3


def m101_data_checkpoints(db: sqlite3.Connection) -> None:
    """Finished work of an interrupted data job (e.g. `generate`), so a re-run continues where it stopped."""
    db.execute(
        """CREATE TABLE data_checkpoints (
            job TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (job, key))"""
    )
