"""The offline proof of "people decide" (issue 18): a supervised run moved toward what a SIMULATED voter panel
prefers, judged on held-out questions by the same panel.

    outcome = run_people_loop(project, PeopleLoop(sft_run="run-1", questions="dataset:base", evalset="eval"))
    outcome.panel.win_rate, outcome.panel.ci      # the panel's preference for the DPO run over the SFT run
    outcome.checks                                # [(target, met)] against issue 18's thresholds

No people are reachable offline, so every vote here comes from the simulated voter panel
(arena/simulated_panel.py, a SIMULATION: it prefers an answer that first acknowledges the resident's situation in
one sentence, then gives the fact). The chain, each step through the same library calls as its command:
1. candidates on TRAINING questions (`arena add RUN -q dataset:NAME`; eval questions never become training data):
   the SFT run as it answers, and the SFT run asked by a system prompt to acknowledge first, then give the fact;
2. the simulated panel votes on every pair (`arena simulate-panel`);
3. `calibrate`: each judge against the simulated votes; the `people` judge is fitted on them (cross-validated);
4. `preferences --votes`: (question alone, preferred answer, other answer) pairs;
5. `train --method dpo --from SFT_RUN`: TRL's DPOTrainer, DPO + SFT on the chosen answers;
6. the held-out eval questions: the DPO run and the SFT run answer with NO system prompt, the simulated panel
   votes on each pair and its majority decides each question (a win, a tie or a loss for the DPO run); the `people`
   judge fitted on the training-question votes alone predicts the same pairs (questions and answers it never saw);
   both runs' fact recall on the eval set's facts.
A step whose artifact exists (answers cached, votes cast, the preference dataset, the DPO run) is not redone.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underdog import data
from underdog.arena import store as arena_tables
from underdog.arena.preferences import build_preferences
from underdog.arena.prepare import add_candidate
from underdog.arena.simulated_panel import Panel, cast_simulated_votes
from underdog.arena.votes import add_items
from underdog.data.preferences import load_preferences
from underdog.evaluate.answer import answer
from underdog.evaluate.calibrate import Calibration, calibrate
from underdog.evaluate.evalset import load_evalset
from underdog.evaluate.judges import Item
from underdog.evaluate.judges.facts import Recall, recall
from underdog.evaluate.judges.people import PeopleJudge, people_model
from underdog.evaluate.questions import question_source
from underdog.evaluate.stats import Tally, wilson_interval
from underdog.pipeline import EVALSET, FULL, QUICK, RUN, TEACHER_SET, overrides, pack_path, run_demo
from underdog.progress import SILENT, Reporter
from underdog.project import Project
from underdog.report import side_by_side
from underdog.train import train
from underdog.train.runs import RunManifest, has_run, load_run

SIMULATED = "SIMULATED panel"  # how every line about the panel's votes names them
WARM_PROMPT = ("Start with one short, kind sentence that acknowledges the resident's situation, such as \"That can "
               "be stressful.\" Then give the exact fact.")
TARGET_WIN_RATE = 0.70  # issue 18: the panel prefers the DPO run in >= 70% of the eval questions ...
TARGET_CI_LOW = 0.50  # ... with the 95% interval's lower bound above 50%
TARGET_PEOPLE = 0.80  # the people judge's held-out agreement with the panel
FACTS_SLACK = 1  # the DPO run's fact recall within one fact of the SFT run's


@dataclass(frozen=True)
class PeopleLoop:
    """What the loop runs on and how big each step is."""

    sft_run: str  # the supervised run to move (and the reference policy of DPO)
    questions: str  # training questions put on show: dataset:NAME or a question file
    evalset: str  # the held-out questions the result is measured on
    dpo_run: str = ""  # default: <sft_run>-people
    preferences: str = ""  # default: <sft_run>-people-votes
    warm_prompt: str = WARM_PROMPT
    warm_answers: str | None = None  # a dataset whose answers stand in for the SFT run asked by `warm_prompt`
    max_questions: int | None = None  # training questions put on show (None: all)
    voters: int = 5
    noise: float = 0.1
    seed: int = 0
    judges: tuple[str, ...] = ("people",)  # what `calibrate` checks against the simulated votes
    dpo: dict[str, Any] = field(default_factory=dict)  # train overrides of the DPO run

    @property
    def dpo_name(self) -> str:
        return self.dpo_run or f"{self.sft_run}-people"

    @property
    def preference_name(self) -> str:
        return self.preferences or f"{self.sft_run}-people-votes"

    @property
    def warm_name(self) -> str:
        return self.warm_answers or f"{self.sft_run}+acknowledge-prompt"


@dataclass(frozen=True)
class Agreement:
    """The people judge's verdicts on the eval pairs against the panel's decisive majorities (a tie counts half)."""

    agreed: float
    n: int
    summary: str  # what the judge was fitted on and its cross-validated accuracy

    @property
    def rate(self) -> float | None:
        return self.agreed / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.agreed, self.n) if self.n else None


@dataclass
class PeopleOutcome:
    training_votes: int  # simulated votes on the training questions
    pairs: int  # preference pairs built from them
    calibration: Calibration
    dpo: RunManifest
    panel: Tally
    people: Agreement
    sft_recall: Recall | None
    dpo_recall: Recall | None
    seconds: float
    counts: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # its report, when written

    @property
    def checks(self) -> list[tuple[str, bool]]:
        """Issue 18's targets, each with whether it was met."""
        low = self.panel.ci[0]
        stated = (self.sft_recall.stated if self.sft_recall else 0, self.dpo_recall.stated if self.dpo_recall else 0)
        agreement = self.people.rate
        return [(f"the {SIMULATED} prefers the DPO run in >= {TARGET_WIN_RATE:.0%} of eval questions",
                 self.panel.win_rate >= TARGET_WIN_RATE),
                (f"... with the 95% interval's lower bound above {TARGET_CI_LOW:.0%}", low > TARGET_CI_LOW),
                (f"the people judge agrees with the {SIMULATED} on >= {TARGET_PEOPLE:.0%} of held-out eval pairs",
                 agreement is not None and agreement >= TARGET_PEOPLE),
                (f"the DPO run's fact recall within {FACTS_SLACK} fact of the SFT run's",
                 stated[1] >= stated[0] - FACTS_SLACK)]


def run_people_loop(project: Project, loop: PeopleLoop, reporter: Reporter | None = None) -> PeopleOutcome:
    """Run the chain of the module docstring and measure it."""
    say = reporter or SILENT
    started = time.perf_counter()

    def step(title: str) -> None:
        say.step(f"{title}  (+{time.perf_counter() - started:.0f} s)")

    warm = (f"{loop.warm_answers}'s answers, which acknowledge first (a stand-in for a model that follows the "
            "prompt)" if loop.warm_answers else "the SFT run asked to acknowledge first")
    step(f"candidates on training questions: the SFT run, and {warm}")
    shown = _training_candidates(project, loop)
    say.note(f"{shown} answers on show from {loop.questions} (training questions; eval questions never train)")

    step(f"votes: the {SIMULATED} (a simulation, not people) on every training pair")
    added = cast_simulated_votes(project, loop.voters, loop.noise, loop.seed, question_set=_question_set(loop))
    training = [v for v in arena_tables.load_votes(project.store) if v.question_set == _question_set(loop)]
    tally = Counter(_side(v, loop.warm_name) for v in training)
    say.note(f"{SIMULATED}: {len(training)} simulated votes ({added} new) from {loop.voters} simulated voters, "
             f"noise {loop.noise:g}: {tally['warm']} for the acknowledging answer, {tally['plain']} for the SFT "
             f"run's, {tally['tie']} ties")

    step(f"calibrate: judges against the {SIMULATED}'s votes")
    report = calibrate(project, judges=list(loop.judges), rounds=200)
    for row in report.rows:
        estimate = row.note or (f"accuracy {row.accuracy.value:.0%} (95% CI {row.accuracy.low:.0%}-"
                                f"{row.accuracy.high:.0%}) on {row.votes} votes" if row.accuracy else "no verdict")
        say.note(f"{row.judge} vs the {SIMULATED}: {estimate}")

    step(f"preferences from the {SIMULATED}'s votes")
    pairs, counts = _preferences(project, loop)
    say.note(f"{pairs} pairs in {loop.preference_name} (from simulated votes; {counts})")

    step(f"DPO from {loop.sft_run}")
    dpo = _dpo(project, loop)
    metrics = {k: dpo.metrics.get(k) for k in ("train_loss", "train_reward_accuracy", "train_reward_margin")}
    say.note(f"{dpo.id}: " + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in metrics.items() if v is not None)
             + f", {dpo.metrics.get('train_runtime_s') or 0:.0f} s of training")

    step(f"held-out eval questions: the {SIMULATED} judges the DPO run vs the SFT run, both without a system prompt")
    panel, agreement, recalls = _evaluate(project, loop, training)
    say.note(f"{SIMULATED}: DPO run preferred on {panel.wins}, ties {panel.ties}, SFT run on {panel.losses} of "
             f"{panel.n} eval questions")
    return PeopleOutcome(len(training), pairs, report, dpo, panel, agreement, *recalls,
                         seconds=time.perf_counter() - started, counts=counts)


def _question_set(loop: PeopleLoop) -> str:
    return loop.questions if ":" in loop.questions else f"file:{loop.questions.rsplit('/', 1)[-1]}"


def _side(vote: arena_tables.Vote, warm: str) -> str:
    """'warm' / 'plain' / 'tie': which training candidate a simulated vote went to."""
    return "tie" if vote.winner is None else "warm" if vote.winner == warm else "plain"


def _training_candidates(project: Project, loop: PeopleLoop) -> int:
    """The SFT run's answers to the training questions, and the acknowledging candidate's: the SFT run asked by
    `warm_prompt`, or the answers of the `warm_answers` dataset (a stand-in for a model that follows it)."""
    common = {"questions": loop.questions, "max_questions": loop.max_questions, "progress": False}
    shown = add_candidate(project, loop.sft_run, name=loop.sft_run, **common)
    if not loop.warm_answers:
        return shown + add_candidate(project, loop.sft_run, name=loop.warm_name, system_prompt=loop.warm_prompt,
                                     **common)
    found = question_source(project, loop.questions, loop.max_questions)
    ids = {q.question.strip(): q.id for q in found.questions}
    warm = {e.question.strip(): e.answer for e in data.load_dataset(project.root, loop.warm_answers)}
    items = [(ids[q], q, a) for q, a in warm.items() if q in ids]
    return shown + add_items(project.store, loop.warm_name, items, source=f"dataset:{loop.warm_answers}",
                             question_set=found.name)


def _preferences(project: Project, loop: PeopleLoop) -> tuple[int, dict[str, Any]]:
    if loop.preference_name not in data.list_datasets(project.root):
        build_preferences(project, loop.preference_name, votes=True)
    manifest = data.load_manifest(project.root, loop.preference_name)
    return len(load_preferences(project.root, loop.preference_name)), dict(manifest.counts.get("votes", {}))


def _dpo(project: Project, loop: PeopleLoop) -> RunManifest:
    return train(project, loop.preference_name, {"method": "dpo", "from_run": loop.sft_run, **loop.dpo},
                 run_id=loop.dpo_name)


def _evaluate(project: Project, loop: PeopleLoop, training: Sequence[arena_tables.Vote]
              ) -> tuple[Tally, Agreement, tuple[Recall | None, Recall | None]]:
    """The panel's majority per eval question, the people judge's agreement with it, both runs' fact recall."""
    for run in (loop.sft_run, loop.dpo_name):
        add_candidate(project, run, evalset=loop.evalset, progress=False)
    question_set = f"evalset:{loop.evalset}"
    cast_simulated_votes(project, loop.voters, loop.noise, loop.seed, question_set=question_set)
    runs = {loop.sft_run, loop.dpo_name}
    margin: Counter[str] = Counter()
    texts: dict[str, tuple[str, str, str]] = {}
    for v in arena_tables.load_votes(project.store):
        if v.question_set == question_set and {v.cand_1, v.cand_2} == runs:
            margin[v.question_id] += 0 if v.winner is None else 1 if v.winner == loop.dpo_name else -1
            dpo_first = v.cand_1 == loop.dpo_name
            texts[v.question_id] = (v.question, *((v.answer_1, v.answer_2) if dpo_first else (v.answer_2, v.answer_1)))
    outcome = {q: "win" if m > 0 else "loss" if m < 0 else "tie" for q, m in margin.items()}
    panel = Tally(*(sum(o == kind for o in outcome.values()) for kind in ("win", "tie", "loss")))
    agreement = _people_agreement(project, loop, training, outcome, texts)
    known = {q.id: q for q in load_evalset(project, loop.evalset)}
    recalls = tuple(recall([(a.answer, known.get(a.question_id)) for a in answer(project, run, loop.evalset,
                                                                                  progress=False) if not a.error])
                    for run in (loop.sft_run, loop.dpo_name))
    return panel, agreement, (recalls[0], recalls[1])


def _people_agreement(project: Project, loop: PeopleLoop, training: Sequence[arena_tables.Vote],
                      outcome: dict[str, str], texts: dict[str, tuple[str, str, str]]) -> Agreement:
    """The people judge fitted on the training-question votes alone, on the eval pairs the panel decided."""
    version, model, why = people_model(project, list(training))
    judge = PeopleJudge(version, model, project.config.evaluate.people_margin, why)
    decided = [q for q, o in outcome.items() if o != "tie"]
    verdicts = judge.decide([Item(texts[q][0], texts[q][1], texts[q][2]) for q in decided]) if decided else []
    agreed = sum(1.0 if d.verdict == ("A" if outcome[q] == "win" else "B") else 0.5 if d.verdict == "tie" else 0.0
                 for q, d in zip(decided, verdicts, strict=True))
    return Agreement(agreed, len(decided) if model else 0, judge.summary)


def panel_taste_note() -> str:
    """One line naming the simulated panel and its taste, for reports and the CLI."""
    return (f"{SIMULATED}: scripted voters ({Panel().source.split()[0]}), a simulation standing in for people; it "
            "prefers an answer that first acknowledges the resident's situation in one sentence, then gives the fact")


# -- on the demo pack: `underdog demo DIR --people` -----------------------------------------------------------------
WARM_SET = "harrowgate-warm"  # the pack's answers opened by an acknowledgement (scripts/make_demo_warm.py)
DEMO_DPO = {"epoch": 4, "learning_rate": 1e-3, "per_device_train_batch_size": 4, "max_input_length": 160,
            "validation_split_ratio": 0.0, "save_steps": 1000}  # docs/training.md, "Preference runs toward people"


def demo_loop() -> PeopleLoop:
    """The loop on the demo pack: the demo's SFT run, the pack's teacher-quality training questions, its eval set."""
    return PeopleLoop(sft_run=RUN, questions=f"dataset:{TEACHER_SET}", evalset=EVALSET, warm_answers=WARM_SET,
                      dpo=DEMO_DPO)


def run_people_demo(directory: Path, quick: bool = False, reporter: Reporter | None = None) -> PeopleOutcome:
    """The demo's SFT run in `directory` (reused when done, else `run_demo` first), then the people loop on it and
    its report (reports/people.{md,html})."""
    say = reporter or SILENT
    if not (has_run(directory, RUN) and load_run(directory, RUN).status == "done"):
        run_demo(directory, quick=quick, reporter=say)
    else:
        say.note(f"reusing the demo's SFT run {RUN} in {directory}")
    project = Project(directory, overrides=overrides(QUICK if quick else FULL), reporter=say)
    with project.lock("underdog demo --people"):
        _import_warm(project)
        outcome = run_people_loop(project, demo_loop(), say)
    outcome.paths = write_people_report(project, demo_loop(), outcome)
    return outcome


def _import_warm(project: Project) -> None:
    """The pack's acknowledging answers (demo_pack/warm.jsonl) as dataset WARM_SET, once."""
    if WARM_SET not in data.list_datasets(project.root):
        data.import_dataset(project, pack_path("warm.jsonl"), WARM_SET)


def summary_lines(outcome: PeopleOutcome) -> list[str]:
    """The measured figures, one per line, the simulated panel named as such in each line about it."""
    p, a = outcome.panel, outcome.people
    low, high = p.ci
    lines = [panel_taste_note(),
             f"{SIMULATED} on the held-out eval questions (both runs without a system prompt): it prefers the DPO "
             f"run on {100 * p.win_rate:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f}%) of {p.n} questions "
             f"({p.wins} DPO, {p.ties} ties, {p.losses} SFT)"]
    if a.rate is not None and a.ci:
        lines.append(f"the people judge (fitted on the {SIMULATED}'s training-question votes) agrees with the "
                     f"{SIMULATED} on {100 * a.rate:.0f}% (95% CI {100 * a.ci[0]:.0f}-{100 * a.ci[1]:.0f}%) of the "
                     f"{a.n} eval pairs it decided; {a.summary}")
    else:
        lines.append(f"the people judge: no verdict on the eval pairs ({a.summary or 'the panel decided none'})")
    for name, r in (("SFT run", outcome.sft_recall), ("DPO run", outcome.dpo_recall)):
        if r is not None and r.fact_recall is not None:
            lines.append(f"{name}: fact recall {r.stated} of {r.facts} facts ({100 * r.fact_recall:.0f}%)")
    lines += [f"target {'met' if ok else 'MISSED'}: {what}" for what, ok in outcome.checks]
    return lines


def write_people_report(project: Project, loop: PeopleLoop, outcome: PeopleOutcome) -> dict[str, Path]:
    """reports/people.{md,html}: the figures and both runs' answers to the eval questions, side by side."""
    sft, dpo = ({a.question_id: a for a in answer(project, run, loop.evalset, progress=False)}
                for run in (loop.sft_run, loop.dpo_name))
    shown = [(a.question, a.answer, dpo[q].answer) for q, a in sft.items() if q in dpo]
    table_md, table_html = side_by_side(shown, f"{loop.sft_run} (SFT)", f"{loop.dpo_name} (DPO)")
    title = f"People decide, offline: DPO toward a {SIMULATED} (a simulation, not people)"
    lines = summary_lines(outcome) + [f"time: {outcome.seconds:.0f} s"]
    out = project.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "people.md", "html": out / "people.html"}
    paths["md"].write_text(f"# {title}\n\n" + "".join(f"- {line}\n" for line in lines) + "\n" + table_md)
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    paths["html"].write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                             f"</head><body><h1>{html.escape(title)}</h1><ul>{items}</ul>{table_html}</body></html>")
    return paths
