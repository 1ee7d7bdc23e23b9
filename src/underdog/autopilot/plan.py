"""The autopilot's plan: what each stage will call and cost, the training runs and their time, and what was
shrunk to fit the budgets. Computing it spends nothing; `underdog autopilot --plan` prints it.

    plan = make_plan(project, Budgets(usd=20, max_runs=12, train_hours=2))
    plan.usd, plan.train_seconds, plan.shrunk

Dollar estimates are upper bounds, like the call path's own budget check: ~3 characters per token for prompts
and every reply at its full `max_tokens`. A stage whose artifact exists costs nothing (it is skipped), and what
the project already spent is subtracted from the budget. Training time is each run's examples x epochs x the
seconds per example-epoch of earlier runs of the same base model on this machine (evaluation included), else an
estimate from the model's size (~200 tokens per example).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from underdog.config import AutopilotConfig, ModelSpec
from underdog.errors import ConfigError, UnderdogError
from underdog.evaluate.judges import is_grounded
from underdog.project import Project

PREFIX = "autopilot"  # the names of everything it creates start with this
JUDGE_TOKENS_IN, JUDGE_TOKENS_OUT = 800, 256  # one pairwise verdict (question, two answers, reference)
EXAMPLE_TOKENS = 200  # a training example, before the data exists
CPU_PARAM_TOKENS = 1.75e10  # tokens/s x parameters: 130 tokens/s for 135M parameters on 2 cores (measured)
GPU_PARAM_TOKENS = 4e13  # ... about 9,000 tokens/s for 8B, 37,000 for 1B on an H200 (gpu-baselines.md)


@dataclass(frozen=True)
class Budgets:
    """Limits of one autopilot: API dollars (default: underdog.yaml `budget_usd`), training runs, training hours,
    and a wall-clock deadline (epoch seconds)."""

    usd: float | None = None
    max_runs: int | None = None
    train_hours: float | None = None
    deadline: float | None = None


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
        """Runs trained at each rung when each keeps the best 1/reduction_factor, plus one: asynchronous halving
        promotes the first trials against fewer rivals (at most all of them)."""
        out = [self.trials]
        for _ in self.rungs[1:]:
            out.append(min(out[-1], out[-1] // reduction_factor + 1))
        return out


@dataclass
class StageEstimate:
    stage: str  # the call-path stage its calls are logged and budgeted under
    title: str
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0
    done: bool = False  # skipped: its artifact exists, or nothing is configured for it

    def add(self, other: StageEstimate) -> StageEstimate:
        """This estimate with `other`'s calls, tokens and dollars added (a stage calling several models)."""
        self.calls, self.usd = self.calls + other.calls, self.usd + other.usd
        self.tokens_in, self.tokens_out = self.tokens_in + other.tokens_in, self.tokens_out + other.tokens_out
        return self


@dataclass
class Plan:
    settings: Settings
    stages: list[StageEstimate]
    runs_per_rung: list[int]
    seconds_per_epoch: float
    speed_source: str  # where the seconds per example and epoch come from
    budgets: Budgets
    spent_usd: float  # by the project before this plan
    jury: list[str]
    shrunk: list[str] = field(default_factory=list)  # what was cut to fit, and why
    when_short: list[str] = field(default_factory=list)  # what happens if a budget runs short while running

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


def check_settings(project: Project) -> None:
    """UnderdogError naming the `autopilot.` key of a setting that would fail later: a search dimension or fixed
    override that is no train setting, a malformed range (documents, datasets and slices are checked where they
    are estimated)."""
    from underdog.autopilot.halving import search_space
    from underdog.config import TrainConfig

    cfg = project.config.autopilot
    for section, keys in (("space", cfg.space), ("fixed", cfg.fixed)):
        for key in keys:
            if key not in TrainConfig.model_fields or key == "sagemaker":
                raise ConfigError(f"autopilot.{section}.{key}: not a train setting (see `train:` in "
                                    "docs/training.md)")
    search_space(cfg.space, list(cfg.variants))


def rung_epochs(cfg: AutopilotConfig) -> tuple[int, ...]:
    """min_epochs, x reduction_factor each rung, up to max_epochs (the last rung)."""
    epochs, out = cfg.min_epochs, []
    while epochs < cfg.max_epochs:
        out.append(epochs)
        epochs *= cfg.reduction_factor
    return (*out, cfg.max_epochs)


def settings_of(project: Project) -> Settings:
    cfg, tune = project.config.autopilot, project.config.tune
    return Settings(topics=cfg.topics, questions_per_topic=cfg.questions_per_topic, evalset_size=cfg.evalset_size,
                    variants=dict(cfg.variants), trials=cfg.trials, rungs=rung_epochs(cfg),
                    prompts=len(cfg.prompts) or 2, temperatures=tuple(cfg.temperatures or tune.temperatures),
                    top_ps=tuple(cfg.top_ps or tune.top_ps))


# -- estimates --------------------------------------------------------------------------------------------
class Pricer:
    """Dollars of calls to the project's models (0 for a model without prices)."""

    def __init__(self, project: Project):
        self.project = project

    def stage(self, stage: str, title: str, model: str | ModelSpec, calls: int, tokens_in: int,
              tokens_out: int | None = None) -> StageEstimate:
        spec = model if isinstance(model, ModelSpec) else self.project.model_spec(model)
        out = spec.params.max_tokens if tokens_out is None else tokens_out
        usd = calls * (tokens_in * (spec.price_per_1m_input or 0) + out * (spec.price_per_1m_output or 0)) / 1e6
        return StageEstimate(stage, title, calls, calls * tokens_in, calls * out, usd)


def estimate_stages(project: Project, s: Settings, jury: list[str], n_dev: int, n_test: int) -> list[StageEstimate]:
    """Each stage's calls and dollars at settings `s` (a stage whose artifact exists is marked done)."""
    from underdog.data import list_datasets
    from underdog.evaluate.evalset import GROUND_TRUTH_TOKENS, QUESTION_TOKENS, list_evalsets

    cfg, data = project.config.autopilot, project.config.data
    price = Pricer(project)
    datasets, evalsets = set(list_datasets(project.root)), set(list_evalsets(project))
    generated = s.topics * s.questions_per_topic if s.topics else 0
    chunks = count_chunks(project)
    pool = generated + chunks * data.pairs_per_chunk + sum(trusted_count(project, d) for d in cfg.datasets)
    stages = [
        price.stage("topics", f"topics: up to {s.topics}", "teacher", data.topic_rounds if s.topics else 0, 400),
        _evalset(project, price, s, evalsets, QUESTION_TOKENS, GROUND_TRUTH_TOKENS),
        price.stage("generate", f"generate: {s.topics} topics x {s.questions_per_topic} Q&A", "teacher",
                    s.topics * (s.questions_per_topic + 1), 350),
        price.stage("ingest", f"ingest: {len(cfg.documents)} documents, {chunks} chunks", "teacher", chunks,
                    data.chunk_size // 3 + 200),
    ]
    stages[0].done = not s.topics or (project.root / "topics.yaml").exists()
    stages[2].done = not s.topics or f"{PREFIX}-generated" in datasets
    stages[3].done = not cfg.documents or f"{PREFIX}-docs" in datasets
    for name, slices in s.variants.items():
        calls = sum(slice_calls(project, slice_kind(name, spec, datasets), pool) for spec in slices)
        est = price.stage("augment", f"augment {name}: {', '.join(slices) or 'nothing'}", "teacher", calls, 300)
        est.done = not slices or f"{PREFIX}-{name}" in datasets
        stages.append(est)
    rated = (generated + chunks * data.pairs_per_chunk) * (1 + data.curate.rating_retries / 4)
    curate = price.stage("curate", "curate: rate every made example" if data.curate.rate else "curate (no rating)",
                         "teacher", math.ceil(rated) if data.curate.rate else 0, 500)
    curate.done = all(f"{PREFIX}-{name}" in datasets for name in s.variants)
    stages.append(curate)
    llm_judges = [j for j in jury if not is_grounded(j)]
    runs = sum(s.runs_per_rung(cfg.reduction_factor))
    for title, candidates, n in ((f"judge {runs} runs on the dev split", runs + 1, n_dev),
                                 (f"tune: {s.cells} prompt/temperature/top_p cells on the dev split", s.cells, n_dev),
                                 ("test: the pick and the base student, once", 2, n_test)):
        est = StageEstimate("judge", title)
        for judge in llm_judges:
            est.add(price.stage("judge", title, judge, candidates * n * 2, JUDGE_TOKENS_IN, JUDGE_TOKENS_OUT))
        stages.append(est)
    answer_tokens = project.config.evaluate.answer_max_tokens
    stages.append(price.stage("answer", "reference answers (dev and test)", project.config.evaluate.reference,
                              n_dev + n_test, 150, answer_tokens))
    return stages


def _evalset(project: Project, price: Pricer, s: Settings, evalsets: set[str], question_tokens: int,
             truth_tokens: int) -> StageEstimate:
    est = price.stage("evalset", f"eval set: {s.evalset_size} questions with an answer key", "teacher",
                      2 * s.evalset_size, 150, question_tokens)
    est.add(price.stage("evalset", "", "teacher", s.evalset_size, 250, truth_tokens))  # the answer key
    est.done = project.config.autopilot.evalset is not None or f"{PREFIX}-dev" in evalsets
    return est


def slice_kind(variant: str, spec: str, datasets: set[str]) -> str:
    """The kind of an augment slice (refusals, translation, ...); UnderdogError naming the key for an unknown one."""
    from underdog.data.augmentation import slice_label

    try:
        return slice_label(spec, sorted(datasets))[0]
    except UnderdogError as exc:
        raise ConfigError(f"autopilot.variants.{variant}: {exc}") from None


def slice_calls(project: Project, kind: str, pool: int) -> int:
    """Teacher calls an augmentation slice makes, roughly (two per example made; none to mix a dataset in)."""
    aug = project.config.data.augment
    shares = {"locality": aug.locality_share, "summary": aug.summary_share}
    if kind == "dataset":
        return 0
    if kind == "refusals":
        return 2 * aug.refusals
    return 2 * math.ceil(shares.get(kind, aug.translation_share) * max(pool, 1))


def count_chunks(project: Project) -> int:
    """Chunks the configured documents split into (read now; no model call)."""
    from underdog.data.ingestion import read_chunks

    docs = [resolve_path(project, d) for d in project.config.autopilot.documents]
    if not docs:
        return 0
    data = project.config.data
    return len(read_chunks(docs, data.chunk_size, data.chunk_overlap)[0])


def resolve_path(project: Project, name: str) -> Path:
    path = Path(name) if Path(name).is_absolute() else project.root / name
    if not path.exists():
        raise ConfigError(f"autopilot.documents: {name}: not found")
    return path


def trusted_count(project: Project, name: str) -> int:
    from underdog.data import list_datasets, load_manifest

    if name not in list_datasets(project.root):
        raise ConfigError(f"autopilot.datasets: no dataset named {name!r} (see `underdog datasets`)")
    return load_manifest(project.root, name).count


def training_speed(project: Project) -> tuple[float, str]:
    """Seconds of training per example and epoch for the student on this machine (evaluation passes included):
    the median of earlier runs of the same base model, else an estimate from its parameter count and the device."""
    from underdog.train.runs import list_runs

    student = project.config.models["student"].model
    measured = [r.metrics["train_runtime_s"] / (r.metrics["epochs"] * r.metrics["train_examples"])
                for r in list_runs(project.root) if r.status == "done" and r.base_model == student
                and r.metrics.get("train_runtime_s") and r.metrics.get("epochs") and r.metrics.get("train_examples")]
    if measured:
        return float(statistics.median(measured)), f"median of {len(measured)} earlier runs on this machine"
    import torch

    from underdog.llm.local import resolve_model_path
    from underdog.train.memory import model_shape

    params = model_shape(resolve_model_path(student))["n_params"]
    gpu = torch.cuda.is_available()
    tokens_per_s = (GPU_PARAM_TOKENS if gpu else CPU_PARAM_TOKENS) / params
    return EXAMPLE_TOKENS / tokens_per_s, (f"estimate for {params / 1e6:.0f}M parameters on "
                                           f"{'a GPU' if gpu else 'the CPU'}, {EXAMPLE_TOKENS} tokens per example")


def epoch_examples(project: Project, s: Settings) -> int:
    """Training examples of one epoch over the largest data variant (counted when it exists, else estimated)."""
    from underdog.data import list_datasets, load_manifest

    cfg, data = project.config.autopilot, project.config.data
    names = [f"{PREFIX}-{v}" for v in s.variants if f"{PREFIX}-{v}" in list_datasets(project.root)]
    if names:
        examples = max(load_manifest(project.root, n).count for n in names)
    else:
        examples = (s.topics * s.questions_per_topic + count_chunks(project) * data.pairs_per_chunk
                    + sum(trusted_count(project, d) for d in cfg.datasets))
    validation = cfg.fixed.get("validation_split_ratio", project.config.train.validation_split_ratio)
    return max(1, round(examples * (1 - validation)))


# -- fitting the budgets ----------------------------------------------------------------------------------
def make_plan(project: Project, budgets: Budgets, *, jury: list[str], n_dev: int, n_test: int,
              spent: float = 0.0) -> Plan:
    """The plan at the configured sizes, shrunk step by step until it fits every budget (each cut recorded);
    UnderdogError when even the smallest plan does not fit. `spent`: dollars already spent of `budgets.usd`."""
    check_settings(project)
    s = settings_of(project)
    speed, source = training_speed(project)
    usd = budgets.usd if budgets.usd is not None else project.config.budget_usd
    plan = _plan(project, s, budgets, speed, source, spent, jury, n_dev, n_test)
    for what, shrink in _shrinks(project):
        over = _over(plan, usd, budgets)
        if not over:
            break
        smaller = shrink(plan.settings)
        if smaller is None or smaller == plan.settings:
            continue
        candidate = _plan(project, smaller, budgets, speed, source, spent, jury, n_dev, n_test)
        if _excess(candidate, over) < _excess(plan, over):  # a cut that does not help this budget is not made
            candidate.shrunk = plan.shrunk + [f"{over}: {what}"]
            plan = candidate
    if over := _over(plan, usd, budgets):
        raise UnderdogError(f"the budgets cannot cover the smallest autopilot ({over}); raise them or give it "
                            "less to do in underdog.yaml `autopilot:`")
    plan.when_short = [
        "before each stage its estimate is reserved; a stage that no longer fits what is left is shrunk (fewer "
        "questions, examples or cells) or skipped, and the call path refuses any call past the reservation",
        "before each training run its time is checked against --train-hours / --deadline and --max-runs; a run "
        "that does not fit is not started (the log says so) and the pick is made among the runs that finished",
    ]
    return plan


def _plan(project: Project, s: Settings, budgets: Budgets, speed: float, source: str, spent: float,
          jury: list[str], n_dev: int, n_test: int) -> Plan:
    eta = project.config.autopilot.reduction_factor
    stages = estimate_stages(project, s, jury, n_dev, n_test)
    return Plan(s, stages, s.runs_per_rung(eta), epoch_examples(project, s) * speed, source, budgets, spent, jury)


def _over(plan: Plan, usd: float | None, budgets: Budgets) -> str | None:
    """Which budget the plan exceeds, in words; None when it fits them all."""
    if usd is not None and plan.spent_usd + plan.usd > usd + 1e-9:
        return f"${plan.spent_usd + plan.usd:.2f} estimated > budget ${usd:.2f}"
    if budgets.max_runs is not None and plan.runs > budgets.max_runs:
        return f"{plan.runs} runs > --max-runs {budgets.max_runs}"
    hours = train_hours_left(budgets)
    if hours is not None and plan.train_seconds > hours * 3600:
        return f"{plan.train_seconds / 3600:.2f} training hours > {hours:.2f} available"
    return None


def _excess(plan: Plan, over: str) -> float:
    """The quantity of the budget `over` (as `_over` words it) that the plan uses."""
    if over.startswith("$"):
        return plan.usd
    return plan.runs if "runs" in over else plan.train_seconds


def train_hours_left(budgets: Budgets) -> float | None:
    """Hours training may still take: --train-hours, and what is left before --deadline."""
    limits = [budgets.train_hours] if budgets.train_hours is not None else []
    if budgets.deadline is not None:
        limits.append(max(0.0, (budgets.deadline - time.time()) / 3600))
    return min(limits) if limits else None


def _shrinks(project: Project) -> list[tuple[str, Callable[[Settings], Settings | None]]]:
    """Ways to make the plan smaller, cheapest loss of quality first; each is tried while a budget is exceeded."""
    eta = project.config.autopilot.reduction_factor

    def fewer_trials(s: Settings) -> Settings | None:
        return replace(s, trials=max(eta, s.trials - 1)) if s.trials > eta else None

    steps: list[tuple[str, Callable[[Settings], Settings | None]]] = [
        ("one temperature and top_p in tuning", lambda s: replace(s, temperatures=s.temperatures[:1],
                                                                   top_ps=s.top_ps[:1])),
        ("one system prompt in tuning", lambda s: replace(s, prompts=1)),
    ]
    steps += [("one fewer configuration at the first rung", fewer_trials)] * 16
    steps += [
        ("only the first data variant", lambda s: replace(s, variants=dict(list(s.variants.items())[:1]))),
        ("half the questions per topic", lambda s: replace(s, questions_per_topic=max(1, s.questions_per_topic // 2))),
        ("half the topics", lambda s: replace(s, topics=max(1, s.topics // 2)) if s.topics else None),
        ("a smaller eval set (half)", lambda s: replace(s, evalset_size=max(4, s.evalset_size // 2))),
        ("the last rung only: no halving", lambda s: replace(s, rungs=s.rungs[-1:], trials=1)),
        ("shorter runs", lambda s: replace(s, rungs=(max(1, s.rungs[-1] // 2),), trials=1)),
    ] * 2
    return steps


def describe(plan: Plan) -> list[dict[str, Any]]:
    """The plan's stages as table rows (for the CLI and the report)."""
    rows = [{"stage": s.title, "calls": s.calls, "tokens": s.tokens_in + s.tokens_out, "usd": s.usd,
             "status": "skipped" if s.done else "planned"} for s in plan.stages if s.title]
    return rows
