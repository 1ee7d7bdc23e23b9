"""compare, leaderboard and the report, on run manifests written here and judges on loopback servers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import invoke_cli
from test_eval_judge import project, servers  # noqa: F401 - fixtures
from underdog.evaluate.compare import compare
from underdog.evaluate.judge import judge
from underdog.evaluate.leaderboard import Entry, leaderboard, recommend
from underdog.project import Project
from underdog.report import write_report


def write_run(proj: Project, run_id: str, *, lora_r: int, overfit: bool = False, status: str = "done") -> None:
    folder = proj.runs_dir / run_id
    folder.mkdir(parents=True)
    history = [{"step": s, "epoch": s / 4, "loss": 2.0 - 0.2 * s} for s in range(1, 5)]
    history += [{"step": 2, "epoch": 0.5, "eval_loss": 1.9}, {"step": 4, "epoch": 1.0, "eval_loss": 1.7}]
    (folder / "manifest.json").write_text(json.dumps({
        "id": run_id, "status": status, "dataset": f"ds-{lora_r}", "base_model": "smollm2-135m",
        "hyperparameters": {"epoch": 1, "learning_rate": 1e-4, "lora_r": lora_r, "lora_alpha": 2 * lora_r,
                            "target_modules": ["q_proj", "v_proj"]},
        "metrics": {"train_loss": 1.2, "eval_loss": 1.7}, "error": None, "created": lora_r,
        "overfit": {"flag": overfit, "reason": "eval loss rose" if overfit else None, "epoch": None},
        "history": history}))


def test_compare_pairs_the_questions(project: Project):  # noqa: F811
    cmp = compare(project, "run-a", "run-b", "reference", "ev", judges=["longer"], progress=False)
    assert cmp.a.win_rate == 1.0 and cmp.b.win_rate == 0.75  # run-b: 3 wins, 3 ties
    assert len(cmp.questions) == 6
    assert cmp.bootstrap.diff == pytest.approx(0.25)  # differences 0 (even questions) and 0.5 (odd)
    # d = [0, .5]*3: sd .2739, ((1.96+.8416) * .2739 / .25)^2 = 9.42 -> 10 questions
    assert cmp.needed == 10 and cmp.separated


def test_leaderboard_report_and_recommendation(project: Project):  # noqa: F811
    write_run(project, "run-a", lora_r=64, overfit=True)
    write_run(project, "run-b", lora_r=8)
    write_run(project, "run-c", lora_r=16, status="failed")
    for name in ("run-a", "run-b", "candidate"):
        judge(project, name, "reference", "ev", judges=["longer"], progress=False)
    entries = leaderboard(project)
    assert [(e.name, e.kind) for e in entries] == [("run-a", "run"), ("candidate", "baseline"), ("run-b", "run"),
                                                   ("run-c", "run")]
    assert entries[0].overfit and entries[3].result is None
    assert recommend(entries).name == "run-a"  # judged better: its overfit flag does not throw it away
    paths = write_report(project, entries)
    html = paths["html"].read_text()
    assert "Recommended run: <b>run-a</b>" in html and 'src="http' not in html and "<link" not in html
    assert "flagged as overfit, but no other run is judged as good" in html
    assert html.count("data:image/png;base64,") == 3
    table = list(csv.DictReader(paths["csv"].open()))
    assert [r["candidate"] for r in table] == ["run-a", "candidate", "run-b", "run-c"]
    assert float(table[2]["win_rate"]) == 0.75 and table[2]["lora_r"] == "8" and table[2]["modules"] == "q,v"
    assert "**run-a**" in paths["markdown"].read_text()


def test_leaderboard_cli_numbers_match_stored_judgments(project: Project, monkeypatch):  # noqa: F811
    write_run(project, "run-b", lora_r=8)
    monkeypatch.setattr("underdog.cli.get_project", lambda ctx: project)
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    result = invoke_cli("judge", "run-b", "--against", "reference", "-e", "ev", "-j", "longer")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    assert "win rate 75.0% (95% CI" in out and "3 wins / 3 ties / 0 losses of n=6" in out
    result = invoke_cli("leaderboard")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "recommended: run-b" in out and "judge configuration" in out
    row = next(r for r in csv.DictReader((project.reports_dir / "leaderboard.csv").open())
               if r["candidate"] == "run-b")
    assert float(row["win_rate"]) == pytest.approx(recompute_win_rate(project, "run-b"))
    exported = invoke_cli("leaderboard", "--format", "csv")
    assert exported.exit_code == 0 and exported.output.splitlines()[0].startswith("rank,candidate,kind")
    assert "| 1 | run-b |" in invoke_cli("leaderboard", "-f", "markdown").output


def recompute_win_rate(proj: Project, candidate: str) -> float:
    """The win rate straight from the per-order verdicts of the candidate's latest judging."""
    rid = proj.store.query("SELECT MAX(id) FROM judge_results WHERE candidate = ?", (candidate,))[0][0]
    per_question: dict[str, dict[str, str]] = {}
    for r in proj.store.query("SELECT * FROM judgments WHERE result_id = ?", (rid,)):
        per_question.setdefault(r["question_id"], {})[r["judge_order"]] = r["winner"]
    scores = [1.0 if o["ab"] == o["ba"] == "candidate" else 0.0 if o["ab"] == o["ba"] == "reference" else 0.5
              for o in per_question.values()]
    return sum(scores) / len(scores)


def test_compare_cli(project: Project, monkeypatch):  # noqa: F811
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    result = invoke_cli("compare", "run-a", "run-b", "--against", "reference", "-j", "longer")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "difference run-a - run-b: +25.0 points" in out and "separates them" in out


def test_leaderboard_without_runs_or_evalsets(project_dir: Path):
    entries = leaderboard(Project(project_dir))
    assert entries == [] and recommend(entries) is None
    paths = write_report(Project(project_dir), entries)
    assert "No finished, judged run" in paths["html"].read_text()


def test_evalset_import_answer_and_judge_table_cli(project: Project, servers: dict, monkeypatch):  # noqa: F811
    monkeypatch.setattr("underdog.cli.evaluate.get_project", lambda ctx: project)
    (project.root / "mine.txt").write_text("How do I renew permit number 7?\nHow do I renew permit number 8?\n")
    result = invoke_cli("evalset", "import", "mine.txt")
    assert result.exit_code == 0 and "imported 2 questions as eval set 'mine'" in result.output
    result = invoke_cli("answer", "run-a", "-e", "mine", "--show", "--system", "Be brief.")
    assert result.exit_code == 0, result.output
    assert "Detailed steps for: How do I renew permit number 8?" in result.output
    assert "2 answers from run-a" in result.output
    result = invoke_cli("judge", "run-a", "-e", "mine", "-j", "always_a", "--rubric", "clarity")
    assert result.exit_code == 0, result.output
    assert result.output.count("A/A") == 2 and "win rate 50.0%" in " ".join(result.output.split())
    result = invoke_cli("judge", "run-a", "-e", "mine", "-j", "longer", "-t", "0.2", "-q")
    assert result.exit_code == 0, result.output
    assert "run-a [t=0.2] vs reference" in " ".join(result.output.split())
    assert servers["run-a"][0].bodies[-1]["temperature"] == 0.2


def _entry(name: str, win_rate: float, *, overfit: bool = False, fact_recall: float | None = None) -> Entry:
    return Entry(name, "run", "done", overfit=overfit, result={"win_rate": win_rate, "ci_low": win_rate - 0.2,
                                                               "ci_high": win_rate + 0.1, "fact_recall": fact_recall})


def test_recommend_ranks_by_judged_quality_and_uses_the_overfit_flag_only_for_ties():
    assert recommend([_entry("flagged", 0.8, overfit=True), _entry("clean", 0.6)]).name == "flagged"
    assert recommend([_entry("flagged", 0.7, overfit=True), _entry("clean", 0.7)]).name == "clean"  # a tie
    assert recommend([_entry("clean", 0.7), _entry("flagged", 0.7, overfit=True)]).name == "clean"
    # grounded truth first: more facts stated beats a higher (LLM-judged) win rate
    assert recommend([_entry("fluent", 0.9, fact_recall=0.1), _entry("right", 0.6, fact_recall=0.8)]).name == "right"
    assert recommend([Entry("unjudged", "run", "done"), Entry("base", "baseline", result={"win_rate": 1.0})]) is None


def test_a_judge_without_decisive_verdicts_is_not_said_to_pick_the_longer_answer_in_a_dash() -> None:
    import json

    from underdog.evaluate.leaderboard import Entry
    from underdog.report import grounded_notes

    agreement = {"judge": "local:judge", "agreement": 0.5, "compared": 4, "longer_share": None,
                 "grounded_longer_share": 0.5, "follows_length": False}
    entry = Entry("run-1", "run", result={"grounded": json.dumps({"agreement": [agreement]})})
    [note] = grounded_notes([entry])
    assert "in - of" not in note and "no decisive verdict on answers of different lengths" in note
