"""Eval sets: held-out questions the candidates are judged on, never trained on.

    evalsets/<name>/questions.jsonl   {"id", "question", "reference"?, "topic"?, "facts"?, "expect"?} per line
    evalsets/<name>/manifest.json     {"name", "count", "sha256", "source", "created"}

`import_evalset` reads JSONL, JSON, CSV or plain text (one question per line); `generate_evalset` asks the
teacher for questions on the project's topics. Ground truth for the grounded judges (evaluate/judges/): `facts`,
strings (or `/regex/`) a correct answer must state (a CSV `facts` column separates them with `|`), and
`expect: "refusal"` for a question the assistant should decline. Data curation removes training examples too
close to any of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from underdog.data.parse import json_object
from underdog.data.topics import load_topics, topics_path
from underdog.errors import InputError, ModelError, UnderdogError
from underdog.evaluate.judges.facts import is_refusal, is_regex, normalise, states
from underdog.layout import MANIFEST_FILE, QUESTIONS_FILE
from underdog.llm import LLM
from underdog.project import Project
from underdog.textfile import UTF8, Malformed, csv_records, json_value, read_user_text

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
EXPECTATIONS = ("refusal",)


@dataclass
class Question:
    id: str
    question: str
    reference: str | None = None
    topic: str | None = None
    facts: list[str] | None = None  # what a correct answer states: text, or /regex/ (judges/facts.py)
    expect: str | None = None  # "refusal": a probe the assistant should decline

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def question_id(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()[:12]


def save_evalset(project: Project, name: str, questions: list[Question], source: str) -> Path:
    """Write eval set `name` (immutable: an existing name is an error)."""
    if not NAME_PATTERN.match(name):
        raise UnderdogError(f"eval set name {name!r}: use letters, digits, '.', '_' or '-'")
    folder = project.evalset_dir(name)
    if (folder / MANIFEST_FILE).exists():
        raise UnderdogError(f"eval set {name!r} already exists (pick another --name)")
    if not questions:
        raise UnderdogError(f"eval set {name!r} would be empty")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise UnderdogError(f"eval set {name!r}: question ids are not unique")
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in questions)
    (folder / QUESTIONS_FILE).write_text(body)
    manifest = {"name": name, "count": len(questions), "sha256": hashlib.sha256(body.encode()).hexdigest(),
                "source": source, "created": time.time()}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))  # last: marks the set complete
    return folder


def list_evalsets(project: Project) -> list[str]:
    """Complete eval sets, oldest first."""
    manifests = sorted(project.evalsets_dir.glob(f"*/{MANIFEST_FILE}"), key=lambda p: p.stat().st_mtime)
    return [p.parent.name for p in manifests]


def resolve_evalset(project: Project, name: str | None = None) -> str:
    """`name`, else the configured default, else the newest eval set."""
    name = name or project.config.evaluate.evalset
    known = list_evalsets(project)
    if name is None:
        if not known:
            raise UnderdogError("no eval set yet: run `underdog evalset generate` or `underdog evalset import FILE`")
        return known[-1]
    if name not in known:
        raise UnderdogError(f"no eval set named {name!r} (known: {', '.join(known) or 'none yet'})")
    return name


def load_evalset(project: Project, name: str | None = None) -> list[Question]:
    """The questions of eval set `name` (default: see `resolve_evalset`), checked as an import checks them."""
    path = project.evalset_dir(resolve_evalset(project, name)) / QUESTIONS_FILE
    return [_question(record, where) for where, record in _jsonl(path.read_text(encoding="utf-8"), path)]


def import_evalset(project: Project, file: Path, name: str | None = None, encoding: str = UTF8) -> list[Question]:
    """Import questions from .jsonl / .json / .csv (a `question` field or column) or .txt (one per line), text
    in `encoding`; nothing is written for a file with a bad record."""
    questions = read_questions(file, encoding)
    save_evalset(project, name or file.stem, questions, source=str(file))
    return questions


def read_questions(file: Path, encoding: str = UTF8) -> list[Question]:
    """The questions of a .jsonl / .json / .csv (a `question` field or column) or .txt file (one per line). A record
    that is not a question (a wrong type, a fact no answer can state, an id used twice) is InputError naming the
    file and line."""
    if not file.exists():
        raise UnderdogError(f"{file}: not found")
    records = _records(file, encoding)
    questions = [_question(record, where) for where, record in records]
    first: dict[str, str] = {}
    for (where, _), question in zip(records, questions, strict=True):
        if question.id in first:
            what = "the same question" if question.id == question_id(question.question) else \
                f"question id {question.id!r}"
            raise InputError(f"{where}: {what} is also at {first[question.id]}")
        first[question.id] = where
    return questions


def _records(file: Path, encoding: str = UTF8) -> list[tuple[str, object]]:
    """(where: `file:line`, or `file: item N` in a JSON list; record) of each question in an eval set file."""
    text = read_user_text(file, encoding, error=InputError)
    suffix = file.suffix.lower()
    try:
        if suffix == ".jsonl":
            return _jsonl(text, file)
        if suffix == ".json":
            data = json_value(text)
            if not isinstance(data, list):
                raise InputError(f"{file}: expected a JSON list of questions")
            return [(f"{file}: item {number}", record) for number, record in enumerate(data, 1)]
        if suffix == ".csv":
            return [(f"{file}:{line}", row) for line, row in csv_records(text)]
    except Malformed as exc:
        raise InputError(exc.at(file)) from None
    return [(f"{file}:{number}", {"question": line.strip()}) for number, line in enumerate(text.splitlines(), 1)
            if line.strip()]


def _jsonl(text: str, file: Path) -> list[tuple[str, object]]:
    try:
        return [(f"{file}:{number}", json_value(line, number)) for number, line in enumerate(text.splitlines(), 1)
                if line.strip()]
    except Malformed as exc:
        raise InputError(exc.at(file)) from None


def _question(record: object, where: str) -> Question:
    if isinstance(record, str):
        record = {"question": record}
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object with a 'question' field")
    text = record.get("question") or record.get("prompt") or record.get("instruction")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: missing 'question' (a non-empty string)")
    given_id = record.get("id")
    if given_id is not None and (isinstance(given_id, bool) or not isinstance(given_id, str | int)):
        raise InputError(f"{where}: 'id' must be a string or a whole number (got {_kind(given_id)})")
    return Question(id=str(given_id or question_id(text)), question=text.strip(),
                    reference=_text(record, "reference", where) or _text(record, "answer", where),
                    topic=_text(record, "topic", where), facts=_facts(record.get("facts"), where),
                    expect=_expect(record.get("expect"), where))


def _text(record: dict, key: str, where: str) -> str | None:
    """The optional text field `key` of a record (None when absent or empty)."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: '{key}' must be a string (got {_kind(value)})")
    return value or None


def _kind(value: object) -> str:
    """What a JSON value is, in words (never its repr, which may be huge or nested too deeply to print)."""
    names = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _facts(value: object, where: str) -> list[str] | None:
    """A question's facts: a list of non-empty strings, or one string of facts separated by `|` (CSV). Each must
    be one an answer can state: a valid /regex/, or text with a letter or digit (normalising drops the rest)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split("|")]
    if not isinstance(value, list) or not all(isinstance(f, str) and f.strip() for f in value):
        got = "" if isinstance(value, list) else f" (got {_kind(value)})"
        raise InputError(f"{where}: 'facts' must be a list of non-empty strings{got}")
    for fact in value:
        if is_regex(fact):
            try:
                re.compile(fact.strip()[1:-1])
            except re.error as exc:
                raise InputError(f"{where}: fact {fact!r} is not a valid regex ({exc})") from None
        elif not normalise(fact):
            raise InputError(f"{where}: fact {fact!r} has no letter or digit, so no answer can state it (write "
                             "punctuation as a /regex/)")
    return [f.strip() for f in value]


def _expect(value: object, where: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in EXPECTATIONS:
        shown = repr(value[:60]) if isinstance(value, str) else _kind(value)
        raise InputError(f"{where}: 'expect' must be one of {', '.join(EXPECTATIONS)} (got {shown})")
    return str(value)


# -- generation -------------------------------------------------------------------------------------------
QUESTION_TOKENS = 64  # a question is short: no need to wait for the teacher's full answer length
QUESTION_PROMPT = """You write test questions for an assistant about: {domain}.
Topic: {topic}
Write ONE realistic question a member of the public would ask about this topic. Reply with the question only."""


def project_topics(project: Project) -> list[str]:
    """Subtopic names of topics.yaml (see `underdog topics`), else the domain itself."""
    return [t.name for t in load_topics(project)] if topics_path(project).exists() else [project.config.domain]


def generate_evalset(project: Project, name: str = "default", size: int | None = None,
                     teacher: str = "teacher", ground_truth: bool = False) -> list[Question]:
    """Ask the teacher for `size` distinct questions spread over the project's topics; with `ground_truth`,
    also for each one's reference answer and facts (see `add_ground_truth`)."""
    size = size or project.config.evaluate.evalset_size
    topics = project_topics(project)
    llm = project.llm(teacher, stage="evalset")
    seen: dict[str, Question] = {}
    start = 0
    base_seed = llm.spec.params.seed or 0
    for round_ in range(3):  # rounds of sampling until there are enough distinct questions
        missing = size - len(seen)
        if missing <= 0:
            break
        samples = list(range(start, start + 2 * missing))
        start += len(samples)
        prompts = [QUESTION_PROMPT.format(domain=project.config.domain, topic=topics[i % len(topics)])
                   for i in samples]
        # a new seed per round: the same prompts with the same seed would repeat the same questions
        replies = llm.batch(prompts, samples=samples, errors="return", progress="eval questions",
                            seed=base_seed + round_, max_tokens=min(llm.spec.params.max_tokens, QUESTION_TOKENS))
        if all(reply.error for reply in replies):
            raise ModelError(f"the teacher ({llm.name}) failed on every question, e.g.: {replies[0].error}")
        for i, reply in zip(samples, replies, strict=True):
            text = clean_question(reply.text)
            if text and text.lower() not in seen and len(seen) < size:
                seen[text.lower()] = Question(id=question_id(text), question=text, topic=topics[i % len(topics)])
    if not seen:
        raise UnderdogError(f"the teacher ({llm.name}) produced no usable question")
    questions = list(seen.values())
    if ground_truth:
        questions = add_ground_truth(llm, project.config.domain, questions)
    save_evalset(project, name, questions, source=f"generated by {llm.name}")
    return questions


GROUND_TRUTH_TOKENS = 400
GROUND_TRUTH_PROMPT = """You write the answer key for a test question an assistant about {domain} will be asked.
Question: {question}
Reply with a JSON object only:
{{"reference": "<a correct, complete answer in one to four sentences>",
  "facts": ["<a few words a correct answer must state: a number, fee, deadline, form, office or name>", ...]}}
Give one to five facts, each copied word for word from your reference answer.
If an assistant should decline the question (unsafe, or private information), reply instead:
{{"reference": "<a polite refusal>", "expect": "refusal"}}"""


def add_ground_truth(llm: LLM, domain: str, questions: list[Question]) -> list[Question]:
    """Each question with the teacher's reference answer and facts (JSON mode, parsed strictly by
    `parse_ground_truth`); a question whose reply does not parse keeps no ground truth rather than failing."""
    prompts = [GROUND_TRUTH_PROMPT.format(domain=domain, question=q.question) for q in questions]
    replies = llm.batch(prompts, errors="return", json_mode=True, progress="answer key",
                        max_tokens=max(llm.spec.params.max_tokens, GROUND_TRUTH_TOKENS))
    out = []
    for question, reply in zip(questions, replies, strict=True):
        truth = parse_ground_truth(reply.text) if not reply.error else None
        out.append(replace(question, **truth) if truth else question)
    return out


def parse_ground_truth(text: str) -> dict | None:
    """{"reference", "facts"} or {"reference", "expect": "refusal"} from a JSON reply, or None when it is not
    exactly that. Facts the reference answer does not itself state are dropped (they would fail the teacher's
    own answer); none left -> None."""
    data = json_object(text)
    reference = data.get("reference") if data else None
    if not isinstance(reference, str) or not reference.strip():
        return None
    if data.get("expect") == "refusal":
        return {"reference": reference.strip(), "expect": "refusal"} if is_refusal(reference) else None
    facts = data.get("facts")
    if not isinstance(facts, list):
        return None
    kept = [f.strip() for f in facts if isinstance(f, str) and f.strip() and states(reference, f)]
    return {"reference": reference.strip(), "facts": kept} if kept else None


def clean_question(text: str) -> str:
    """The question in a model's reply: a quoted question, else the first line with a '?' (cut after it),
    else the first non-empty line; lead-ins such as 'Question 1:' or 'Here is one:' are dropped."""
    quoted = re.search(r'"([^"\n]{10,}?\?)', text)
    if quoted:
        return quoted.group(1).strip()
    lines = [re.sub(r"^(question\s*\d*\s*[:.-]|\d+[.)]|[-*\"'])\s*", "", ln.strip(), flags=re.I).strip(" \"'")
             for ln in text.splitlines()]
    lines = [ln for ln in lines if len(ln) >= 10]
    asked = next((ln[: ln.index("?") + 1] for ln in lines if "?" in ln), lines[0] if lines else "")
    return re.sub(r"^[^:?]{0,60}:\s*", "", asked).strip(" \"'")[:500]
