"""`underdog demo`: the whole job, offline, on the embedded SmolLM2-135M-Instruct, in a few minutes on a laptop.

    underdog demo                 # ./demo-project: topics -> eval set -> generate -> curate -> export
                                  #   -> train (two LoRA configs) -> answer -> judge -> leaderboard + report
    underdog demo --quick         # the same at the smallest sizes (what CI runs)

Every role is the embedded model, so the "reference to beat" is the base model itself: the point is the loop,
not the scores. Sizes are set through config overrides (printed at the start), so the demo project's
underdog.yaml stays the commented default. Steps whose artifact exists are skipped, so a re-run resumes.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from underdog.evaluate.evalset import generate_evalset, list_evalsets
from underdog.evaluate.judge import JudgeResult, judge
from underdog.evaluate.leaderboard import leaderboard, recommend
from underdog.project import Project, init_project

DOMAIN = "US state and local government services: permits, licensing, DMV, property, public health"
TOPICS = ["food truck permits", "driver's license renewal", "property tax appeals", "restaurant health inspections"]
EVALSET = "demo"
DATASET = "demo-base"
MIN_EXAMPLES = 4  # a tiny teacher's data may not survive curation


@dataclass(frozen=True)
class DemoSize:
    """How big each step is."""

    topics: int
    questions_per_topic: int
    evalset_size: int
    teacher_max_tokens: int
    answer_max_tokens: int
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> train overrides


FULL = DemoSize(topics=4, questions_per_topic=6, evalset_size=8, teacher_max_tokens=96, answer_max_tokens=64, runs={
    "demo-r4": {"epoch": 2, "lora_r": 4, "lora_alpha": 8, "learning_rate": 2e-4},
    "demo-r16": {"epoch": 2, "lora_r": 16, "lora_alpha": 32, "learning_rate": 5e-4},
})
QUICK = DemoSize(topics=2, questions_per_topic=2, evalset_size=3, teacher_max_tokens=48, answer_max_tokens=16, runs={
    "demo-r4": {"epoch": 1, "lora_r": 4, "lora_alpha": 8, "max_steps": 1},
    "demo-r16": {"epoch": 1, "lora_r": 16, "lora_alpha": 32, "max_steps": 1, "learning_rate": 5e-4},
})
TRAIN_COMMON = {"per_device_train_batch_size": 4, "validation_split_ratio": 0.25, "evals_per_epoch": 1,
                "max_input_length": 256, "save_steps": 1000}


def overrides(size: DemoSize) -> list[str]:
    """The config changes the demo runs with (also printed, so the run can be reproduced by hand)."""
    topics = json.dumps(TOPICS[: size.topics])
    return [f"data.topics={topics}", f"data.num_topics={size.topics}", "data.topic_rounds=1",
            f"data.questions_per_topic={size.questions_per_topic}", "data.curate.rate=false",
            "data.answer.length=two or three short sentences",
            f"models.teacher.params.max_tokens={size.teacher_max_tokens}",
            f"evaluate.evalset_size={size.evalset_size}", f"evaluate.answer_max_tokens={size.answer_max_tokens}",
            f"evaluate.evalset={EVALSET}"]


def run_demo(directory: Path, quick: bool = False, console: Console | None = None) -> dict[str, Path]:
    """Run every stage in `directory` (created if needed); return the report's paths."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load is noise here
    console = console or Console()
    size = QUICK if quick else FULL
    if not (directory / "underdog.yaml").exists():
        init_project(DOMAIN, directory)
    project = Project(directory, overrides=overrides(size))
    console.print(f"[bold]underdog demo[/] in {project.root} ({'quick' if quick else 'full'} size), offline: every "
                  "role is the embedded smollm2-135m, so the reference to beat is the base model itself.\nSettings: "
                  + escape(" ".join(f"--set {shlex.quote(o)}" for o in project.overrides)), highlight=False)
    started = time.perf_counter()
    step = _stepper(console, started)
    say = console.print
    step("topics", lambda: _topics(project, say))
    step("eval set (held out before any training data exists)", lambda: _evalset(project, say))
    dataset = step("generate + curate + export", lambda: _data(project, say))
    runs = step("train", lambda: _train(project, dataset, size, say))
    results = step("answer + judge against the reference", lambda: _judge_all(project, ["student", *runs]))
    paths = step("leaderboard + report", lambda: _report(project))
    for r in results:
        console.print(f"  {r.candidate}: win rate {100 * r.win_rate:.1f}% (95% CI {100 * r.ci[0]:.1f}-"
                      f"{100 * r.ci[1]:.1f}%) over {r.n} questions, {r.ties} ties, position consistency "
                      f"{100 * r.consistency:.0f}%", highlight=False)
    best = recommend(leaderboard(project))
    console.print(f"recommended run: {best.name if best else 'none (every run is flagged or failed)'}")
    console.print(f"[bold green]done in {time.perf_counter() - started:.0f} s.[/] Report: {paths['html']}")
    return paths


def _stepper(console: Console, started: float) -> Callable[[str, Callable[[], Any]], Any]:
    def step(title: str, fn: Callable[[], Any]) -> Any:
        console.rule(f"{title}  [dim](+{time.perf_counter() - started:.0f} s)[/]")
        return fn()

    return step


def _topics(project: Project, say: Callable[..., None]) -> None:
    from underdog import data

    if not (project.root / "topics.yaml").exists():
        data.expand_topics(project, size=project.config.data.num_topics)
    say(f"  {len(data.load_topics(project))} topics in topics.yaml")


def _evalset(project: Project, say: Callable[..., None]) -> None:
    if EVALSET not in list_evalsets(project):
        generate_evalset(project, EVALSET)
    say(f"  evalsets/{EVALSET}/questions.jsonl")


def _data(project: Project, say: Callable[..., None]) -> str:
    from underdog import data

    curated = f"{DATASET}-curated"
    if DATASET not in data.list_datasets(project.root):
        data.generate(project, name=DATASET)
    if curated not in data.list_datasets(project.root):
        data.curate(project, DATASET, curated)
    base, kept = data.load_manifest(project.root, DATASET), data.load_manifest(project.root, curated)
    say(f"  generated {base.count} examples, kept {kept.count} after curation (removed: {kept.counts.get('removed')})")
    paths = data.export_dataset(project, curated, "jumpstart")
    say(f"  exported for SageMaker JumpStart: {paths[0].parent}")
    if kept.count >= MIN_EXAMPLES:
        return curated
    say(f"  fewer than {MIN_EXAMPLES} examples survived curation: training on {DATASET} instead")
    return DATASET


def _train(project: Project, dataset: str, size: DemoSize, say: Callable[..., None]) -> list[str]:
    from underdog.errors import UnderdogError
    from underdog.train import train

    done = []
    for run_id, settings in size.runs.items():
        try:
            manifest = train(project, dataset, {**TRAIN_COMMON, **settings}, run_id=run_id)
        except UnderdogError as exc:
            say(f"  {run_id}: {exc}")
            continue
        say(f"  {run_id}: train loss {_loss(manifest.metrics.get('train_loss'))}, eval loss "
            f"{_loss(manifest.metrics.get('eval_loss'))}, "
            f"{'OVERFIT' if manifest.overfit.get('flag') else 'not overfit'}")
        done.append(run_id)
    return done


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _judge_all(project: Project, candidates: list[str]) -> list[JudgeResult]:
    return [judge(project, name) for name in candidates]


def _report(project: Project) -> dict[str, Path]:
    from underdog.report import write_report

    return write_report(project)
