"""`underdog autopilot` with a tiny budget: a scripted OpenAI-compatible server on loopback is the priced teacher,
judge and reference, a tiny random Llama the student. Checked: the plan spends nothing, the budget holds, the test
split is judged once (for the pick and the base only), and a kill -9 mid-run resumes without repeating a paid call
or a finished run. Units: the dev/test split, the plan's shrinking, the journal, the deadline option."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from underdog.autopilot.evalsets import split
from underdog.autopilot.halving import best, sample_trials, search_space
from underdog.autopilot.journal import Journal
from underdog.autopilot.names import DEV, TEST
from underdog.evaluate.evalset import Question
from underdog.testing import ScriptedOpenAI, ServerThread, plausible_reply

SRC = str(Path(__file__).parents[1] / "src")
PRICE = {"price_per_1m_input": 100.0, "price_per_1m_output": 300.0}  # dear, so that a small budget binds


# -- units --------------------------------------------------------------------------------------------------
def questions(n: int, probes: int = 0) -> list[Question]:
    out = [Question(id=f"q{i}", question=f"What is fee {i}?", facts=[f"${i}"]) for i in range(n)]
    return out + [Question(id=f"r{i}", question=f"Whose address is {i}?", expect="refusal") for i in range(probes)]


def test_split_is_seeded_disjoint_and_keeps_probes_on_both_sides() -> None:
    dev, test = split(questions(10, probes=4), 0.5, seed=0)
    assert {q.id for q in dev}.isdisjoint({q.id for q in test})
    assert len(dev) + len(test) == 14
    assert sum(q.expect == "refusal" for q in dev) == 2 and sum(q.expect == "refusal" for q in test) == 2
    assert split(questions(10, probes=4), 0.5, seed=0) == (dev, test)
    assert split(questions(10, probes=4), 0.5, seed=1) != (dev, test)


def test_trials_are_distinct_and_stable_however_many_are_drawn() -> None:
    dists = search_space({"learning_rate": [1e-4, 2e-4, 5e-4], "lora_r": [8, 16]}, ["plain", "refusals"])
    six, three = sample_trials(dists, 6, seed=0), sample_trials(dists, 3, seed=0)
    assert len({json.dumps(t, sort_keys=True) for t in six}) == 6
    assert six[:3] == three
    assert len(sample_trials(search_space({"learning_rate": [1e-4, 2e-4]}, ["plain"]), 6, seed=0)) == 2  # no repeat


def test_journal_ignores_a_torn_line_and_repeats_no_decision(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.decide("sweep", "run 1 dropped", why="below the best half")
    journal.decide("sweep", "run 1 dropped", why="below the best half")
    with journal.path.open("a") as f:
        f.write('{"kind": "decision", "stage": "sw')  # kill -9 mid-write
    assert [e["choice"] for e in journal.entries("decision")] == ["run 1 dropped"]


def test_pick_is_the_best_at_the_highest_rung() -> None:
    from underdog.autopilot.halving import RungResult

    results = [RungResult(0, 0, "a", 1, {}, "done", 0.9), RungResult(1, 1, "b", 2, {}, "done", 0.5),
               RungResult(2, 1, "c", 2, {}, "done", 0.6), RungResult(3, 1, "d", 2, {}, "failed")]
    assert best(results).run_id == "c"


def test_deadline_option() -> None:
    from underdog.cli.autopilot import parse_deadline
    from underdog.errors import UnderdogError

    assert parse_deadline("90m", now=1000.0) == 1000.0 + 5400
    assert parse_deadline("2h", now=0.0) == 7200
    with pytest.raises(UnderdogError, match="--deadline 'soon'"):
        parse_deadline("soon")


# -- the whole autopilot against a priced loopback API ------------------------------------------------------
@pytest.fixture
def api() -> ScriptedOpenAI:
    """A priced teacher/judge/reference. A real teacher samples a new question per seed; this one numbers them."""
    asked = itertools.count()

    def reply(messages: list[dict[str, str]]) -> str:
        if "Write ONE realistic question" in messages[-1]["content"]:
            return f"How much does permit {next(asked)} cost, and where do I apply?"
        return plausible_reply(messages)

    return ScriptedOpenAI(reply=reply)


def write_project(root: Path, url: str, student: Path, **autopilot: object) -> Path:
    api_model = {"provider": "openai", "base_url": f"{url}/v1", "model": "scripted", "api_key_env": "FAKE_API_KEY",
                 "params": {"max_tokens": 48, "temperature": 0.7}, **PRICE}
    config = {
        "domain": "Testville city services",
        "models": {"teacher": api_model, "judge": api_model, "reference": {**api_model, "model": "big-reference"},
                   "student": {"provider": "local", "model": str(student), "params": {"max_tokens": 8,
                                                                                     "temperature": 0.0}}},
        "evaluate": {"answer_max_tokens": 8},
        "data": {"curate": {"rate": False}, "topic_rounds": 1},
        "autopilot": {"topics": 2, "questions_per_topic": 2, "evalset_size": 8, "variants": {"plain": []},
                      "trials": 3, "min_epochs": 1, "max_epochs": 2, "reduction_factor": 2,
                      "space": {"learning_rate": [1.0e-3, 2.0e-3, 5.0e-3]},
                      "fixed": {"max_steps": 6, "save_steps": 2, "per_device_train_batch_size": 2,
                                "validation_split_ratio": 0.25, "max_input_length": 64, "evals_per_epoch": 1},
                      "prompts": ["", "Answer briefly."], "temperatures": [0.0], "top_ps": [1.0], **autopilot},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "underdog.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def underdog(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "underdog", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout, env=environment())


def environment() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": SRC, "FAKE_API_KEY": "sk-test-autopilot-0000", "COLUMNS": "200"}


def test_plan_spends_nothing_and_shrinks_to_the_budget(tmp_path: Path, api: ScriptedOpenAI, tiny_llama_dir: Path,
                                                       cli) -> None:
    with ServerThread(api.app) as server:
        root = write_project(tmp_path / "p", server.url, tiny_llama_dir)
        full = cli("-C", root, "autopilot", "--plan")
        assert full.exit_code == 0, full.output
        assert "shrunk to fit" not in full.output and "eval set: 8 questions" in full.output
        usd = float(full.output.split("API: $")[1].split()[0])
        small = cli("-C", root, "autopilot", "--plan", "--budget-usd", f"{usd * 0.7:.4f}")
        assert small.exit_code == 0, small.output
        assert "shrunk to fit" in small.output
        assert float(small.output.split("API: $")[1].split()[0]) <= usd * 0.7
        broke = cli("-C", root, "autopilot", "--plan", "--budget-usd", "0.0001")
        assert broke.exit_code == 1 and "cannot cover the smallest autopilot" in broke.output
        assert "Traceback" not in broke.output
    assert api.requests == 0  # planning asked no model


def seeded_teacher(body: dict) -> str:
    """The priced teacher, judge and reference, deterministic: like a real teacher it writes a new eval question
    for a new seed (the same one for the same request), so two autopilots with the same seed see the same data."""
    messages = body["messages"]
    if "Write ONE realistic question" in messages[-1]["content"]:
        tag = hashlib.sha256(json.dumps([messages, body.get("seed")]).encode()).hexdigest()[:8]
        return f"How much does permit {tag} cost, and where do I apply?"
    return plausible_reply(messages)


def arrived(api: ScriptedOpenAI, prompt: str) -> int:
    return sum(prompt in body["messages"][-1]["content"] for body in list(api.bodies))


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def rows(root: Path, sql: str, *args: object) -> list[tuple]:
    """Rows of a query on a project's database, read-only (while an autopilot may be writing to it)."""
    if not (root / "underdog.db").exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{root / 'underdog.db'}?mode=ro", uri=True)) as db:
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # a table not made yet
            return []


PAID = "SELECT cache_key FROM llm_calls WHERE cached = 0 AND provider = 'openai'"
TEST_ROWS = ("SELECT candidate, n, wins, ties, losses, win_rate, ci_low, ci_high, fact_recall, fact_recall_low, "
             "fact_recall_high FROM judge_results WHERE evalset = ? ORDER BY id")
KILLS = [  # (what is under way, when the test kills the autopilot with -9)
    ("eval set generation, calls in flight", lambda root, api: arrived(api, "Write ONE realistic question") >= 4),
    ("generation, calls in flight", lambda root, api: arrived(api, "realistic questions that real people") >= 1),
    ("the first run training", lambda root, api: '"running"' in read(root / "runs/autopilot-t00-e1/manifest.json")),
    ("tuning", lambda root, api: '"stage": "search"' in read(root / "autopilot/journal.jsonl")),
    ("the test split, the pick judged", lambda root, api: bool(rows(root, TEST_ROWS, TEST))),
]


def kill_when(root: Path, api: ScriptedOpenAI, args: list[str], what: str, ready) -> None:
    """Start the autopilot and kill -9 it once `ready`."""
    with (root / f"killed during {what}.log").open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "underdog", *args], cwd=root, env=environment(), stdout=out,
                                stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while not ready(root, api):
            if proc.poll() is not None:
                pytest.fail(f"the autopilot ended before the kill during {what}: {read(Path(out.name))}")
            assert time.time() < deadline, f"never reached {what}"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.3)  # a request already on the wire reaches the server


def outcome_of(root: Path) -> dict:
    """What an autopilot decided and produced: its datasets' examples and eval sets' questions (without the time
    they were made), its decisions and its test split's judgments."""
    from underdog.data.dataset import list_datasets, load_dataset
    from underdog.evaluate.evalset import list_evalsets, load_evalset
    from underdog.project import Project

    project = Project(root)
    made = {name: [(e.messages, {k: v for k, v in e.meta.items() if k != "created"})
                   for e in load_dataset(root, name)] for name in list_datasets(root)}
    made |= {f"eval set {name}": load_evalset(project, name) for name in list_evalsets(project)}
    decisions = [{k: e[k] for k in ("stage", "choice", "why", "numbers", "compared")}
                 for e in Journal(root / "autopilot").entries("decision")]
    return {"made": made, "decisions": decisions, "test": rows(root, TEST_ROWS, TEST)}


@pytest.mark.slow
def test_killed_at_every_stage_it_ends_as_a_run_never_killed_within_budget_paying_no_call_twice(
        tmp_path: Path, tiny_llama_dir: Path) -> None:
    from underdog.project import Project

    never, killed = (ScriptedOpenAI(reply_body=seeded_teacher, delay_s=0.1) for _ in range(2))
    budget = 2.1  # the full plan's estimate is $2.20: it has to shrink (half the questions per topic)
    args = ["autopilot", "--budget-usd", str(budget), "--max-runs", "6"]
    with ServerThread(never.app) as server_a, ServerThread(killed.app) as server_b:
        whole = underdog(write_project(tmp_path / "never", server_a.url, tiny_llama_dir), *args)
        assert whole.returncode == 0, whole.stdout + whole.stderr
        root = write_project(tmp_path / "killed", server_b.url, tiny_llama_dir)
        for what, ready in KILLS:
            kill_when(root, killed, args, what, ready)
        unlogged = len(killed.bodies) - len(rows(root, PAID))  # in flight at a kill: answered, never logged
        done = underdog(root, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        again = underdog(root, *args)  # finished: nothing more to do, nothing asked
        assert again.returncode == 0, again.stdout + again.stderr
        log = underdog(root, "autopilot", "--log")

    assert outcome_of(root) == outcome_of(tmp_path / "never")  # the same data, decisions and test judgments
    project = Project(root)
    paid = [r["cache_key"] for r in project.store.query(PAID)]
    assert max(Counter(paid).values()) == 1, "a paid call was made twice"
    # every request the server answered was logged (and cached), but those in flight at the two kills during
    # calls: at most the teacher's concurrency each (issue 22, item 8: pending rows would count them)
    assert len(killed.bodies) - len(paid) == unlogged <= 2 * 8
    assert len(paid) == len(never.bodies)  # the killed autopilot paid for what the never-killed one did
    assert project.store.spent_usd() <= budget
    assert project.store.spent_usd() > 0
    results = project.store.query("SELECT candidate, evalset FROM judge_results")
    on_test = [r["candidate"] for r in results if r["evalset"] == TEST]
    assert len(on_test) == 2 and any("autopilot pick" in c for c in on_test), on_test  # the pick and the base
    assert {r["evalset"] for r in results} == {DEV, TEST}
    answered_test = {r["candidate"] for r in project.store.query(
        "SELECT DISTINCT candidate FROM answers WHERE evalset = ?", (TEST,))}
    assert len(answered_test) == 3, answered_test  # the pick (with its settings), the base student, the reference
    assert "autopilot-t0" not in " ".join(c for c in answered_test if "autopilot pick" not in c)
    bundle = root / "autopilot" / "submission"
    for name in ("adapter/adapter_config.json", "generation.json", "jumpstart/train.jsonl", "report.html",
                 "decision-log.md"):
        assert (bundle / name).exists(), name
    generation = json.loads((bundle / "generation.json").read_text())
    assert {"system_prompt", "temperature", "top_p", "run"} <= set(generation)
    assert "test:" in log.stdout and "pick:" in log.stdout and "sweep:" in log.stdout and "shrunk to fit" in log.stdout
    assert "half the questions per topic" in log.stdout
    assert log.stdout.count("test:") == 1
    assert "sk-test-autopilot" not in done.stdout + done.stderr + (root / "autopilot" / "journal.jsonl").read_text()


@pytest.mark.parametrize(("setting", "message"), [
    ({"space": {"learnig_rate": [1e-3]}}, "autopilot.space.learnig_rate: not a train setting"),
    ({"space": {"learning_rate": "high"}}, "autopilot.space.learning_rate: expected a list of choices"),
    ({"variants": {"v": ["refusal"]}}, "autopilot.variants.v: unknown slice 'refusal'"),
    ({"documents": ["missing.pdf"]}, "autopilot.documents: missing.pdf: not found"),
    ({"datasets": ["nope"]}, "autopilot.datasets: no dataset named 'nope'"),
    ({"evalset": "nope"}, "autopilot.evalset: no eval set named 'nope'"),
    # a malformed range (train/search.py, shared with `underdog sweep`), not optuna's ValueError
    ({"space": {"learning_rate": {"low": 1, "high": 0}}}, "autopilot.space.learning_rate: low (1) is above high (0)"),
    ({"space": {"learning_rate": {"low": 0, "high": 1, "log": True}}},
     "autopilot.space.learning_rate: log: true needs low > 0 (got 0)"),
    # values train or serve would refuse later, after money was spent
    ({"space": {"lora_r": [-8, 0]}}, "autopilot.space.lora_r: -8: Input should be greater than or equal to 1"),
    ({"space": {"lora_r": {"low": 4.0, "high": 16.0}}},
     "autopilot.space.lora_r: 8.44: Input should be a valid integer, got a number with a fractional part"),
    ({"fixed": {"lora_dropout": 1.5}}, "autopilot.fixed.lora_dropout: 1.5: Input should be less than 1"),
    ({"temperatures": [-1]}, "autopilot.temperatures.0: Input should be greater than or equal to 0"),
    ({"top_ps": [0.9, 0]}, "autopilot.top_ps.1: Input should be greater than 0"),
])
def test_a_bad_setting_is_one_line_naming_its_key(tmp_path: Path, tiny_llama_dir: Path, cli, setting: dict,
                                                  message: str) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", tiny_llama_dir, **setting)
    result = cli("-C", root, "autopilot", "--plan")
    assert result.exit_code == 2, result.output  # a configuration error
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_run_past_max_runs_or_the_training_hours_is_not_started(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from underdog.autopilot.base import Budgets
    from underdog.autopilot.run import Autopilot
    from underdog.autopilot.search import allowed
    from underdog.project import Project
    from underdog.train.runs import RunManifest, save_manifest

    root = write_project(tmp_path / "p", "http://127.0.0.1:9", tiny_llama_dir)
    project = Project(root)
    for i in range(2):  # two finished autopilot runs of an hour's training each
        save_manifest(project, RunManifest(id=f"autopilot-t0{i}-e1", status="done", dataset="d",
                                           base_model=str(tiny_llama_dir), hyperparameters={}, sweep="autopilot",
                                           metrics={"train_runtime_s": 3600.0}))
    assert allowed(Autopilot(project, Budgets(max_runs=8)).ctx, "autopilot-t02-e1") is None
    assert allowed(Autopilot(project, Budgets(max_runs=2)).ctx, "autopilot-t02-e1") == "--max-runs 2 reached"
    assert allowed(Autopilot(project, Budgets(train_hours=2.5)).ctx, "autopilot-t02-e2") is None  # a tiny model
    why = allowed(Autopilot(project, Budgets(train_hours=1.9)).ctx, "autopilot-t02-e2")
    assert why is not None and why.startswith("needs ~") and why.endswith(", 0 min left")


@pytest.mark.slow
def test_a_rungs_runs_answer_the_dev_split_in_one_mixed_batch_that_judging_reuses(
        tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_adapters import make_adapters
    from underdog.evaluate.answer import answer, answer_many
    from underdog.evaluate.evalset import import_evalset
    from underdog.llm import local
    from underdog.project import Project

    base = tmp_path / "base"  # a base of its own: the adapters attached to it stay out of other tests' way
    shutil.copytree(tiny_llama_dir, base)
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", base)
    for i, adapter in enumerate(make_adapters(base, tmp_path / "adapters", 2)):  # two runs' adapters
        (root / "runs" / f"run-{i}").mkdir(parents=True)
        adapter.rename(root / "runs" / f"run-{i}" / "adapter")
    (root / "q.jsonl").write_text("".join(json.dumps({"question": q}) + "\n" for q in ("Fee?", "Office?", "Form?")))
    project = Project(root)
    import_evalset(project, root / "q.jsonl", "dev")
    batches: list[list[str | None]] = []
    real_generate = local.generate

    def counted(views, *args, **kwargs):  # the real generation, with each row's adapter written down
        batches.append([v.adapter for v in views] if isinstance(views, list) else [views.adapter])
        return real_generate(views, *args, **kwargs)

    monkeypatch.setattr(local, "generate", counted)
    answer_many(project, ["run-0", "run-1"], "dev")
    assert len(batches) == 1 and len(batches[0]) == 6 and len(set(batches[0])) == 2  # one batch, both adapters
    answers = [[a.answer for a in answer(project, f"run-{i}", "dev", progress=False)] for i in range(2)]
    assert len(batches) == 1  # judging's answers came from the cache the mixed batch filled
    assert answers[0] != answers[1]
