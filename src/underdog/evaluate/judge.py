"""Pairwise judging with position swap, ties, a jury of LLM and grounded judges, and a verdict cache.

    result = judge(project, "my-run", "reference")          # judges from evaluate.judges, rubric from config
    result.win_rate, result.ci, result.rows[0].outcome
    outcomes = judge_pairs(project, [(question, answer_1, answer_2), ...])   # "first" | "second" | "tie" | "error"

Every question is judged twice per judge, the candidate's answer first ("ab") and second ("ba"). A verdict
that flips with the order is a tie. Several judges vote per question; without a majority it is a tie.
A local judge gives its verdict by comparing the log-probabilities of "A", "B" and "tie" as its reply
(calibrated against a content-free pair, see `_ask_local`); an API judge answers in JSON mode and is parsed
strictly: an unparseable verdict is re-asked `judge_retries` times, then recorded as an error (never a win).
An eval set's reference answers, when present, are shown to the judge. Verdicts are cached in `judge_cache`,
so a re-run calls no model. Two identical answers are a tie without a model call.
The grounded judges `facts` and `similarity` (evaluate/judges/) decide from the eval set's facts and reference
answers without a model; on a question without that ground truth they abstain (no vote).
Each call of `judge` is recorded in `judge_results` with its per-question, per-order verdicts in `judgments`
(`cached` = 1 when no model was called for the verdict: cached, identical answers, or a grounded judge),
its jury's configuration id (`jury_config`: only results of one configuration are comparable), its absolute
fact recall / refusal accuracy, and how the LLM judges agree with the grounded ones. A run without any valid
verdict raises and records nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from underdog import tracking
from underdog.config import PEOPLE_JUDGE, ModelSpec
from underdog.errors import ModelError, UnderdogError
from underdog.evaluate import stats
from underdog.evaluate import store as tables
from underdog.evaluate.agreement import JudgeAgreement, agreement
from underdog.evaluate.answer import Answer, Candidate, answer, check_answered, resolve_candidate
from underdog.evaluate.evalset import Question, list_evalsets, load_evalset, resolve_evalset
from underdog.evaluate.judges import ABSTAIN, GroundedJudge, Item, grounded_judge, is_grounded, is_model_free
from underdog.evaluate.judges.facts import Recall, recall
from underdog.layout import MANIFEST_FILE
from underdog.llm import LLM
from underdog.llm.identity import judge_identity
from underdog.project import Project

PROMPT_VERSION = "judge-v1"
NULL_PAIR = ("N/A", "N/A", "N/A")  # question, answer A, answer B: the content-free input
VERDICTS = ("A", "B", "tie")
Pair = tuple[str, str, str] | tuple[str, str, str, str | None]  # question, first, second[, reference]
JSON_MAX_TOKENS = 256
RETRY_TEMPERATURE = 0.7
RUBRIC_TEXT = {
    "correctness": "factually correct and accurate",
    "helpfulness": "actually helps the person do what they asked",
    "empathy": "acknowledges the person's situation with a kind, respectful tone",
    "clarity": "clear and well organised",
    "conciseness": "no longer than it needs to be",
}
SYSTEM = "You are an impartial judge comparing two answers to the same question."
PROMPT = """Compare two answers to the user's question. A better answer is:
{rubric}
Do not let the order of the answers or their length influence you.

[Question]
{question}
{reference}
[Answer A]
{first}

[Answer B]
{second}

{instruction}"""
LOCAL_INSTRUCTION = 'Which answer is better? Reply with exactly one of: "A", "B", or "tie".'
JSON_INSTRUCTION = ('Which answer is better? Reply with a JSON object only: {"reason": "<one sentence>", '
                    '"verdict": "A" | "B" | "tie"}')


# -- one judge, one ordered pair ----------------------------------------------------------------------------
@dataclass
class Verdict:
    verdict: str  # "A", "B", "tie", "error", or "abstain" (a grounded judge without ground truth)
    key: str
    cached: bool = False
    raw: str | None = None
    error: str | None = None
    called: bool = True  # False: decided without a model (identical answers, a grounded judge)


def rubric_text(rubric: Sequence[str]) -> str:
    return "\n".join(f"- {name}: {RUBRIC_TEXT.get(name, name)}" for name in rubric)


def judge_messages(question: str, first: str, second: str, rubric: Sequence[str], json_mode: bool,
                   reference: str | None = None) -> list[dict]:
    """The judge's prompt; an eval set's reference answer, when it has one, is shown to the judge only."""
    known = f"\n[Reference answer, known to be correct: judge both answers against it]\n{reference}\n" \
        if reference else ""
    prompt = PROMPT.format(rubric=rubric_text(rubric), question=question, reference=known, first=first,
                           second=second, instruction=JSON_INSTRUCTION if json_mode else LOCAL_INSTRUCTION)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def pair_messages(pair: Pair, rubric: Sequence[str], json_mode: bool) -> list[dict]:
    question, first, second, *reference = pair
    return judge_messages(question, first, second, rubric, json_mode, reference[0] if reference else None)


def uses_logprobs(llm: LLM) -> bool:
    """Judges whose backend scores options (local models) give verdicts by log-probability."""
    return llm.backend.can_score


def spec_identity(s: ModelSpec) -> str:
    """What makes a model judge's verdicts what they are (its cache identity; llm/identity.py)."""
    return judge_identity(s, PROMPT_VERSION)


def verdict_key(identity: str, rubric: Sequence[str], question: str, first: str, second: str,
                reference: str | None = None) -> str:
    body = json.dumps([identity, list(rubric), question, first, second] + ([reference] if reference else []))
    return hashlib.sha256(body.encode()).hexdigest()


def parse_verdict(text: str) -> str | None:
    """The verdict of a JSON reply, or None when it is not exactly a JSON object with a valid verdict."""
    text = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    verdict = data.get("verdict") if isinstance(data, dict) else None
    if not isinstance(verdict, str):
        return None
    return {"a": "A", "b": "B", "tie": "tie"}.get(verdict.strip().lower())


def ask_judge(project: Project, llm: LLM, rubric: Sequence[str], pairs: Sequence[Pair], retries: int = 2,
              progress: str | None = None) -> list[Verdict]:
    """Verdicts for (question, first answer, second answer[, reference answer]) pairs, cached ones first."""
    identity = spec_identity(llm.spec)
    keys = [verdict_key(identity, rubric, *pair) for pair in pairs]
    cached = _cached(project, keys)
    verdicts: list[Verdict | None] = [cached.get(key) for key in keys]
    for i, pair in enumerate(pairs):
        if pair[1] == pair[2]:  # identical answers: a tie, whatever a judge (or its cache) would say
            verdicts[i] = Verdict("tie", keys[i], raw="identical answers", called=False)
    todo = [i for i, v in enumerate(verdicts) if v is None]
    if todo:
        ask = _ask_local if uses_logprobs(llm) else _ask_api
        for i, verdict in zip(todo, ask(llm, rubric, [pairs[i] for i in todo], [keys[i] for i in todo],
                                        retries, progress), strict=True):
            verdicts[i] = verdict
        new = [v for v in (verdicts[i] for i in todo) if v is not None and v.verdict != "error"]
        tables.put_verdicts(project.store, llm.name, [(v.key, v.verdict, v.raw) for v in new])
    return [v for v in verdicts if v is not None]


def _cached(project: Project, keys: Sequence[str]) -> dict[str, Verdict]:
    """The cached verdicts among `keys`, looked up a chunk of keys per query."""
    return {r["key"]: Verdict(r["verdict"], r["key"], cached=True, raw=r["raw"])
            for r in tables.cached_verdicts(project.store, keys)}


def _ask_local(llm: LLM, rubric: Sequence[str], pairs: Sequence[Pair], keys: list[str],
               retries: int, progress: str | None) -> list[Verdict]:
    """Verdict = the option most raised above its log-probability for a content-free pair ("N/A" answers):
    contextual calibration (Zhao et al., 2021) removes a small judge's constant preference for one letter,
    so what is left of its position bias is measured by the swap instead of deciding every verdict."""
    prompts = [judge_messages(*NULL_PAIR, rubric, json_mode=False)]
    prompts += [pair_messages(pair, rubric, json_mode=False) for pair in pairs]
    null, *scored = llm.score(prompts, VERDICTS, progress=progress)
    out = []
    for scores, key in zip(scored, keys, strict=True):
        lift = [s - n for s, n in zip(scores, null, strict=True)]
        best = max(range(len(VERDICTS)), key=lambda j: lift[j])
        raw = {"logprobs": dict(zip(VERDICTS, scores, strict=True)),
               "content_free": dict(zip(VERDICTS, null, strict=True))}
        out.append(Verdict(VERDICTS[best], key, raw=json.dumps(raw)))
    return out


def _ask_api(llm: LLM, rubric: Sequence[str], pairs: Sequence[Pair], keys: list[str],
             retries: int, progress: str | None) -> list[Verdict]:
    prompts = [pair_messages(pair, rubric, json_mode=True) for pair in pairs]
    out = [Verdict("error", key) for key in keys]
    todo = list(range(len(pairs)))
    params = llm.spec.params
    max_tokens = max(params.max_tokens, JSON_MAX_TOKENS)  # a judge role set up for "A"/"B" needs room for JSON
    for attempt in range(retries + 1):
        # a re-ask is a new sample (its own cache entry) at a temperature that lets the reply change
        temperature = params.temperature if attempt == 0 else max(params.temperature, RETRY_TEMPERATURE)
        seed = params.seed if attempt == 0 else (params.seed or 0) + attempt  # a re-ask is a new sample
        replies = llm.batch([prompts[i] for i in todo], errors="return", json_mode=True,
                            samples=[attempt] * len(todo), progress=progress if attempt == 0 else None,
                            max_tokens=max_tokens, temperature=temperature, seed=seed)
        for i, reply in zip(todo, replies, strict=True):
            verdict = parse_verdict(reply.text) if not reply.error else None
            error = reply.error or f"unparseable verdict after {attempt + 1} tries: {reply.text[:200]!r}"
            out[i] = Verdict(verdict or "error", keys[i], raw=reply.text, error=None if verdict else error)
        todo = [i for i in todo if out[i].verdict == "error"]
        if not todo:
            break
    return out


# -- a jury over an eval set -------------------------------------------------------------------------------
WINNER = {"ab": {"A": "candidate", "B": "reference", "tie": "tie", ABSTAIN: ABSTAIN},
          "ba": {"A": "reference", "B": "candidate", "tie": "tie", ABSTAIN: ABSTAIN}}
SCORE = {"candidate": 1.0, "tie": 0.5, "reference": 0.0}
NO_VERDICT = ("error", ABSTAIN)


def winner(order: str, verdict: str) -> str:
    """Who a verdict favours: "candidate", "reference", "tie", "abstain" or "error"."""
    return WINNER[order].get(verdict, "error")


def combine_orders(ab: str, ba: str) -> str:
    """One judge's outcome from its two orders: disagreement is a tie; any error is an error."""
    if "error" in (ab, ba):
        return "error"
    if ABSTAIN in (ab, ba):
        return ABSTAIN
    return ab if ab == ba else "tie"


def majority(outcomes: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """The jury's outcome: a strict (weighted) majority of the valid votes, else a tie; without a valid vote: an
    error if a judge failed, "abstain" if every judge abstained."""
    weighted = [(o, 1.0 if weights is None else weights[i]) for i, o in enumerate(outcomes) if o not in NO_VERDICT]
    if not weighted:
        return "error" if "error" in outcomes or not outcomes else ABSTAIN
    tally: Counter[str] = Counter()
    for outcome, weight in weighted:
        tally[outcome] += weight
    top, count = tally.most_common(1)[0]
    return top if count * 2 > sum(tally.values()) else "tie"


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


def judge(project: Project, candidate: str | ModelSpec | Candidate, reference: str | ModelSpec | Candidate | None
          = None, evalset: str | None = None, *, judges: Sequence[str | ModelSpec] | None = None,
          rubric: Sequence[str] | None = None, progress: bool = True, track_as: str = "judge") -> JudgeResult:
    """Answer (cached) and judge `candidate` against `reference` on every question of `evalset`, and record it
    (and, for a run with experiment trackers, send its numbers there under `track_as`/...)."""
    cfg = project.config.evaluate
    name = resolve_evalset(project, evalset)
    cand = resolve_candidate(project, candidate)
    ref = resolve_candidate(project, reference or cfg.reference)
    rubric = list(rubric or cfg.rubric)
    known = {q.id: q for q in load_evalset(project, name)}
    ours = answer(project, cand, name, progress=progress)
    check_answered(cand.name, ours)
    theirs = answer(project, ref, name, progress=progress)
    check_answered(ref.name, theirs)
    theirs = {a.question_id: a for a in theirs}
    pairs = [(a, theirs[a.question_id]) for a in ours]
    ok = [i for i, (a, b) in enumerate(pairs) if not a.error and not b.error]
    jury = [judge_for(project, j) for j in (judges or cfg.judges)]
    votes: list[dict[str, tuple[str, str]]] = [{} for _ in pairs]
    verdicts: list[tuple[str, str, str, Verdict]] = []  # (judge, question id, order, verdict), for the record
    asked = [(a.question, a.answer, b.answer, known[a.question_id].reference if a.question_id in known else None)
             for a, b in (pairs[i] for i in ok)]
    truth = [known.get(pairs[i][0].question_id) for i in ok]
    for member in jury:
        got = ask_both_orders(project, member, rubric, asked, cfg.judge_retries,
                              progress=f"judging with {member.label}" if progress else None, truth=truth)
        if got and all(v.verdict == "error" and not v.raw for pair in got for v in pair):  # no reply at all
            raise ModelError(f"judge {member.label} failed on every question, e.g.: {got[0][0].error}")
        if getattr(member, "summary", ""):
            project.reporter.note(member.summary)  # the people judge: its held-out accuracy, or how many more votes
        for i, (ab, ba) in zip(ok, got, strict=True):
            votes[i][member.label] = (ab.verdict, ba.verdict)
            qid = pairs[i][0].question_id
            verdicts += [(member.label, qid, "ab", ab), (member.label, qid, "ba", ba)]
    weights = jury_weights(project, judges or cfg.judges)
    by_label = dict(zip((m.label for m in jury), weights, strict=True)) if weights else None
    rows = [_row(a, b, votes[i], by_label) for i, (a, b) in enumerate(pairs)]
    config_id, config = jury_config(project, judges or cfg.judges, rubric, name)
    result = JudgeResult(cand.name, ref.name, name, [m.label for m in jury], rubric, rows, _consistency(votes),
                         sum(v.called and not v.cached for *_, v in verdicts), config_id=config_id,
                         judge_config=config,
                         recall=recall([(a.answer, known.get(a.question_id)) for a in ours if not a.error]),
                         reference_recall=recall([(b.answer, known.get(b.question_id)) for b in theirs.values()
                                                  if not b.error]))
    if not result.n:
        raise UnderdogError(_no_verdict_message(result))
    result.result_id = _record(project, result, cand, ref, verdicts)
    send_to_trackers(project, cand, result, track_as)
    return result


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


def _no_verdict_message(result: JudgeResult) -> str:
    why = (f"the jury ({', '.join(result.judges)}) abstained on every question: the grounded judges need facts, "
           "`expect` or reference answers in the eval set" if result.abstentions == len(result.rows)
           else f"{result.errors} of {len(result.rows)} questions ended in errors")
    return f"no valid verdict for {result.candidate} vs {result.reference} on {result.evalset} ({why}); " \
           "nothing recorded"


Judge = LLM | GroundedJudge


def ask_both_orders(project: Project, judge_: Judge, rubric: Sequence[str], pairs: Sequence[Pair],
                    retries: int = 2, progress: str | None = None,
                    truth: Sequence[Question | None] | None = None) -> list[tuple[Verdict, Verdict]]:
    """One judge's (first-second, second-first) verdicts on each pair, asked in one batch. A grounded judge
    decides each pair once from `truth` (the eval set's question, per pair); the swapped order mirrors it."""
    if not isinstance(judge_, LLM):
        return _grounded_both_orders(judge_, pairs, truth or [None] * len(pairs))
    asked = list(pairs) + [(q, second, first, *ref) for q, first, second, *ref in pairs]
    got = ask_judge(project, judge_, rubric, asked, retries, progress)
    return list(zip(got[:len(pairs)], got[len(pairs):], strict=True))


MIRROR = {"A": "B", "B": "A", "tie": "tie", ABSTAIN: ABSTAIN}


def _grounded_both_orders(judge_: GroundedJudge, pairs: Sequence[Pair],
                          truth: Sequence[Question | None]) -> list[tuple[Verdict, Verdict]]:
    items = [_item(pair, known) for pair, known in zip(pairs, truth, strict=True)]
    out = []
    for item, decision in zip(items, judge_.decide(items), strict=True):
        ab = Verdict(decision.verdict, _grounded_key(judge_, item), raw=decision.detail, called=False)
        swapped = Item(item.question, item.second, item.first, item.reference, item.facts, item.expect)
        ba = Verdict(MIRROR[decision.verdict], _grounded_key(judge_, swapped), raw=decision.detail, called=False)
        out.append((ab, ba))
    return out


def _item(pair: Pair, known: Question | None) -> Item:
    question, first, second, *reference = pair
    ref = (reference[0] if reference else None) or (known.reference if known else None)
    return Item(question, first, second, ref, tuple(known.facts) if known and known.facts else None,
                known.expect if known else None)


def _grounded_key(judge_: GroundedJudge, item: Item) -> str:
    body = json.dumps([judge_.identity(), item.question, item.first, item.second, item.reference,
                       list(item.facts or []), item.expect])
    return hashlib.sha256(body.encode()).hexdigest()


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
    if judge_ == PEOPLE_JUDGE:  # imported here: the people judge brings scikit-learn, which most juries never need
        from underdog.evaluate.judges.people import people_identity, people_version

        return people_identity(people_version(project), project.config.evaluate.people_margin)
    if is_grounded(judge_):
        return grounded_judge(judge_, project.config.evaluate.similarity_margin).identity()
    return spec_identity(judge_ if isinstance(judge_, ModelSpec) else project.model_spec(judge_))


PAIR_OUTCOME = {"candidate": "first", "reference": "second", "tie": "tie", "error": "error", ABSTAIN: ABSTAIN}


def judge_pairs(project: Project, pairs: Sequence[tuple[str, str, str]], *, judges: Sequence[str] | None = None,
                rubric: Sequence[str] | None = None, progress: str | None = None,
                truth: Sequence[Question | None] | None = None) -> list[str]:
    """The jury on answer pairs it did not produce (best-of-n samples, two arena candidates): for each (question,
    first answer, second answer), "first", "second", "tie", "error" or "abstain" (only grounded judges, and the
    question has no ground truth), judged like `judge` (both orders, each judge, majority) with the same verdict
    cache, but not recorded. Grounded judges find each question's facts and reference answer in `truth`, else
    in the project's eval sets by the question's text."""
    if not pairs:
        return []
    cfg = project.config.evaluate
    rubric = list(rubric or cfg.rubric)
    names = list(judges or cfg.judges)
    if truth is None and any(is_grounded(name) for name in names):
        truth = find_questions(project, [pair[0] for pair in pairs])
    per_judge = []
    for name in names:
        member = judge_for(project, name)
        if getattr(member, "reason", ""):
            project.reporter.note(member.reason)  # e.g. the people judge, short of votes: how many more
        per_judge.append([combine_orders(winner("ab", ab.verdict), winner("ba", ba.verdict))
                          for ab, ba in ask_both_orders(project, member, rubric, pairs, cfg.judge_retries, progress,
                                                        truth)])
    weights = jury_weights(project, names)
    return [PAIR_OUTCOME[majority([votes[i] for votes in per_judge], weights)] for i in range(len(pairs))]


def find_questions(project: Project, texts: Sequence[str]) -> list[Question | None]:
    """The eval set question (with its ground truth) asked as each text, newest eval set first; None if none."""
    by_text: dict[str, Question] = {}
    for name in list_evalsets(project):  # oldest first: newer sets overwrite
        by_text.update({q.question.strip(): q for q in load_evalset(project, name)})
    return [by_text.get(text.strip()) for text in texts]


def judge_for(project: Project, judge_: str | ModelSpec) -> Judge:
    """The judge named `judge_`: a grounded judge, `people`, else a model (a role, run, provider:model or model
    path)."""
    if judge_ == PEOPLE_JUDGE:  # imported here: the people judge brings scikit-learn, which most juries never need
        from underdog.evaluate.judges.people import people_judge

        return people_judge(project)
    if is_grounded(judge_):
        return grounded_judge(judge_, project.config.evaluate.similarity_margin)
    if isinstance(judge_, ModelSpec):
        return project.model(judge_, role=f"judge {judge_.model}", stage="judge")
    return project.llm(judge_, stage="judge")


def _row(a: Answer, b: Answer, votes: dict[str, tuple[str, str]],
         weights: dict[str, float] | None = None) -> QuestionRow:
    if a.error or b.error or not votes:
        outcome = "error"
    else:
        outcome = majority([combine_orders(winner("ab", ab), winner("ba", ba)) for ab, ba in votes.values()],
                           [weights[j] for j in votes] if weights else None)
    return QuestionRow(a.question_id, a.question, a.answer, b.answer, outcome, votes)


def _consistency(votes: list[dict[str, tuple[str, str]]]) -> float:
    """Share of (judge, question) verdict pairs that name the same winner in both orders; over the LLM judges
    only when there are any (grounded judges are consistent by construction)."""
    llm_judges = any(not is_model_free(j) for per_q in votes for j in per_q)
    pairs = [(winner("ab", ab), winner("ba", ba)) for per_q in votes for j, (ab, ba) in per_q.items()
             if not (llm_judges and is_model_free(j))]
    pairs = [(x, y) for x, y in pairs if x not in NO_VERDICT and y not in NO_VERDICT]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else 0.0


def _record(project: Project, result: JudgeResult, cand: Candidate, ref: Candidate,
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
