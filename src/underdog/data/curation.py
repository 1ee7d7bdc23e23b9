"""`underdog curate`: clean a dataset version into a new one, reporting what was removed and why.

    manifest, report = curate(project, "base")       # -> "base-curated"; report["removed"] = {reason: count}

Steps, in order (cheap before paid):
1. format hygiene: strip leading "### ANSWER" / "### RESPONSE" / "Answer:" headers (fixed, counted); drop
   "As an AI language model" answers, empty or truncated answers (finish_reason "length" or a dangling ending),
   and answers outside `data.curate` min/max length;
2. exact duplicates (normalized question + answer), then near-duplicate questions within a slice (MinHash LSH,
   `near_dup_threshold`);
3. decontamination: drop every example whose question nearly repeats a question of any eval set
   (`evalsets/*/questions.jsonl`, `decontam_threshold`);
4. the semantic pass (`semantic`, on by default): the same two checks by meaning, for paraphrases that share few
   words: cosine similarity of all-MiniLM-L6-v2 embeddings of the questions left, within a slice
   (`semantic_dup_threshold`) and against the eval questions (`semantic_decontam_threshold`);
5. LLM quality rating (rubric 1-10: accuracy 0-3, relevance 0-2, clarity 0-2, usefulness 0-3), keeping ratings
   >= `rating_threshold`. An unparseable rating is retried (a fresh sample); a local rater then picks its most
   likely total among "1".."10" by log-probability (counted as `rating_from_logprobs`); an API rater's rating that
   is still unparseable is dropped and counted: never silently passed.
The full report is saved as `datasets/<name>/curation.json`: counts, up to 3 examples per reason, and under
"matches" every duplicate or contamination drop with the example or eval question it matched and the similarity
(Jaccard of content-word stems for the MinHash passes, cosine for the semantic pass). Every decision, one line per
input example (kept, or the reason it was dropped and the example or eval question it matched), is saved as
`datasets/<name>/decisions.jsonl` (what the studio shows, so the filters can be checked).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from underdog.data.dataset import Example, Manifest, load_dataset, save_dataset
from underdog.data.dedup import NearDupIndex, features, jaccard, near_duplicates, normalize
from underdog.data.jobs import check_new_name
from underdog.data.parse import parse_rating
from underdog.data.prompts import PROMPT_VERSION, render
from underdog.data.semantic import closest, semantic_duplicates
from underdog.errors import UnderdogError
from underdog.layout import QUESTIONS_FILE
from underdog.llm import LLM
from underdog.llm.embeddings import encode
from underdog.progress import SILENT, Reporter
from underdog.project import Project

REPORT_FILE = "curation.json"
DECISIONS_FILE = "decisions.jsonl"  # {"id", "question", "decision": "kept" | a reason, "detail", "matched"} per line
HEADER = re.compile(r"^\s*(?:#{1,6}\s*(?:answer|response|assistant)\b\s*:?|\**(?:answer|response)\**\s*:)\s*", re.I)
AI_DISCLAIMER = re.compile(r"\bas an ai(?: language model)?\b|\bI am an AI\b|\bI'm an AI\b", re.I)
DANGLING = re.compile(r"(?:[,;:(\-]|\b(?:and|or|the|a|an|to|of|with|for|your|is))\s*$", re.I)


class Report:
    """What curation removed and fixed, with a few examples of each, and what each duplicate matched."""

    def __init__(self, total: int):
        self.total = total
        self.removed: Counter[str] = Counter()
        self.fixed: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = defaultdict(list)
        self.decisions: list[dict[str, Any]] = []
        self.matches: list[dict[str, Any]] = []

    def drop(self, reason: str, example: Example, note: str = "", matched: str | None = None) -> None:
        """Count a dropped example; `matched`: the example id or `evalset/question id` it repeats."""
        self.removed[reason] += 1
        if len(self.samples[reason]) < 3:
            self.samples[reason].append(f"{example.question[:120]!r}" + (f" ({note})" if note else ""))
        self.decisions.append(_decision(example, reason, note, matched))

    def write_decisions(self, kept: list[Example], path: Path) -> None:
        """Every decision, the dropped examples' then the kept ones', one JSON object per line."""
        rows = self.decisions + [_decision(e, "kept", f"rated {e.meta['rating']:g}" if "rating" in e.meta else "")
                                 for e in kept]
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")

    def drop_match(self, reason: str, example: Example, matched: str, matched_question: str, similarity: float,
                   measure: str, matched_id: str | None = None) -> None:
        """Drop `example` as a repeat of `matched` ("example" (its id: `matched_id`), or "<evalset>/<id>") at
        `similarity`."""
        where = "" if matched == "example" else f"{matched}: "
        self.drop(reason, example, f"~ {where}{matched_question[:80]!r}, {measure} {similarity:.2f}",
                  matched=matched_id if matched == "example" else matched)
        self.matches.append({"reason": reason, "question": example.question, "matched": matched,
                             "matched_question": matched_question, "similarity": round(similarity, 4),
                             "measure": measure})

    def to_json(self, kept: int) -> dict[str, Any]:
        return {"input": self.total, "kept": kept, "removed": dict(self.removed), "fixed": dict(self.fixed),
                "examples": dict(self.samples), "matches": self.matches}


def curate(project: Project, dataset: str, name: str | None = None, *, rate: bool | None = None,
           threshold: float | None = None, near_dup_threshold: float | None = None,
           decontam_threshold: float | None = None, semantic: bool | None = None,
           semantic_dup_threshold: float | None = None, semantic_decontam_threshold: float | None = None,
           evalsets: list[str] | None = None, rater: str = "teacher") -> tuple[Manifest, dict[str, Any]]:
    """Curate dataset version `dataset` into `name` (default `<dataset>-curated`); return (manifest, report).
    A keyword left None takes its `data.curate` setting."""
    cfg = project.config.data.curate
    name = name or f"{dataset}-curated"
    check_new_name(project.root, name)
    chosen = {"rate": rate, "threshold": threshold, "near_dup_threshold": near_dup_threshold,
              "decontam_threshold": decontam_threshold, "semantic": semantic,
              "semantic_dup_threshold": semantic_dup_threshold,
              "semantic_decontam_threshold": semantic_decontam_threshold}
    defaults = {**cfg.model_dump(exclude={"rating_threshold", "rating_retries"}), "threshold": cfg.rating_threshold}
    settings = defaults | {key: value for key, value in chosen.items() if value is not None}
    settings["rater"] = project.model_spec(rater).model if settings["rate"] else None
    examples = load_dataset(project.root, dataset)
    report = Report(len(examples))
    kept = hygiene(examples, report, settings["min_answer_chars"], settings["max_answer_chars"])
    kept = deduplicate(kept, report, settings["near_dup_threshold"])
    eval_questions = read_eval_questions(project.evalsets_dir, evalsets)
    kept = decontaminate(kept, eval_questions, report, settings["decontam_threshold"])
    if settings["semantic"]:
        kept = semantic_pass(kept, eval_questions, report, settings["semantic_dup_threshold"],
                             settings["semantic_decontam_threshold"], project.reporter)
    if settings["rate"]:
        kept = rate_examples(project, kept, report, settings["threshold"], rater, cfg.rating_retries)
    result = report.to_json(len(kept))
    recipe = {"command": "curate", "base": dataset, "prompt_version": PROMPT_VERSION, **settings,
              "evalsets": sorted({e["evalset"] for e in eval_questions})}
    counts = {k: result[k] for k in ("input", "kept", "removed", "fixed")}
    manifest = save_dataset(project.root, name, kept, parent=dataset, recipe=recipe, counts=counts)
    (project.dataset_dir(name) / REPORT_FILE).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    report.write_decisions(kept, project.dataset_dir(name) / DECISIONS_FILE)
    return manifest, result


def _decision(example: Example, decision: str, detail: str, matched: str | None = None) -> dict[str, Any]:
    return {"id": example.id, "question": example.question, "decision": decision, "detail": detail,
            "matched": matched}


def hygiene(examples: list[Example], report: Report, min_chars: int, max_chars: int) -> list[Example]:
    """Strip leading headers; drop AI disclaimers, empty, truncated and out-of-bounds answers."""
    kept = []
    for example in examples:
        answer = example.answer
        stripped = answer
        while HEADER.match(stripped):
            stripped = HEADER.sub("", stripped, count=1).lstrip()
        if stripped != answer:
            report.fixed["leading_header"] += 1
            messages = [dict(m) for m in example.messages]
            messages[max(i for i, m in enumerate(messages) if m["role"] == "assistant")]["content"] = stripped
            example = Example(messages, example.meta)
        reason = _hygiene_problem(example, min_chars, max_chars)
        if reason:
            report.drop(reason, example)
        else:
            kept.append(example)
    return kept


def _hygiene_problem(example: Example, min_chars: int, max_chars: int) -> str | None:
    answer = example.answer.strip()
    if not answer or not example.question.strip():
        return "empty"
    if AI_DISCLAIMER.search(answer):
        return "ai_disclaimer"
    if example.meta.get("finish_reason") == "length" or DANGLING.search(answer):
        return "truncated"
    if len(answer) < min_chars:
        return "too_short"
    if len(answer) > max_chars:
        return "too_long"
    return None


def deduplicate(examples: list[Example], report: Report, threshold: float) -> list[Example]:
    """Drop exact duplicates, then near-duplicate questions within each slice (the first one stays)."""
    seen: dict[str, str] = {}  # normalized question + answer -> the id of its first example
    unique = []
    for example in examples:
        key = normalize(example.question) + "\x00" + normalize(example.answer)
        if key in seen:
            report.drop("exact_duplicate", example, matched=seen[key])
        else:
            seen[key] = example.id
            unique.append(example)
    dropped = set()
    for members in by_slice(unique):
        matches = near_duplicates([unique[i].question for i in members], threshold)
        for i, match in zip(members, matches, strict=True):
            if match is not None:
                dropped.add(i)
                first = unique[members[match]]
                similarity = jaccard(features(unique[i].question), features(first.question))
                report.drop_match("near_duplicate", unique[i], "example", first.question, similarity, "jaccard",
                                  matched_id=first.id)
    return [e for i, e in enumerate(unique) if i not in dropped]


def by_slice(examples: list[Example]) -> list[list[int]]:
    """The positions of the examples of each slice (duplicates are looked for within a slice only)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[str(example.meta.get("slice", "base"))].append(i)
    return list(groups.values())


def read_eval_questions(evalsets_dir: Path, names: list[str] | None = None) -> list[dict[str, str]]:
    """Every question of the named (default: all) eval sets, as {"evalset", "id", "question"}."""
    paths = [evalsets_dir / n / QUESTIONS_FILE for n in names] if names else \
        sorted(evalsets_dir.glob(f"*/{QUESTIONS_FILE}"))
    questions = []
    for path in paths:
        if not path.exists():
            raise UnderdogError(f"{path}: eval set not found")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                questions.append({"evalset": path.parent.name, "id": str(record.get("id", number)),
                                  "question": str(record["question"])})
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise UnderdogError(f"{path}:{number}: malformed eval question") from None
    return questions


def decontaminate(examples: list[Example], eval_questions: list[dict[str, str]], report: Report,
                  threshold: float) -> list[Example]:
    """Drop every example whose question is a near-duplicate of an eval question."""
    if not eval_questions:
        return examples
    index = NearDupIndex(threshold)
    for i, q in enumerate(eval_questions):
        index.add(str(i), q["question"])
    kept = []
    for example in examples:
        found = index.matches(example.question)
        if found:
            q = eval_questions[int(found[0][0])]
            report.drop_match("eval_contamination", example, f"{q['evalset']}/{q['id']}", q["question"], found[0][1],
                              "jaccard")
        else:
            kept.append(example)
    return kept


def semantic_pass(examples: list[Example], eval_questions: list[dict[str, str]], report: Report,
                  dup_threshold: float, decontam_threshold: float, reporter: Reporter = SILENT) -> list[Example]:
    """Drop questions that repeat an earlier kept one of their slice, or an eval question, in other words
    (cosine similarity of their embeddings at or above the thresholds)."""
    if not examples:
        return examples
    texts = [e.question for e in examples] + [q["question"] for q in eval_questions]
    with reporter.task("embedding questions", len(texts)) as task:
        vectors = encode(texts, fast=True, progress=task.advance)
    own, targets = vectors[:len(examples)], vectors[len(examples):]
    dropped = set()
    for members in by_slice(examples):
        for i, match in zip(members, semantic_duplicates(own[members], dup_threshold), strict=True):
            if match is not None:
                dropped.add(i)
                original = examples[members[match[0]]]
                report.drop_match("semantic_duplicate", examples[i], "example", original.question, match[1], "cosine",
                                  matched_id=original.id)
    survivors = [i for i in range(len(examples)) if i not in dropped]
    kept = []
    for i, match in zip(survivors, closest(own[survivors], targets, decontam_threshold), strict=True):
        if match is None:
            kept.append(examples[i])
        else:
            q = eval_questions[match[0]]
            report.drop_match("semantic_contamination", examples[i], f"{q['evalset']}/{q['id']}", q["question"],
                              match[1], "cosine")
    return kept


def rate_examples(project: Project, examples: list[Example], report: Report, threshold: float, rater: str,
                  retries: int) -> list[Example]:
    """Rate with the rubric; keep ratings >= threshold; retry then drop unparseable ratings."""
    llm = project.llm(rater, stage="curate")
    prompts = [render("rating", domain=project.config.domain, question=e.question, answer=e.answer)
               for e in examples]
    ratings: list[float | None] = [None] * len(examples)
    for attempt in range(retries + 1):
        todo = [i for i, r in enumerate(ratings) if r is None]
        if not todo:
            break
        replies = llm.batch([prompts[i] for i in todo], errors="return", samples=[attempt] * len(todo),
                            progress="ratings" if attempt == 0 else f"ratings (retry {attempt})",
                            seed=(llm.spec.params.seed or 0) + attempt)
        for i, reply in zip(todo, replies, strict=True):
            ratings[i] = parse_rating(reply.text) if not reply.error else None
    if llm.backend.can_score:
        _rate_by_logprobs(llm, prompts, ratings, report)
    kept = []
    for example, rating in zip(examples, ratings, strict=True):
        if rating is None:
            report.drop("rating_unparseable", example)
        elif rating < threshold:
            report.drop("low_rating", example, f"rated {rating:g}")
        else:
            kept.append(Example(example.messages, {**example.meta, "rating": rating}))
    return kept


def _rate_by_logprobs(llm: LLM, prompts: list[str], ratings: list[float | None], report: Report) -> None:
    """A local rater whose text stayed unparseable picks its most likely total among "1".."10" instead."""
    options = [str(n) for n in range(1, 11)]
    todo = [i for i, rating in enumerate(ratings) if rating is None]
    asks = [prompts[i] + "\nAnswer with the total only: one number, 1-10." for i in todo]
    for i, scores in zip(todo, llm.score(asks, options) if todo else [], strict=True):
        ratings[i] = float(options[scores.index(max(scores))])
        report.fixed["rating_from_logprobs"] += 1
