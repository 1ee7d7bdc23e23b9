"""`underdog augment`: named slices to mix into a dataset version, one new version per combination.

    augment(project, "base", ["refusals"])              # -> "base+refusals"
    augment(project, "base", ["refusals", "spanish"])   # -> "base+refusals+spanish"

Slices (sizes in `data.augment`):
    refusals     off-domain, harmful-intent and others'-personal-data questions, answered with a polite redirect
    <language>   a share of the base examples translated (question and answer), e.g. `spanish`, `translation:de`
    locality     a share of the questions rewritten for a place (`data.augment.localities`) and answered anew
    summary      a share of the answers condensed into short summary-style answers
    <dataset>    another version mixed in as it is, e.g. `docs` from `underdog ingest` -> "base+docs"
The seed blog ran exactly these ablations (refusals helped; Spanish, locality and summaries did not). Each slice's
calls are cached, so `base+refusals` and `base+refusals+spanish` share their refusal examples.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from underdog.data.dataset import Example, Manifest, list_datasets, load_dataset, load_manifest, save_dataset
from underdog.data.jobs import Checkpoint, check_new_name, fingerprint, provenance, run_checkpointed
from underdog.data.parse import clean_text, is_question, parse_questions
from underdog.data.prompts import PROMPT_VERSION, REFUSAL_KINDS, render
from underdog.errors import UnderdogError
from underdog.llm import LLM
from underdog.llm.base import Reply
from underdog.project import Project

LANGUAGES = {"spanish", "french", "german", "portuguese", "chinese", "vietnamese", "tagalog", "arabic", "korean",
             "russian", "italian", "japanese", "hindi"}


def slice_label(spec: str, datasets: list[str] | tuple[str, ...] = ()) -> tuple[str, str | None]:
    """("refusals", None) / ("translation", "Spanish") / ("dataset", "docs") / ... for a slice name; raises for
    an unknown one. An existing dataset version's name mixes that version in as it is."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("refusals", "locality", "summary") and not arg:
        return kind, None
    if kind == "translation" and arg:
        return "translation", arg.strip().capitalize()
    if kind in LANGUAGES:
        return "translation", kind.capitalize()
    if spec in datasets:
        return "dataset", spec
    raise UnderdogError(f"unknown slice {spec!r} (known: refusals, locality, summary, a language such as "
                        f"spanish, translation:<language>, or a dataset version to mix in)")


def _slice_name(kind: str, arg: str | None) -> str:
    return arg if kind == "dataset" and arg else (arg or kind).lower()


def augment(project: Project, base: str, slices: list[str], name: str | None = None,
            teacher: str = "teacher", allow_failures: bool = False) -> Manifest:
    """A new version `name` (default `base+slice+...`): the base examples plus the chosen slices."""
    if not slices:
        raise UnderdogError("name at least one slice (refusals, spanish, locality, summary)")
    labels = [slice_label(s, list_datasets(project.root)) for s in slices]
    name = name or "+".join([base, *[_slice_name(kind, arg) for kind, arg in labels]])
    check_new_name(project.root, name)
    examples = load_dataset(project.root, base)
    llm = project.llm(teacher, stage="augment")
    cfg = project.config.data.augment
    mixed = [arg for kind, arg in labels if kind == "dataset" and arg]
    recipe = {"command": "augment", "base": base, "slices": slices, "teacher": llm.name,
              "prompt_version": PROMPT_VERSION, "settings": cfg.model_dump(), "seed": project.config.data.seed,
              "mixed_sha256": {m: load_manifest(project.root, m).sha256 for m in mixed}}
    work = _Work(project, llm, Checkpoint(project.store, f"augment:{name}:{fingerprint(recipe)}"), examples)
    counts: dict[str, Any] = {"base": len(examples)}
    added: list[Example] = []
    for kind, arg in labels:
        new = SLICES[kind](work, arg)
        counts[_slice_name(kind, arg)] = len(new)
        added += new
    counts["examples"] = len(examples) + len(added)
    counts["failed_calls"] = len(work.checkpoint.failures)
    work.checkpoint.raise_if_failed(allow_failures)
    manifest = save_dataset(project.root, name, examples + added, parent=[base, *mixed] if mixed else base,
                            recipe=recipe, counts=counts)
    work.checkpoint.clear()
    return manifest


class _Work:
    """What every slice needs: the project, teacher, checkpoint, base examples and a seeded sampler."""

    def __init__(self, project: Project, llm: LLM, checkpoint: Checkpoint, base: list[Example]):
        self.project, self.llm, self.checkpoint, self.base = project, llm, checkpoint, base
        self.domain = project.config.domain
        self.seed = project.config.data.seed

    def sample(self, share: float, salt: str) -> list[Example]:
        k = min(len(self.base), max(1, round(share * len(self.base)))) if share > 0 else 0
        return random.Random(f"{self.seed}:{salt}").sample(self.base, k)

    def run(self, prompts: dict[str, Any], label: str, handle: Callable[[str, Reply], Any]) -> dict[str, Any]:
        return run_checkpointed(self.llm, prompts, self.checkpoint, label, handle)

    def example(self, question: str, answer: str, slice_: str, **meta: Any) -> Example:
        return Example([{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                       provenance(self.llm, "augment", slice=slice_, **meta))


def _text(key: str, reply: Reply) -> str:
    return reply.text.strip() if not reply.error else ""


def _first_line(key: str, reply: Reply) -> str:
    lines = [clean_text(line) for line in reply.text.splitlines() if line.strip()] if not reply.error else []
    return lines[0] if lines else ""


def _question_list(key: str, reply: Reply) -> list[str]:
    return parse_questions(reply.text)[0] if not reply.error else []


def refusals(work: _Work, _: str | None) -> list[Example]:
    total = work.project.config.data.augment.refusals
    kinds = list(REFUSAL_KINDS)[:total]
    per_kind = math.ceil(total / len(kinds)) if kinds else 0
    prompts = {f"refusal-q:{kind}": render("refusal_questions", domain=work.domain, n=per_kind,
                                           kind=REFUSAL_KINDS[kind]) for kind in kinds}
    lists = work.run(prompts, "refusal questions", _question_list)
    questions = [(kind, q) for kind in kinds for q in lists[f"refusal-q:{kind}"][:per_kind]][:total]
    answers = work.run({f"refusal-a:{kind}:{q}": [
        {"role": "system", "content": render("refusal_answer_system", domain=work.domain, kind=REFUSAL_KINDS[kind])},
        {"role": "user", "content": q}] for kind, q in questions}, "refusal answers", _text)
    return [work.example(q, answers[f"refusal-a:{kind}:{q}"], "refusals", refusal_kind=kind)
            for kind, q in questions if answers[f"refusal-a:{kind}:{q}"]]


def translation(work: _Work, language: str | None) -> list[Example]:
    picked = work.sample(work.project.config.data.augment.translation_share, f"translation:{language}")
    prompts = {f"tr:{language}:{e.id}:{part}": render("translate", language=language, text=text)
               for e in picked for part, text in (("q", e.question), ("a", e.answer))}
    done = work.run(prompts, f"{language} translations", _text)
    out = []
    for e in picked:
        question, answer = done[f"tr:{language}:{e.id}:q"], done[f"tr:{language}:{e.id}:a"]
        if question and answer:
            out.append(work.example(question, answer, language.lower(), language=language, translated_from=e.id,
                                    topic=e.meta.get("topic")))
    return out


def locality(work: _Work, _: str | None) -> list[Example]:
    cfg = work.project.config.data.augment
    if not cfg.localities:
        return []
    picked = work.sample(cfg.locality_share, "locality")
    places = {e.id: cfg.localities[i % len(cfg.localities)] for i, e in enumerate(picked)}
    rewritten = work.run({f"loc-q:{e.id}": render("locality", locality=places[e.id], question=e.question)
                          for e in picked}, "locality questions", _first_line)
    questions = {e.id: q for e in picked if is_question(q := rewritten[f"loc-q:{e.id}"])}
    system = render("answer_system", domain=work.domain, **work.project.config.data.answer.model_dump())
    answers = work.run({f"loc-a:{i}": [{"role": "system", "content": system}, {"role": "user", "content": q}]
                        for i, q in questions.items()}, "locality answers", _text)
    return [work.example(q, answers[f"loc-a:{i}"], "locality", locality=places[i], variant_of=i)
            for i, q in questions.items() if answers[f"loc-a:{i}"]]


def summary(work: _Work, _: str | None) -> list[Example]:
    picked = work.sample(work.project.config.data.augment.summary_share, "summary")
    done = work.run({f"sum:{e.id}": render("summary", question=e.question, answer=e.answer) for e in picked},
                    "summaries", _text)
    return [work.example(f"In short: {e.question}", done[f"sum:{e.id}"], "summary", summary_of=e.id,
                         topic=e.meta.get("topic")) for e in picked if done[f"sum:{e.id}"]]


def mixed_dataset(work: _Work, name: str | None) -> list[Example]:
    """Another version's examples as they are (e.g. ingested documents), labelled with its name."""
    return [Example(e.messages, {**e.meta, "slice": name}, e.id) for e in load_dataset(work.project.root, str(name))]


SLICES: dict[str, Callable[[_Work, str | None], list[Example]]] = {
    "refusals": refusals, "translation": translation, "locality": locality, "summary": summary,
    "dataset": mixed_dataset,
}
