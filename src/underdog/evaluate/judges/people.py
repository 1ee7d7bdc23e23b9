"""The `people` judge: a pairwise preference model fitted on the arena's votes, standing in for the voters.

    judge = people_judge(project)                 # fitted on the current votes (stored per version), or abstaining
    judge.decide([Item(question, first, second)]) # -> [Decision("A" | "B" | "tie" | "abstain", detail)]
    model = fit_people(votes, min_votes=40)       # PeopleModel: weights, held-out accuracy with a Wilson interval
    p = out_of_fold(votes, folds)                 # P(first preferred) of each vote, by a model that did not see it

An answer x to a question q is described by phi(q, x): its all-MiniLM-L6-v2 sentence embedding (the `similarity`
judge's model), its cosine similarity to the question, and its style (log length; log list, header and bold
counts; evaluate/style.py). P(first preferred) = sigmoid(w . (phi(q, first) - phi(q, second))): Bradley-Terry
with strengths linear in the features, antisymmetric by construction (no intercept; each vote enters in both
orders, a tie as half a win each way). Votes are weighted by role as in the blended score (arena.weights).
The fit is scikit-learn's L2-regularised LogisticRegression (lbfgs) on scaled features, C fixed (not
tuned on the same votes, so the held-out accuracy is not chosen on them). Held-out accuracy: each vote predicted
by a model fitted without its question (grouped k-fold over questions), scored on the decisive votes (not ties).

With fewer than `evaluate.people_min_votes` decisive votes the judge abstains and says how many more it needs.
A model is versioned by the votes it was fitted on and its settings, and stored (`people_models`), so it is
fitted once per change of the votes. Its verdict is "tie" when |P - 0.5| <= `evaluate.people_margin`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from underdog.arena import store as arena_tables
from underdog.arena.store import Vote
from underdog.config import PEOPLE_JUDGE
from underdog.evaluate import stats
from underdog.evaluate import store as tables
from underdog.evaluate.judges import ABSTAIN, Decision, Item
from underdog.evaluate.judges.similarity import embed
from underdog.evaluate.style import STYLE, style_features
from underdog.project import Project

VERSION = "people-v1"
C = 1.0  # inverse L2 strength on standardised features (docs/evaluation.md: how it was chosen)
FOLDS = 5
ROLE_COMPONENT = {"judge": "human", "audience": "audience"}  # a vote's role -> its arena.weights component


@dataclass(frozen=True)
class PeopleModel:
    """Fitted weights (on standardised pair features) and how well they predict held-out votes."""

    version: str
    votes: int  # votes it was fitted on (ties included)
    decisive: int  # ... of which not ties
    weights: list[float]
    scale: list[float]  # the feature standard deviations the weights apply to
    accuracy: float | None  # held-out accuracy on decisive votes
    low: float | None
    high: float | None

    def prefer_first(self, features: np.ndarray) -> np.ndarray:
        """P(first preferred) for rows of pair features phi(first) - phi(second)."""
        z = (features / np.asarray(self.scale)) @ np.asarray(self.weights)
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> str:
        return json.dumps({"weights": self.weights, "scale": self.scale})


# -- features -------------------------------------------------------------------------------------------------
def answer_features(questions: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """phi(q, x) per (question, answer): embedding, cosine to the question, style (logs of length and counts)."""
    if not answers:
        return np.zeros((0, 0))
    vectors = embed(list(answers)).numpy()
    cosine = (vectors * embed(list(questions)).numpy()).sum(axis=1, keepdims=True)
    style = np.array([[math.log1p(f[k]) for k in STYLE] for f in map(style_features, answers)])
    return np.hstack([vectors, cosine, style])


def pair_features(items: Sequence[tuple[str, str, str]]) -> np.ndarray:
    """phi(q, first) - phi(q, second) per (question, first, second), embedded in one batch."""
    questions = [q for q, _, _ in items] * 2
    answers = [a for _, a, _ in items] + [b for _, _, b in items]
    phi = answer_features(questions, answers)
    return phi[:len(items)] - phi[len(items):]


def vote_weights(votes: Sequence[Vote], role_weights: Mapping[str, float]) -> np.ndarray:
    """Each vote's weight: its role's share of the blended score, relative to the largest (judges 1, audience
    0.5 under the league's 40/40/20)."""
    top = max(role_weights.get(c, 0.0) for c in ROLE_COMPONENT.values()) or 1.0
    return np.array([role_weights.get(ROLE_COMPONENT.get(v.role, "audience"), 0.0) / top for v in votes])


# -- fitting ------------------------------------------------------------------------------------------------------
def _fit(features: np.ndarray, outcome: Sequence[str], weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, scale): a win of the first answer is a row (features, 1), of the second (features, 0), a tie
    both at half weight. Without an intercept a vote read the other way round, (-features, 1 - y), is the same
    likelihood term, so every other vote is flipped: both labels appear whatever order the pairs are stored in,
    and the fit stays antisymmetric. Features scaled to unit root mean square."""
    target = np.array([{"first": 1.0, "second": 0.0}.get(o, 0.5) for o in outcome])
    flip = np.where(np.arange(len(target)) % 2 == 1, -1.0, 1.0)
    target = np.where(flip < 0, 1 - target, target)
    scale = np.sqrt((features ** 2).mean(axis=0))
    scale[scale == 0] = 1.0
    oriented = features * flip[:, None] / scale
    rows = np.vstack([oriented, oriented])
    y = np.concatenate([np.ones(len(target)), np.zeros(len(target))])
    w = np.concatenate([weight * target, weight * (1 - target)])
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=1000)  # lbfgs: liblinear prints to stdout
    model.fit(rows, y, sample_weight=w)
    return model.coef_[0], scale


def folds_of(votes: Sequence[Vote], folds: int = FOLDS) -> np.ndarray:
    """Each vote's fold: grouped by question (a question's votes are held out together), at most `folds`."""
    groups = [v.question_id for v in votes]
    k = min(folds, len(set(groups)))
    out = np.zeros(len(votes), dtype=int)
    if k < 2:
        return out
    for fold, (_, held) in enumerate(GroupKFold(n_splits=k).split(np.zeros(len(votes)), groups=groups)):
        out[held] = fold
    return out


def out_of_fold(votes: Sequence[Vote], fold: np.ndarray, role_weights: Mapping[str, float],
                features: np.ndarray | None = None) -> np.ndarray:
    """P(first preferred) of each vote by a model fitted on the other folds (NaN where a fold leaves nothing to fit
    on, or nothing decisive)."""
    features = pair_features([(v.question, v.answer_1, v.answer_2) for v in votes]) if features is None else features
    weight, outcome = vote_weights(votes, role_weights), [v.outcome for v in votes]
    p = np.full(len(votes), np.nan)
    for k in np.unique(fold):
        train = fold != k
        if sum(outcome[i] != "tie" for i in np.flatnonzero(train)) < 2:
            continue  # too little to learn a preference from
        coef, scale = _fit(features[train], [outcome[i] for i in np.flatnonzero(train)], weight[train])
        p[~train] = 1.0 / (1.0 + np.exp(-(features[~train] / scale) @ coef))
    return p


def held_out_accuracy(votes: Sequence[Vote], p_first: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(accuracy, Wilson 95% low, high) of out-of-fold predictions on the decisive votes."""
    hits = [(p > 0.5) == (v.outcome == "first") for v, p in zip(votes, p_first, strict=True)
            if v.outcome != "tie" and not np.isnan(p) and p != 0.5]
    if not hits:
        return None, None, None
    low, high = stats.wilson_interval(sum(hits), len(hits))
    return sum(hits) / len(hits), low, high


def fit_people(votes: Sequence[Vote], role_weights: Mapping[str, float], version: str,
               folds: int = FOLDS) -> PeopleModel:
    """Fit on every vote; the held-out accuracy from grouped k-fold predictions."""
    features = pair_features([(v.question, v.answer_1, v.answer_2) for v in votes])
    accuracy, low, high = held_out_accuracy(votes, out_of_fold(votes, folds_of(votes, folds), role_weights,
                                                                features))
    coef, scale = _fit(features, [v.outcome for v in votes], vote_weights(votes, role_weights))
    return PeopleModel(version, len(votes), sum(v.outcome != "tie" for v in votes), coef.tolist(), scale.tolist(),
                       accuracy, low, high)


def votes_version(votes: Sequence[Vote], settings: Mapping[str, object]) -> str:
    """What a fitted model depends on: the votes (who chose what on which texts) and the settings."""
    body = json.dumps([VERSION, dict(settings), [(v.voter_id, v.role, v.question, v.answer_1, v.answer_2,
                                                  v.outcome) for v in votes]], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


# -- the judge ------------------------------------------------------------------------------------------------
class PeopleJudge:
    """Decides by the fitted model; abstains (saying why) without one."""

    name = PEOPLE_JUDGE
    label = PEOPLE_JUDGE

    def __init__(self, version: str, model: PeopleModel | None, margin: float, reason: str = ""):
        self.version, self.model, self.margin, self.reason = version, model, margin, reason

    def identity(self) -> str:
        return people_identity(self.version, self.margin)

    @property
    def summary(self) -> str:
        """What it is fitted on and how well it predicts held-out votes, or why it abstains."""
        m = self.model
        if m is None:
            return self.reason
        accuracy = (f"held-out accuracy {m.accuracy:.0%} (95% CI {m.low:.0%}-{m.high:.0%})" if m.accuracy is not None
                    else "no held-out accuracy (too few questions to hold any out)")
        return f"the people judge: fitted on {m.votes} votes ({m.decisive} decisive), {accuracy}"

    def decide(self, items: list[Item]) -> list[Decision]:
        if self.model is None:
            return [Decision(ABSTAIN, self.reason) for _ in items]
        p = self.model.prefer_first(pair_features([(i.question, i.first, i.second) for i in items])) if items \
            else []
        return [Decision("tie" if abs(x - 0.5) <= self.margin else "A" if x > 0.5 else "B",
                         f"people: P(first preferred) {x:.3f}") for x in p]


def people_identity(version: str, margin: float) -> str:
    """The judge's identity: its version (votes + settings) and tie margin."""
    return f"{VERSION}:{version}:margin={margin}"


def settings_of(project: Project) -> dict[str, object]:
    cfg = project.config
    return {"min_votes": cfg.evaluate.people_min_votes, "weights": cfg.arena.weights, "C": C, "folds": FOLDS}


def people_version(project: Project, votes: Sequence[Vote] | None = None) -> str:
    """The version a model fitted now would have (cheap: no fit, no embedding)."""
    votes = arena_tables.load_votes(project.store) if votes is None else votes
    return votes_version(votes, settings_of(project))


def people_model(project: Project, votes: Sequence[Vote] | None = None) -> tuple[str, PeopleModel | None, str]:
    """(version, the model fitted on the current votes or None, why none): loaded when stored, else fitted and
    stored."""
    votes = arena_tables.load_votes(project.store) if votes is None else votes
    version = people_version(project, votes)
    decisive, needed = sum(v.outcome != "tie" for v in votes), project.config.evaluate.people_min_votes
    if decisive < needed:
        return version, None, (f"the people judge abstains: {decisive} decisive votes, it needs {needed} "
                               f"({needed - decisive} more; `underdog arena serve` or `arena import-votes`)")
    if (row := tables.people_model(project.store, version)) is not None:
        body = json.loads(row["model"])
        return version, PeopleModel(version, row["votes"], row["decisive"], body["weights"], body["scale"],
                                    row["accuracy"], row["accuracy_low"], row["accuracy_high"]), ""
    model = fit_people(votes, project.config.arena.weights, version)
    tables.put_people_model(project.store, {"version": version, "votes": model.votes, "decisive": model.decisive,
                                            "accuracy": model.accuracy, "accuracy_low": model.low,
                                            "accuracy_high": model.high, "model": model.to_json()})
    return version, model, ""


def people_judge(project: Project) -> PeopleJudge:
    """The `people` judge of the project's current votes."""
    version, model, reason = people_model(project)
    return PeopleJudge(version, model, project.config.evaluate.people_margin, reason)
