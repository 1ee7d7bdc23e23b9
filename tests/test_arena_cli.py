"""Filling the arena from the evaluation stage (real openai SDK against loopback servers) and its CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import uvicorn

from conftest import invoke_cli
from underdog.arena import votes as db
from underdog.arena.app import judge_key
from underdog.evaluate.evalset import Question, save_evalset
from underdog.project import Project
from underdog.store import Store
from underdog.testing import ScriptedOpenAI, ServerThread

QUESTIONS = [f"Where do I register vehicle {i}?" for i in range(3)]


def prefers_longer(messages: list[dict]) -> str:
    text = messages[-1]["content"]
    first = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0]
    second = text.split("[Answer B]\n", 1)[1].split("\n\n", 1)[0]
    return json.dumps({"reason": "longer", "verdict": "A" if len(first) > len(second) else "B"})


@pytest.fixture
def overrides(project_dir: Path) -> Iterator[list[str]]:
    fakes = {"alpha": ScriptedOpenAI(lambda m: f"Visit the DMV with your title and ID: {m[-1]['content']}"),
             "bravo": ScriptedOpenAI(lambda m: "DMV."),
             "judge": ScriptedOpenAI(prefers_longer)}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(ServerThread(fake.app)).url + "/v1" for name, fake in fakes.items()}
        save_evalset(Project(project_dir), "ev", [Question(f"q{i}", q) for i, q in enumerate(QUESTIONS)], "test")
        yield [f"--set=models.{name}={json.dumps({'provider': 'openai', 'base_url': url, 'model': name})}"
               for name, url in urls.items()]


def run(overrides: list[str], *args: str) -> str:
    result = invoke_cli(*overrides, *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_add_judge_vote_standings_export(project_dir: Path, overrides: list[str]) -> None:
    assert "added 3 answers of fine-tuned" in run(overrides, "arena", "add", "alpha", "--name", "fine-tuned")
    run(overrides, "arena", "add", "bravo", "-e", "ev", "--system", "Be brief.", "-t", "0.2")
    store = Store(project_dir / "underdog.db")
    assert db.candidates(store) == ["bravo", "fine-tuned"]
    assert "3 pairs judged" in run(overrides, "arena", "judge")
    verdicts = store.query("SELECT winner FROM arena_llm_verdicts")
    assert [v["winner"] for v in verdicts] == ["fine-tuned"] * 3  # the judge prefers the longer answer

    judge, dealer = db.Sessions("organiser-token").new("judge"), db.Dealer(store)
    for _ in range(3):
        ballot = dealer.next_ballot(judge.id)
        dealer.cast(judge, ballot.id, "A" if ballot.shown_a == "bravo" else "B")  # humans disagree
    out = run(overrides, "arena", "standings")
    assert "0.0% agreement on 3 votes" in out
    report = (project_dir / "reports" / "arena.md").read_text()
    # Blended 50% each (judges 1.0 + LLM 0.0 vs 0.0 + 1.0; no audience votes: renormalised): the rating decides.
    assert "| 1 | bravo |" in report and "50.0% |" in report
    run(overrides, "leaderboard", "-e", "ev")  # the leaderboard report carries the arena's blended score
    assert "## Arena: blind votes" in (project_dir / "reports" / "leaderboard.md").read_text()
    assert "<h2>Arena: blind votes</h2>" in (project_dir / "reports" / "leaderboard.html").read_text()
    run(overrides, "arena", "export", "out.csv")
    rows = list(csv.DictReader((project_dir / "out.csv").read_text().splitlines()))
    assert len(rows) == 3 and {r["winner"] for r in rows} == {"bravo"} and {r["role"] for r in rows} == {"judge"}


def test_serve_binds_loopback_by_default(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: seen.update(kw, app=application))
    monkeypatch.setenv("UNDERDOG_ARENA_TOKEN", "a-fixed-organiser-token")
    out = run([], "arena", "serve")
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8765
    assert "organiser: http://127.0.0.1:8765/organiser?token=a-fixed-organiser-token" in out
    assert f"/join?key={judge_key('a-fixed-organiser-token')}" in out and "anyone" not in out
    out = run(["--set=arena.port=9000"], "arena", "serve", "--host", "0.0.0.0")
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9000 and "anyone who can reach this machine" in out
    monkeypatch.delenv("UNDERDOG_ARENA_TOKEN")
    first = run([], "arena", "serve").split("token=")[1].split()[0]
    assert len(first) >= 16 and first != run([], "arena", "serve").split("token=")[1].split()[0]


def test_adding_a_candidate_without_answers_is_one_clean_error(project_dir: Path) -> None:
    save_evalset(Project(project_dir), "ev", [Question("q0", "Hi?")], "test")
    dead = json.dumps({"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x", "max_retries": 0,
                       "timeout_s": 2})
    result = invoke_cli(f"--set=models.student={dead}", "arena", "add", "student")
    assert result.exit_code == 1 and "produced no usable answer" in result.output


def test_add_with_tune_prompt_settings(project_dir: Path, overrides: list[str]) -> None:
    (project_dir / "best.yaml").write_text("system_prompt: Be warm.\nparams: {temperature: 0.3, top_p: 0.9}\n")
    run(overrides, "arena", "add", "alpha", "--name", "warm", "--settings", "best.yaml", "--top-p", "0.8")
    rows = Store(project_dir / "underdog.db").query("SELECT DISTINCT system_prompt, temperature, top_p FROM answers")
    assert [tuple(r) for r in rows] == [("Be warm.", 0.3, 0.8)]  # options override the file
    (project_dir / "bad.yaml").write_text("params: [1]\n")
    result = invoke_cli(*overrides, "arena", "add", "alpha", "--settings", "bad.yaml")
    assert result.exit_code == 2 and "bad.yaml: expected" in result.output
