"""People decide (issue 18): the `people` judge fitted on votes, judges calibrated against votes, and preference
datasets from votes, verdicts and ranked samples. The votes are the SIMULATED panel's (no people offline); the
embedding model is the real all-MiniLM-L6-v2; candidates and LLM judges are the real openai SDK against scripted
servers on loopback."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from conftest import invoke_cli
from underdog.arena import store as tables
from underdog.arena.simulated_panel import appeal, cast_simulated_votes
from underdog.arena.votes import add_items
from underdog.data.dataset import Example, list_datasets, save_dataset
from underdog.data.preferences import load_preferences
from underdog.evaluate import store as evaluate_tables
from underdog.evaluate.calibrate import calibrated_jury
from underdog.evaluate.evalset import Question, question_id, save_evalset
from underdog.evaluate.judges import Item, people
from underdog.evaluate.jury_status import jury_status
from underdog.project import Project
from underdog.testing import ScriptedOpenAI, ServerThread

TOPICS = ["dog licence", "food truck permit", "parking permit", "tax appeal", "burn permit", "marriage licence",
          "building permit", "voter registration", "trash pickup", "property deed", "fishing licence",
          "business licence", "noise complaint", "tree removal", "pool permit", "fence permit", "bike registration",
          "library card", "birth certificate", "park reservation", "road closure", "water bill", "snow removal",
          "yard sale permit"]
ACKS = ["I understand this can feel like a lot to sort out.", "Sorry you're dealing with this; it's a common worry.",
        "That sounds stressful, and you're right to check early.", "Don't worry, this is easier than it looks."]


def fact(topic: str) -> str:
    return f"The {topic} costs ${10 + len(topic)} at the clerk's office, Room {len(topic) % 7 + 1}."


def warm(topic: str, k: int = 0) -> str:
    return f"{ACKS[(len(topic) + k) % len(ACKS)]} {fact(topic)}"


def question(topic: str) -> str:
    return f"How do I get a {topic} in Harrowgate County?"


def panel_arena(project: Project, voters: int = 3) -> None:
    """Training questions answered by three scripted candidates, voted on by the simulated panel."""
    rows = {"plain": [(question_id(question(t)), question(t), fact(t)) for t in TOPICS],
            "warm": [(question_id(question(t)), question(t), warm(t)) for t in TOPICS],
            "detailed": [(question_id(question(t)), question(t), f"{fact(t)} Bring a photo ID.") for t in TOPICS]}
    for name, items in rows.items():
        add_items(project.store, name, items, question_set="dataset:base")
    save_dataset(project.root, "base", [Example([{"role": "user", "content": question(t)},
                                                 {"role": "assistant", "content": fact(t)}]) for t in TOPICS])
    cast_simulated_votes(project, voters=voters, noise=0.1, seed=0)


def topic_of(messages: list[dict]) -> str:
    text = messages[-1]["content"]
    return next(t for t in TOPICS if f" {t} " in f" {text} ")


def shorter_wins(messages: list[dict]) -> str:
    """An LLM judge that rewards conciseness only: the taste the panel does not share."""
    text = messages[-1]["content"]
    first = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0]
    second = text.split("[Answer B]\n", 1)[1].split("\n\n", 1)[0]
    verdict = "tie" if len(first) == len(second) else "A" if len(first) < len(second) else "B"
    return json.dumps({"reason": "shorter", "verdict": verdict})


@pytest.fixture
def servers(project_dir: Path) -> Iterator[list[str]]:
    """`--set` overrides for the roles `warm`, `plain`, `student` (one of every 3 samples of a question warm) and
    the LLM judge `curt`, each a scripted server; an eval set `ev` of 6 other questions."""
    asked: Counter[str] = Counter()

    def student(messages: list[dict]) -> str:  # the 3rd, 6th, ... answer to a question is warm, the others plain
        asked[topic := topic_of(messages)] += 1
        return warm(topic, 1) if asked[topic] % 3 == 0 else fact(topic)

    fakes = {"warm": ScriptedOpenAI(lambda m: warm(topic_of(m))), "plain": ScriptedOpenAI(lambda m: fact(topic_of(m))),
             "student": ScriptedOpenAI(student), "curt": ScriptedOpenAI(shorter_wins)}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(ServerThread(fake.app)).url + "/v1" for name, fake in fakes.items()}
        save_evalset(Project(project_dir), "ev", [Question(f"e{i}", f"Where can I renew my {t} in person?")
                                                  for i, t in enumerate(TOPICS[:6])], "test")
        yield [f"--set=models.{name}={json.dumps({'provider': 'openai', 'base_url': url, 'model': name})}"
               for name, url in urls.items()]


def run(*args: str) -> str:
    result = invoke_cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_people_judge_abstains_with_too_few_votes_and_says_how_many_more(project_dir: Path, servers: list[str]
                                                                              ) -> None:
    project = Project(project_dir)
    add_items(project.store, "plain", [("q1", question("dog licence"), fact("dog licence"))])
    add_items(project.store, "warm", [("q1", question("dog licence"), warm("dog licence"))])
    cast_simulated_votes(project, voters=3, noise=0.0)
    result = invoke_cli(*servers, "judge", "warm", "--against", "plain", "-e", "ev", "-j", "people", "-q")
    assert result.exit_code == 1
    assert "the people judge abstains: 3 decisive votes, it needs 40 (37 more" in result.output
    assert "no valid verdict" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_the_people_judge_learns_the_panel_is_stored_and_refits_on_new_votes(project_dir: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project(project_dir)
    panel_arena(project)
    judge = people.people_judge(project)
    model = judge.model
    assert model is not None and model.votes == 216 and model.decisive >= 130
    assert model.accuracy >= 0.8 and model.low < model.accuracy < model.high  # held out by question
    topic = "dog licence"
    decisions = judge.decide([Item(question(topic), warm(topic, 3), fact(topic)),
                              Item(question(topic), fact(topic), warm(topic, 3))])
    assert [d.verdict for d in decisions] == ["A", "B"]  # antisymmetric
    assert evaluate_tables.people_model(project.store, model.version) is not None

    def no_refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("refitted on the same votes")

    monkeypatch.setattr(people, "fit_people", no_refit)
    assert people.people_judge(project).model == model  # loaded, not refitted
    monkeypatch.undo()
    with project.store.transaction() as db:
        tables.ensure_voter(db, "late", "judge")
        tables.put_vote(db, {"voter_id": "late", "role": "judge", "question_id": "q", "cand_1": "plain",
                             "cand_2": "warm", "shown_a": "plain", "shown_b": "warm", "choice": "B", "winner": "warm",
                             "ballot_id": "late-1", "question": question(topic), "answer_1": fact(topic),
                             "answer_2": warm(topic)})
    assert people.people_judge(project).model.version != model.version


@pytest.mark.slow
def test_judge_and_calibrate_with_people_and_a_judge_that_disagrees(project_dir: Path, servers: list[str]) -> None:
    panel_arena(Project(project_dir))
    out = run(*servers, "judge", "warm", "--against", "plain", "-e", "ev", "-j", "people", "-q")
    assert "4 wins" in out or "5 wins" in out or "6 wins" in out, out
    assert "the people judge: fitted on 216 votes" in out and "held-out accuracy" in out
    config = project_dir / "underdog.yaml"
    config.write_text(config.read_text() + "\nevaluate:\n  judges: [curt, people]   # the jury\n  seed: 0\n")
    out = run(*servers, "calibrate", "--rounds", "200")
    assert "216 votes" in out and "216 SIMULATED by the simulated voter panel, not people" in out
    assert "warning: curt disagrees with the people beyond chance" in out
    assert "people preferred: " in out and "curt preferred: " in out
    assert "jury: curt + people" in out and "best jury on held-out votes" in out and "people (1)" in out
    assert "jury not calibrated" in run(*servers, "leaderboard", "-e", "ev")
    out = run(*servers, "calibrate", "--rounds", "200", "--apply")
    text = config.read_text()
    assert "  judges: [people]   # the jury\n" in text and "# Four roles, each a model spec." in text
    project = Project(project_dir, [s.removeprefix("--set=") for s in servers])
    assert project.config.evaluate.judges == ["people"]
    jury = calibrated_jury(project)
    assert jury is not None and jury.judges == ["people"] and jury.held_out >= 0.8
    status = jury_status(project)
    assert status.calibrated is not None and not status.new_votes
    assert any("curt disagrees" in w for w in jury_status(project, ["curt"]).warnings)
    out = run(*servers, "leaderboard", "-e", "ev")
    assert "jury calibrated against 216 votes: held-out agreement with the people" in out
    report = (project_dir / "reports" / "leaderboard.md").read_text()
    assert "## Jury vs people" in report and "jury calibrated against 216 votes" in report
    assert "What your voters reward" in report and "SIMULATED: 216 of the 216 votes" in report
    (project_dir / "prompts.yaml").write_text("none:\n")
    out = run(*servers, "tune-prompt", "warm", "-p", "prompts.yaml", "-t", "0.3", "--top-p", "1.0", "--reference",
              "plain", "-e", "ev")
    assert "100.0%" in out and "jury calibrated against 216 votes" in out


@pytest.mark.slow
def test_preference_datasets_from_votes_samples_and_verdicts(project_dir: Path, servers: list[str]) -> None:
    panel_arena(Project(project_dir))
    out = run(*servers, "preferences", "--name", "from-votes", "--votes")
    assert "wrote preference dataset from-votes" in out and "SIMULATED" in out
    pairs = load_preferences(project_dir, "from-votes")
    assert 20 <= len(pairs) <= 72 and all(p.meta["source"] == "votes" and p.meta["simulated"] for p in pairs)
    assert sum(appeal(p.chosen) > appeal(p.rejected) for p in pairs) >= 0.8 * len(pairs)
    assert all(p.prompt == [{"role": "user", "content": p.question}] for p in pairs)  # no system prompt
    listing = run("datasets")
    assert "from-votes" in listing and "preference" in listing
    shown = run("datasets", "show", "from-votes")
    assert "preference pairs" in shown and "SIMULATED" in shown and "chosen:" in shown

    out = run(*servers, "preferences", "--name", "samples", "--samples", "student", "-q", "dataset:base", "-j",
              "people", "-n", "3", "--max-questions", "8")
    sampled = load_preferences(project_dir, "samples")
    assert sampled and all(appeal(p.chosen) == 2 and appeal(p.rejected) == 0 for p in sampled), out
    manifest = json.loads((project_dir / "datasets" / "samples" / "manifest.json").read_text())
    assert manifest["kind"] == "preference" and manifest["parent"] == "base"
    assert manifest["recipe"]["judges"] == ["people"] and manifest["recipe"]["n"] == 3

    run(*servers, "preferences", "--name", "verdicts", "--verdicts", "plain", "warm", "-q", "dataset:base",
        "-j", "people", "--max-questions", "6")
    assert [appeal(p.chosen) for p in load_preferences(project_dir, "verdicts")] == [2] * 6

    save_evalset(Project(project_dir), "overlap", [Question("o1", question(TOPICS[0]).upper())], "test")
    out = run(*servers, "preferences", "--name", "no-eval", "--votes")
    assert "'eval_set_votes_refused': 9" in out and "they never become training data" in out
    assert not any(TOPICS[0] in p.question for p in load_preferences(project_dir, "no-eval"))


def test_bad_preference_builds_are_one_line_and_write_nothing(project_dir: Path, servers: list[str]) -> None:
    cases = [(["--name", "x"], "name at least one source"),
             (["--name", "x", "--votes"], "preference dataset 'x' would hold no pair (0 votes"),
             (["--name", "x", "--samples", "student"], "need training questions"),
             (["--name", "x", "--samples", "student", "-q", "evalset:ev"],
              "every question of evalset:ev is an eval-set question: they evaluate, they never become training data"),
             (["--name", "x", "--samples", "student", "-q", "dataset:nope"], "no dataset named 'nope'"),
             (["--name", "x", "--votes", "-j", "nobody"], "--judge 'nobody': unknown judge")]
    for args, message in cases:
        result = invoke_cli(*servers, "preferences", *args)
        assert result.exit_code in (1, 2) and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert "x" not in list_datasets(project_dir)


def test_arena_add_puts_a_datasets_questions_on_show(project_dir: Path, servers: list[str]) -> None:
    save_dataset(project_dir, "base", [Example([{"role": "user", "content": question(t)},
                                                {"role": "assistant", "content": fact(t)}]) for t in TOPICS])
    assert "added 5 answers of warm" in run(*servers, "arena", "add", "warm", "--questions", "dataset:base",
                                            "--max-questions", "5")
    run(*servers, "arena", "add", "plain", "-q", "dataset:base", "--max-questions", "5")
    rows = Project(project_dir).store.query("SELECT DISTINCT question_set, source FROM arena_items")
    assert {r["question_set"] for r in rows} == {"dataset:base"}
    assert cast_simulated_votes(Project(project_dir), voters=1, noise=0.0) == 5
    votes = tables.load_votes(Project(project_dir).store)
    assert {v.question_set for v in votes} == {"dataset:base"} and {v.winner for v in votes} == {"warm"}
    result = invoke_cli(*servers, "arena", "add", "warm", "--questions", "missing.txt")
    assert result.exit_code == 1 and "missing.txt: no such file" in result.output


@pytest.mark.slow
def test_best_of_n_keeps_the_sample_the_people_judge_prefers(project_dir: Path, servers: list[str]) -> None:
    from underdog.evaluate.answer import resolve_candidate
    from underdog.tune.prompt import best_of_n

    panel_arena(Project(project_dir))
    project = Project(project_dir, [s.removeprefix("--set=") for s in servers] + ["evaluate.judges=[people]"])
    best = best_of_n(project, resolve_candidate(project, "student"), "ev", 3, progress=False)
    assert [appeal(a.answer) for a in best] == [2] * 6  # one warm sample of 3 per question: kept every time
