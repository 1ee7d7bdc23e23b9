"""`underdog generate`: realistic questions per topic, each answered by a separate teacher call.

    manifest = generate(project, topics=None, questions_per_topic=6, name="base")

1. Per topic, one call asks for N questions from varied askers (persona x tone), parsed robustly; a topic that
   yields fewer than N usable questions gets one short call per missing question ("You are a retired veteran and
   you feel confused... write the one question you would ask"), which even a 135M teacher can answer.
2. Each question is answered by its own call with the answer prompt (`data.answer`: persona, length, structure,
   empathy). Malformed items, failed calls and empty answers are counted in the manifest, never fatal.
The two steps are pipelined: a topic's questions are answered as soon as its list call returns, while other
topics' calls are still running, all through the teacher's one concurrency limit.
Resumable: finished work is checkpointed in the store per chunk and every reply is cached, so a killed run
continues where it stopped without repeating a paid call; the dataset version is written at the end.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

from underdog.data.dataset import Example, Manifest, save_dataset
from underdog.data.dedup import normalize
from underdog.data.jobs import Checkpoint, Stream, check_new_name, fingerprint, gather_all, provenance
from underdog.data.parse import first_question, parse_questions
from underdog.data.prompts import PERSONAS, PROMPT_VERSION, TONES, render
from underdog.data.topics import YOUR_TOPICS, Topic, load_topics
from underdog.errors import UnderdogError
from underdog.llm import LLM
from underdog.llm.base import Reply
from underdog.project import Project


def generate(project: Project, topics: list[Topic] | list[str] | None = None, questions_per_topic: int | None = None,
             name: str = "base", teacher: str = "teacher", allow_failures: bool = False) -> Manifest:
    """Generate questions and answers for every topic (default: topics.yaml) into dataset version `name`.

    A call that fails for good stops the command before the dataset is written (finished work is kept; run
    again to retry), unless `allow_failures` writes the dataset without those items.
    """
    check_new_name(project.root, name)
    topics = [t if isinstance(t, Topic) else Topic(YOUR_TOPICS, t) for t in (topics or load_topics(project))]
    n = questions_per_topic or project.config.data.questions_per_topic
    llm = project.llm(teacher, stage="generate")
    recipe = {"command": "generate", "teacher": llm.name, "prompt_version": PROMPT_VERSION,
              "questions_per_topic": n, "topics": [t.key for t in topics],
              "answer": project.config.data.answer.model_dump(), "params": llm.spec.params.model_dump()}
    checkpoint = Checkpoint(project.store, f"generate:{name}:{fingerprint(recipe)}")
    counts: dict[str, Any] = {"topics": len(topics)}
    stream = Stream(llm, checkpoint, "questions and answers", total=len(topics) * (n + 1))
    work = _Work(stream, project.config.domain, n, render("answer_system", domain=project.config.domain,
                                                             **project.config.data.answer.model_dump()))
    per_topic = stream.run(gather_all(work.topic(t) for t in topics))
    examples = _examples(llm, per_topic, counts)
    counts["examples"] = len(examples)
    checkpoint.raise_if_failed(allow_failures)
    if not examples:
        raise UnderdogError(f"the teacher produced no usable examples ({counts}); finished calls are cached")
    manifest = save_dataset(project.root, name, examples, recipe=recipe, counts=counts)
    checkpoint.clear()
    return manifest


def askers(topic: Topic, n: int) -> list[tuple[str, str]]:
    """N varied (persona, tone) askers for a topic, stable across runs."""
    h = zlib.crc32(topic.key.encode())
    return [(PERSONAS[(h + i) % len(PERSONAS)], TONES[(h // 7 + i) % len(TONES)]) for i in range(n)]


class _Work:
    """One topic's calls: its question list, single questions for a shortfall, and an answer per question."""

    def __init__(self, stream: Stream, domain: str, n: int, system: str):
        self.stream, self.domain, self.n, self.system = stream, domain, n, system

    async def topic(self, topic: Topic) -> dict[str, Any]:
        """{"found": [(asker, question)], "answers": [result], "results": [question call results]}.

        A listed question's asker is unknown (the prompt names several); a single call's asker is recorded.
        """
        n, who = self.n, askers(topic, self.n)
        listed = await self.stream.ask(f"q:{topic.key}", render(
            "questions", domain=self.domain, topic=topic.name, n=n, askers="; ".join(f"{p} ({t})" for p, t in who)),
            _handle_questions)
        found = [(None, q) for q in list({normalize(q): q for q in listed["questions"]}.values())[:n]]
        answering = [asyncio.ensure_future(self._answer(topic, q)) for _, q in found]
        self.stream.expect(n - len(found))  # single-question calls beyond the n + 1 calls expected per topic
        try:
            singles = await gather_all(self.stream.ask(f"q1:{topic.key}:{i}", render(
                "question_single", asker=persona, tone=tone, topic=topic.name, domain=self.domain), _handle_single)
                for i, (persona, tone) in enumerate(who) if i >= len(found))
        except BaseException:
            await asyncio.gather(*answering, return_exceptions=True)  # no answer call left behind unawaited
            raise
        for i, result in enumerate(singles, len(found)):
            known = {normalize(q) for _, q in found}
            if result["question"] and normalize(result["question"]) not in known:
                found.append((f"{who[i][0]} ({who[i][1]})", result["question"]))
                answering.append(asyncio.ensure_future(self._answer(topic, result["question"])))
        return {"topic": topic, "found": found, "answers": await gather_all(answering),
                "results": [listed, *singles]}

    async def _answer(self, topic: Topic, question: str) -> dict[str, Any]:
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": question}]
        return await self.stream.ask(f"a:{topic.key}:{normalize(question)}", messages, _handle_answer)


def _handle_questions(key: str, reply: Reply) -> dict[str, Any]:
    questions, malformed = parse_questions(reply.text) if not reply.error else ([], 0)
    return {"questions": questions, "malformed": malformed, "error": reply.error}


def _handle_single(key: str, reply: Reply) -> dict[str, Any]:
    question = first_question(reply.text)
    return {"question": question, "malformed": int(question is None and not reply.error), "error": reply.error}


def _examples(llm: LLM, per_topic: list[dict[str, Any]], counts: dict[str, Any]) -> list[Example]:
    """The examples of every answered question, in topic order, and the manifest's counts."""
    questions = [r for work in per_topic for r in work["results"]]
    answers = [a for work in per_topic for a in work["answers"]]
    counts["question_calls"] = len(questions)
    counts["malformed_questions"] = sum(r["malformed"] for r in questions)
    counts["failed_question_calls"] = sum(bool(r["error"]) for r in questions)
    counts["questions"] = len(answers)
    examples = []
    for work in per_topic:
        for (asker, question), result in zip(work["found"], work["answers"], strict=True):
            if result["answer"]:
                topic = work["topic"]
                meta = provenance(llm, "generate", topic=topic.name, category=topic.category, asker=asker,
                                  finish_reason=result["finish_reason"], created=result["created"])
                examples.append(Example([{"role": "user", "content": question},
                                         {"role": "assistant", "content": result["answer"]}], meta))
    counts["failed_answer_calls"] = sum(bool(r["error"]) for r in answers)
    counts["empty_answers"] = sum(not r["answer"] and not r["error"] for r in answers)
    counts["truncated_answers"] = sum(r["finish_reason"] == "length" for r in answers)
    return examples


def _handle_answer(key: str, reply: Reply) -> dict[str, Any]:
    return {"answer": reply.text.strip(), "finish_reason": reply.finish_reason, "error": reply.error,
            "created": round(time.time(), 3)}
