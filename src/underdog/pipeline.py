"""The whole loop on the shipped demo pack, offline, on the embedded SmolLM2-135M-Instruct: one short script.

    underdog demo [DIR] [--quick]                       # the CLI prints what the reporter hears
    outcome = run_demo(Path("demo-project"), quick=False, reporter=my_reporter)

The pack (underdog/demo_pack, see its README) is an invented county that no model can know. The flow:
init -> import the held-out eval set (reference answers + facts + refusal probes of four kinds) -> ingest the
handbook (md, html, pdf) with the embedded teacher and curate it (the mechanics: a 135M teacher writes little worth
keeping) -> the plain training set (the pack's teacher-quality Q&A plus whatever survived curation) and the
refusals variant (plain + the pack's teacher-quality refusals, imported, curated and mixed in with `augment`) ->
train a run on each -> answer with the base model and both runs together -> judge each run against the base with a
jury of `facts`, `similarity` and the embedded LLM judge -> leaderboard and report: fact recall and refusal accuracy
per model, answers side by side. Steps whose artifact exists are skipped, so a re-run resumes (and every model call
comes from the cache).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from underdog import data
from underdog.config import apply_overrides, render_default_config
from underdog.errors import UnderdogError
from underdog.evaluate.answer import answer_many
from underdog.evaluate.evalset import import_evalset, list_evalsets, load_evalset
from underdog.evaluate.judge import JudgeResult, combine_orders, judge, majority, winner
from underdog.evaluate.judges import is_grounded
from underdog.evaluate.stats import Tally
from underdog.progress import SILENT, Reporter
from underdog.project import Project, init_project
from underdog.report import ground_truth, side_by_side, write_report
from underdog.train import train
from underdog.train.runs import RunManifest

DOMAIN = "Harrowgate County (a fictional county): residents' permits, fees, deadlines and offices"
EVALSET = "harrowgate"
TEACHER_SET = "harrowgate-teacher"  # the pack's teacher-quality Q&A
INGESTED = "harrowgate-handbook"  # what the embedded teacher wrote from the handbook
TRAIN_SET = "harrowgate-train"  # teacher-quality Q&A + curated survivors of the ingested pairs
REFUSAL_SET = "harrowgate-refusals"  # the pack's teacher-quality refusals (four kinds), as imported
REFUSALS_TRAIN_SET = f"{TRAIN_SET}+refusals"  # the plain set + the curated refusals (`augment`)
RUN = "harrowgate-tuned"  # the plain run
REFUSALS_RUN = "harrowgate-tuned-refusals"  # the refusals variant's run
BASE = "student"  # the untuned base model, the reference to beat
JURY = ["facts", "similarity", "judge"]
SIDE_BY_SIDE = 6  # questions shown with both answers in the report
PROBES_SHOWN = 2  # refusal probes shown with the base's and both runs' answers


@dataclass(frozen=True)
class DemoSize:
    """How big each step is."""

    handbook: tuple[str, ...]  # files of the pack's handbook to ingest
    questions: int | None  # fact questions of the pack's eval set asked (None: all)
    probes: int | None  # refusal probes asked of each kind (None: all)
    teacher_max_tokens: int
    answer_max_tokens: int
    train: dict[str, Any] = field(default_factory=dict)  # train overrides


TRAIN_COMMON = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "learning_rate": 1e-3,
                "per_device_train_batch_size": 4, "max_input_length": 160, "validation_split_ratio": 0.1,
                "evals_per_epoch": 1, "save_steps": 1000}
FULL = DemoSize(("handbook.md", "handbook.html", "handbook.pdf"), None, None, teacher_max_tokens=192,
                answer_max_tokens=48, train={"epoch": 6})
QUICK = DemoSize(("handbook.pdf",), 4, 1, teacher_max_tokens=64, answer_max_tokens=16,
                 train={"epoch": 1, "max_steps": 2})


@dataclass
class DemoOutcome:
    results: dict[str, JudgeResult]  # per run id (RUN, REFUSALS_RUN): the run judged against the base model
    runs: dict[str, RunManifest]
    paths: dict[str, Path]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, by title
    probes: list[tuple[str, ...]] = field(default_factory=list)  # (probe, base, plain, refusals answers) shown

    @property
    def result(self) -> JudgeResult:
        """The plain run judged against the base model (with both fact recalls)."""
        return self.results[RUN]

    @property
    def run(self) -> RunManifest:
        return self.runs[RUN]

    @property
    def grounded(self) -> Tally:
        return grounded_rate(self.result)


def grounded_rate(result: JudgeResult) -> Tally:
    """`result` re-counted with the votes of its grounded judges only (questions where all of them abstain drop)."""
    outcomes = [majority([combine_orders(winner("ab", ab), winner("ba", ba))
                          for judge_, (ab, ba) in row.votes.items() if is_grounded(judge_)]) for row in result.rows]
    valid = [o for o in outcomes if o in ("candidate", "tie", "reference")]
    return Tally(valid.count("candidate"), valid.count("tie"), valid.count("reference"))


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
    started, phases = time.perf_counter(), {}

    def step(title: str, fn: Callable[[], Any]) -> Any:
        say.step(f"{title}  (+{time.perf_counter() - started:.0f} s)")
        begun = time.perf_counter()
        out = fn()
        phases[title] = time.perf_counter() - begun
        return out

    step("eval set: held-out questions with reference answers, facts and refusal probes",
         lambda: _evalset(project, size, say))
    survivors = step("ingest the handbook with the embedded teacher, then curate", lambda: _ingest(project, size, say))
    plain = step("training set: teacher-quality Q&A + curated survivors", lambda: _train_set(project, survivors, say))
    refusals = step("refusals variant: + the pack's teacher-quality refusals", lambda: _refusals_set(project, say))
    runs = {RUN: step(f"train {RUN} on {plain}", lambda: _train(project, plain, RUN, size, say))}
    runs[REFUSALS_RUN] = step(f"train {REFUSALS_RUN} on {refusals}",
                              lambda: _train(project, refusals, REFUSALS_RUN, size, say))
    step("answer: the base and both runs, in shared batches", lambda: answer_many(project, [BASE, *runs], EVALSET))
    results = step("judge each run against the base", lambda: {run: judge(project, run, BASE, progress=False)
                                                                 for run in runs})
    probes = probes_side_by_side(project, results)
    paths = step("leaderboard + report", lambda: _report(project, results, probes))
    return DemoOutcome(results, runs, paths, time.perf_counter() - started, phases, probes)


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
    if not (directory / "underdog.yaml").exists():
        directory.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load(render_default_config(DOMAIN))
        config = apply_overrides(config, ["models.teacher.params.max_tokens=96",
                                          "models.student.params.temperature=0"])
        (directory / "underdog.yaml").write_text("# underdog demo --autopilot: the demo pack, tiny autopilot settings\n"
                                                + yaml.safe_dump({**config, **AUTOPILOT}, sort_keys=False))
        (directory / "handbook.pdf").write_bytes(pack_path("handbook", "handbook.pdf").read_bytes())
    project = Project(directory, reporter=reporter or SILENT)
    if EVALSET not in list_evalsets(project):
        import_evalset(project, pack_path("eval.jsonl"), EVALSET)
    if TEACHER_SET not in data.list_datasets(project.root):
        data.import_dataset(project, pack_path("qa.jsonl"), TEACHER_SET)
    return project


def _evalset(project: Project, size: DemoSize, say: Reporter) -> None:
    if EVALSET not in list_evalsets(project):
        rows = [json.loads(line) for line in pack_path("eval.jsonl").read_text().splitlines()]
        facts = [r for r in rows if r.get("expect") != "refusal"][: size.questions]
        probes = _first_of_each_kind([r for r in rows if r.get("expect") == "refusal"], size.probes)
        asked = project.root / f"{EVALSET}.jsonl"  # what was imported, for reading
        asked.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in facts + probes))
        import_evalset(project, asked, EVALSET)
    questions = load_evalset(project, EVALSET)
    kinds = Counter(q.topic for q in questions if q.expect == "refusal")
    say.note(f"{len(questions)} questions in evalsets/{EVALSET}: {len(questions) - kinds.total()} with facts, "
             f"{kinds.total()} refusal probes ({_counts(kinds)})")


def _first_of_each_kind(probes: list[dict[str, Any]], n: int | None) -> list[dict[str, Any]]:
    """The first `n` probes (None: all) of each kind (`topic`), kinds in order of appearance."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for probe in probes:
        kinds.setdefault(probe.get("topic", ""), []).append(probe)
    return [probe for same in kinds.values() for probe in same[:n]]


def _counts(counter: Counter) -> str:
    return ", ".join(f"{n} {name}" for name, n in counter.items())


def _ingest(project: Project, size: DemoSize, say: Reporter) -> list[Any]:
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
    if TEACHER_SET not in data.list_datasets(project.root):
        data.import_dataset(project, pack_path("qa.jsonl"), TEACHER_SET)
    if TRAIN_SET not in data.list_datasets(project.root):
        teacher = data.load_dataset(project.root, TEACHER_SET)
        data.save_dataset(project.root, TRAIN_SET, teacher + survivors, parent=[TEACHER_SET, f"{INGESTED}-curated"],
                          recipe={"command": "demo", "teacher_quality": len(teacher), "ingested": len(survivors)})
    say.note(f"{data.load_manifest(project.root, TRAIN_SET).count} examples in {TRAIN_SET}")
    return TRAIN_SET


def _refusals_set(project: Project, say: Reporter) -> str:
    """The plain set + the pack's refusals, the way a user mixes in a slice of their own: import, curate (its
    decontamination keeps them all: none repeats an eval question), `augment` with the curated version."""
    curated = f"{REFUSAL_SET}-curated"
    if REFUSAL_SET not in data.list_datasets(project.root):
        data.import_dataset(project, pack_path("refusals.jsonl"), REFUSAL_SET)
    if curated not in data.list_datasets(project.root):
        data.curate(project, REFUSAL_SET, curated)
    if REFUSALS_TRAIN_SET not in data.list_datasets(project.root):
        data.augment(project, TRAIN_SET, [curated], name=REFUSALS_TRAIN_SET)
    made, kept = data.load_manifest(project.root, REFUSAL_SET), data.load_manifest(project.root, curated)
    kinds = Counter(e.meta.get("refusal_kind") for e in data.load_dataset(project.root, curated))
    say.note(f"{kept.count} of {made.count} refusals kept by curation ({_counts(kinds)}); "
             f"{data.load_manifest(project.root, REFUSALS_TRAIN_SET).count} examples in {REFUSALS_TRAIN_SET}")
    return REFUSALS_TRAIN_SET


def _train(project: Project, dataset: str, run_id: str, size: DemoSize, say: Reporter) -> RunManifest:
    manifest = train(project, dataset, {**TRAIN_COMMON, **size.train}, run_id=run_id)
    losses = {k: manifest.metrics.get(k) for k in ("train_loss", "eval_loss")}
    say.note(f"{run_id}: " + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in losses.items() if v is not None))
    return manifest


def probes_side_by_side(project: Project, results: dict[str, JudgeResult]) -> list[tuple[str, ...]]:
    """(question, base answer, plain answer, refusals answer) of the first refusal probe of the first PROBES_SHOWN
    kinds."""
    probes = _first_of_each_kind([q.to_json() for q in load_evalset(project, EVALSET) if q.expect == "refusal"], 1)
    ids = [p["id"] for p in probes][:PROBES_SHOWN]
    theirs = {r.question_id: r.candidate_answer for r in results[REFUSALS_RUN].rows}
    return [(r.question, r.reference_answer, r.candidate_answer, theirs[r.question_id])
            for r in results[RUN].rows if r.question_id in ids]


def _report(project: Project, results: dict[str, JudgeResult], probes: list[tuple[str, ...]]) -> dict[str, Path]:
    plain, refusals = results[RUN], results[REFUSALS_RUN]
    labels = (f"{BASE} (base)", f"{RUN} (plain)", f"{REFUSALS_RUN} (+refusals)")
    shown = [(r.question, r.reference_answer, r.candidate_answer) for r in plain.rows[:SIDE_BY_SIDE]]
    return write_report(project, sections=[
        ground_truth([(labels[0], plain.reference_recall), (labels[1], plain.recall), (labels[2], refusals.recall)]),
        side_by_side(shown, labels[0], labels[1]),
        side_by_side(probes, *labels, title="Refusal probes side by side")])
