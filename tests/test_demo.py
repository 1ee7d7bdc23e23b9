"""`underdog demo --quick`: the whole loop on the embedded model; the leaderboard matches the stored judgments."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.evaluate.stats import wilson_interval


def recompute(db: sqlite3.Connection, result_id: int) -> tuple[int, int, float]:
    """(n, ties, win rate) from the per-order verdicts alone: agreeing orders decide, anything else is a tie."""
    orders: dict[str, dict[str, str]] = {}
    for question, order, winner in db.execute(
            "SELECT question_id, judge_order, winner FROM judgments WHERE result_id = ?", (result_id,)):
        orders.setdefault(question, {})[order] = winner
    outcomes = [o["ab"] if o["ab"] == o["ba"] else "tie" for o in orders.values()]
    outcomes = [o for o in outcomes if o != "error"]
    wins, ties = outcomes.count("candidate"), outcomes.count("tie")
    return len(outcomes), ties, (wins + ties / 2) / len(outcomes)


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = invoke_cli("demo", "demo-project", "--quick")
    assert result.exit_code == 0, result.output
    root = tmp_path / "demo-project"
    report = root / "reports" / "leaderboard.html"
    assert f"Report:{report}" in "".join(result.output.split())  # the last line says where the report is
    assert report.exists() and report.read_text().count("data:image/png;base64,") == 3

    for run in ("demo-r4", "demo-r16"):
        manifest = json.loads((root / "runs" / run / "manifest.json").read_text())
        assert manifest["status"] == "done" and (root / "runs" / run / "adapter" / "adapter_config.json").exists()
    assert (root / "evalsets" / "demo" / "questions.jsonl").exists()
    assert (root / "exports" / "demo-base-curated-jumpstart" / "train.jsonl").exists()

    rows = {r["candidate"]: r for r in csv.DictReader((root / "reports" / "leaderboard.csv").open())}
    assert {"demo-r4", "demo-r16", "student"} <= set(rows)
    db = sqlite3.connect(root / "underdog.db")
    for name in ("demo-r4", "demo-r16", "student"):
        result_id, judges = db.execute("SELECT id, judges FROM judge_results WHERE candidate = ? ORDER BY id DESC",
                                       (name,)).fetchone()
        assert len(json.loads(judges)) == 1
        n, ties, rate = recompute(db, result_id)
        row = rows[name]
        assert (int(row["n"]), int(row["ties"])) == (n, ties) and n >= 2
        assert float(row["win_rate"]) == pytest.approx(rate)
        low, high = wilson_interval(rate * n, n)
        assert (float(row["ci_low"]), float(row["ci_high"])) == (pytest.approx(low), pytest.approx(high))

    calls, results = (db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] for table in ("llm_calls",
                                                                                              "judge_results"))
    again = invoke_cli("demo", "demo-project", "--quick")  # a re-run resumes from the cache
    assert again.exit_code == 0, again.output
    assert db.execute("SELECT COUNT(*) FROM llm_calls WHERE id > ? AND cached = 0", (calls,)).fetchone()[0] == 0
    new_verdicts = db.execute("SELECT COUNT(*), SUM(cached) FROM judgments WHERE result_id > ?", (results,)).fetchone()
    assert new_verdicts[0] > 0 and new_verdicts[0] == new_verdicts[1]  # every verdict came from the cache
