"""`underdog generate`: realistic questions per topic, each answered by a separate teacher call.

    manifest = generate(project, topics=None, questions_per_topic=6, name="base")

1. Per topic, one call asks for N questions from varied askers (persona x tone), parsed robustly; a topic that
   yields fewer than N usable questions gets one short call per missing question ("You are a retired veteran and
   you feel confused... write the one question you would ask"), which even a 135M teacher can answer.
2. Each question is answered by its own call with the answer prompt (`data.answer`: persona, length, structure,
   empathy). Malformed items, failed calls and empty answers are counted in the manifest, never fatal.
Resumable: finished work is checkpointed in the store per chunk and every reply is cached, so a killed run
continues where it stopped without repeating a paid call; the dataset version is written at the end.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from underdog.data.dataset import Example, Manifest, save_dataset
from underdog.data.dedup import normalize
from underdog.data.jobs import Checkpoint, check_new_name, fingerprint, provenance, run_checkpointed
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
    questions = _questions(llm, project.config.domain, topics, n, checkpoint, counts)
    examples = _answers(llm, project, questions, checkpoint, counts)
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


def _questions(llm: LLM, domain: str, topics: list[Topic], n: int, checkpoint: Checkpoint,
               counts: dict[str, Any]) -> list[tuple[Topic, str | None, str]]:
    """(topic, asker or None, question) for every topic: a list call per topic, single calls for a shortfall.

    A listed question's asker is unknown (the prompt names several); a single call's asker is recorded.
    """
    by_key = {t.key: t for t in topics}
    prompts = {f"q:{t.key}": render("questions", domain=domain, topic=t.name, n=n,
                                    askers="; ".join(f"{p} ({tone})" for p, tone in askers(t, n))) for t in topics}
    listed = run_checkpointed(llm, prompts, checkpoint, "questions", _handle_questions)
    found: dict[str, list[tuple[str | None, str]]] = {
        key[2:]: [(None, q) for q in list({normalize(q): q for q in result["questions"]}.values())[:n]]
        for key, result in listed.items()}
    single = {f"q1:{t.key}:{i}": render("question_single", asker=persona, tone=tone, topic=t.name, domain=domain)
              for t in topics for i, (persona, tone) in enumerate(askers(t, n)) if i >= len(found[t.key])}
    singles = run_checkpointed(llm, single, checkpoint, "single questions", _handle_single)
    for key, result in singles.items():
        topic_key, i = key[3:].rsplit(":", 1)
        known = {normalize(q) for _, q in found[topic_key]}
        if result["question"] and normalize(result["question"]) not in known:
            persona, tone = askers(by_key[topic_key], n)[int(i)]
            found[topic_key].append((f"{persona} ({tone})", result["question"]))
    results = [*listed.values(), *singles.values()]
    counts["question_calls"] = len(prompts) + len(single)
    counts["malformed_questions"] = sum(r["malformed"] for r in results)
    counts["failed_question_calls"] = sum(bool(r["error"]) for r in results)
    out = [(by_key[k], asker, q) for k, items in found.items() for asker, q in items]
    counts["questions"] = len(out)
    return out


def _handle_questions(key: str, reply: Reply) -> dict[str, Any]:
    questions, malformed = parse_questions(reply.text) if not reply.error else ([], 0)
    return {"questions": questions, "malformed": malformed, "error": reply.error}


def _handle_single(key: str, reply: Reply) -> dict[str, Any]:
    question = first_question(reply.text)
    return {"question": question, "malformed": int(question is None and not reply.error), "error": reply.error}


def _answers(llm: LLM, project: Project, questions: list[tuple[Topic, str | None, str]], checkpoint: Checkpoint,
             counts: dict[str, Any]) -> list[Example]:
    system = render("answer_system", domain=project.config.domain, **project.config.data.answer.model_dump())
    keys = [f"a:{t.key}:{normalize(q)}" for t, _, q in questions]
    prompts = {key: [{"role": "system", "content": system}, {"role": "user", "content": q}]
               for key, (_, _, q) in zip(keys, questions, strict=True)}
    answers = run_checkpointed(llm, prompts, checkpoint, "answers", _handle_answer)
    examples = []
    for (topic, asker, question), key in zip(questions, keys, strict=True):
        result = answers[key]
        if result["answer"]:
            meta = provenance(llm, "generate", topic=topic.name, category=topic.category, asker=asker,
                              finish_reason=result["finish_reason"], created=result["created"])
            examples.append(Example([{"role": "user", "content": question},
                                     {"role": "assistant", "content": result["answer"]}], meta))
    counts["failed_answer_calls"] = sum(bool(r["error"]) for r in answers.values())
    counts["empty_answers"] = sum(not r["answer"] and not r["error"] for r in answers.values())
    counts["truncated_answers"] = sum(r["finish_reason"] == "length" for r in answers.values())
    return examples


def _handle_answer(key: str, reply: Reply) -> dict[str, Any]:
    return {"answer": reply.text.strip(), "finish_reason": reply.finish_reason, "error": reply.error,
            "created": round(time.time(), 3)}
