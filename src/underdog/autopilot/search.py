"""The autopilot's search: successive halving over `autopilot.space` x the data variants (halving.py), every run
judged on the dev split, then the pick: the best dev score at the highest rung reached.

A rung's finished runs first answer the dev split together (`answer_many`: mixed-adapter batches), so judging
them one by one reads their answers from the cache. Before each run starts, `--max-runs` and the training time
left (`--train-hours`, `--deadline`) are checked; a run that does not fit is not started.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from underdog.autopilot.base import Estimate, Pricer, Sizes
from underdog.autopilot.context import PICK, Budget, Context
from underdog.autopilot.halving import Halving, best, sample_trials, search_space
from underdog.autopilot.judging import dev_score, judged, numbers
from underdog.autopilot.names import DEV, PREFIX, run_epochs
from underdog.autopilot.variants import searched_variants
from underdog.errors import UnderdogError
from underdog.evaluate.answer import answer_many
from underdog.project import Project
from underdog.train.executors import RunPlan, get_executor
from underdog.train.runs import list_runs


class Search:
    key, title = "search", "search: successive halving on the dev split, then the pick"
    artifact = f"runs {PREFIX}-t<trial>-e<epochs> judged on {DEV}, and the pick (journal)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        price, runs = Pricer(ctx.project), sum(ctx.settings.runs_per_rung(ctx.cfg.reduction_factor))
        evaluate = ctx.project.config.evaluate
        return [price.judging("judge", f"judge {runs} runs on the dev split", sizes.jury, runs + 1, sizes.n_dev),
                price("reference", "answer", "reference answers (dev and test)", evaluate.reference,
                      sizes.n_dev + sizes.n_test, 150, evaluate.answer_max_tokens)]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        judging = budget.take("judge", "reference", essential=True)
        assert judging is not None
        s, jury = ctx.settings, ctx.jury()
        variants, _ = searched_variants(ctx)
        dists = search_space(ctx.cfg.space, list(variants))
        trials = sample_trials(dists, s.trials, ctx.cfg.seed)

        def judge_run(run_id: str) -> tuple[float, dict[str, Any]]:
            found = numbers(judged(judging, run_id, DEV, jury))
            return dev_score(found), found

        def answer_together(run_ids: list[str]) -> None:
            if len(run_ids) > 1:
                answer_many(judging, run_ids, DEV)

        halving = Halving(ctx.journal, dists, trials, s.rungs, ctx.cfg.reduction_factor,
                          lambda runs: train(ctx, variants, runs), judge_run, lambda run_id: allowed(ctx, run_id),
                          prepare=answer_together, bounds=s.runs_per_rung(ctx.cfg.reduction_factor))
        results = halving.run()
        pick = best(results)
        if pick is None:
            raise UnderdogError("no run finished and was judged; see `underdog autopilot --log` and `underdog runs`")
        compared = len({r.run_id for r in results if r.score is not None})
        ctx.journal.decide("pick", f"{pick.run_id}: {(pick.numbers or {}).get('summary')}",
                           why=f"best dev score at rung {pick.rung} of {compared} runs judged on {DEV}",
                           numbers={"score": pick.score, **(pick.numbers or {})})
        ctx.journal.event(step=PICK, result=asdict(pick), compared=compared)


def train(ctx: Context, variants: dict[str, str], runs: list[tuple[str, dict[str, Any], int]]) -> dict[str, str]:
    """Train `runs` (run id, params, epochs) one after another; {run id: status, "<run id>:error": why}."""
    plans = [RunPlan(dataset=variants[params["variant"]], run_id=run_id, sweep=PREFIX,
                     overrides={**ctx.cfg.fixed, **{k: v for k, v in params.items() if k != "variant"},
                                "epoch": epochs})
             for run_id, params, epochs in runs]
    manifests = get_executor("local", ctx.project).submit(plans)
    out = {m.id: m.status for m in manifests}
    out.update({f"{m.id}:error": m.error or "" for m in manifests if m.error})
    return out


def allowed(ctx: Context, run_id: str) -> str | None:
    """Why a run may not start now (None: it may): --max-runs, --train-hours, --deadline."""
    assert ctx.plan is not None
    ours = autopilot_runs(ctx.project)
    budgets = ctx.budgets
    if budgets.max_runs is not None and len(ours) >= budgets.max_runs:
        return f"--max-runs {budgets.max_runs} reached"
    hours = budgets.train_hours_left()
    if hours is not None:
        used = sum(r.metrics.get("train_runtime_s") or 0 for r in ours) / 3600
        need = run_epochs(run_id) * ctx.plan.seconds_per_epoch / 3600
        left = hours - used if budgets.train_hours is not None else hours
        if need > left:
            return f"needs ~{need * 60:.0f} min of training, {max(left, 0) * 60:.0f} min left"
    return None


def autopilot_runs(project: Project) -> list[Any]:
    return [r for r in list_runs(project.root) if r.sweep == PREFIX]
