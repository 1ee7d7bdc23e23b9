"""`underdog demo --quick`: the whole loop on the Harrowgate County pack; the handbook PDF is really parsed, the
plain and refusals runs are trained and judged, the report shows each model's fact recall and refusal accuracy and
their answers side by side, the leaderboard matches the stored judgments, a re-run resumes from the cache. (That
training really teaches the facts is tests/test_efficacy.py's job.)"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.evaluate.judge import JudgeResult, QuestionRow
from underdog.evaluate.stats import wilson_interval
from underdog.pipeline import (
    INGESTED,
    JURY,
    REFUSAL_SET,
    REFUSALS_RUN,
    REFUSALS_TRAIN_SET,
    RUN,
    TEACHER_SET,
    TRAIN_SET,
    grounded_rate,
    pack_path,
)


def recompute(db: sqlite3.Connection, result_id: int) -> tuple[int, int, float]:
    """(n, ties, win rate) from the stored verdicts alone: per judge, agreeing orders decide, anything else is a
    tie; the jury's majority decides a question, no majority is a tie."""
    votes: dict[str, dict[str, dict[str, str]]] = {}
    for judge, question, order, winner in db.execute(
            "SELECT judge, question_id, judge_order, winner FROM judgments WHERE result_id = ?", (result_id,)):
        votes.setdefault(question, {}).setdefault(judge, {})[order] = winner
    outcomes = []
    for per_judge in votes.values():
        said = [o["ab"] if o["ab"] == o["ba"] else "tie" for o in per_judge.values()]
        said = [s for s in said if s != "error"]
        best = max(set(said), key=said.count) if said else "error"
        outcomes.append(best if said.count(best) > len(said) / 2 else "tie")
    outcomes = [o for o in outcomes if o != "error"]
    wins, ties = outcomes.count("candidate"), outcomes.count("tie")
    return len(outcomes), ties, (wins + ties / 2) / len(outcomes)


def test_grounded_rate_counts_only_the_grounded_judges():
    def row(qid: str, **votes: tuple[str, str]) -> QuestionRow:
        return QuestionRow(qid, "q", "a", "b", "tie", dict(votes))

    rows = [row("won", facts=("A", "B"), similarity=("A", "B"), judge=("B", "A")),  # the LLM judge is outvoted
            row("lost", facts=("abstain", "abstain"), similarity=("B", "A"), judge=("A", "B")),
            row("no ground truth", facts=("abstain", "abstain"), similarity=("abstain", "abstain"), judge=("A", "B")),
            row("split", facts=("A", "B"), similarity=("B", "A")),
            row("flip", facts=("A", "A"), similarity=("A", "A"))]  # each judge changed its mind with the order
    result = JudgeResult("tuned", "base", "set", ["facts", "similarity", "judge"], [], rows, 1.0, 0)
    rate = grounded_rate(result)
    assert (rate.wins, rate.ties, rate.n) == (1, 2, 4)
    assert rate.win_rate == pytest.approx(0.5) and rate.ci[0] < 0.5 < rate.ci[1]


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = invoke_cli("demo", "demo-project", "--quick")
    assert result.exit_code == 0, result.output
    root = tmp_path / "demo-project"
    report = root / "reports" / "leaderboard.html"
    assert f"Report:{report}" in "".join(result.output.split())  # the last line says where the report is
    output = " ".join(result.output.split())
    assert "fact recall" in output and "under the grounded judges alone" in output
    assert f"{REFUSALS_RUN} (+refusals): fact recall" in output and "refusal accuracy" in output
    assert output.count("refusal probe: ") == 2  # two probes, each with the base's and both runs' answers
    assert "Open it in a browser: underdog -C demo-project studio" in result.output
    page = report.read_text()
    assert "Answers side by side" in page and f"{RUN} (plain)" in page
    assert "Refusal probes side by side" in page and f"{REFUSALS_RUN} (+refusals)" in page
    assert "Ground truth" in page and "fact questions declined" in page
    first = json.loads(pack_path("eval.jsonl").read_text().splitlines()[0])
    assert first["question"].replace("'", "&#x27;") in page  # the questions are shown with both answers

    questions = [json.loads(line) for line in (root / "evalsets" / "harrowgate" / "questions.jsonl").open()]
    probes = [q["topic"] for q in questions if q.get("expect") == "refusal"]
    assert sum("facts" in q for q in questions) == 4 and len(probes) == len(set(probes)) == 4  # one of each kind
    ingested = json.loads((root / "datasets" / INGESTED / "manifest.json").read_text())
    assert ingested["recipe"]["files"] == [str(pack_path("handbook", "handbook.pdf"))]
    contexts = [json.loads(line)["meta"]["context"] for line in (root / "datasets" / INGESTED / "data.jsonl").open()]
    assert contexts and "Form HC-210" in contexts[0]  # text read out of the PDF
    counts = {name: json.loads((root / "datasets" / name / "manifest.json").read_text())["count"]
              for name in (TEACHER_SET, f"{INGESTED}-curated", TRAIN_SET, f"{REFUSAL_SET}-curated",
                           REFUSALS_TRAIN_SET)}
    assert counts[TRAIN_SET] == counts[TEACHER_SET] + counts[f"{INGESTED}-curated"] and counts[TEACHER_SET] == 80
    assert counts[f"{REFUSAL_SET}-curated"] == 32  # curation kept every refusal
    assert counts[REFUSALS_TRAIN_SET] == counts[TRAIN_SET] + 32
    for run, dataset in ((RUN, TRAIN_SET), (REFUSALS_RUN, REFUSALS_TRAIN_SET)):
        manifest = json.loads((root / "runs" / run / "manifest.json").read_text())
        assert manifest["status"] == "done" and manifest["dataset"] == dataset

    db = sqlite3.connect(root / "underdog.db")
    board = {r["candidate"]: r for r in csv.DictReader((root / "reports" / "leaderboard.csv").open())}
    for run in (RUN, REFUSALS_RUN):
        result_id, judges = db.execute("SELECT id, judges FROM judge_results WHERE candidate = ? ORDER BY id DESC",
                                       (run,)).fetchone()
        assert len(json.loads(judges)) == len(JURY)
        row = board[run]
        n, ties, rate = recompute(db, result_id)
        assert (int(row["n"]), int(row["ties"])) == (n, ties) and n == len(questions)
        assert float(row["win_rate"]) == pytest.approx(rate)
        low, high = wilson_interval(rate * n, n)
        assert (float(row["ci_low"]), float(row["ci_high"])) == (pytest.approx(low), pytest.approx(high))

    calls, results = (db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] for table in ("llm_calls",
                                                                                              "judge_results"))
    newest_verdict = db.execute("SELECT MAX(created) FROM judge_cache").fetchone()[0]
    again = invoke_cli("demo", "demo-project", "--quick")  # a re-run resumes from the cache
    assert again.exit_code == 0, again.output
    assert db.execute("SELECT COUNT(*) FROM llm_calls WHERE id > ? AND cached = 0", (calls,)).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM judgments WHERE result_id > ?", (results,)).fetchone()[0] > 0
    assert db.execute("SELECT MAX(created) FROM judge_cache").fetchone()[0] == newest_verdict  # no judge was asked
