"""Votes collected elsewhere (a form, a spreadsheet, another arena): `underdog arena import-votes FILE`.

    result = import_votes(project, Path("votes.csv"))     # ImportResult(added=40, already=0, ...)

A file is CSV (a header row) or JSONL (one object per line), each row in one of two shapes:
- what `arena export` writes: voter_id, role, question_id, shown_a, shown_b, choice (A | B | tie | bad), plus the
  question and answers (question, answer_a, answer_b: exports since votes kept their texts); without them the
  answers must be on show in this project's arena;
- self-contained: question, answer_a, answer_b, winner (a | b | tie | both_bad), voter, role (judge | audience),
  and optionally candidate_a, candidate_b (default: a name derived from the answer's text), question_id.
Either may name its `question_set` (default `import:<file name>`). Every row is checked before anything is
written: the first bad one is one line naming file:line, and nothing is imported. Importing the same file
again adds nothing (a vote is keyed by voter, question and pair); a row that contradicts a stored vote of the
same voter on the same pair is an error. Votes on an eval set's questions are imported like any other: they
evaluate (standings, calibration), they never become training data (`preferences` refuses them).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underdog.arena import store as tables
from underdog.errors import UnderdogError
from underdog.evaluate.evalset import question_id
from underdog.evaluate.questions import eval_question_texts, normalise_question
from underdog.project import Project
from underdog.textfile import UTF8, read_user_text

SELF_CONTAINED = ("question", "answer_a", "answer_b", "winner", "voter", "role")
EXPORTED = ("voter_id", "role", "question_id", "shown_a", "shown_b", "choice")
WINNERS = {"a": "A", "b": "B", "tie": "tie", "both_bad": "bad"}  # self-contained winner -> the arena's choice
CHOICES = ("A", "B", "tie", "bad")
ROLES = ("judge", "audience")


@dataclass(frozen=True)
class ImportedVote:
    where: str  # file:line
    voter: str
    role: str
    question_id: str
    question: str
    question_set: str
    shown_a: str
    shown_b: str
    answer_a: str
    answer_b: str
    choice: str  # A, B, tie, bad

    def row(self, source: str) -> dict[str, Any]:
        """The `arena_votes` row: the pair in canonical order, the ballot id a hash of who voted on what."""
        (cand_1, answer_1), (cand_2, answer_2) = sorted([(self.shown_a, self.answer_a), (self.shown_b, self.answer_b)])
        key = json.dumps([self.voter, self.question_id, cand_1, cand_2, self.question, answer_1, answer_2])
        return {"voter_id": self.voter, "role": self.role, "question_id": self.question_id, "cand_1": cand_1,
                "cand_2": cand_2, "shown_a": self.shown_a, "shown_b": self.shown_b, "choice": self.choice,
                "winner": {"A": self.shown_a, "B": self.shown_b}.get(self.choice),
                "ballot_id": "import:" + hashlib.sha256(key.encode()).hexdigest()[:32],
                "question_set": self.question_set, "question": self.question, "answer_1": answer_1,
                "answer_2": answer_2, "source": source, "simulated": 0}


@dataclass
class ImportResult:
    rows: int
    added: int
    already: int  # rows whose vote was already stored (an earlier import of the same file)
    question_sets: Counter[str] = field(default_factory=Counter)
    on_eval_questions: int = 0  # votes on an eval set's questions: they evaluate, never train


def import_votes(project: Project, path: Path, question_set: str | None = None, encoding: str = UTF8
                 ) -> ImportResult:
    """Check every row of a vote file, then store its new votes in one commit (see the module docstring)."""
    default_set = question_set or f"import:{path.name}"
    shown = {(r["question_id"], r["candidate"]): (r["question"], r["answer"]) for r in tables.items(project.store)}
    votes = [parse_row(record, where, default_set, shown) for where, record in read_rows(path, encoding)]
    if not votes:
        raise UnderdogError(f"{path}: no votes in the file")
    held_out = eval_question_texts(project)
    result = ImportResult(len(votes), 0, 0, Counter(v.question_set for v in votes),
                          sum(normalise_question(v.question) in held_out for v in votes))
    with project.store.transaction() as db:
        seen: dict[tuple[str, str, str, str], ImportedVote] = {}
        for vote in votes:
            row = vote.row(f"import:{path.name}")
            pair = (vote.voter, vote.question_id, row["cand_1"], row["cand_2"])
            if (earlier := seen.get(pair)) is not None:
                _check_same(vote, row, (earlier.choice, _winner(earlier)), f"on {earlier.where}")
                result.already += 1
                continue
            seen[pair] = vote
            if (stored := tables.vote_of_voter(db, *pair)) is not None:
                _check_same(vote, row, (stored["choice"], stored["winner"]), "in this project")
                result.already += 1
                continue
            tables.ensure_voter(db, vote.voter, vote.role)
            tables.put_vote(db, row)
            result.added += 1
    return result


def _winner(vote: ImportedVote) -> str | None:
    return {"A": vote.shown_a, "B": vote.shown_b}.get(vote.choice)


def _check_same(vote: ImportedVote, row: dict[str, Any], said: tuple[str, str | None], where: str) -> None:
    """A repeated (voter, question, pair) must say what was already said, else it is an error."""
    if said != (row["choice"], row["winner"]):
        raise UnderdogError(f"{vote.where}: voter {vote.voter!r} already voted on this question and pair {where} "
                            f"({_said(said)}; this row says {_said((row['choice'], row['winner']))}): nothing "
                            "imported")


def _said(choice_winner: tuple[str, str | None]) -> str:
    choice, winner = choice_winner
    return f"{winner} is better" if winner else {"tie": "a tie", "bad": "both are bad"}[choice]


def read_rows(path: Path, encoding: str = UTF8) -> list[tuple[str, Any]]:
    """(file:line, record) of each row of a CSV (header row) or JSONL file."""
    text = read_user_text(path, encoding)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((f"{path}:{number}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise UnderdogError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        return rows
    return _csv_rows(path, text)


def _csv_rows(path: Path, text: str) -> list[tuple[str, Any]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    shape = EXPORTED if "choice" in header else SELF_CONTAINED
    missing = [c for c in shape if c not in header]
    if missing:
        raise UnderdogError(f"{path}:1: missing column{'s' * (len(missing) > 1)} {', '.join(missing)} (a vote "
                            f"file has the columns {', '.join(SELF_CONTAINED)} or those `arena export` writes)")
    rows, start = [], reader.line_num + 1
    for record in reader:
        if None in record:
            raise UnderdogError(f"{path}:{start}: more cells than columns")
        rows.append((f"{path}:{start}", record))
        start = reader.line_num + 1
    return rows


def parse_row(record: Any, where: str, question_set: str,
              shown: dict[tuple[str, str], tuple[str, str]]) -> ImportedVote:
    """One row as a vote, or one line naming what is wrong with it."""
    if not isinstance(record, dict):
        raise UnderdogError(f"{where}: expected an object with the columns {', '.join(SELF_CONTAINED)}")
    record = {str(k).strip(): v for k, v in record.items()}
    vote = _exported(record, where, shown) if "choice" in record else _self_contained(record, where)
    return ImportedVote(**{**vote.__dict__, "question_set": str(record.get("question_set") or "").strip()
                           or question_set})


def _text(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UnderdogError(f"{where}: missing {key!r}")
    if not isinstance(value, str | int | float):
        raise UnderdogError(f"{where}: {key!r} must be text (got {type(value).__name__})")
    return str(value).strip()


def _role(record: dict[str, Any], where: str) -> str:
    role = _text(record, "role", where).lower()
    if role not in ROLES:
        raise UnderdogError(f"{where}: unknown role {role!r} (judge or audience)")
    return role


def _self_contained(record: dict[str, Any], where: str) -> ImportedVote:
    question, answer_a, answer_b = (_text(record, k, where) for k in ("question", "answer_a", "answer_b"))
    winner = _text(record, "winner", where).lower().replace(" ", "_")
    if winner not in WINNERS:
        raise UnderdogError(f"{where}: unknown winner {record['winner']!r} (a, b, tie or both_bad)")
    names = [str(record.get(k) or "").strip() or _answer_name(text)
             for k, text in (("candidate_a", answer_a), ("candidate_b", answer_b))]
    if names[0] == names[1]:
        raise UnderdogError(f"{where}: both answers are of {names[0]!r}: a vote compares two candidates")
    qid = str(record.get("question_id") or "").strip() or question_id(question)
    return ImportedVote(where, _text(record, "voter", where), _role(record, where), qid, question, "", names[0],
                        names[1], answer_a, answer_b, WINNERS[winner])


def _answer_name(text: str) -> str:
    """A candidate name for an answer imported without one: the same text, the same name."""
    return "answer-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def _exported(record: dict[str, Any], where: str, shown: dict[tuple[str, str], tuple[str, str]]) -> ImportedVote:
    qid, shown_a, shown_b = (_text(record, k, where) for k in ("question_id", "shown_a", "shown_b"))
    choice = _text(record, "choice", where)
    if choice not in CHOICES:
        raise UnderdogError(f"{where}: unknown choice {choice!r} (A, B, tie or bad)")
    if shown_a == shown_b:
        raise UnderdogError(f"{where}: shown_a and shown_b are both {shown_a!r}: a vote compares two candidates")
    if record.get("answer_a") and record.get("answer_b"):
        question, answer_a, answer_b = (_text(record, k, where) for k in ("question", "answer_a", "answer_b"))
    else:
        for cand in (shown_a, shown_b):
            if (qid, cand) not in shown:
                raise UnderdogError(f"{where}: no answer of {cand!r} to question {qid!r} in this arena, and the row "
                                    "has no answer_a / answer_b texts: import the votes where they were cast, or "
                                    "rows with the question and both answers")
        (question, answer_a), (_, answer_b) = shown[qid, shown_a], shown[qid, shown_b]
    return ImportedVote(where, _text(record, "voter_id", where), _role(record, where), qid, question, "", shown_a,
                        shown_b, answer_a, answer_b, choice)
