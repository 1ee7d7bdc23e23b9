"""Judges checked against people: how each judge and jury agrees with the arena's votes, and the jury that
predicts votes it did not see best (`underdog calibrate`).

    report = calibrate(project)                 # each configured judge alone, the configured jury, `people`
    report.rows[0].accuracy, .kappa, .tau        # agreement with the votes (bootstrap 95% intervals), rankings
    report.best.judges, .weights, .held_out      # the jury (members, weights) chosen by cross-validation
    apply_calibration(project, report)           # writes evaluate.judges / judge_weights to underdog.yaml
    calibrated_jury(project)                     # CalibratedJury of the current votes, or None (the autopilot's)

What other commands say about their jury (calibrated? held-out agreement, warnings) is in jury_status.py.

Per vote (a person's choice between two answers) a judge's outcome on the same pair is "first", "second" or
"tie" (abstentions and errors are left out of its numbers). Accuracy without ties: the share of votes both
decided on where the judge picked the people's winner. Cohen's kappa: agreement on {first, second, tie}
corrected for chance. Kendall's tau: the candidates ranked by the judge (win rate over the voted pairs) against
their ranking by the people (Bradley-Terry). A judge whose kappa interval lies below 0 disagrees with the
people beyond chance: it gets a warning with a few pairs where it does.

The best jury: every non-empty subset of the judges (each alone and `people`), weights fitted per fold
(logistic regression of the people's choice on the members' verdicts, negative weights clipped to 0) and
scored on the held-out fold: grouped k-fold over questions, the folds the `people` judge is cross-validated
on (its verdicts here are out-of-fold, never fitted on the vote they predict). Held-out agreement: the share of
decisive votes the jury predicts (a tie counts half), with a Wilson 95% interval. Picking the best of several
subsets on the same folds flatters it a little (docs/evaluation.md).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from underdog.arena import store as arena_tables
from underdog.arena.store import Vote
from underdog.config import PEOPLE_JUDGE
from underdog.config_edit import set_keys
from underdog.errors import UnderdogError
from underdog.evaluate import stats
from underdog.evaluate import store as tables
from underdog.evaluate.judge import judge_pairs, majority
from underdog.evaluate.judges import people
from underdog.evaluate.jury_status import CalibratedJury, Example, JudgeRow, calibrations_of, votes_version
from underdog.evaluate.ratings import Game, agreement_with_intervals, bradley_terry, kendall_tau
from underdog.project import Project

MIN_VOTES = 10  # decisive votes below which there is nothing to calibrate on
MAX_POOL = 6  # judges combined into juries (2^6 - 1 subsets)
SIGN = {"first": 1.0, "second": -1.0, "tie": 0.0}
EXAMPLES = 3
SNIPPET = 160


@dataclass
class Calibration:
    votes: int
    decisive: int
    simulated: int  # votes of the simulated panel, not people
    votes_version: str
    rows: list[JudgeRow]
    best: CalibratedJury | None
    calibration_id: int | None = None


# -- votes and outcomes ---------------------------------------------------------------------------------------
def judge_outcomes(project: Project, votes: Sequence[Vote], name: str) -> list[str]:
    """One judge's outcome on each vote's pair (answer_1 first), judged once per distinct pair (cached)."""
    pairs = list(dict.fromkeys((v.question, v.answer_1, v.answer_2) for v in votes))
    outcomes = dict(zip(pairs, judge_pairs(project, pairs, judges=[name], progress=f"{name} on the voted pairs"),
                        strict=True))
    return [outcomes[(v.question, v.answer_1, v.answer_2)] for v in votes]


def people_outcomes(project: Project, votes: Sequence[Vote], fold: np.ndarray) -> tuple[list[str], str]:
    """The `people` judge's out-of-fold outcome on each vote, or why it has none (too few votes)."""
    decisive, needed = sum(v.outcome != "tie" for v in votes), project.config.evaluate.people_min_votes
    if decisive < needed:
        return [], f"{decisive} decisive votes, it needs {needed} ({needed - decisive} more)"
    p = people.out_of_fold(votes, fold, project.config.arena.weights)
    margin = project.config.evaluate.people_margin
    return ["abstain" if math.isnan(x) else "tie" if abs(x - 0.5) <= margin else "first" if x > 0.5 else "second"
            for x in p], ""


# -- agreement --------------------------------------------------------------------------------------------------
def agreement_row(name: str, votes: Sequence[Vote], outcomes: Sequence[str], rounds: int = 1000) -> JudgeRow:
    """`name`'s agreement with the votes it decided, its ranking of the candidates against the people's, and a
    few of its disagreements."""
    decided = [(v, o) for v, o in zip(votes, outcomes, strict=True) if o in SIGN]
    if not decided:
        return JudgeRow(name, 0, None, None, None, 0, note="no verdict on any voted pair")
    accuracy, kappa = agreement_with_intervals([v.outcome for v, _ in decided], [o for _, o in decided],
                                               rounds=rounds)
    tau, ranked = ranking_agreement(decided, votes)
    examples = [Example(_snip(v.question), _snip(_chosen(v, v.outcome)), _snip(_chosen(v, o)))
                for v, o in decided if {v.outcome, o} == {"first", "second"}][:EXAMPLES]
    return JudgeRow(name, len(decided), accuracy, kappa, tau, ranked, examples)


def ranking_agreement(decided: Sequence[tuple[Vote, str]], votes: Sequence[Vote]) -> tuple[float | None, int]:
    """Kendall's tau between the candidates' ranking by the judge (win rate over the voted pairs it decided,
    each pair once) and by the people (Bradley-Terry over all `votes`); with the number of candidates ranked."""
    people_ratings = bradley_terry([Game(v.cand_1, v.cand_2, 0.5 + SIGN[v.outcome] / 2) for v in votes], prior=1.0)
    pairs = {(v.question_id, v.cand_1, v.cand_2): (v, o) for v, o in decided}
    points: dict[str, float] = {}
    played: dict[str, int] = {}
    for v, o in pairs.values():
        for cand, sign in ((v.cand_1, 1.0), (v.cand_2, -1.0)):
            points[cand] = points.get(cand, 0.0) + 0.5 + sign * SIGN[o] / 2
            played[cand] = played.get(cand, 0) + 1
    ranked = sorted(set(points) & set(people_ratings))
    if len(ranked) < 2:
        return None, len(ranked)
    tau = kendall_tau([points[c] / played[c] for c in ranked], [people_ratings[c] for c in ranked])
    return (None if math.isnan(tau) else tau), len(ranked)


def _chosen(vote: Vote, outcome: str) -> str:
    return vote.answer_1 if outcome == "first" else vote.answer_2


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET - 1] + "…"


# -- the best jury --------------------------------------------------------------------------------------------
def jury_weights(signals: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights of the members' verdicts (+1 first, -1 second, 0 tie) that predict the people's
    decisive choices: logistic regression without intercept, negative weights clipped to 0, the largest 1."""
    decisive = target != 0
    if not decisive.any() or len(set(target[decisive])) < 2:
        return np.ones(signals.shape[1])
    model = LogisticRegression(C=1.0, fit_intercept=False, solver="liblinear")
    model.fit(signals[decisive], target[decisive] > 0)
    w = np.clip(model.coef_[0], 0.0, None)
    return w / w.max() if w.max() > 0 else np.ones(signals.shape[1])


def held_out_score(signals: np.ndarray, target: np.ndarray, fold: np.ndarray) -> tuple[float, int]:
    """(points, decisive votes) of a jury whose weights are fitted on the other folds: a vote scores 1 when the
    weighted verdict picks the people's winner, 1/2 when it is a tie."""
    points, n = 0.0, 0
    for k in np.unique(fold):
        test = (fold == k) & (target != 0)
        if not test.any():
            continue
        w = jury_weights(signals[fold != k], target[fold != k])
        guess = np.sign(signals[test] @ w)
        points += float(((guess == target[test]) + 0.5 * (guess == 0)).sum())
        n += int(test.sum())
    return points, n


def best_jury(names: Sequence[str], outcomes: dict[str, list[str]], votes: Sequence[Vote],
              fold: np.ndarray) -> CalibratedJury | None:
    """The subset of `names` (with fitted weights) that predicts held-out votes best; fewer members wins a tie."""
    target = np.array([SIGN[v.outcome] for v in votes])
    signal = {n: np.array([SIGN.get(o, 0.0) for o in outcomes[n]]) for n in names}
    best: tuple[float, int, tuple[str, ...], int] | None = None
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            points, n = held_out_score(np.column_stack([signal[m] for m in subset]), target, fold)
            if n and (best is None or points / n > best[0] / best[3] + 1e-12):
                best = (points, size, subset, n)
    if best is None:
        return None
    points, _, subset, n = best
    w = jury_weights(np.column_stack([signal[m] for m in subset]), target)
    low, high = stats.wilson_interval(points, n)
    return CalibratedJury(list(subset), {m: round(float(x), 2) for m, x in zip(subset, w, strict=True)},
                          points / n, low, high, len(votes))


# -- calibrate ------------------------------------------------------------------------------------------------
def calibrate(project: Project, judges: Sequence[str] | None = None, rounds: int = 1000) -> Calibration:
    """Every judge of `judges` (default: evaluate.judges) alone, the configured jury and `people`, against the
    arena's votes; the jury that predicts held-out votes best; recorded in `calibrations`."""
    votes = arena_tables.load_votes(project.store)
    decisive = sum(v.outcome != "tie" for v in votes)
    if decisive < MIN_VOTES:
        raise UnderdogError(f"calibration needs at least {MIN_VOTES} decisive votes (not ties), there are {decisive}: "
                            "collect votes with `underdog arena serve` or `underdog arena import-votes FILE`")
    cfg = project.config.evaluate
    names = list(dict.fromkeys([*(judges or cfg.judges)]))
    fold = people.folds_of(votes)
    outcomes = {n: judge_outcomes(project, votes, n) for n in names if n != PEOPLE_JUDGE}
    rows = [agreement_row(n, votes, o, rounds) for n, o in outcomes.items()]
    people_votes, why = people_outcomes(project, votes, fold)
    if people_votes:
        outcomes[PEOPLE_JUDGE] = people_votes
        rows.append(agreement_row(f"{PEOPLE_JUDGE} (held out)", votes, people_votes, rounds))
    else:
        rows.append(JudgeRow(PEOPLE_JUDGE, 0, None, None, None, 0, note=f"abstains: {why}"))
    configured = [n for n in cfg.judges if n in outcomes]
    if len(configured) > 1:
        weights = [cfg.judge_weights.get(n, 1.0) for n in configured]
        jury = [majority([outcomes[n][i] for n in configured], weights) for i in range(len(votes))]
        rows.append(agreement_row(f"jury: {' + '.join(configured)}", votes, jury, rounds))
    pool = [n for n in outcomes if any(o in SIGN for o in outcomes[n])][:MAX_POOL]
    best = best_jury(pool, outcomes, votes, fold)
    report = Calibration(len(votes), decisive, sum(v.simulated for v in votes), votes_version(votes), rows, best)
    report.calibration_id = tables.put_calibration(project.store, {
        "votes_version": report.votes_version, "votes": report.votes, "jury": json.dumps(asdict(best) if best
                                                                                         else None),
        "held_out": best.held_out if best else None, "held_out_low": best.low if best else None,
        "held_out_high": best.high if best else None, "judges": json.dumps([asdict(r) for r in rows])})
    return report


def apply_calibration(project: Project, report: Calibration) -> None:
    """Write the calibrated jury to underdog.yaml: evaluate.judges, and evaluate.judge_weights when the weights
    differ (checked by the config's own validation before the file is replaced)."""
    if report.best is None:
        raise UnderdogError("no jury to apply: no judge gave a verdict on the voted pairs")
    best = report.best
    weights = best.weights if len(set(best.weights.values())) > 1 else {}
    set_keys(project.config_path, {("evaluate", "judges"): best.judges, ("evaluate", "judge_weights"): weights})
    if report.calibration_id:
        tables.mark_applied(project.store, report.calibration_id)


def calibrated_jury(project: Project, refresh: bool = False) -> CalibratedJury | None:
    """The jury the newest calibration on the current votes chose (members, weights, held-out agreement); None
    when there is none (with `refresh`, calibrate first when there are enough votes). For the autopilot."""
    votes = arena_tables.load_votes(project.store)
    current = votes_version(votes)
    for c in calibrations_of(project):
        if c["votes_version"] == current and c["jury"]:
            return CalibratedJury(**c["jury"])
    if refresh and sum(v.outcome != "tie" for v in votes) >= MIN_VOTES:
        return calibrate(project).best
    return None
