"""`underdog autopilot`: from `underdog.yaml` to the best honest run, within budgets, every decision logged.

    plan = plan_autopilot(project, Budgets(usd=20, max_runs=12))      # spends nothing
    outcome = run_autopilot(project, Budgets(usd=20, max_runs=12))   # resumable: run it again after a crash

The stages are the table in stages.py, run in order, each skipped when done: topics -> held-out eval set
(generated with an answer key unless `autopilot.evalset` names one), split once into a dev and a test split ->
generate and ingest -> each data variant -> successive halving over hyperparameters and variants, judged on the
dev split, and the pick -> system prompt x temperature x top_p on the dev split -> the test split, judged once
-> report and submission bundle.

The plan is made at the first run and kept in the journal: a resumed run uses it as it is (the same cuts, so the
same data and decisions as a run never killed). Money: before each paid piece of a stage its estimate is
reserved against `--budget-usd`, and the piece runs on a project whose models are capped at that reservation
(`Project.with_budget`), so no call can overspend; an optional piece that no longer fits is skipped, and the
journal says so. Every model call is cached, runs resume from their checkpoints, and each stage's result is read
back from the journal: after a kill -9 the same command repeats no paid call and no finished run.
"""

from __future__ import annotations

import time

from underdog.autopilot import stages
from underdog.autopilot.base import Budgets, Options, Outcome
from underdog.autopilot.bundle import bundle_paths
from underdog.autopilot.context import FINISHED, Budget, Context
from underdog.autopilot.journal import Journal
from underdog.autopilot.names import FOLDER
from underdog.autopilot.plan import fix_plan, fixed_plan, plan_autopilot
from underdog.project import Project


class Autopilot:
    """One autopilot in `project`: its fixed plan (made now on the first run), its journal and its money."""

    def __init__(self, project: Project, budgets: Budgets, options: Options | None = None):
        journal = Journal(project.path(FOLDER), on_decision=project.reporter.note)
        plan = fixed_plan(project, journal, budgets)
        if plan is None:
            started = journal.events(step="start")
            baseline = started[0]["spent_usd"] if started else project.store.spent_usd()
            plan = plan_autopilot(project, budgets, spent=project.store.spent_usd() - baseline)
            if not started:
                journal.event(step="start", spent_usd=baseline)
            fix_plan(project, journal, plan)
            for cut in plan.shrunk:
                journal.decide("plan", f"shrunk to fit: {cut}")
        baseline = journal.events(step="start")[0]["spent_usd"]
        limit = project.config.budget_usd if budgets.usd is None else baseline + budgets.usd
        self.ctx = Context(project, plan.settings, journal, plan, budgets, options or Options())
        self.budget = Budget(self.ctx, plan.stages, limit)  # the project's total spend may reach `limit`
        self.started = time.time()

    def run(self) -> Outcome:
        """Every stage not done yet, in the table's order; the outcome read back from the journal."""
        ctx = self.ctx
        for stage in stages.STAGES:
            if stage.done(ctx):
                continue
            ctx.say.step(stage.title)
            stage.run(ctx, self.budget)
            if not ctx.finished(stage.key):
                ctx.journal.event(step=FINISHED, stage=stage.key)
        outcome = ctx.outcome()
        outcome.paths = bundle_paths(ctx.project, ctx.options.merge)
        outcome.seconds = time.time() - self.started
        return outcome


def run_autopilot(project: Project, budgets: Budgets, merge: bool = False, skip_failed: bool = False) -> Outcome:
    """Run (or resume) the autopilot in `project` within `budgets` (`merge`: merged weights in the bundle too;
    `skip_failed`: write a data stage's dataset without the teacher calls that failed for good)."""
    return Autopilot(project, budgets, Options(merge=merge, skip_failed=skip_failed)).run()
