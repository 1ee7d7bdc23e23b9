"""SQLite store: migrations applied once, in order, recorded; WAL on disk; the reply cache round-trips."""

import sqlite3
from pathlib import Path

import pytest

from underdog.store import MIGRATIONS, Store


def test_migrations_create_expected_columns_in_memory() -> None:
    store = Store(":memory:")
    assert store.columns("llm_cache") == ["key", "provider", "model", "request", "reply", "created"]
    assert {"stage", "role", "model", "cached", "input_tokens", "output_tokens", "latency_s", "cost_usd",
            "error"} <= set(store.columns("llm_calls"))
    applied = [row["name"] for row in store.query("SELECT name FROM _migrations ORDER BY rowid")]
    assert applied == [name for name, _ in MIGRATIONS]


def test_reopening_applies_nothing_twice_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "underdog.db"
    store = Store(path)
    store.cache_put("k", "local", "m", {"messages": []}, {"text": "hi"})
    store.close()
    again = Store(path)
    assert again.cache_get("k") == {"text": "hi"}
    assert again.query("SELECT COUNT(*) FROM _migrations")[0][0] == len(MIGRATIONS)
    assert again.query("PRAGMA journal_mode")[0][0] == "wal"


def test_usage_sums_per_stage_and_model() -> None:
    store = Store(":memory:")
    store.log_call(stage="generate", model="m", cached=0, input_tokens=10, output_tokens=5, cost_usd=0.5)
    store.log_call(stage="generate", model="m", cached=1, input_tokens=10, output_tokens=5, cost_usd=0.0)
    store.log_call(stage="judge", model="j", cached=0, input_tokens=1, output_tokens=1, cost_usd=0.25)
    rows = {(r["stage"], r["model"]): r for r in store.usage()}
    assert rows[("generate", "m")]["calls"] == 2 and rows[("generate", "m")]["cached"] == 1
    assert rows[("generate", "m")]["input_tokens"] == 20
    assert store.spent_usd("generate") == 0.5 and store.spent_usd() == 0.75


def test_cache_worker_reports_a_write_only_once_it_is_committed(tmp_path: Path) -> None:
    store = Store(tmp_path / "underdog.db")
    log = {"stage": "generate", "cached": 0, "cost_usd": 0.01}
    futures = [store.worker.put(f"k{i}", "openai", "m", {"i": i}, {"text": str(i)}, log=dict(log))
               for i in range(50)]
    other = sqlite3.connect(tmp_path / "underdog.db")  # another process's view: committed rows only
    for i, future in enumerate(futures):
        future.result(timeout=10)
        assert other.execute("SELECT COUNT(*) FROM llm_cache WHERE key = ?", (f"k{i}",)).fetchone()[0] == 1
    other.close()
    assert store.worker.get("k7").result(timeout=10) == {"text": "7"}
    assert store.worker.get("missing").result(timeout=10) is None
    assert store.spent_usd("generate") == pytest.approx(0.5)
    store.close()


def test_cache_worker_hands_a_failed_batch_to_its_waiters() -> None:
    store = Store(":memory:")
    future = store.worker.log(no_such_column=1)
    with pytest.raises(sqlite3.OperationalError):
        future.result(timeout=10)
    assert store.worker.get("k").result(timeout=10) is None  # the worker lives on
