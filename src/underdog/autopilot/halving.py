"""The autopilot's search: hyperparameters and data variants with successive halving, decided by Optuna.

Trials are configurations sampled from `autopilot.space` plus a `variant` choice (Optuna's RandomSampler, seeded:
the i-th trial is the same however many there are). Rung k trains each surviving trial for `rungs[k]` epochs (a
run of its own, `autopilot-t<trial>-e<epochs>`, from scratch, so its learning-rate schedule is the one of a run
that long), judges it on the dev split, reports the score to Optuna and asks its `SuccessiveHalvingPruner`
whether to continue: asynchronous successive halving (ASHA), in which a trial goes on when it is in the best
1/reduction_factor of the trials compared at that rung so far. Trials are judged in order, so the first ones meet
fewer rivals (ASHA's known trade-off); the plan counts one extra run per rung for it, and that count is a bound:
when more trials are promotable (tied dev scores are all promotable), the best of them by dev score (ties: the
earlier trial) go on, so the plan's run count, time and judging estimates hold.

Resuming: the study lives in memory and is rebuilt from the journal's events (the same reports in the same order
give the pruner the same decisions); finished runs are not retrained and judged runs are not re-judged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import optuna

from underdog.autopilot.base import RungResult
from underdog.autopilot.journal import Journal
from underdog.autopilot.names import run_id
from underdog.train.search import distributions

TRIAL_SAMPLING_TRIES = 200  # draws per trial before the space counts as exhausted


def search_space(space: dict[str, Any], variants: list[str]) -> dict[str, Any]:
    """Optuna distributions of `autopilot.space` plus the data `variant`."""
    return {**distributions(space, "autopilot.space"),
            "variant": optuna.distributions.CategoricalDistribution(variants)}


def sample_trials(dists: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """Up to `n` distinct configurations from `dists` (fewer when the space has fewer)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: list[dict[str, Any]] = []
    for _ in range(n):
        new = (p for p in (study.ask(dists).params for _ in range(TRIAL_SAMPLING_TRIES)) if p not in out)
        params = next(new, None)
        if params is None:
            break  # the space is exhausted (as far as random draws tell)
        out.append(params)
    return out


class Halving:
    """Successive halving over `trials`, with `train` (run id, params, epochs -> status) and `judge` (run id ->
    score, numbers) supplied by the autopilot, `allowed` (a run about to start -> None, or why not),
    `prepare` (the runs a rung just finished, before they are judged one by one) and `bounds` (runs at most at
    each rung: the plan's count)."""

    def __init__(self, journal: Journal, dists: dict[str, Any], trials: list[dict[str, Any]], rungs: tuple[int, ...],
                 reduction_factor: int, train: Callable[[list[tuple[str, dict[str, Any], int]]], dict[str, str]],
                 judge: Callable[[str], tuple[float, dict[str, Any]]],
                 allowed: Callable[[str], str | None], prepare: Callable[[list[str]], None] | None = None,
                 bounds: list[int] | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.journal, self.dists, self.trials, self.rungs, self.eta = journal, dists, trials, rungs, reduction_factor
        self.train, self.judge, self.allowed, self.prepare = train, judge, allowed, prepare
        self.bounds = bounds or [len(trials)] * len(rungs)
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=reduction_factor,
                                                        min_early_stopping_rate=0)
        self.study = optuna.create_study(direction="maximize", pruner=pruner)

    def run(self) -> list[RungResult]:
        """Every rung; the results of every run trained (the last rung's survivors are the candidates)."""
        handles = [self._ask(params) for params in self.trials]
        self.journal.decide("sweep", f"{len(self.trials)} configurations, rungs of {', '.join(map(str, self.rungs))} "
                                     f"epochs, the best 1/{self.eta} going on",
                            compared=[f"t{i:02d}: {json.dumps(p)}" for i, p in enumerate(self.trials)])
        alive = list(range(len(self.trials)))
        results: list[RungResult] = []
        for rung, epochs in enumerate(self.rungs):
            got = self._rung(rung, epochs, alive)
            results += got
            judged = [r for r in got if r.score is not None]
            if rung == len(self.rungs) - 1:
                for r in judged:
                    self.journal.decide("sweep", f"{r.run_id} ({describe(r.params)}) finalist: "
                                                 f"{(r.numbers or {}).get('summary')}",
                                        why=f"judged at the last rung ({r.epochs} epochs)",
                                        numbers={"score": r.score, "params": json.dumps(r.params)})
                break
            alive = self._promote(judged, handles, self.bounds[rung + 1])
            if not alive:
                break
        return results

    def _ask(self, params: dict[str, Any]) -> Any:
        self.study.enqueue_trial(params)
        return self.study.ask(self.dists)

    def _rung(self, rung: int, epochs: int, alive: list[int]) -> list[RungResult]:
        """Train (those not trained yet) and judge the alive trials at this rung."""
        results = {t: RungResult(t, rung, run_id(t, epochs), epochs, self.trials[t], "planned") for t in alive}
        for t, result in results.items():
            if done := self.journal.events(step="rung", trial=t, rung=rung):
                result.status, result.score, result.numbers = done[-1]["status"], done[-1]["score"], done[-1]["numbers"]
                result.note = done[-1].get("note", "")
        todo = [r for r in results.values() if r.status == "planned"]
        startable = []
        for r in todo:
            why = self.allowed(r.run_id)
            if why:
                r.status, r.note = "skipped", why
                self.journal.decide("sweep", f"{r.run_id} not started", why=why)
            else:
                startable.append(r)
        statuses = self.train([(r.run_id, r.params, r.epochs) for r in startable]) if startable else {}
        if self.prepare:  # e.g. answer the dev split with every finished run at once
            self.prepare([r.run_id for r in startable if statuses.get(r.run_id) == "done"])
        for r in startable:
            r.status = statuses.get(r.run_id, "failed")
            if r.status == "done":
                r.score, r.numbers = self.judge(r.run_id)
            else:
                r.note = statuses.get(f"{r.run_id}:error", "") or "the run failed"
            self.journal.event(step="rung", trial=r.trial, rung=rung, run_id=r.run_id, status=r.status,
                               score=r.score, numbers=r.numbers, note=r.note)
        return [results[t] for t in alive]

    def _promote(self, judged: list[RungResult], handles: list[Any], bound: int) -> list[int]:
        """The trials going on: those Optuna's pruner promotes, asked in trial order (each against the runs
        judged at this rung so far), at most `bound` of them: the best dev scores, ties to the earlier trial.
        Every decision is logged with its numbers."""
        promotable = []
        for r in judged:
            assert r.score is not None
            handles[r.trial].report(r.score, step=self.eta ** r.rung)
            promotable.append(not handles[r.trial].should_prune())
        ranked = sorted((r for r, ok in zip(judged, promotable, strict=True) if ok), key=lambda r: (-r.score, r.trial))
        kept = {r.trial for r in ranked[:bound]}
        for compared, (r, ok) in enumerate(zip(judged, promotable, strict=True), 1):
            if r.trial not in kept:
                self.study.tell(handles[r.trial], state=optuna.trial.TrialState.PRUNED)
            runs = "the 1 run" if compared == 1 else f"the {compared} runs"
            why = (f"{'in' if ok else 'not in'} the best 1/{self.eta} of {runs} judged at rung {r.rung} so far "
                   "(asynchronous successive halving)")
            if ok and r.trial not in kept:
                why += (f", but the plan bounds rung {r.rung + 1} at {bound} run{'s' * (bound != 1)} and "
                        f"{bound} promotable run{'s' * (bound != 1)} scored higher (or tied, earlier)")
            self._log_promotion(r, r.trial in kept, why)
        return [r.trial for r in judged if r.trial in kept]

    def _log_promotion(self, result: RungResult, promoted: bool, why: str) -> None:
        numbers = result.numbers or {}
        verb = f"continues to rung {result.rung + 1}" if promoted else f"dropped at rung {result.rung}"
        self.journal.decide("sweep", f"{result.run_id} ({describe(result.params)}) {verb}: "
                                     f"{numbers.get('summary', result.score)}",
                            why=why, numbers={"score": result.score, **numbers, "params": json.dumps(result.params)})


def describe(params: dict[str, Any]) -> str:
    """`learning_rate 0.002, lora_r 8, variant plain`: a trial's configuration in a log line."""
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())


def best(results: list[RungResult]) -> RungResult | None:
    """The pick: the best dev score at the highest rung any judged run reached (ties: the higher win rate, then
    the higher lower bound of its interval, then the earlier trial)."""
    judged = [r for r in results if r.score is not None]
    if not judged:
        return None
    top = max(r.rung for r in judged)
    finalists = [r for r in judged if r.rung == top]
    return max(finalists, key=lambda r: (r.score, (r.numbers or {}).get("win_rate") or 0,
                                         ((r.numbers or {}).get("win_rate_ci") or [0, 0])[0], -r.trial))
