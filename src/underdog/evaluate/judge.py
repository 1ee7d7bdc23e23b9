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

The parts: prompts, reply parsing and verdict arithmetic in `verdicts.py`; the result's statistics view and its
record in `judge_result.py`; asking the judges (this module). Every name is importable from here as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from underdog.config import PEOPLE_JUDGE, ModelSpec
from underdog.errors import ModelError, UnderdogError
from underdog.evaluate import store as tables
from underdog.evaluate.answer import Candidate, answer, check_answered, resolve_candidate
from underdog.evaluate.evalset import Question, list_evalsets, load_evalset, resolve_evalset
from underdog.evaluate.judge_result import (
    JudgeResult,
    QuestionRow,
    jury_config,
    jury_weights,
    no_verdict_message,
    order_consistency,
    question_row,
    record_result,
    send_to_trackers,
)
from underdog.evaluate.judges import GroundedJudge, Item, grounded_judge, is_grounded
from underdog.evaluate.judges.facts import recall
from underdog.evaluate.verdicts import (
    JSON_INSTRUCTION,
    JSON_MAX_TOKENS,
    LOCAL_INSTRUCTION,
    MIRROR,
    NO_VERDICT,
    NULL_PAIR,
    PAIR_OUTCOME,
    PROMPT,
    PROMPT_VERSION,
    RETRY_TEMPERATURE,
    RUBRIC_TEXT,
    SCORE,
    SYSTEM,
    VERDICTS,
    WINNER,
    Pair,
    Verdict,
    combine_orders,
    judge_messages,
    majority,
    pair_messages,
    parse_verdict,
    rubric_text,
    spec_identity,
    verdict_key,
    winner,
)
from underdog.llm import LLM
from underdog.project import Project

__all__ = [  # the names this module has always had, wherever they now live
    "JSON_INSTRUCTION", "JSON_MAX_TOKENS", "LOCAL_INSTRUCTION", "MIRROR", "NO_VERDICT", "NULL_PAIR", "PAIR_OUTCOME",
    "PROMPT", "PROMPT_VERSION", "RETRY_TEMPERATURE", "RUBRIC_TEXT", "SCORE", "SYSTEM", "VERDICTS", "WINNER", "Judge",
    "JudgeResult", "Pair", "QuestionRow", "Verdict", "ask_both_orders", "ask_judge", "combine_orders",
    "find_questions", "judge", "judge_for", "judge_messages", "judge_pairs", "jury_config", "jury_weights",
    "majority", "pair_messages", "parse_verdict", "rubric_text", "send_to_trackers", "spec_identity",
    "uses_logprobs", "verdict_key", "winner",
]


def uses_logprobs(llm: LLM) -> bool:
    """Judges whose backend scores options (local models) give verdicts by log-probability."""
    return llm.backend.can_score


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
    rows = [question_row(a, b, votes[i], by_label) for i, (a, b) in enumerate(pairs)]
    config_id, config = jury_config(project, judges or cfg.judges, rubric, name)
    result = JudgeResult(cand.name, ref.name, name, [m.label for m in jury], rubric, rows,
                         order_consistency(votes),
                         sum(v.called and not v.cached for *_, v in verdicts), config_id=config_id,
                         judge_config=config,
                         recall=recall([(a.answer, known.get(a.question_id)) for a in ours if not a.error]),
                         reference_recall=recall([(b.answer, known.get(b.question_id)) for b in theirs.values()
                                                  if not b.error]))
    if not result.n:
        raise UnderdogError(no_verdict_message(result))
    result.result_id = record_result(project, result, cand, ref, verdicts)
    send_to_trackers(project, cand, result, track_as)
    return result


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
    if judge_ == PEOPLE_JUDGE:
        from underdog.evaluate.judges.people import people_judge  # lazy: scikit-learn, which most juries never need

        return people_judge(project)
    if is_grounded(judge_):
        return grounded_judge(judge_, project.config.evaluate.similarity_margin)
    if isinstance(judge_, ModelSpec):
        return project.model(judge_, role=f"judge {judge_.model}", stage="judge")
    return project.llm(judge_, stage="judge")
