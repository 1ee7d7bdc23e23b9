"""Votes in (issue 18): `arena import-votes` (CSV, JSONL, the export's columns), question sets beyond the eval set,
votes that keep their texts (m403, old databases included), and the SIMULATED voter panel."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.arena import store as tables
from underdog.arena import votes as db
from underdog.arena.simulated_panel import Panel, appeal, cast_simulated_votes, taste
from underdog.evaluate.evalset import Question, save_evalset
from underdog.project import Project
from underdog.store import MIGRATIONS, Store

HEADER = ["question", "answer_a", "answer_b", "winner", "voter", "role"]
ROWS = [["When is the dog licence due?", "By March 1.", "Soon.", "a", "ann", "judge"],
        ["When is the dog licence due?", "Soon.", "I understand, deadlines are stressful. By March 1.", "b", "bob",
         "audience"],
        ["Where do I pay the fee?", "At the clerk's office.", "Online or at the clerk's office.", "tie", "ann",
         "judge"],
        ["Where do I pay the fee?", "At the clerk's office.", "Nowhere.", "both_bad", "cy", "audience"]]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(*args: str) -> str:
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


def test_self_contained_csv_imports_once_with_texts_and_question_set(project_dir: Path) -> None:
    path = write_csv(project_dir / "form.csv", ROWS)
    out = run("arena", "import-votes", str(path))
    assert "imported 4 votes" in out and "(0 already there)" in out and "import:form.csv (4)" in out
    votes = tables.load_votes(Project(project_dir).store)
    chosen = [{"first": v.answer_1, "second": v.answer_2}.get(v.outcome) for v in votes]
    assert [(v.voter_id, v.role) for v in votes] == [("ann", "judge"), ("bob", "audience"), ("ann", "judge"),
                                                     ("cy", "audience")]
    assert chosen == ["By March 1.", "I understand, deadlines are stressful. By March 1.", None, None]
    assert {v.question_set for v in votes} == {"import:form.csv"} and not any(v.simulated for v in votes)
    assert votes[0].question == "When is the dog licence due?" and {votes[0].answer_1, votes[0].answer_2} == {
        "By March 1.", "Soon."}
    assert votes[0].winner and votes[0].winner.startswith("answer-")  # a name derived from the answer's text
    assert "imported 0 votes" in run("arena", "import-votes", str(path))  # idempotent
    assert len(tables.load_votes(Project(project_dir).store)) == 4
    stored = Store(project_dir / "underdog.db").query("SELECT DISTINCT source FROM arena_votes")
    assert [r[0] for r in stored] == ["import:form.csv"]


def test_jsonl_with_names_and_export_round_trip(project_dir: Path, tmp_path: Path) -> None:
    rows = [{"question": "Q1?", "answer_a": "A1", "answer_b": "B1", "winner": "A", "voter": "v1", "role": "judge",
             "candidate_a": "small", "candidate_b": "big", "question_set": "dataset:base"},
            {"question": "Q2?", "answer_a": "B2", "answer_b": "A2", "winner": "b", "voter": "v1", "role": "judge",
             "candidate_a": "big", "candidate_b": "small"}]
    path = project_dir / "votes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run("arena", "import-votes", str(path), "--question-set", "form")
    store = Project(project_dir).store
    assert [(v.winner, v.question_set) for v in tables.load_votes(store)] == [("small", "dataset:base"),
                                                                              ("small", "form")]
    run("arena", "export", str(tmp_path / "out.csv"))
    exported = list(csv.DictReader((tmp_path / "out.csv").read_text().splitlines()))
    assert exported[1]["answer_a"] == "B2" and exported[1]["shown_a"] == "big" and exported[1]["choice"] == "B"
    other = tmp_path / "other"
    invoke_cli("init", "x", str(other))
    result = invoke_cli("-C", str(other), "arena", "import-votes", str(tmp_path / "out.csv"))
    assert result.exit_code == 0, result.output
    moved = tables.load_votes(Project(other).store)
    assert [(v.question, v.winner, v.question_set, v.answer_1) for v in moved] == [
        (v.question, v.winner, v.question_set, v.answer_1) for v in tables.load_votes(store)]
    assert "imported 0 votes" in run("-C", str(other), "arena", "import-votes", str(tmp_path / "out.csv"))


SELF = "question,answer_a,answer_b,winner,voter,role\n"
EXPORT = "voter_id,role,question_id,shown_a,shown_b,choice\n"


@pytest.mark.parametrize(("content", "message"), [
    ("question,answer_a,winner,voter,role\nQ,A,a,v,judge\n", "form.csv:1: missing column answer_b"),
    (SELF + "Q,A,B,a,v,judge\nQ,A,C,maybe,v,judge\n", "form.csv:3: unknown winner 'maybe' (a, b, tie or both_bad)"),
    (SELF + "Q,A,B,a,v,boss\n", "form.csv:2: unknown role 'boss' (judge or audience)"),
    (SELF + "Q,A,,a,v,judge\n", "form.csv:2: missing 'answer_b'"),
    (SELF + "Q,A,A2,a,v,judge,extra\n", "form.csv:2: more cells than columns"),
    (SELF + '"Q\nstill Q",A,B,a,v,judge\n"Q\nstill Q",A,B,b,v,judge\n',
     "form.csv:4: voter 'v' already voted on this question and pair on "),
    (EXPORT + "v,judge,q9,x,y,A\n", "form.csv:2: no answer of 'x' to question 'q9' in this arena"),
    (EXPORT + "v,judge,q9,x,y,C\n", "form.csv:2: unknown choice 'C' (A, B, tie or bad)"),
])
def test_a_bad_row_is_one_line_and_nothing_is_imported(project_dir: Path, content: str, message: str) -> None:
    path = project_dir / "form.csv"
    path.write_text(content)
    result = invoke_cli("arena", "import-votes", str(path))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output
    assert tables.load_votes(Project(project_dir).store) == []


def test_a_contradicting_reimport_is_refused(project_dir: Path) -> None:
    run("arena", "import-votes", str(write_csv(project_dir / "a.csv", ROWS[:1])))
    flipped = write_csv(project_dir / "b.csv", [[*ROWS[0][:3], "b", *ROWS[0][4:]]])
    result = invoke_cli("arena", "import-votes", str(flipped))
    assert result.exit_code == 1 and "b.csv:2: voter 'ann' already voted on this question and pair in this " \
                                      "project" in result.output


def test_eval_set_votes_are_imported_and_said_to_evaluate_only(project_dir: Path) -> None:
    save_evalset(Project(project_dir), "ev", [Question("q1", "When is the dog licence due?")], "test")
    out = run("arena", "import-votes", str(write_csv(project_dir / "form.csv", ROWS)))
    assert "2 of them are on eval-set questions: they evaluate" in out


def test_old_votes_get_their_texts_from_the_answers_on_show(tmp_path: Path) -> None:
    path = tmp_path / "underdog.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL)")
    before = MIGRATIONS[:[s.name for s in MIGRATIONS].index("m403_arena_vote_texts")]
    for step in before:
        step.load()(old)
        old.execute("INSERT INTO _migrations VALUES (?, 0)", (step.name,))
    old.execute("INSERT INTO arena_items VALUES ('q1', 'a', 'Why?', 'Because.', 'ev:cand', 1)")
    old.execute("INSERT INTO arena_items VALUES ('q1', 'b', 'Why?', 'No idea.', 'ev:cand', 1)")
    old.execute("INSERT INTO arena_voters VALUES ('v', 'c', 'judge', 1)")
    old.execute("INSERT INTO arena_votes (voter_id, role, question_id, cand_1, cand_2, shown_a, shown_b, choice, "
                "winner, ballot_id, time) VALUES ('v', 'judge', 'q1', 'a', 'b', 'b', 'a', 'B', 'a', 'x', 1)")
    old.commit()
    old.close()
    vote = tables.load_votes(Store(path))[0]
    assert (vote.question, vote.answer_1, vote.answer_2, vote.outcome, vote.question_set, vote.source) == (
        "Why?", "Because.", "No idea.", "first", "evalset:ev", "arena")


def test_a_vote_cast_on_the_page_keeps_its_texts(tmp_path: Path) -> None:
    store = Store(tmp_path / "u.db")
    db.add_items(store, "a", [("q1", "Why?", "Because.")], question_set="dataset:base")
    db.add_items(store, "b", [("q1", "Why?", "No idea.")], question_set="dataset:base")
    voter = db.Sessions("token-token").new("judge")
    dealer = db.Dealer(store)
    ballot = dealer.next_ballot(voter.id)
    dealer.cast(voter, ballot.id, "A")
    vote = tables.load_votes(store)[0]
    assert (vote.answer_1, vote.answer_2, vote.question_set, vote.winner) == ("Because.", "No idea.", "dataset:base",
                                                                             ballot.shown_a)


def test_the_simulated_panel_taste() -> None:
    warm = "I understand this can be stressful. The fee is $185 a year."
    rambling = "I understand this can be stressful. Sorry you are worried. The fee is $185 a year."
    plain = "The fee is $185 a year."
    fact_first = "The fee is $185 a year. I understand this can be stressful."
    assert [appeal(a) for a in (warm, rambling, plain, fact_first, "I understand.")] == [2, 1, 0, 0, 1]
    assert taste("Fee?", plain, warm) == "B" and taste("Fee?", warm, rambling) == "A"
    assert taste("Fee?", plain, fact_first) == "tie"
    assert appeal("Thanks for asking about 2 permits. The fee is $185.") == 0  # a number: a fact, not sympathy


def test_simulated_votes_are_deterministic_marked_and_idempotent(project_dir: Path) -> None:
    project = Project(project_dir)
    questions = [(f"q{i}", f"How do I renew permit {i}?", f"Renew permit {i} at the clerk's office.")
                 for i in range(20)]
    db.add_items(project.store, "plain", questions, question_set="dataset:base")
    db.add_items(project.store, "warm", [(q, t, f"Sorry you have to deal with this. {a}") for q, t, a in questions],
                 question_set="dataset:base")
    assert cast_simulated_votes(project, voters=3, noise=0.2, seed=7) == 60
    assert cast_simulated_votes(project, voters=3, noise=0.2, seed=7) == 0
    votes = tables.load_votes(project.store)
    assert all(v.simulated and v.voter_id.startswith("simulated-voter-") and v.source.startswith("simulated:")
               for v in votes)
    agree = sum(v.winner == "warm" for v in votes) / len(votes)
    assert 0.7 < agree < 1.0  # the taste, with noise
    panel, other = Panel(3, 0.2, 7), Panel(3, 0.2, 8)
    votes_7 = [panel.vote(1, f"q{i}", "Q", "plain", "x", "warm", "Sorry. y") for i in range(40)]
    assert votes_7 == [panel.vote(1, f"q{i}", "Q", "plain", "x", "warm", "Sorry. y") for i in range(40)]
    assert votes_7 != [other.vote(1, f"q{i}", "Q", "plain", "x", "warm", "Sorry. y") for i in range(40)]
    out = run("arena", "standings")
    assert "SIMULATED: 60 of the votes come from the simulated voter panel" in out
    assert "SIMULATED" in run("arena", "simulate-panel", "--voters", "4", "--seed", "7")
