"""Robust parsing of teacher replies. Small models write poor JSON, so every parser falls back gracefully:

    parse_items(text)        -> (items, malformed)   JSON array/object (fenced, Python-quoted or cut off at
                                                     max_tokens: complete items kept), then numbered/bulleted lines
    parse_questions(text)    -> (questions, malformed)
    first_question(text)     -> str | None           the first question-like line of a single-question reply
    parse_qa_pairs(text)     -> (pairs, malformed)   [{"question", "answer"}], then "Q: ... A: ..." lines
    parse_categories(text)   -> {category: [subtopics]}
    parse_rating(text)       -> float | None         rubric JSON, "total: 7", "7/10"
Items that cannot be used are counted as malformed, never fatal.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from typing import Any

FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*•]|#+)\s+")
NUMBERED = re.compile(r"^\s*(?:\d+[.)]|#+)\s*(.+)$")
BULLET = re.compile(r"^\s*[-*•]\s+(.+)$")
QA_LINE = re.compile(r"^\s*(?:\d+[.)]\s*)?\**(Q|Question|A|Answer)\**\s*\d*\s*[:.]\**\s*(.*)$", re.I)


def _json_candidates(text: str) -> list[str]:
    candidates = [m.group(1) for m in FENCE.finditer(text)] + [text]
    for open_, close in (("[", "]"), ("{", "}")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    return candidates


def _load_json(text: str) -> Any:
    for candidate in _json_candidates(text):
        try:
            return json.loads(candidate.strip())
        except json.JSONDecodeError:
            pass
        try:  # Python-style lists: single quotes, trailing commas
            with warnings.catch_warnings():  # a reply's "\q" is the teacher's typo, not the user's warning
                warnings.simplefilter("ignore")
                value = ast.literal_eval(candidate.strip())
            if isinstance(value, list | dict):
                return value
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return None


def json_object(text: str) -> dict | None:
    """The JSON object a reply is (a ```json fence allowed around it), or None when it is not exactly one: the
    strict reading for replies that must be one object (a verdict, a ground truth), unlike `_load_json`'s salvage."""
    text = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


OBJECT = re.compile(r"\{[^{}]*\}")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _salvage(text: str) -> tuple[list[Any], int] | None:
    """The complete items of a JSON array cut off mid-way (e.g. at max_tokens); the cut tail is one malformed."""
    start = text.find("[")
    if start < 0:
        return None
    body = text[start + 1:]
    objects = []
    for raw in OBJECT.findall(body):
        try:
            objects.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    if objects:
        return objects, 1
    found = [_json_string(s) for s in STRING.findall(body)]
    strings = [s for s in found if s is not None]
    return (strings, 1 + len(found) - len(strings)) if strings else None


def _json_string(body: str) -> str | None:
    """A JSON string's body decoded (raw control characters allowed); None when an escape is invalid."""
    try:
        return json.loads(f'"{body}"', strict=False)
    except json.JSONDecodeError:
        return None


def _as_list(value: Any) -> list | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        return lists[0] if len(lists) == 1 else [value]
    return None


def parse_items(text: str) -> tuple[list[Any], int]:
    """Items of a list reply: JSON (array, object holding one array, fenced) or else marked/plain lines."""
    items = _as_list(_load_json(text))
    if items is not None:
        return items, 0
    if salvaged := _salvage(text):
        return salvaged
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("```")]
    marked = [MARKER.sub("", line).strip() for line in lines if MARKER.match(line)]
    return (marked if marked else [line.strip() for line in lines]), 0


def clean_text(value: str) -> str:
    """Strip list markers, quotes, trailing commas and surrounding whitespace."""
    value = MARKER.sub("", value.strip()).strip().rstrip(",").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value.replace("**", "").strip()


_OPENERS = ("how what where when why who which whom whose can could should would will do does did is are "
            "was were may might must am i i'm my we our us me please help any if")
OPENERS = frozenset(_OPENERS.split())


def is_question(text: str) -> bool:
    """Plausibly a user request: 3-80 words, not a JSON fragment, and a "?" or a question/first-person opener."""
    words = text.split()
    if not 3 <= len(words) <= 80 or text.startswith(("{", "[", "]")):
        return False
    return "?" in text or words[0].lower().strip(",:;\"'") in OPENERS


def first_question(text: str) -> str | None:
    """The first line of a reply that looks like a question (a single-question reply), else None."""
    lines = [clean_text(line) for line in text.splitlines() if line.strip()]
    return next((line for line in lines if is_question(line)), None)


def parse_questions(text: str) -> tuple[list[str], int]:
    """Questions from a reply; items that are not strings or do not look like questions are malformed."""
    items, malformed = parse_items(text)
    questions = []
    for item in items:
        if isinstance(item, dict):
            item = next((v for k, v in item.items() if "question" in k.lower() and isinstance(v, str)), None)
        if isinstance(item, str) and is_question(cleaned := clean_text(item)):
            questions.append(cleaned)
        else:
            malformed += 1
    return questions, malformed


def _pair(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return None
    lowered = {k.lower(): v for k, v in item.items()}
    question = lowered.get("question") or lowered.get("q")
    answer = lowered.get("answer") or lowered.get("a")
    if isinstance(question, str) and isinstance(answer, str) and question.strip() and answer.strip():
        return question.strip(), answer.strip()
    return None


def _qa_lines(text: str) -> list[tuple[str, str]]:
    pairs, question, answer = [], None, None
    for line in text.splitlines():
        match = QA_LINE.match(line)
        if match and match.group(1).lower().startswith("q"):
            if question and answer:
                pairs.append((question, answer.strip()))
            question, answer = match.group(2).strip(), None
        elif match and question:
            answer = match.group(2)
        elif answer is not None and line.strip():
            answer += "\n" + line.strip()
    if question and answer:
        pairs.append((question, answer.strip()))
    return pairs


def parse_qa_pairs(text: str) -> tuple[list[tuple[str, str]], int]:
    """(question, answer) pairs from JSON objects, else from "Q: ... A: ..." lines."""
    loaded = _load_json(text)
    data = _as_list(loaded)
    salvaged = _salvage(text) if not isinstance(loaded, list) else None  # an array cut off mid-way
    if salvaged:
        pairs = [p for p in map(_pair, salvaged[0]) if p]
        if pairs:
            return pairs, len(salvaged[0]) - len(pairs) + salvaged[1]
    if data is not None:
        pairs = [p for p in map(_pair, data) if p]
        if pairs or not _qa_lines(text):
            return pairs, len(data) - len(pairs)
    pairs = _qa_lines(text)
    return pairs, 0 if pairs else 1


def parse_categories(text: str) -> dict[str, list[str]]:
    """{category: [subtopics]} from numbered categories with "- " subtopics (or a JSON mapping)."""
    data = _load_json(text)
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {clean_text(str(k)): [clean_text(str(s)) for s in v if str(s).strip()] for k, v in data.items()}
    categories: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if bullet := BULLET.match(line):
            sub = clean_text(bullet.group(1))
            if sub:
                categories.setdefault(current or "General", []).append(sub)
        elif numbered := NUMBERED.match(line):
            current = clean_text(numbered.group(1)).rstrip(":")
            categories.setdefault(current, [])
    return {k: v for k, v in categories.items() if k}


RUBRIC = {"accuracy": 3, "relevance": 2, "clarity": 2, "usefulness": 3}
TOTAL_RE = re.compile(r"(?:total|score|rating|overall)\W{0,3}(\d+(?:\.\d+)?)", re.I)
OUT_OF_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of)\s*10\b", re.I)


def parse_rating(text: str) -> float | None:
    """A 0-10 rating from a rubric JSON reply or a "total: 7" / "7/10" line; None when there is none."""
    data = _load_json(text)
    if isinstance(data, dict):
        lowered = {k.lower(): v for k, v in data.items()}
        parts = [lowered.get(k) for k in RUBRIC]
        if all(isinstance(v, int | float) for v in parts):
            return float(sum(min(max(v, 0), RUBRIC[k]) for k, v in zip(RUBRIC, parts, strict=True)))
        total = lowered.get("total", lowered.get("rating", lowered.get("score")))
        if isinstance(total, int | float) and 0 <= total <= 10:
            return float(total)
    for pattern in (TOTAL_RE, OUT_OF_RE):
        match = pattern.search(text)
        if match and 0 <= float(match.group(1)) <= 10:
            return float(match.group(1))
    return None
