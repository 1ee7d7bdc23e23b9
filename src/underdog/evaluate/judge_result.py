"""A judging's result: per-question rows, the statistics view (win rate, interval, length control, agreement with
the grounded judges), the jury's configuration id, and its record in `judge_results` / `judgments`.

Asking the judges is `evaluate/judge.py`; prompts and verdict arithmetic are `evaluate/verdicts.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from underdog import tracking
from underdog.config import PEOPLE_JUDGE, ModelSpec
from underdog.evaluate import stats
from underdog.evaluate import store as tables
from underdog.evaluate.agreement import JudgeAgreement, agreement
from underdog.evaluate.answer import Answer, Candidate
from underdog.evaluate.judges import ABSTAIN, grounded_judge, is_grounded, is_model_free
from underdog.evaluate.judges.facts import Recall
from underdog.evaluate.verdicts import (
    NO_VERDICT,
    PROMPT_VERSION,
    SCORE,
    Verdict,
    combine_orders,
    majority,
    spec_identity,
    winner,
)
from underdog.layout import MANIFEST_FILE
from underdog.project import Project


def jury_weights(project: Project, names: Sequence[str | ModelSpec]) -> list[float] | None:
    """Each judge's weight in the jury (evaluate.judge_weights); None for a plain majority."""
    weights = project.config.evaluate.judge_weights
    return [weights.get(n, 1.0) for n in names] if weights and all(isinstance(n, str) for n in names) else None


@dataclass
class QuestionRow:
    question_id: str
    question: str
    candidate_answer: str
    reference_answer: str
    outcome: str  # candidate / reference / tie / error / abstain (no judge had ground truth to use)
    votes: dict[str, tuple[str, str]] = field(default_factory=dict)  # judge -> (verdict ab, verdict ba)

    @property
    def score(self) -> float | None:
        return SCORE.get(self.outcome)


@dataclass
class JudgeResult:
    candidate: str
    reference: str
    evalset: str
    judges: list[str]
    rubric: list[str]
    rows: list[QuestionRow]
    consistency: float
    calls: int  # verdicts a model was asked for (not cached, not decided without a model)
    result_id: int | None = None
    config_id: str | None = None  # the jury's configuration (`jury_config`): only equal ids are comparable
    judge_config: dict | None = None
    recall: Recall | None = None  # the candidate's facts stated / refusals, when the eval set has ground truth
    reference_recall: Recall | None = None

    @property
    def valid(self) -> list[QuestionRow]:
        return [r for r in self.rows if r.outcome not in NO_VERDICT]

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.rows)

    @property
    def n(self) -> int:
        return len(self.valid)

    @property
    def wins(self) -> int:
        return self.count("candidate")

    @property
    def ties(self) -> int:
        return self.count("tie")

    @property
    def losses(self) -> int:
        return self.count("reference")

    @property
    def errors(self) -> int:
        return self.count("error")

    @property
    def win_rate(self) -> float:
        return stats.win_rate(self.wins, self.ties, self.n)

    @property
    def ci(self) -> tuple[float, float]:
        return stats.wilson_interval(self.wins + self.ties / 2, self.n)

    @property
    def tie_share(self) -> float:
        return self.ties / self.n if self.n else 0.0

    @property
    def mean_len_candidate(self) -> float:
        return sum(len(r.candidate_answer) for r in self.valid) / self.n if self.n else 0.0

    @property
    def mean_len_reference(self) -> float:
        return sum(len(r.reference_answer) for r in self.valid) / self.n if self.n else 0.0

    @property
    def abstentions(self) -> int:
        return self.count(ABSTAIN)

    @property
    def lc_win_rate(self) -> float | None:
        """The length-controlled win rate; None when length alone separates wins from losses."""
        valid = self.valid
        return stats.length_controlled_win_rate([r.score for r in valid], [len(r.candidate_answer) for r in valid],
                                                [len(r.reference_answer) for r in valid])

    @property
    def first_position_share(self) -> float | None:
        """Share of "A" among the LLM judges' A/B verdicts: 0.5 for a judge without position bias."""
        letters = [v for r in self.rows for j, pair in r.votes.items() if not is_model_free(j) for v in pair
                   if v in ("A", "B")]
        return letters.count("A") / len(letters) if letters else None

    def scores(self) -> dict[str, float]:
        """Per-question score (1 win, 0.5 tie, 0 loss) of the judged questions."""
        return {r.question_id: r.score for r in self.valid if r.score is not None}

    @property
    def agreement(self) -> list[JudgeAgreement]:
        """Each LLM judge against the grounded judges (empty unless the jury has both kinds)."""
        grounded = [j for j in self.judges if is_grounded(j)]
        if not grounded or len(grounded) == len(self.judges):
            return []
        rows = [r for r in self.rows if r.votes]
        outcomes = {j: [combine_orders(winner("ab", r.votes[j][0]), winner("ba", r.votes[j][1])) for r in rows]
                    for j in self.judges}
        jury = [majority([outcomes[j][i] for j in grounded]) for i in range(len(rows))]
        longer = [None if len(r.candidate_answer) == len(r.reference_answer) else
                  "candidate" if len(r.candidate_answer) > len(r.reference_answer) else "reference" for r in rows]
        return agreement({j: o for j, o in outcomes.items() if j not in grounded}, jury, longer)


def send_to_trackers(project: Project, cand: Candidate, result: JudgeResult, kind: str) -> list[str]:
    """A run with experiment trackers (`train.report_to`) gets the win rate, its 95% interval and the fact
    recall as `<kind>/...` metrics (step: the result's id), and what was judged as the param `<kind>/<id>`."""
    low, high = result.ci
    metrics = {f"{kind}/win_rate": result.win_rate, f"{kind}/win_rate_ci_low": low,
               f"{kind}/win_rate_ci_high": high, f"{kind}/questions": float(result.n)}
    if result.recall and result.recall.fact_recall is not None:
        metrics[f"{kind}/fact_recall"] = result.recall.fact_recall
    if result.recall and result.recall.refusal_accuracy is not None:
        metrics[f"{kind}/refusal_accuracy"] = result.recall.refusal_accuracy
    what = f"{result.candidate} vs {result.reference} on {result.evalset}, judges: {', '.join(result.judges)}"
    return tracking.record(project, cand.spec.adapter, {f"{kind}/{result.result_id}": what}, metrics,
                           result.result_id or 0)


def no_verdict_message(result: JudgeResult) -> str:
    why = (f"the jury ({', '.join(result.judges)}) abstained on every question: the grounded judges need facts, "
           "`expect` or reference answers in the eval set" if result.abstentions == len(result.rows)
           else f"{result.errors} of {len(result.rows)} questions ended in errors")
    return f"no valid verdict for {result.candidate} vs {result.reference} on {result.evalset} ({why}); " \
           "nothing recorded"


def jury_config(project: Project, judges: Sequence[str | ModelSpec], rubric: Sequence[str],
                evalset: str) -> tuple[str, dict]:
    """A stable id of what makes verdicts comparable: the judges (model, params, prompt version; a grounded
    judge's own version), the rubric (for LLM judges) and the eval set (name and content hash)."""
    members = sorted(_member_identity(project, j) for j in judges)
    manifest = project.evalset_dir(evalset) / MANIFEST_FILE
    sha = json.loads(manifest.read_text()).get("sha256") if manifest.exists() else None
    llm_judges = any(not is_model_free(j) for j in judges)
    config = {"judges": members, "prompt": PROMPT_VERSION if llm_judges else None,
              "rubric": list(rubric) if llm_judges else None, "evalset": evalset, "evalset_sha256": sha}
    weights = jury_weights(project, judges)
    if weights and len(set(weights)) > 1:  # equal weights are a plain majority: the same configuration
        config["weights"] = sorted(zip((_member_identity(project, j) for j in judges), weights, strict=True))
    body = json.dumps(config, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:12], config


def _member_identity(project: Project, judge_: str | ModelSpec) -> str:
    if judge_ == PEOPLE_JUDGE:  # lazy: the people judge brings scikit-learn, which most juries never need
        from underdog.evaluate.judges.people import people_identity, people_version

        return people_identity(people_version(project), project.config.evaluate.people_margin)
    if is_grounded(judge_):
        return grounded_judge(judge_, project.config.evaluate.similarity_margin).identity()
    return spec_identity(judge_ if isinstance(judge_, ModelSpec) else project.model_spec(judge_))


def question_row(a: Answer, b: Answer, votes: dict[str, tuple[str, str]],
         weights: dict[str, float] | None = None) -> QuestionRow:
    if a.error or b.error or not votes:
        outcome = "error"
    else:
        outcome = majority([combine_orders(winner("ab", ab), winner("ba", ba)) for ab, ba in votes.values()],
                           [weights[j] for j in votes] if weights else None)
    return QuestionRow(a.question_id, a.question, a.answer, b.answer, outcome, votes)


def order_consistency(votes: list[dict[str, tuple[str, str]]]) -> float:
    """Share of (judge, question) verdict pairs that name the same winner in both orders; over the LLM judges
    only when there are any (grounded judges are consistent by construction)."""
    llm_judges = any(not is_model_free(j) for per_q in votes for j in per_q)
    pairs = [(winner("ab", ab), winner("ba", ba)) for per_q in votes for j, (ab, ba) in per_q.items()
             if not (llm_judges and is_model_free(j))]
    pairs = [(x, y) for x, y in pairs if x not in NO_VERDICT and y not in NO_VERDICT]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else 0.0


def record_result(project: Project, result: JudgeResult, cand: Candidate, ref: Candidate,
            verdicts: list[tuple[str, str, str, Verdict]]) -> int:
    """Store the judging and its (judge, question, order) verdicts; an abstention is no vote. Returns its id."""
    judgments = [{"question_id": qid, "judge": label, "judge_order": order, "verdict": v.verdict,
                  "winner": winner(order, v.verdict), "cache_key": v.key, "cached": int(v.cached or not v.called),
                  "error": v.error} for label, qid, order, v in verdicts if v.verdict != ABSTAIN]
    return tables.record_judging(project.store, _result_row(result, cand, ref), judgments)


def _result_row(result: JudgeResult, cand: Candidate, ref: Candidate) -> dict[str, Any]:
    """The `judge_results` row of a judging."""
    low, high = result.ci
    mine = result.recall
    recall_low, recall_high = (mine.ci if mine and mine.ci else (None, None))
    grounded = {"recall": mine.to_json() if mine else None,
                "reference_recall": result.reference_recall.to_json() if result.reference_recall else None,
                "agreement": [a.to_json() for a in result.agreement], "abstentions": result.abstentions}
    return {"evalset": result.evalset, "candidate": cand.name, "candidate_id": cand.id, "reference": ref.name,
            "reference_id": ref.id, "judges": json.dumps(result.judges), "rubric": json.dumps(result.rubric),
            "n": result.n, "wins": result.wins, "ties": result.ties, "losses": result.losses, "errors": result.errors,
            "win_rate": result.win_rate, "ci_low": low, "ci_high": high, "tie_share": result.tie_share,
            "consistency": result.consistency, "mean_len_candidate": result.mean_len_candidate,
            "mean_len_reference": result.mean_len_reference, "lc_win_rate": result.lc_win_rate,
            "config_id": result.config_id, "judge_config": json.dumps(result.judge_config),
            "fact_recall": mine.fact_recall if mine else None, "fact_recall_low": recall_low,
            "fact_recall_high": recall_high, "refusal_accuracy": mine.refusal_accuracy if mine else None,
            "grounded": json.dumps(grounded)}
