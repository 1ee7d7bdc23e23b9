"""The autopilot with arena votes (issue 18, item 6): two stages that do nothing but log why without votes.

`Calibrate` (just before the search): the jury every later judgment uses becomes the calibrated
one: the jury `underdog calibrate --apply` wrote (the configured judges, when a calibration on the current votes
chose them), else the best jury of a calibration on the current votes (stored, or made now: the configured judges
judge the voted pairs, priced in the plan). Its members decide by plain majority unless `--apply` wrote their
weights (the decision says so).

`Preference` (after the search, before tuning), the preference rung: the pick samples `preference_samples`
answers to at most `preference_questions` questions of its own training dataset (never an eval set's; at
`preference_temperature`), the `people` judge ranks them (`build_preferences`: best vs worst of each question) into
the preference dataset `autopilot-preferences`, a DPO run (`train --method dpo --from <pick>`) trains on it, and
it is judged on the dev split under the calibrated jury. It replaces the pick only when `keep_rung` says so: it
beats the pick head to head (win rate > 50%) and recalls no fewer facts on the dev split. Skipped, and logged,
without votes, while the people judge abstains, when `autopilot.preference` is false, cut to fit the budget, or
when the plan was fixed before the votes came.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from underdog.arena import store as arena_tables
from underdog.arena.preferences import build_preferences
from underdog.arena.store import Vote
from underdog.autopilot.base import Estimate, Pricer, RungResult, Sizes
from underdog.autopilot.context import JURY, PICK, Budget, Context
from underdog.autopilot.judging import dev_score, judged, numbers
from underdog.autopilot.names import DEV, PREFERENCES, PREFIX, dpo_run
from underdog.autopilot.search import allowed
from underdog.config import PEOPLE_JUDGE
from underdog.data.dataset import list_datasets, load_manifest
from underdog.errors import UnderdogError
from underdog.evaluate.calibrate import MIN_VOTES, calibrate, calibrated_jury
from underdog.evaluate.judges.people import people_model
from underdog.evaluate.jury_status import CalibratedJury, jury_status
from underdog.project import Project
from underdog.train.executors import RunPlan, get_executor
from underdog.train.lora import PREFERENCE_DEFAULTS
from underdog.train.runs import has_run, load_run

NO_VOTES = "no arena votes (`underdog arena serve` or `arena import-votes` collects them)"


def votes_of(project: Project) -> list[Vote]:
    """The arena's votes (none without the arena's tables)."""
    return arena_tables.load_votes(project.store) if arena_tables.any_vote(project.store) else []


def decisive(votes: list[Vote]) -> int:
    return sum(v.outcome != "tie" for v in votes)


def known_jury(project: Project) -> tuple[list[str], CalibratedJury, str] | None:
    """(members, calibration, where from) of a calibration on the current votes, read from the store (no call):
    the configured jury when `calibrate --apply` wrote it, else the newest calibration's best jury; None."""
    status = jury_status(project)
    if status.calibrated and not status.new_votes:
        return list(project.config.evaluate.judges), status.calibrated, "written by `underdog calibrate --apply`"
    if (best := calibrated_jury(project)) is not None:
        return list(best.judges), best, "the best jury of `underdog calibrate` on the current votes"
    return None


def planned_jury(project: Project, default: list[str]) -> list[str]:
    """The jury the plan prices the judgments with: `default` without votes, else the calibrated one when known,
    else the configured judges (calibration chooses among them and `people`, which calls no API)."""
    if not votes_of(project):
        return default
    known = known_jury(project)
    return known[0] if known else list(project.config.evaluate.judges)


def keep_rung(pick: dict[str, Any], dpo: dict[str, Any], duel: dict[str, Any]) -> tuple[bool, str]:
    """Whether the DPO run replaces the pick, and why: it must beat the pick head to head on the dev split
    (win rate > 50%, ties half) and recall no fewer facts there (when the split has facts)."""
    won = duel["win_rate"] > 0.5
    why = [f"head to head against the pick on {DEV}: {duel['summary']}" + ("" if won else ", not above 50%")]
    kept_facts = True
    if pick.get("fact_recall") is not None and dpo.get("fact_recall") is not None:
        ours, theirs = stated(dpo), stated(pick)
        kept_facts = ours >= theirs
        why.append(f"{ours} of {dpo['facts']} facts recalled vs the pick's {theirs}"
                   + ("" if kept_facts else ": it loses fact recall"))
    return won and kept_facts, "; ".join(why)


def stated(found: dict[str, Any]) -> int:
    """Facts a judging's answers stated (`numbers`: fact recall x facts asked)."""
    return round(found["fact_recall"] * found["facts"])


class Calibrate:
    key, title = "calibrate", "calibrate: the jury that predicts the arena's votes best"
    artifact = "the calibrated jury (journal), with arena votes"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        votes = votes_of(ctx.project)
        if not votes:
            return []
        judges = ctx.project.config.evaluate.judges
        title = f"calibrate: {', '.join(judges)} on {len(votes)} votes; the calibrated jury then picks"
        row = Pricer(ctx.project).judging("calibrate", title, judges, 1, len(votes))
        row.done = known_jury(ctx.project) is not None or decisive(votes) < MIN_VOTES
        return [row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        project, current = ctx.project, ctx.jury()
        votes = votes_of(project)
        if not votes:
            ctx.journal.decide(self.key, f"jury stays {', '.join(current)}", why=NO_VOTES)
            return
        known = known_jury(project)
        if known is None:
            if decisive(votes) < MIN_VOTES:
                ctx.journal.decide(self.key, f"jury stays {', '.join(current)}",
                                   why=f"{decisive(votes)} decisive votes; calibration needs {MIN_VOTES}")
                return
            if self.key not in budget.rows:
                ctx.journal.decide(self.key, f"jury stays {', '.join(current)}",
                                   why="the votes came after this autopilot's plan was fixed (it keeps its plan)")
                return
            if (paying := budget.take(self.key)) is None:
                return  # the budget left cannot cover it: logged
            best = calibrate(paying).best  # recorded in `calibrations`, as `underdog calibrate` records it
            if best is None:
                ctx.journal.decide(self.key, f"jury stays {', '.join(current)}",
                                   why="no judge gave a verdict on the voted pairs")
                return
            known = list(best.judges), best, "the best jury of `underdog calibrate`, run now on the current votes"
        jury, found, source = known
        weighted = len(set(found.weights.values())) > 1 and project.config.evaluate.judge_weights != found.weights
        note = (f"; its weights {found.weights} are not applied (a plain majority): `underdog calibrate --apply` "
                "writes them" if weighted else "")
        ctx.journal.decide(self.key, f"jury: {', '.join(jury)} (calibrated)",
                           why=f"{source}: held-out agreement with the people {found.held_out:.0%} (95% CI "
                               f"{found.low:.0%}-{found.high:.0%}, {found.votes} votes), replacing "
                               f"{', '.join(current)}{note}",
                           numbers={"held_out": found.held_out, "low": found.low, "high": found.high,
                                    "votes": found.votes, "weights": found.weights})
        ctx.journal.event(step=JURY, jury=jury, calibrated=True)


class Preference:
    key, title = "preference", "preference rung: samples ranked by the people judge -> DPO from the pick"
    artifact = f"preference dataset {PREFERENCES}, run {PREFIX}-dpo-e<epochs>, maybe a new pick (journal)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        votes = votes_of(ctx.project)
        if not votes or not ctx.cfg.preference:
            return []
        cfg = ctx.cfg
        title = (f"preference rung: {cfg.preference_samples} samples x <= {cfg.preference_questions} training "
                 f"questions ranked by the people judge -> DPO from the pick (<= {cfg.preference_questions} pairs "
                 f"x {dpo_epochs(ctx)} epochs), judged on the dev split")
        row = Pricer(ctx.project).judging(self.key, title, sizes.jury, 2, sizes.n_dev)  # vs reference, vs pick
        needed = ctx.project.config.evaluate.people_min_votes
        if decisive(votes) < needed:
            row.title, row.done = f"{title} (skipped: the people judge needs {needed} decisive votes)", True
        elif not ctx.settings.preference:
            row.title, row.done = f"{title} (cut to fit the budgets)", True
        return [row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        project = ctx.project
        if not votes_of(project):
            return self.skip(ctx, NO_VOTES)
        if not ctx.cfg.preference:
            return self.skip(ctx, "autopilot.preference: false")
        if self.key not in budget.rows:
            return self.skip(ctx, "the votes came after this autopilot's plan was fixed (it keeps its plan)")
        if not ctx.settings.preference:
            return self.skip(ctx, "cut to fit the budgets (see the plan)")
        _, model, why = people_model(project)
        if model is None:
            return self.skip(ctx, why)
        if (judging := budget.take(self.key)) is None:
            return None  # the budget left cannot cover it: logged
        pick, jury = ctx.pick(), ctx.jury()
        if not self.preferences(ctx, judging, pick):
            return None
        run_id = dpo_run(dpo_epochs(ctx))
        if not (has_run(project.root, run_id) and load_run(project.root, run_id).status == "done"):
            if (why := allowed(ctx, run_id)) is not None:
                return self.skip(ctx, f"{run_id} not started: {why}")
            overrides = {**{k: v for k, v in ctx.cfg.fixed.items() if k not in PREFERENCE_DEFAULTS},
                         **ctx.cfg.preference_train, "method": "dpo", "from_run": pick.run_id}
            try:
                [manifest] = get_executor("local", project).submit([RunPlan(dataset=PREFERENCES, run_id=run_id,
                                                                            sweep=PREFIX, overrides=overrides)])
            except UnderdogError as exc:  # refused before it started (e.g. the pick's base model changed)
                return self.skip(ctx, f"{run_id} not started: {exc}")
            if manifest.status != "done":
                return self.skip(ctx, f"{run_id} {manifest.status}: {manifest.error}")
        mine = numbers(judged(judging, pick.run_id, DEV, jury))  # recorded by the search: read back
        dpo = numbers(judged(judging, run_id, DEV, jury))
        duel = numbers(judged(judging, run_id, DEV, jury, reference=pick.run_id))
        keep, why = keep_rung(mine, dpo, duel)
        ctx.journal.decide(self.key, f"{'kept' if keep else 'dropped'} {run_id}: {dpo['summary']}"
                                     + ("" if keep else f"; the pick stays {pick.run_id}"),
                           why=f"{why} (jury: {', '.join(jury)})",
                           numbers={"pick": mine, "dpo": dpo, "head_to_head": duel})
        if keep:
            result = RungResult(pick.trial, pick.rung, run_id, dpo_epochs(ctx),
                                {**pick.params, "method": "dpo", "from_run": pick.run_id}, "done", dev_score(dpo),
                                dpo, note="preference rung")
            ctx.journal.decide("pick", f"{run_id}: {dpo['summary']}", why=f"the preference rung won: {why}",
                               numbers={"score": result.score, **dpo})
            previous = ctx.latest(PICK) or {}
            ctx.journal.event(step=PICK, result=asdict(result), compared=previous.get("compared", 0) + 1)
        return None

    def preferences(self, ctx: Context, judging: Project, pick: RungResult) -> bool:
        """The preference dataset of the pick's ranked samples (made once); False (logged) when none results."""
        cfg, dataset = ctx.cfg, load_run(ctx.project.root, pick.run_id).dataset
        if PREFERENCES in list_datasets(ctx.project.root):  # made before a kill: its counts are in its manifest
            counts = load_manifest(ctx.project.root, PREFERENCES).counts
        else:
            sampler = judging.with_overrides([f"models.student.params.temperature={cfg.preference_temperature}"])
            try:
                _, counts = build_preferences(sampler, PREFERENCES, samples=pick.run_id,
                                              questions=f"dataset:{dataset}", judges=[PEOPLE_JUDGE],
                                              n=cfg.preference_samples, max_questions=cfg.preference_questions)
            except UnderdogError as exc:
                self.skip(ctx, str(exc))
                return False
        found = counts["samples"]
        ctx.journal.decide(self.key, f"{counts['pairs']} preference pairs in {PREFERENCES}",
                           why=f"{found['samples']} samples of {pick.run_id} at temperature "
                               f"{cfg.preference_temperature:g} on {found['questions']} questions of dataset:{dataset} "
                               f"(eval-set questions left out: {counts['eval_set_questions_refused']}), ranked by "
                               f"the people judge; {found['same_text']} questions gave one text",
                           numbers=counts)
        return True

    def skip(self, ctx: Context, why: str) -> None:
        ctx.journal.decide(self.key, "skipped", why=why)


def dpo_epochs(ctx: Context) -> int:
    """The DPO run's epochs: `preference_train.epoch`, else DPO's default."""
    return int(ctx.cfg.preference_train.get("epoch", PREFERENCE_DEFAULTS["epoch"]))
