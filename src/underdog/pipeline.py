"""The whole loop on the shipped demo pack, offline, on the embedded SmolLM2-135M-Instruct: one short script.

    underdog demo [DIR] [--quick]                       # the CLI prints what the reporter hears
    outcome = run_demo(Path("demo-project"), quick=False, reporter=my_reporter)

The pack (underdog/demo_pack, see its README) is an invented county that no model can know. The flow:
init -> import the held-out eval set (reference answers + facts + refusal probes) -> ingest the handbook (md, html,
pdf) with the embedded teacher and curate it (the mechanics: a 135M teacher writes little worth keeping) -> train
on the pack's teacher-quality Q&A plus whatever survived curation -> answer with the base model and the tuned run
-> judge the tuned run against the base with a jury of `facts`, `similarity` and the embedded LLM judge ->
leaderboard and report, with base and tuned answers side by side. Steps whose artifact exists are skipped, so a
re-run resumes (and every model call comes from the cache).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from underdog.evaluate.evalset import import_evalset, list_evalsets, load_evalset
from underdog.evaluate.judge import JudgeResult, combine_orders, judge, majority, winner
from underdog.evaluate.judges import is_grounded
from underdog.evaluate.stats import wilson_interval, win_rate
from underdog.progress import SILENT, Reporter
from underdog.project import Project, init_project
from underdog.train.runs import RunManifest

DOMAIN = "Harrowgate County (a fictional county): residents' permits, fees, deadlines and offices"
EVALSET = "harrowgate"
TEACHER_SET = "harrowgate-teacher"  # the pack's teacher-quality Q&A
INGESTED = "harrowgate-handbook"  # what the embedded teacher wrote from the handbook
TRAIN_SET = "harrowgate-train"  # teacher-quality Q&A + curated survivors of the ingested pairs
RUN = "harrowgate-tuned"
BASE = "student"  # the untuned base model, the reference to beat
JURY = ["facts", "similarity", "judge"]
SIDE_BY_SIDE = 6  # questions shown with both answers in the report


@dataclass(frozen=True)
class DemoSize:
    """How big each step is."""

    handbook: tuple[str, ...]  # files of the pack's handbook to ingest
    questions: int | None  # fact questions of the pack's eval set asked (None: all), + its refusal probes
    teacher_max_tokens: int
    answer_max_tokens: int
    train: dict[str, Any] = field(default_factory=dict)  # train overrides


TRAIN_COMMON = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "learning_rate": 1e-3,
                "per_device_train_batch_size": 4, "max_input_length": 160, "validation_split_ratio": 0.1,
                "evals_per_epoch": 1, "save_steps": 1000}
FULL = DemoSize(("handbook.md", "handbook.html", "handbook.pdf"), None, teacher_max_tokens=192, answer_max_tokens=48,
                train={"epoch": 6})
QUICK = DemoSize(("handbook.pdf",), 4, teacher_max_tokens=64, answer_max_tokens=16, train={"epoch": 1, "max_steps": 2})


@dataclass
class DemoOutcome:
    result: JudgeResult  # the tuned run judged against the base model (with both fact recalls)
    run: RunManifest
    paths: dict[str, Path]
    seconds: float

    @property
    def grounded(self) -> GroundedRate:
        return grounded_rate(self.result)


@dataclass(frozen=True)
class GroundedRate:
    """The win rate when only the grounded judges of a jury vote (their majority; a split is a tie)."""

    wins: int
    ties: int
    n: int

    @property
    def win_rate(self) -> float:
        return win_rate(self.wins, self.ties, self.n)

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.wins + self.ties / 2, self.n)


def grounded_rate(result: JudgeResult) -> GroundedRate:
    """`result` re-counted with the votes of its grounded judges only (questions where all of them abstain drop)."""
    outcomes = [majority([combine_orders(winner("ab", ab), winner("ba", ba))
                          for judge_, (ab, ba) in row.votes.items() if is_grounded(judge_)]) for row in result.rows]
    valid = [o for o in outcomes if o in ("candidate", "tie", "reference")]
    return GroundedRate(valid.count("candidate"), valid.count("tie"), len(valid))


def pack_path(*parts: str) -> Path:
    """A file of the shipped demo pack."""
    return Path(str(resources.files("underdog") / "demo_pack" / Path(*parts)))


def overrides(size: DemoSize) -> list[str]:
    """The config changes the demo runs with (reported, so that a run can be reproduced by hand)."""
    return [f"models.teacher.params.max_tokens={size.teacher_max_tokens}", "models.student.params.temperature=0",
            f"evaluate.answer_max_tokens={size.answer_max_tokens}", f"evaluate.evalset={EVALSET}",
            f"evaluate.reference={BASE}", f"evaluate.judges={json.dumps(JURY)}", "data.curate.rate=false"]


def run_demo(directory: Path, quick: bool = False, reporter: Reporter | None = None) -> DemoOutcome:
    """Run every step in `directory` (created if needed) and return what it measured."""
    say = reporter or SILENT
    size = QUICK if quick else FULL
    if not (directory / "underdog.yaml").exists():
        init_project(DOMAIN, directory)
    project = Project(directory, overrides=overrides(size), reporter=say)  # the stages report there too
    say.note("settings: " + " ".join(f"--set '{o}'" for o in project.overrides))
    started = time.perf_counter()

    def step(title: str, fn: Callable[[], Any]) -> Any:
        say.step(f"{title}  (+{time.perf_counter() - started:.0f} s)")
        return fn()

    step("eval set: held-out questions with reference answers and facts", lambda: _evalset(project, size, say))
    survivors = step("ingest the handbook with the embedded teacher, then curate", lambda: _ingest(project, size, say))
    dataset = step("training set: teacher-quality Q&A + curated survivors", lambda: _train_set(project, survivors, say))
    run = step("train", lambda: _train(project, dataset, size, say))
    result = step("answer and judge: tuned vs base", lambda: judge(project, RUN, BASE, progress=False))
    paths = step("leaderboard + report", lambda: _report(project, result))
    return DemoOutcome(result, run, paths, time.perf_counter() - started)


# -- the same pack, driven by the autopilot -----------------------------------------------------------------
AUTOPILOT = {  # tiny settings: about 15 minutes on 2 CPU cores (docs/autopilot.md)
    "evaluate": {"evalset": EVALSET, "reference": BASE, "answer_max_tokens": 48},
    "data": {"curate": {"rate": False}, "augment": {"refusals": 4}},
    "autopilot": {"topics": 0, "documents": ["handbook.pdf"], "datasets": [TEACHER_SET], "evalset": EVALSET,
                  "variants": {"plain": [], "refusals": ["refusals"]}, "trials": 4, "min_epochs": 2,
                  "max_epochs": 5, "reduction_factor": 3,
                  "space": {"learning_rate": [5.0e-4, 1.0e-3, 2.0e-3], "lora_r": [8, 16]},
                  "fixed": {k: v for k, v in TRAIN_COMMON.items() if k != "learning_rate"},
                  "prompts": ["", "You are the Harrowgate County assistant. Answer with the exact fee, form, "
                                  "deadline or office."],
                  "temperatures": [0.0], "top_ps": [1.0]},
}


def setup_autopilot_demo(directory: Path, reporter: Reporter | None = None) -> Project:
    """A project on the demo pack whose `underdog.yaml` holds the autopilot's tiny settings, so that a plain
    `underdog autopilot` in it runs (or resumes) the offline proof."""
    import yaml

    from underdog.config import apply_overrides, render_default_config

    if not (directory / "underdog.yaml").exists():
        directory.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load(render_default_config(DOMAIN))
        config = apply_overrides(config, ["models.teacher.params.max_tokens=96",
                                          "models.student.params.temperature=0"])
        (directory / "underdog.yaml").write_text("# underdog demo --autopilot: the demo pack, tiny autopilot settings\n"
                                                + yaml.safe_dump({**config, **AUTOPILOT}, sort_keys=False))
        (directory / "handbook.pdf").write_bytes(pack_path("handbook", "handbook.pdf").read_bytes())
    project = Project(directory, reporter=reporter or SILENT)
    from underdog import data

    if EVALSET not in list_evalsets(project):
        import_evalset(project, pack_path("eval.jsonl"), EVALSET)
    if TEACHER_SET not in data.list_datasets(project.root):
        data.import_dataset(project, pack_path("qa.jsonl"), TEACHER_SET)
    return project


def _evalset(project: Project, size: DemoSize, say: Reporter) -> None:
    if EVALSET not in list_evalsets(project):
        lines = pack_path("eval.jsonl").read_text().splitlines()
        probes = [line for line in lines if json.loads(line).get("expect") == "refusal"]
        asked = [line for line in lines if line not in probes][: size.questions] + probes
        (project.root / f"{EVALSET}.jsonl").write_text("\n".join(asked) + "\n")  # what was imported, for reading
        import_evalset(project, project.root / f"{EVALSET}.jsonl", EVALSET)
    questions = load_evalset(project, EVALSET)
    probes = sum(q.expect == "refusal" for q in questions)
    say.note(f"{len(questions)} questions ({probes} refusal probes) in evalsets/{EVALSET}")


def _ingest(project: Project, size: DemoSize, say: Reporter) -> list[Any]:
    from underdog import data
    from underdog.errors import UnderdogError

    curated = f"{INGESTED}-curated"
    try:
        if INGESTED not in data.list_datasets(project.root):
            data.ingest(project, [pack_path("handbook", f) for f in size.handbook], name=INGESTED)
        if curated not in data.list_datasets(project.root):
            data.curate(project, INGESTED, curated)
    except UnderdogError as exc:  # a 135M teacher may write nothing usable: the demo goes on without it
        say.note(f"nothing kept from the handbook: {exc}")
        return []
    made, kept = data.load_manifest(project.root, INGESTED), data.load_manifest(project.root, curated)
    say.note(f"the teacher wrote {made.count} pairs from {', '.join(size.handbook)}; {kept.count} survived curation")
    return data.load_dataset(project.root, curated)


def _train_set(project: Project, survivors: list[Any], say: Reporter) -> str:
    from underdog import data

    if TEACHER_SET not in data.list_datasets(project.root):
        data.import_dataset(project, pack_path("qa.jsonl"), TEACHER_SET)
    if TRAIN_SET not in data.list_datasets(project.root):
        teacher = data.load_dataset(project.root, TEACHER_SET)
        data.save_dataset(project.root, TRAIN_SET, teacher + survivors, parent=[TEACHER_SET, f"{INGESTED}-curated"],
                          recipe={"command": "demo", "teacher_quality": len(teacher), "ingested": len(survivors)})
    say.note(f"{data.load_manifest(project.root, TRAIN_SET).count} examples in {TRAIN_SET}")
    return TRAIN_SET


def _train(project: Project, dataset: str, size: DemoSize, say: Reporter) -> RunManifest:
    from underdog.train import train

    manifest = train(project, dataset, {**TRAIN_COMMON, **size.train}, run_id=RUN)
    losses = {k: manifest.metrics.get(k) for k in ("train_loss", "eval_loss")}
    say.note(f"{RUN}: " + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in losses.items() if v is not None))
    return manifest


def _report(project: Project, result: JudgeResult) -> dict[str, Path]:
    from underdog.report import side_by_side, write_report

    shown = [(r.question, r.reference_answer, r.candidate_answer) for r in result.rows[:SIDE_BY_SIDE]]
    return write_report(project, sections=[side_by_side(shown, f"{BASE} (base)", f"{RUN} (tuned)")])
