"""The autopilot's stage table and what a resumed autopilot keeps: the modules import at the top and form no
circle; a new stage is one table entry; a resumed run keeps the plan and cuts it started with; the search holds
the plan's run count when dev scores tie; the test split is judged once in the database even when killed in
between; `--skip-failed` exists where its error suggests it."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from test_autopilot import seeded_teacher, write_project
from underdog.autopilot import stages
from underdog.autopilot.base import Budgets, Estimate, Options, Pricer, RungResult, Settings, Sizes
from underdog.autopilot.context import JURY, PICK, TUNED, Budget, Context
from underdog.autopilot.halving import Halving, sample_trials, search_space
from underdog.autopilot.journal import Journal
from underdog.autopilot.names import DEV, GENERATED, TEST
from underdog.autopilot.plan import plan_autopilot
from underdog.autopilot.run import Autopilot
from underdog.errors import ConfigError
from underdog.evaluate.evalset import Question, save_evalset
from underdog.project import Project
from underdog.testing import ScriptedOpenAI, ServerThread

AUTOPILOT = Path(stages.__file__).parent
MODULES = sorted(p.stem for p in AUTOPILOT.glob("*.py") if p.stem != "__init__")


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-test-autopilot-0000")  # the scripted API's key, as write_project names it


# -- the wiring ---------------------------------------------------------------------------------------------
def underdog_imports(path: Path) -> list[tuple[str, int]]:
    """(module, column) of every `underdog` import in a file, at any depth (type-only and local ones included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("underdog"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            out += [(name, node.col_offset) for name in [node.module or "", *names]]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.col_offset) for a in node.names if a.name.startswith("underdog")]
    return out


def test_autopilot_modules_import_at_the_top_and_form_no_circle() -> None:
    graph = {m: {mod.removeprefix("underdog.autopilot.") for mod, _ in underdog_imports(AUTOPILOT / f"{m}.py")
                 if mod.removeprefix("underdog.autopilot.") in MODULES} for m in MODULES}
    assert graph["run"] and graph["plan"] and graph["search"]  # the parser sees the imports

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [m for m in MODULES if reaches(m, m, set())] == []
    files = [*(AUTOPILOT / f"{m}.py" for m in MODULES), AUTOPILOT.parent / "evaluate" / "answer.py"]
    local = [(f.name, mod) for f in files for mod, column in underdog_imports(f) if column > 0]
    assert local == []


def test_the_table_names_each_stage_and_each_priced_row_once(tmp_path: Path, tiny_llama_dir: Path) -> None:
    keys = [stage.key for stage in stages.STAGES]
    assert keys == ["topics", "evalset", "generate", "ingest", "variants", "search", "tune", "test", "bundle"]
    plan = plan_autopilot(Project(write_project(tmp_path / "p", "http://127.0.0.1:9", tiny_llama_dir)), Budgets())
    rows = [row.key for row in plan.stages]
    assert len(rows) == len(set(rows)) and {"evalset", "generate", "judge", "reference", "tune", "test"} <= set(rows)


class Rehearsal:
    """The smallest stage (as docs/design.md shows it): one priced row, done once it ran."""

    key, title, artifact = "rehearsal", "rehearsal: one call to the teacher", "a journal event"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        return [Pricer(ctx.project)("rehearsal", "rehearsal", "rehearsal: 1 call", "teacher", 1, 100)]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        if project := budget.take("rehearsal"):
            reply = project.llm("teacher", stage="rehearsal").chat("Say hello.")
            ctx.journal.event(step="rehearsal", text=reply.text)


def test_a_new_stage_is_one_table_entry(tmp_path: Path, tiny_llama_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedOpenAI(reply_body=seeded_teacher)
    monkeypatch.setattr(stages, "STAGES", (Rehearsal(),))
    with ServerThread(api.app) as server:
        project = Project(write_project(tmp_path / "p", server.url, tiny_llama_dir))
        assert [row.title for row in plan_autopilot(project, Budgets(usd=1.0)).stages] == ["rehearsal: 1 call"]
        Autopilot(project, Budgets(usd=1.0)).run()
        Autopilot(project, Budgets(usd=1.0)).run()  # done: not run again
    journal = Journal(project.path("autopilot"))
    assert [bool(e["text"]) for e in journal.events(step="rehearsal")] == [True] and api.requests == 1
    assert [e["title"] for e in journal.events(step="reserve")] == ["rehearsal: 1 call"]  # its budget, reserved


# -- issue 22, 1: a resumed autopilot keeps its plan ----------------------------------------------------------
def test_a_resumed_autopilot_keeps_the_plan_and_the_cuts_it_started_with(tmp_path: Path,
                                                                         tiny_llama_dir: Path) -> None:
    budgets = Budgets(usd=1.6, max_runs=6)
    api = ScriptedOpenAI(reply_body=seeded_teacher)
    with ServerThread(api.app) as server:
        root = write_project(tmp_path / "p", server.url, tiny_llama_dir)
        first = Autopilot(Project(root), budgets)
        assert first.ctx.settings.questions_per_topic == 1  # cut from 2 to fit the budget
        assert any("half the questions per topic" in cut for cut in first.ctx.plan.shrunk)
        for stage in stages.STAGES[:2]:  # topics and the eval set are paid for; then the autopilot is killed
            stage.run(first.ctx, first.budget)
        resumed = Autopilot(Project(root), budgets)  # the finished stages cost nothing now: a new plan would not cut
        shown = plan_autopilot(Project(root), budgets)  # what --plan shows
    assert resumed.ctx.settings == first.ctx.settings and resumed.ctx.plan.shrunk == first.ctx.plan.shrunk
    assert shown.settings == first.ctx.settings and shown.fixed_at and shown.row("evalset").done
    assert sum(e["choice"].startswith("shrunk to fit") for e in resumed.ctx.journal.entries("decision")) == len(
        first.ctx.plan.shrunk)
    changed = write_project(root, server.url, tiny_llama_dir, trials=4)
    with pytest.raises(ConfigError, match=r"autopilot.trials: changed since this autopilot started \(3 -> 4\)"):
        Autopilot(Project(changed), budgets)


# -- issue 22, 7: the plan's run count is a bound ---------------------------------------------------------
def test_tied_dev_scores_train_no_more_runs_than_the_plan_counts(tmp_path: Path) -> None:
    dists = search_space({"learning_rate": [1e-3, 2e-3, 5e-3]}, ["plain"])
    trials = sample_trials(dists, 3, seed=0)
    settings = Settings(topics=0, questions_per_topic=1, evalset_size=4, variants={"plain": []}, trials=3,
                        rungs=(1, 2), prompts=1, temperatures=(0.0,), top_ps=(1.0,))
    trained: list[str] = []

    def train(runs: list) -> dict[str, str]:
        trained.extend(run_id for run_id, _, _ in runs)
        return {run_id: "done" for run_id, _, _ in runs}

    journal = Journal(tmp_path)
    halving = Halving(journal, dists, trials, settings.rungs, 2, train, lambda run_id: (0.5, {"summary": "tied"}),
                      lambda run_id: None, bounds=settings.runs_per_rung(2))
    halving.run()
    assert len(trained) == sum(settings.runs_per_rung(2)) == 5  # ASHA alone promotes all three tied trials
    dropped = [e["why"] for e in journal.entries("decision") if "dropped at rung 0" in e["choice"]]
    assert dropped == ["in the best 1/2 of the 3 runs judged at rung 0 so far (asynchronous successive halving), "
                       "but the plan bounds rung 1 at 2 runs and 2 promotable runs scored higher (or tied, earlier)"]


# -- issue 22, 6: the test split is judged once, in the database too ------------------------------------------
class Killed(BaseException):
    """kill -9 at that point: nothing after it runs (not an Exception: nothing catches it)."""


@pytest.mark.slow
def test_a_kill_after_the_picks_test_judging_judges_it_once(tmp_path: Path, tiny_llama_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from test_adapters import make_adapters
    from underdog.autopilot import judging
    from underdog.autopilot.holdout import HoldOut

    base = tmp_path / "base"  # a base of its own: the adapter attached to it stays out of other tests' way
    shutil.copytree(tiny_llama_dir, base)
    api = ScriptedOpenAI(reply_body=seeded_teacher)
    with ServerThread(api.app) as server:
        root = write_project(tmp_path / "p", server.url, base)
        (root / "runs" / "run-0").mkdir(parents=True)
        make_adapters(base, tmp_path / "adapters", 1)[0].rename(root / "runs" / "run-0" / "adapter")
        project = Project(root)
        for name, ids in ((DEV, range(2)), (TEST, range(2, 5))):
            save_evalset(project, name, [Question(id=f"q{i}", question=f"What is fee {i}?", facts=[f"${i}"],
                                                  reference=f"Fee {i} is ${i}.") for i in ids], source="test")
        pilot = Autopilot(project, Budgets())
        pilot.ctx.journal.event(step=JURY, jury=["facts", "similarity"])
        pick = RungResult(0, 0, "run-0", 1, {"learning_rate": 1e-3, "variant": "plain"}, "done", 0.5)
        pilot.ctx.journal.event(step=PICK, result=pick.__dict__, compared=1)
        pilot.ctx.journal.event(step=TUNED, generation={"system_prompt": "", "temperature": 0.0, "top_p": 1.0},
                                cells=1)
        real = judging.judge

        def killed_after_the_pick(project: Project, candidate: object, *args: object, **kwargs: object) -> object:
            real(project, candidate, *args, **kwargs)  # recorded in judge_results
            raise Killed

        monkeypatch.setattr(judging, "judge", killed_after_the_pick)
        with pytest.raises(Killed):
            HoldOut().run(pilot.ctx, pilot.budget)
        monkeypatch.setattr(judging, "judge", real)
        resumed = Autopilot(Project(root), Budgets())
        HoldOut().run(resumed.ctx, resumed.budget)
    on_test = [r["candidate"] for r in Project(root).store.query(
        "SELECT candidate FROM judge_results WHERE evalset = ? ORDER BY id", (TEST,))]
    assert on_test == ["run-0 (autopilot pick)", "student"]  # judged once each
    test = resumed.ctx.latest("test")
    assert test is not None and test["numbers"]["pick"]["n"] == 3


# -- issue 22, 9: the --skip-failed that the generation error suggests ---------------------------------------
def test_generation_failures_suggest_skip_failed_which_the_autopilot_takes(tmp_path: Path, tiny_llama_dir: Path,
                                                                          cli) -> None:
    api = ScriptedOpenAI(reply_body=seeded_teacher)
    with ServerThread(api.app) as server:
        root = write_project(tmp_path / "p", server.url, tiny_llama_dir)
        pilot = Autopilot(Project(root), Budgets())
        topics, generate = stages.STAGES[0], stages.STAGES[2]
        topics.run(pilot.ctx, pilot.budget)
        api.faults = ["echo:400"]  # one generation call fails for good (a 400 is not retried)
        generate.run(pilot.ctx, pilot.budget)
        why = next(e["why"] for e in pilot.ctx.journal.entries("decision") if e["stage"] == "generate")
        assert "add --skip-failed" in why
        assert not (root / "datasets" / GENERATED).exists()
        api.faults = ["echo:400"]
        skipping = Autopilot(Project(root), Budgets(), Options(skip_failed=True))
        generate.run(skipping.ctx, skipping.budget)
    assert (root / "datasets" / GENERATED / "manifest.json").exists()  # written without the failed call
    assert "--skip-failed" in cli("autopilot", "--help").output


def test_a_bad_or_past_deadline_is_one_line_and_exit_2(tmp_path: Path, tiny_llama_dir: Path, cli) -> None:
    root = write_project(tmp_path / "p", "http://127.0.0.1:9", tiny_llama_dir)
    bad = cli("-C", root, "autopilot", "--plan", "--deadline", "soon")
    assert bad.exit_code == 2 and "--deadline 'soon'" in bad.output and "Traceback" not in bad.output
    past = cli("-C", root, "autopilot", "--plan", "--deadline", "2020-01-01T00:00")
    assert past.exit_code == 2, past.output
    assert past.output.strip() == ("error: --deadline 2020-01-01 00:00 has passed: no training run could start; "
                                   "give a later one (90m, 2h, or a date-time)")
