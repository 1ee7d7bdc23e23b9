"""Questions beyond the eval set: a dataset's questions or a question file, and which texts an eval set holds.

    found = question_source(project, "dataset:base")          # QuestionSet("dataset:base", [Question, ...])
    found = question_source(project, "more-questions.txt")    # any file `evalset import` reads -> "file:..."
    held_out = eval_question_texts(project)                    # normalised texts of every eval set's questions
    normalise_question(text) in held_out                       # the same question text as an eval question?

A question asked in an eval set evaluates: votes and verdicts on it never become training data. "The same
question" means the same text up to case and whitespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from underdog.data.dataset import load_dataset
from underdog.errors import UnderdogError
from underdog.evaluate.evalset import Question, list_evalsets, load_evalset, question_id, read_questions
from underdog.project import Project
from underdog.textfile import UTF8


@dataclass(frozen=True)
class QuestionSet:
    name: str  # evalset:NAME, dataset:NAME or file:NAME
    questions: list[Question]


def normalise_question(text: str) -> str:
    """A question's text up to case and whitespace."""
    return " ".join(text.casefold().split())


def eval_question_texts(project: Project) -> set[str]:
    """The normalised text of every question of every eval set of the project."""
    return {normalise_question(q.question) for name in list_evalsets(project) for q in load_evalset(project, name)}


def question_source(project: Project, source: str, limit: int | None = None, encoding: str = UTF8) -> QuestionSet:
    """The questions named by `source`: `dataset:NAME` (a dataset version's distinct questions, in order),
    `evalset:NAME`, or a file path (.jsonl/.json/.csv with a `question` field, or .txt, one per line); at most
    `limit` (the first ones)."""
    kind, _, name = source.partition(":")
    if kind == "dataset" and name:
        seen: dict[str, Question] = {}
        for example in load_dataset(project.root, name):
            text = example.question.strip()
            seen.setdefault(text, Question(question_id(text), text))
        found = QuestionSet(source, list(seen.values()))
    elif kind == "evalset" and name:
        found = QuestionSet(source, load_evalset(project, name))
    else:
        path = Path(source)
        if not path.exists():
            raise UnderdogError(f"{source}: no such file (name questions as dataset:NAME, evalset:NAME or a file)")
        found = QuestionSet(f"file:{path.name}", read_questions(path, encoding))
    if not found.questions:
        raise UnderdogError(f"{source}: no questions")
    return QuestionSet(found.name, found.questions[:limit] if limit else found.questions)
