"""The autopilot's data: the budgets it is given, the settings it runs with, each stage's estimate, the plan
(fixed at the first run, kept in the journal) and the outcome. Plain dataclasses; no stage logic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from underdog.config import ModelSpec
from underdog.evaluate.judges import is_grounded
from underdog.project import Project

JUDGE_TOKENS_IN, JUDGE_TOKENS_OUT = 800, 256  # one pairwise verdict (question, two answers, reference)


@dataclass
class RungResult:
    trial: int
    rung: int
    run_id: str
    epochs: int
    params: dict[str, Any]
    status: str  # "done" | "failed" | "skipped"
    score: float | None = None  # what the search maximises (dev fact recall, else dev win rate)
    numbers: dict[str, Any] | None = None  # dev win rate and interval, fact recall and interval
    note: str = ""


@dataclass(frozen=True)
class Budgets:
    """Limits of one autopilot: API dollars (default: underdog.yaml `budget_usd`), training runs, training hours,
    and a wall-clock deadline (epoch seconds)."""

    usd: float | None = None
    max_runs: int | None = None
    train_hours: float | None = None
    deadline: float | None = None

    def train_hours_left(self) -> float | None:
        """Hours training may still take: --train-hours, and what is left before --deadline."""
        limits = [self.train_hours] if self.train_hours is not None else []
        if self.deadline is not None:
            limits.append(max(0.0, (self.deadline - time.time()) / 3600))
        return min(limits) if limits else None


@dataclass(frozen=True)
class Options:
    """How the autopilot runs: `merge` puts merged full weights in the bundle; `skip_failed` writes a data stage's
    dataset without the teacher calls that failed for good (as `generate --skip-failed` does)."""

    merge: bool = False
    skip_failed: bool = False


@dataclass(frozen=True)
class Settings:
    """The sizes the autopilot runs with: the configured ones, shrunk to fit the budgets."""

    topics: int
    questions_per_topic: int
    evalset_size: int
    variants: dict[str, list[str]]
    trials: int
    rungs: tuple[int, ...]  # epochs of each rung
    prompts: int  # system prompts tried on the pick
    temperatures: tuple[float, ...]
    top_ps: tuple[float, ...]

    @property
    def cells(self) -> int:
        return self.prompts * len(self.temperatures) * len(self.top_ps)

    def runs_per_rung(self, reduction_factor: int) -> list[int]:
        """Runs trained at each rung, at most: each rung keeps the best 1/reduction_factor, plus one, since
        asynchronous halving promotes the first trials against fewer rivals (the search holds to this bound)."""
        out = [self.trials]
        for _ in self.rungs[1:]:
            out.append(min(out[-1], out[-1] // reduction_factor + 1))
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        tuples = {"rungs", "temperatures", "top_ps"}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


@dataclass
class Estimate:
    """One priced row of the plan: the calls one piece of a stage makes."""

    key: str  # stable: what a stage reserves it by (`generate`, `augment:plain`, `judge` ...)
    stage: str  # the call-path stage its calls are logged and budgeted under
    title: str
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0
    done: bool = False  # skipped: its artifact exists, or nothing is configured for it

    def add(self, other: Estimate) -> Estimate:
        """This estimate with `other`'s calls, tokens and dollars added (a stage calling several models)."""
        self.calls, self.usd = self.calls + other.calls, self.usd + other.usd
        self.tokens_in, self.tokens_out = self.tokens_in + other.tokens_in, self.tokens_out + other.tokens_out
        return self


class Pricer:
    """Estimates of calls to the project's models (0 dollars for a model without prices)."""

    def __init__(self, project: Project):
        self.project = project

    def __call__(self, key: str, stage: str, title: str, model: str | ModelSpec, calls: int, tokens_in: int,
                 tokens_out: int | None = None) -> Estimate:
        spec = model if isinstance(model, ModelSpec) else self.project.model_spec(model)
        out = spec.params.max_tokens if tokens_out is None else tokens_out
        usd = calls * (tokens_in * (spec.price_per_1m_input or 0) + out * (spec.price_per_1m_output or 0)) / 1e6
        return Estimate(key, stage, title, calls, calls * tokens_in, calls * out, usd)

    def judging(self, key: str, title: str, jury: Sequence[str], candidates: int, questions: int) -> Estimate:
        """Pairwise verdicts of the jury's LLM judges (both orders) on `candidates` x `questions` (the grounded
        judges call no model)."""
        row = Estimate(key, "judge", title)
        for judge in (j for j in jury if not is_grounded(j)):
            row.add(self(key, "judge", title, judge, candidates * questions * 2, JUDGE_TOKENS_IN, JUDGE_TOKENS_OUT))
        return row


@dataclass(frozen=True)
class Sizes:
    """What the estimates count from besides the settings: the jury, the dev and test questions, the configured
    documents' chunks and your own examples (measured once per plan)."""

    jury: tuple[str, ...]
    n_dev: int
    n_test: int
    chunks: int
    yours: int


@dataclass
class Plan:
    settings: Settings
    stages: list[Estimate]
    runs_per_rung: list[int]
    seconds_per_epoch: float
    speed_source: str  # where the seconds per example and epoch come from
    budgets: Budgets
    spent_usd: float  # by the project before this plan
    jury: list[str]
    shrunk: list[str] = field(default_factory=list)  # what was cut to fit, and why
    when_short: list[str] = field(default_factory=list)  # what happens if a budget runs short while running
    fixed_at: float | None = None  # when the autopilot started with this plan (None: not started)

    @property
    def usd(self) -> float:
        return sum(s.usd for s in self.stages if not s.done)

    @property
    def runs(self) -> int:
        return sum(self.runs_per_rung)

    @property
    def train_seconds(self) -> float:
        return sum(n * epochs * self.seconds_per_epoch for n, epochs in zip(self.runs_per_rung,
                                                                            self.settings.rungs, strict=True))

    def row(self, key: str) -> Estimate:
        return next(s for s in self.stages if s.key == key)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        known = {f.name for f in fields(cls)}
        plan = cls(**{k: v for k, v in data.items() if k in known})
        plan.settings = Settings.from_json(data["settings"])
        plan.stages = [Estimate(**row) for row in data["stages"]]
        plan.budgets = Budgets(**data["budgets"])
        return plan


@dataclass
class Outcome:
    plan: Plan
    pick: RungResult | None
    generation: dict[str, Any]  # the chosen system prompt, temperature and top_p
    test: dict[str, Any]  # the pick's and the base student's test numbers
    compared: int  # candidates compared on the dev split
    jury: list[str] = field(default_factory=list)  # the judges of every autopilot judgment
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
