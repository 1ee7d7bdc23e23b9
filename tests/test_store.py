"""SQLite store: migrations applied once, in order, recorded; WAL on disk; the reply cache round-trips."""

import sqlite3
from pathlib import Path

import pytest

from underdog.store import MIGRATIONS, Store

OLD_SCHEMA = Path(__file__).parent / "data" / "schema_2026_11.sql"  # made by the migrations before stage stores


def schema(db: sqlite3.Connection | Store) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                                             "ORDER BY name").fetchall()]


def test_migrations_create_expected_columns_in_memory() -> None:
    store = Store(":memory:")
    assert store.columns("llm_cache") == ["key", "provider", "model", "request", "reply", "created"]
    assert {"stage", "role", "model", "cached", "input_tokens", "output_tokens", "latency_s", "cost_usd",
            "error"} <= set(store.columns("llm_calls"))
    applied = [row["name"] for row in store.query("SELECT name FROM _migrations ORDER BY rowid")]
    assert applied == [name for name, _ in MIGRATIONS]
    assert store.columns("answers") == [
        "candidate_id", "evalset", "question_id", "candidate", "model", "adapter", "system_prompt", "temperature",
        "top_p", "max_tokens", "question", "answer", "output_tokens", "error", "created"]
    assert store.columns("judge_results")[-7:] == ["config_id", "judge_config", "fact_recall", "fact_recall_low",
                                                   "fact_recall_high", "refusal_accuracy", "grounded"]
    assert store.columns("data_checkpoints") == ["job", "key", "value", "created"]
    assert store.columns("arena_invites") == ["code", "role", "voter_id", "created", "used"]
    assert {"voter_id", "cand_1", "cand_2", "choice", "winner", "ballot_id"} <= set(store.columns("arena_votes"))


def test_the_list_order_is_history_and_a_new_database_gets_the_old_schema() -> None:
    names = [name for name, _ in MIGRATIONS]
    assert names[:5] == ["m001_llm_cache", "m002_llm_calls", "m101_data_checkpoints", "m301_evaluate", "m401_arena"]
    assert names.index("m201_train_runs") > names.index("m401_arena")  # the list, not the number, is the order
    old = sqlite3.connect(":memory:")
    old.executescript(OLD_SCHEMA.read_text())
    for step in MIGRATIONS[len(names_in(old)):]:  # the migrations added since the old schema was written
        step.load()(old)
    assert schema(Store(":memory:").db) == schema(old)


def names_in(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")]


def test_a_database_made_by_the_old_migrations_opens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "underdog.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA.read_text())
    old.execute("INSERT INTO answers (candidate_id, evalset, question_id, question, answer, created) "
                "VALUES ('c', 'e', 'q1', 'Why?', 'Because.', 1.0)")
    old.execute("INSERT INTO train_runs (id, status) VALUES ('r0', 'done')")
    old.commit()
    shipped = len(names_in(old))
    old.close()
    store = Store(path)
    assert schema(store.db) == schema(Store(":memory:").db)  # the migrations added since, applied once
    applied = [r[0] for r in store.query("SELECT applied FROM _migrations ORDER BY rowid")]
    assert applied[:shipped] == [0] * shipped and all(applied[shipped:])  # none re-run
    assert store.query("SELECT answer FROM answers WHERE question_id = 'q1'")[0][0] == "Because."
    from underdog.train import store as train

    train.put_run(store, dict.fromkeys(train.RUN_COLUMNS) | {"id": "r1", "status": "done", "overfit_flag": 0}, [])
    assert [r[0] for r in store.query("SELECT id FROM train_runs ORDER BY id")] == ["r0", "r1"]


def stage_stores_imported_opening(path: Path) -> list[str]:
    import subprocess
    import sys

    probe = (f"import sys\nfrom underdog.store import Store\nStore({str(path)!r}).close()\n"
             "print(sorted(m for m in sys.modules if m.endswith('.store') and m != 'underdog.store'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return eval(done.stdout.strip())  # noqa: S307 - a list literal printed by the probe


def test_a_stage_store_is_imported_only_for_a_migration_not_yet_applied(tmp_path: Path) -> None:
    path = tmp_path / "underdog.db"
    assert stage_stores_imported_opening(path) == ["underdog.arena.store", "underdog.data.store",
                                                   "underdog.evaluate.store", "underdog.train.store"]
    assert stage_stores_imported_opening(path) == []


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


def test_stage_writes_name_their_columns_so_a_later_column_breaks_none() -> None:
    from underdog.arena import store as arena
    from underdog.data import store as data
    from underdog.evaluate import store as evaluate
    from underdog.train import store as train

    store = Store(":memory:")
    tables = [r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' "
                                        "ESCAPE '\\' AND name NOT LIKE 'llm_%'")]
    assert {"answers", "judge_results", "judgments", "data_checkpoints", "arena_votes", "arena_items", "train_runs",
            "train_metrics"} <= set(tables)
    for table in tables:
        store.execute(f"ALTER TABLE {table} ADD COLUMN later TEXT")
    data.put_checkpoints(store, "job", {"k": [1, 2]})
    assert data.checkpoints(store, "job") == {"k": [1, 2]}
    evaluate.put_answers(store, [{"candidate_id": "c", "evalset": "e", "question_id": "q", "question": "Why?",
                                  "answer": "Because.", "candidate": "run", "model": "m", "adapter": None,
                                  "system_prompt": None, "temperature": 0.0, "top_p": 1.0, "max_tokens": 9,
                                  "output_tokens": 2, "error": None}])
    assert evaluate.answers_of(store, "c", "e")[0]["answer"] == "Because."
    evaluate.put_verdicts(store, "judge", [("key", "A", "raw")])
    assert [tuple(r) for r in evaluate.cached_verdicts(store, ["key", "key", "other"])] == [("key", "A", "raw")]
    result = dict.fromkeys(evaluate.RESULT_COLUMNS[1:], "x") | {"n": 1, "config_id": None}
    judgment = dict.fromkeys(evaluate.JUDGMENT_COLUMNS[1:], "y") | {"cached": 0}
    result_id = evaluate.record_judging(store, result, [judgment])
    assert store.query("SELECT result_id FROM judgments")[0][0] == result_id
    assert evaluate.judgings(store, "x", "x", "unknown")[0]["config"] == "unknown"
    arena.put_items(store, [{"question_id": "q", "candidate": "a", "question": "Q", "answer": "A", "source": ""}])
    arena.put_invites(store, ["code"], "audience")
    arena.put_llm_verdicts(store, [{"question_id": "q", "cand_1": "a", "cand_2": "b", "winner": "a", "judge": "j"}])
    with store.transaction() as db:
        arena.save_voter(db, "v", "csrf", "audience")
        arena.bind_invite(db, "code", "v")
        arena.put_vote(db, {"voter_id": "v", "role": "audience", "question_id": "q", "cand_1": "a", "cand_2": "b",
                            "shown_a": "b", "shown_b": "a", "choice": "B", "winner": "a", "ballot_id": "b1"})
    assert arena.vote_counts(store) == {("q", "a", "b"): 1} and arena.invited_voters(store) == {"v"}
    assert [tuple(r) for r in arena.human_and_llm(store)] == [("a", "a")]
    run = dict.fromkeys(train.RUN_COLUMNS, None) | {"id": "r1", "status": "done", "overfit_flag": 0}
    metric = {"run_id": "r1", "step": 1, "epoch": 0.5, "split": "train", "loss": 2.5, "learning_rate": 1e-4}
    train.put_run(store, run, [metric, metric | {"step": 2, "split": "eval"}])
    train.put_run(store, run | {"status": "failed"}, [metric])  # a run's metrics are replaced, not added
    train.put_metric(store, metric | {"step": 3})
    assert store.query("SELECT status FROM train_runs")[0][0] == "failed"
    assert [r[0] for r in store.query("SELECT step FROM train_metrics WHERE run_id = 'r1' ORDER BY step")] == [1, 3]
    evaluate.put_people_model(store, {"version": "v1", "votes": 3, "decisive": 2, "accuracy": 0.5, "accuracy_low": 0.1,
                                      "accuracy_high": 0.9, "model": "{}"})
    assert evaluate.people_model(store, "v1")["decisive"] == 2
    calibration = evaluate.put_calibration(store, {"votes_version": "x", "votes": 3, "jury": "null", "held_out": None,
                                                   "held_out_low": None, "held_out_high": None, "judges": "[]"})
    evaluate.mark_applied(store, calibration)
    assert evaluate.calibrations(store)[0]["applied"] == 1
    with store.transaction() as db:
        arena.ensure_voter(db, "imported", "judge")
        arena.put_vote(db, {"voter_id": "imported", "role": "judge", "question_id": "q", "cand_1": "a", "cand_2": "b",
                            "shown_a": "a", "shown_b": "b", "choice": "tie", "winner": None, "ballot_id": "b2",
                            "question": "Q", "answer_1": "A", "answer_2": "B", "question_set": "import:f.csv"})
    assert [(v.voter_id, v.outcome, v.simulated) for v in arena.load_votes(store)] == [("imported", "tie", False)]
