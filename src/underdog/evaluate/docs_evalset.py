"""Eval sets built from documents: one question per chunk, with a reference answer and facts from the passage.

    built = evalset_from_documents(project, ["handbook.md", "fees.html"], name="handbook", size=20)
    built.questions, built.dropped, built.skipped

The documents are read and chunked by the ingestion stage (`data/ingestion.py`: same readers, same
`data.chunk_size` / `data.chunk_overlap`; an unreadable file is skipped and named). Up to `size` chunks, spread
evenly over all of them, each get two teacher calls through `project.llm(teacher, stage="evalset")` (cached: a
re-run calls no model): one question a resident would ask that the passage answers, then its answer key (JSON
reference answer and facts, parsed by `parse_ground_truth`, which drops facts the reference does not state).
A chunk whose question or answer key does not parse is dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from underdog.data.ingestion import read_chunks
from underdog.data.parse import first_question
from underdog.errors import ModelError, UnderdogError
from underdog.evaluate.evalset import (
    GROUND_TRUTH_TOKENS,
    QUESTION_TOKENS,
    Question,
    parse_ground_truth,
    question_id,
    save_evalset,
)
from underdog.llm import LLM
from underdog.project import Project
from underdog.textfile import UTF8, codec_name

DOC_QUESTION_PROMPT = """You write test questions for an assistant about: {domain}.
Here is a passage from {source}:

<passage>
{chunk}
</passage>

Write ONE realistic question a resident would ask that this passage answers. Reply with the question only."""

DOC_GROUND_TRUTH_PROMPT = """You write the answer key for a test question an assistant about {domain} will be asked.
Use only this passage from {source}:

<passage>
{chunk}
</passage>

Question: {question}
Reply with a JSON object only:
{{"reference": "<a correct, complete answer in one to four sentences, from the passage>",
  "facts": ["<a few words a correct answer must state: a number, fee, deadline, form, office or name>", ...]}}
Give one to five facts, each copied word for word from your reference answer."""


@dataclass
class DocsEvalset:
    """What `evalset_from_documents` built: the saved questions, chunks dropped, files skipped."""

    questions: list[Question]
    chunks: int  # chunks asked (at most `size`)
    dropped: int  # chunks whose question or answer key did not parse (or repeated another question)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"} per unreadable file


def evalset_from_documents(project: Project, paths: list[Path | str], name: str, size: int | None = None,
                           teacher: str = "teacher", encoding: str = UTF8) -> DocsEvalset:
    """Eval set `name` of questions grounded in `paths` (text formats in `encoding`): up to `size` (default
    evaluate.evalset_size) chunks, each a question with the teacher's reference answer and facts."""
    cfg = project.config.data
    chunks, skipped = read_chunks([Path(p) for p in paths], cfg.chunk_size, cfg.chunk_overlap, codec_name(encoding))
    if not chunks:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped) or "no files given"
        raise UnderdogError(f"no text to build eval set {name!r} from ({reasons})")
    picked = spread(chunks, size or project.config.evaluate.evalset_size)
    llm = project.llm(teacher, stage="evalset")
    questions = _answer_keys(llm, project.config.domain, _ask_questions(llm, project.config.domain, picked))
    if not questions:
        raise UnderdogError(f"the teacher ({llm.name}) gave no usable question with an answer key for any of "
                            f"{len(picked)} chunks; eval set {name!r} not written (a small local teacher rarely "
                            "writes valid JSON answer keys: point the teacher role at an API model)")
    files = sorted({file for file, _ in chunks})
    save_evalset(project, name, list(questions.values()), source=f"from {', '.join(files)} by {llm.name}")
    return DocsEvalset(list(questions.values()), len(picked), len(picked) - len(questions), skipped)


def spread(items: list, size: int) -> list:
    """`size` items evenly spaced over `items` (all of them when there are no more than `size`)."""
    if size <= 0:
        raise UnderdogError(f"--size {size}: must be at least 1")
    if len(items) <= size:
        return list(items)
    return [items[i * len(items) // size] for i in range(size)]


def _ask_questions(llm: LLM, domain: str, chunks: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(file, chunk, question) for each chunk whose reply holds a question; all calls failing is an error."""
    replies = llm.batch([DOC_QUESTION_PROMPT.format(domain=domain, source=Path(file).name, chunk=text)
                         for file, text in chunks], errors="return", progress="eval questions from documents",
                        max_tokens=min(llm.spec.params.max_tokens, QUESTION_TOKENS))
    if replies and all(reply.error for reply in replies):
        raise ModelError(f"the teacher ({llm.name}) failed on every chunk, e.g.: {replies[0].error}")
    return [(file, text, question) for (file, text), reply in zip(chunks, replies, strict=True)
            if not reply.error and (question := first_question(reply.text))]


def _answer_keys(llm: LLM, domain: str, posed: list[tuple[str, str, str]]) -> dict[str, Question]:
    """The questions whose answer key (shown the passage) parses with facts, by lower-cased text (no repeats)."""
    if not posed:
        return {}
    replies = llm.batch([DOC_GROUND_TRUTH_PROMPT.format(domain=domain, source=Path(file).name, chunk=text,
                                                        question=question) for file, text, question in posed],
                        errors="return", json_mode=True, progress="answer key",
                        max_tokens=max(llm.spec.params.max_tokens, GROUND_TRUTH_TOKENS))
    questions: dict[str, Question] = {}
    for (file, _, question), reply in zip(posed, replies, strict=True):
        truth = parse_ground_truth(reply.text) if not reply.error else None
        if truth and truth.get("facts") and question.lower() not in questions:
            questions[question.lower()] = Question(id=question_id(question), question=question, topic=file, **truth)
    return questions
