"""A judge's prompt, its reply parsed into a verdict, and verdicts combined into outcomes (no model, no database).

    judge_messages(question, first, second, rubric, json_mode=True)   # the prompt an API judge answers
    parse_verdict('{"verdict": "B"}')                                 # "B"; None when not exactly that shape
    combine_orders(winner("ab", "A"), winner("ba", "B"))              # "candidate": both orders agree
    majority(["candidate", "tie", "candidate"])                       # the jury's outcome

Asking the judges is `evaluate/judge.py`; the statistics view and the recording are `evaluate/judge_result.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from underdog.config import ModelSpec
from underdog.data.parse import json_object
from underdog.evaluate.judges import ABSTAIN
from underdog.llm.identity import judge_identity

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


def spec_identity(s: ModelSpec) -> str:
    """What makes a model judge's verdicts what they are (its cache identity; llm/identity.py)."""
    return judge_identity(s, PROMPT_VERSION)


def verdict_key(identity: str, rubric: Sequence[str], question: str, first: str, second: str,
                reference: str | None = None) -> str:
    body = json.dumps([identity, list(rubric), question, first, second] + ([reference] if reference else []))
    return hashlib.sha256(body.encode()).hexdigest()


def parse_verdict(text: str) -> str | None:
    """The verdict of a JSON reply, or None when it is not exactly a JSON object with a valid verdict."""
    data = json_object(text)
    verdict = data.get("verdict") if data else None
    if not isinstance(verdict, str):
        return None
    return {"a": "A", "b": "B", "tie": "tie"}.get(verdict.strip().lower())


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


MIRROR = {"A": "B", "B": "A", "tie": "tie", ABSTAIN: ABSTAIN}


PAIR_OUTCOME = {"candidate": "first", "reference": "second", "tie": "tie", "error": "error", ABSTAIN: ABSTAIN}
