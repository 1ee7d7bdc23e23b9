"""`underdog autopilot` with a tiny budget: a scripted OpenAI-compatible server on loopback is the priced teacher,
judge and reference, a tiny random Llama the student. Checked: the plan spends nothing, the budget holds, the test
split is judged once (for the pick and the base only), and a kill -9 mid-run resumes without repeating a paid call
or a finished run. Units: the dev/test split, the plan's shrinking, the journal, the deadline option."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from underdog.autopilot.halving import best, sample_trials, search_space
from underdog.autopilot.journal import Journal
from underdog.autopilot.evalsets import split
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
                      "fixed": {"max_steps": 12, "save_steps": 1, "per_device_train_batch_size": 2,
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


@pytest.mark.slow
def test_budget_held_test_judged_once_and_kill_9_repeats_no_paid_call(tmp_path: Path, api: ScriptedOpenAI,
                                                                       tiny_llama_dir: Path) -> None:
    from underdog.project import Project

    with ServerThread(api.app) as server:
        root = write_project(tmp_path / "p", server.url, tiny_llama_dir)
        budget = 1.6  # the full plan's estimate is $2.20: it has to shrink
        args = ["autopilot", "--budget-usd", str(budget), "--max-runs", "6"]
        first = subprocess.Popen([sys.executable, "-m", "underdog", *args], cwd=root, env=environment(),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        manifest = root / "runs" / "autopilot-t00-e1" / "manifest.json"
        deadline = time.time() + 300
        while not (manifest.exists() and '"running"' in manifest.read_text()):  # training started: no call open
            assert first.poll() is None, first.stdout.read() if first.stdout else ""
            assert time.time() < deadline, "the first run never started"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        paid_before = len(api.bodies)
        assert paid_before > 0
        done = underdog(root, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        again = underdog(root, *args)  # finished: nothing more to do, nothing asked
        assert again.returncode == 0, again.stdout + again.stderr
        log = underdog(root, "autopilot", "--log")

    project = Project(root)
    paid = [r["cache_key"] for r in project.store.query(
        "SELECT cache_key FROM llm_calls WHERE cached = 0 AND provider = 'openai'")]
    assert len(paid) == len(api.bodies)  # every request the server answered was logged (and cached): none lost
    assert max(Counter(paid).values()) == 1, "a paid call was made twice"
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
    assert log.stdout.count("test:") == 1
    assert "sk-test-autopilot" not in done.stdout + done.stderr + (root / "autopilot" / "journal.jsonl").read_text()


@pytest.mark.parametrize(("setting", "message"), [
    ({"space": {"learnig_rate": [1e-3]}}, "autopilot.space.learnig_rate: not a train setting"),
    ({"space": {"learning_rate": "high"}}, "autopilot.space.learning_rate: expected a list of choices"),
    ({"variants": {"v": ["refusal"]}}, "autopilot.variants.v: unknown slice 'refusal'"),
    ({"documents": ["missing.pdf"]}, "autopilot.documents: missing.pdf: not found"),
    ({"datasets": ["nope"]}, "autopilot.datasets: no dataset named 'nope'"),
    ({"evalset": "nope"}, "autopilot.evalset: no eval set named 'nope'"),
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
