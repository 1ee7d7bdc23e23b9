"""The autopilot's plan: what each stage will call and cost, the training runs and their time, and what was
shrunk to fit the budgets. Computing it spends nothing; `underdog autopilot --plan` prints it.

    plan = plan_autopilot(project, Budgets(usd=20, max_runs=12, train_hours=2))
    plan.usd, plan.train_seconds, plan.shrunk

Dollar estimates are upper bounds, like the call path's own budget check: ~3 characters per token for prompts
and every reply at its full `max_tokens`; each stage of the table (stages.py) prices its own rows. A stage whose
artifact exists costs nothing (it is skipped), and what the project already spent is subtracted from the budget.
Training time is each run's examples x epochs x the seconds per example-epoch of earlier runs of the same base
model on this machine (evaluation included), else an estimate from the model's size (~200 tokens per example).

The first run fixes the plan: it is kept in the journal and reused as it is when the autopilot resumes (`fixed_plan`),
so a resumed run makes the same cuts and the same data as one never killed.
"""

from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from pydantic import ValidationError

from underdog.autopilot import stages
from underdog.autopilot.base import Budgets, Plan, Settings, Sizes
from underdog.autopilot.context import Context
from underdog.autopilot.evalsets import planned_split
from underdog.autopilot.halving import search_space
from underdog.autopilot.journal import Journal
from underdog.autopilot.names import FOLDER, variant_dataset
from underdog.autopilot.sources import count_chunks, count_yours, pool_size
from underdog.config import AutopilotConfig, TrainConfig
from underdog.data.dataset import list_datasets, load_manifest
from underdog.errors import ConfigError, UnderdogError
from underdog.llm.local import resolve_model_path
from underdog.project import Project
from underdog.train.memory import model_shape
from underdog.train.runs import list_runs
from underdog.train.search import dimension_problem

EXAMPLE_TOKENS = 200  # a training example, before the data exists
CPU_PARAM_TOKENS = 1.75e10  # tokens/s x parameters: 130 tokens/s for 135M parameters on 2 cores (measured)
GPU_PARAM_TOKENS = 4e13  # ... about 9,000 tokens/s for 8B, 37,000 for 1B on an H200 (gpu-baselines.md)
PLAN_EVENT = "plan"


def plan_autopilot(project: Project, budgets: Budgets, spent: float = 0.0) -> Plan:
    """The plan for this project: the fixed one when this project's autopilot has started, else a new one
    (`spent`: dollars already spent of `budgets.usd`). Nothing is spent."""
    journal = Journal(project.path(FOLDER))
    if (plan := fixed_plan(project, journal, budgets)) is not None:
        fresh = estimates(Context(project, plan.settings, journal), measure(project))
        done = {row.key: row.done for row in fresh}
        for row in plan.stages:
            row.done = done.get(row.key, row.done)
        return plan
    usd = budgets.usd
    if usd is None and project.config.budget_usd is not None:
        usd = max(0.0, project.config.budget_usd - project.store.spent_usd())
    return make_plan(project, replace(budgets, usd=usd), measure(project), spent=spent)


def fixed_plan(project: Project, journal: Journal, budgets: Budgets) -> Plan | None:
    """The plan the autopilot started with (this command's `budgets`), or None before it started; ConfigError
    when `autopilot:` changed since (a started autopilot keeps its plan)."""
    events = journal.events(step=PLAN_EVENT)
    if not events:
        return None
    then, now = events[0]["config"], project.config.autopilot.model_dump(mode="json")
    if changed := [key for key in now if key in then and then[key] != now[key]]:  # a setting added since: kept
        key = changed[0]
        raise ConfigError(f"autopilot.{key}: changed since this autopilot started ({then.get(key)!r} -> "
                          f"{now[key]!r}); a started autopilot keeps its plan: set it back, or move "
                          f"{journal.folder} away to start a new one")
    return replace(Plan.from_json(events[0]["plan"]), budgets=budgets)


def fix_plan(project: Project, journal: Journal, plan: Plan) -> Plan:
    """Record `plan` as the one this autopilot runs with, to the end and after any resume."""
    plan.fixed_at = time.time()
    journal.event(step=PLAN_EVENT, plan=plan.to_json(), config=project.config.autopilot.model_dump(mode="json"))
    return plan


# -- settings ---------------------------------------------------------------------------------------------
def check_settings(project: Project) -> None:
    """ConfigError naming the `autopilot.` key of a setting that would fail later, before anything is spent: a
    search dimension or fixed override that is no train setting or whose values `train` would refuse, a malformed
    range (temperatures and top_ps are checked by the config itself, with serve's rules; documents, datasets and
    slices where they are estimated)."""
    cfg = project.config.autopilot
    for section, keys in (("space", cfg.space), ("fixed", cfg.fixed)):
        for key in keys:
            if key not in TrainConfig.model_fields or key == "sagemaker":
                raise ConfigError(f"autopilot.{section}.{key}: not a train setting (see `train:` in "
                                  "docs/training.md)")
    search_space(cfg.space, list(cfg.variants))
    for key, value in cfg.fixed.items():
        check_train_value(project, f"autopilot.fixed.{key}", key, value)
    for key, spec in cfg.space.items():
        for value in dimension_values(spec):
            check_train_value(project, f"autopilot.space.{key}", key, value)


def dimension_values(spec: Any) -> list[Any]:
    """The values a search dimension can take that `train` must accept: each choice; a range's ends (and for a
    float range one value inside, which an integer setting would refuse)."""
    assert dimension_problem(spec) is None
    if isinstance(spec, list):
        return list(spec)
    low, high = spec["low"], spec["high"]
    inside = [low + (high - low) * 0.37] if isinstance(low, float) or isinstance(high, float) else []
    return [low, high, *inside]


def check_train_value(project: Project, where: str, key: str, value: Any) -> None:
    """ConfigError naming `where` when `train` would refuse `key: value` (the train config's own rules)."""
    try:
        TrainConfig.model_validate({**project.config.train.model_dump(), key: value})
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {value!r}: {problem}") from None


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
def measure(project: Project) -> Sizes:
    """The jury, dev and test questions, document chunks and your examples the estimates count from."""
    jury, n_dev, n_test = planned_split(project)
    return Sizes(tuple(jury), n_dev, n_test, count_chunks(project), count_yours(project))


def estimates(ctx: Context, sizes: Sizes) -> list[Any]:
    """Every stage's priced rows at `ctx.settings`, in the table's order."""
    return [row for stage in stages.STAGES for row in stage.estimate(ctx, sizes)]


def training_speed(project: Project) -> tuple[float, str]:
    """Seconds of training per example and epoch for the student on this machine (evaluation passes included):
    the median of earlier runs of the same base model, else an estimate from its parameter count and the device."""
    student = project.config.models["student"].model
    measured = [r.metrics["train_runtime_s"] / (r.metrics["epochs"] * r.metrics["train_examples"])
                for r in list_runs(project.root) if r.status == "done" and r.base_model == student
                and r.metrics.get("train_runtime_s") and r.metrics.get("epochs") and r.metrics.get("train_examples")]
    if measured:
        return float(statistics.median(measured)), f"median of {len(measured)} earlier runs on this machine"
    params = model_shape(resolve_model_path(student))["n_params"]
    gpu = torch.cuda.is_available()
    tokens_per_s = (GPU_PARAM_TOKENS if gpu else CPU_PARAM_TOKENS) / params
    return EXAMPLE_TOKENS / tokens_per_s, (f"estimate for {params / 1e6:.0f}M parameters on "
                                           f"{'a GPU' if gpu else 'the CPU'}, {EXAMPLE_TOKENS} tokens per example")


def epoch_examples(ctx: Context, sizes: Sizes) -> int:
    """Training examples of one epoch over the largest data variant (counted when it exists, else estimated)."""
    root, datasets = ctx.project.root, set(list_datasets(ctx.project.root))
    names = [variant_dataset(v) for v in ctx.settings.variants if variant_dataset(v) in datasets]
    examples = max(load_manifest(root, n).count for n in names) if names else pool_size(ctx, sizes)
    validation = ctx.cfg.fixed.get("validation_split_ratio", ctx.project.config.train.validation_split_ratio)
    return max(1, round(examples * (1 - validation)))


# -- fitting the budgets ----------------------------------------------------------------------------------
def make_plan(project: Project, budgets: Budgets, sizes: Sizes, spent: float = 0.0) -> Plan:
    """The plan at the configured sizes, shrunk step by step until it fits every budget (each cut recorded);
    UnderdogError when even the smallest plan does not fit. `spent`: dollars already spent of `budgets.usd`."""
    check_settings(project)
    if budgets.deadline is not None and budgets.deadline <= time.time():
        when = datetime.datetime.fromtimestamp(budgets.deadline).isoformat(" ", "minutes")
        raise ConfigError(f"--deadline {when} has passed: no training run could start; give a later one "
                          "(90m, 2h, or a date-time)")
    speed, source = training_speed(project)
    usd = budgets.usd if budgets.usd is not None else project.config.budget_usd
    journal = Journal(project.path(FOLDER))

    def planned(s: Settings) -> Plan:
        ctx = Context(project, s, journal)
        return Plan(s, estimates(ctx, sizes), s.runs_per_rung(ctx.cfg.reduction_factor),
                    epoch_examples(ctx, sizes) * speed, source, budgets, spent, list(sizes.jury))

    plan = planned(settings_of(project))
    for what, shrink in _shrinks(project):
        over = _over(plan, usd, budgets)
        if not over:
            break
        smaller = shrink(plan.settings)
        if smaller is None or smaller == plan.settings:
            continue
        candidate = planned(smaller)
        if _excess(candidate, over) < _excess(plan, over):  # a cut that does not help this budget is not made
            candidate.shrunk = plan.shrunk + [f"{over}: {what}"]
            plan = candidate
    if over := _over(plan, usd, budgets):
        raise UnderdogError(f"the budgets cannot cover the smallest autopilot ({over}); raise them or give it "
                            "less to do in underdog.yaml `autopilot:`")
    plan.when_short = [
        "before each stage its estimate is reserved; a stage that no longer fits what is left is skipped (tuning, "
        "augmenting, topics) or stops the autopilot (the eval set, judging, the test), and the call path refuses "
        "any call past the reservation",
        "before each training run its time is checked against --train-hours / --deadline and --max-runs; a run "
        "that does not fit is not started (the log says so) and the pick is made among the runs that finished",
    ]
    return plan


def _over(plan: Plan, usd: float | None, budgets: Budgets) -> str | None:
    """Which budget the plan exceeds, in words; None when it fits them all."""
    if usd is not None and plan.spent_usd + plan.usd > usd + 1e-9:
        return f"${plan.spent_usd + plan.usd:.2f} estimated > budget ${usd:.2f}"
    if budgets.max_runs is not None and plan.runs > budgets.max_runs:
        return f"{plan.runs} runs > --max-runs {budgets.max_runs}"
    hours = budgets.train_hours_left()
    if hours is not None and plan.train_seconds > hours * 3600:
        return f"{plan.train_seconds / 3600:.2f} training hours > {hours:.2f} available"
    return None


def _excess(plan: Plan, over: str) -> float:
    """The quantity of the budget `over` (as `_over` words it) that the plan uses."""
    if over.startswith("$"):
        return plan.usd
    return plan.runs if "runs" in over else plan.train_seconds


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
    return [{"stage": s.title, "calls": s.calls, "tokens": s.tokens_in + s.tokens_out, "usd": s.usd,
             "status": "skipped" if s.done else "planned"} for s in plan.stages if s.title]
