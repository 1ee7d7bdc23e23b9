"""Efficacy: fine-tuning the embedded SmolLM2-135M on a few invented facts makes it state them on held-out
phrasings, which the base model cannot. Real transformers + peft, the project's own train and answer paths.

This is the test that notices when training stops working: break adapter loading (answer without the adapter),
the chat template (train with a different one than inference: the facts may still come out, but the answer no
longer ends where the template ends a turn) or the loss mask (no loss on the answer) and it fails
(docs/evaluation.md gives what each did to it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from underdog import data
from underdog.evaluate.answer import answer
from underdog.evaluate.evalset import import_evalset, load_evalset
from underdog.evaluate.judges.facts import coverage
from underdog.pipeline import pack_path
from underdog.project import Project

FACTS = 4  # the pack's first facts: 4 training phrasings each, the held-out 5th asked
RECIPE = {"epoch": 8, "learning_rate": 2e-3, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
          "per_device_train_batch_size": 4, "validation_split_ratio": 0, "max_input_length": 128,
          "save_steps": 1000}  # target_modules: the default, all 7 projections
MAX_TOKENS = 32  # the teacher's answers are one sentence: a tuned model stops (end of turn) well before this




def few_facts(project: Project, tmp: Path) -> None:
    """The first FACTS facts of the demo pack: a training set and an eval set of their held-out phrasings."""
    lines = pack_path("qa.jsonl").read_text().splitlines()  # 5 phrasings a fact: 4 handbook-style, 1 a resident's
    rows = [line for i, line in enumerate(lines) if i % 5 < 4][: 4 * FACTS]  # the 4 handbook-style ones
    held_out = pack_path("eval.jsonl").read_text().splitlines()[:FACTS]
    (tmp / "train.jsonl").write_text("\n".join(rows) + "\n")
    (tmp / "eval.jsonl").write_text("\n".join(held_out) + "\n")
    data.import_dataset(project, tmp / "train.jsonl", "facts")
    import_evalset(project, tmp / "eval.jsonl", "held-out")


def recall(project: Project, candidate: str) -> tuple[float, list[str], list[int]]:
    """(mean fact coverage, answers, their lengths in tokens) of `candidate` on the held-out questions, greedy."""
    questions = {q.id: q for q in load_evalset(project, "held-out")}
    answers = answer(project, candidate, "held-out", progress=False, temperature=0.0, max_tokens=MAX_TOKENS)
    assert not any(a.error for a in answers), answers
    return (sum(coverage(a.answer, questions[a.question_id].facts or []) for a in answers) / len(answers),
            [a.answer for a in answers], [a.output_tokens for a in answers])


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_training_teaches_invented_facts(project_dir: Path, tmp_path: Path) -> None:
    from underdog.train import train

    project = Project(project_dir)
    few_facts(project, tmp_path)
    run = train(project, "facts", RECIPE, run_id="facts")
    assert run.status == "done"
    base, base_answers, _ = recall(project, "student")
    tuned, tuned_answers, tuned_tokens = recall(project, "facts")
    numbers = json.dumps({"base_recall": base, "tuned_recall": tuned, "train_loss": run.metrics.get("train_loss"),
                          "tuned_tokens": tuned_tokens, "tuned": tuned_answers, "base": base_answers}, indent=1)
    print(numbers)  # shown with -s; the numbers of a healthy run, to compare with a broken one
    assert base <= 0.25, numbers  # the facts are invented: the base model cannot state them
    assert tuned >= 0.5 and tuned >= base + 0.5, numbers
    assert sum(t != b for t, b in zip(tuned_answers, base_answers, strict=True)) >= FACTS - 1, numbers
    # it learnt the answer's end too: the end-of-turn token that the chat template puts after each answer
    assert all(n < MAX_TOKENS for n in tuned_tokens), numbers
