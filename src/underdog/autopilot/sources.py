"""The autopilot's data sources: topics, then Q&A generated over them and Q&A ingested from your documents.

Each is skipped when its artifact exists (`topics.yaml`, the `autopilot-generated` / `autopilot-docs`
datasets). A teacher that stops at its reservation or makes nothing usable is logged, not fatal: the search
trains on what the other sources made (`--skip-failed` writes a dataset without the calls that failed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from underdog.autopilot.base import Estimate, Pricer, Sizes
from underdog.autopilot.context import Budget, Context
from underdog.autopilot.names import DOCS, GENERATED
from underdog.data.dataset import list_datasets, load_manifest
from underdog.data.generation import generate
from underdog.data.ingestion import ingest, read_chunks
from underdog.data.topics import expand_topics, load_topics, topics_path
from underdog.errors import BudgetExceeded, ConfigError, UnderdogError
from underdog.project import Project


class Topics:
    key, title, artifact = "topics", "topics", "topics.yaml (the topics Q&A and eval questions spread over)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        s = ctx.settings
        rounds = ctx.project.config.data.topic_rounds if s.topics else 0
        row = Pricer(ctx.project)("topics", "topics", f"topics: up to {s.topics}", "teacher", rounds, 400)
        row.done = self.done(ctx)
        return [row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key) or not ctx.settings.topics or topics_path(ctx.project).exists()

    def run(self, ctx: Context, budget: Budget) -> None:
        if project := budget.take("topics"):
            expand_topics(project, size=ctx.settings.topics)


class Generate:
    key, title, artifact = "generate", "data: generate", f"dataset {GENERATED} (Q&A over the topics)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        s = ctx.settings
        row = Pricer(ctx.project)("generate", "generate", f"generate: {s.topics} topics x {s.questions_per_topic} "
                                  "Q&A", "teacher", s.topics * (s.questions_per_topic + 1), 350)
        row.done = self.done(ctx)
        return [row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key) or not ctx.settings.topics or GENERATED in list_datasets(ctx.project.root)

    def run(self, ctx: Context, budget: Budget) -> None:
        s = ctx.settings
        if project := budget.take("generate"):
            topics = load_topics(ctx.project)[: s.topics]
            guarded(ctx, self.key, lambda: generate(project, topics, s.questions_per_topic, name=GENERATED,
                                                    allow_failures=ctx.options.skip_failed))


class Ingest:
    key, title, artifact = "ingest", "data: ingest", f"dataset {DOCS} (Q&A from autopilot.documents)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        data = ctx.project.config.data
        row = Pricer(ctx.project)("ingest", "ingest", f"ingest: {len(ctx.cfg.documents)} documents, {sizes.chunks} "
                                  "chunks", "teacher", sizes.chunks, data.chunk_size // 3 + 200)
        row.done = self.done(ctx)
        return [row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key) or not ctx.cfg.documents or DOCS in list_datasets(ctx.project.root)

    def run(self, ctx: Context, budget: Budget) -> None:
        if project := budget.take("ingest"):
            paths = [resolve_path(ctx.project, d) for d in ctx.cfg.documents]
            guarded(ctx, self.key, lambda: ingest(project, paths, name=DOCS, allow_failures=ctx.options.skip_failed))


def guarded(ctx: Context, stage: str, work: Callable[[], Any]) -> Any:
    """Run a data stage's work; a budget stop or a teacher that made nothing usable is logged, not fatal."""
    try:
        return work()
    except BudgetExceeded as exc:
        ctx.journal.decide(stage, "stopped at its reservation", why=str(exc))
    except UnderdogError as exc:
        ctx.journal.decide(stage, "made nothing usable", why=str(exc))
    return None


def made_datasets(ctx: Context) -> list[str]:
    """The made datasets (generated, ingested) that exist."""
    datasets = list_datasets(ctx.project.root)
    configured = ([GENERATED] if ctx.settings.topics else []) + ([DOCS] if ctx.cfg.documents else [])
    return [name for name in configured if name in datasets]


def count_chunks(project: Project) -> int:
    """Chunks the configured documents split into (read now; no model call)."""
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


def count_yours(project: Project) -> int:
    """Examples of your own datasets (`autopilot.datasets`); ConfigError naming one that does not exist."""
    names = set(list_datasets(project.root))
    for name in project.config.autopilot.datasets:
        if name not in names:
            raise ConfigError(f"autopilot.datasets: no dataset named {name!r} (see `underdog datasets`)")
    return sum(load_manifest(project.root, name).count for name in project.config.autopilot.datasets)


def pool_size(ctx: Context, sizes: Sizes) -> int:
    """Examples the data stages make at `ctx.settings`, plus yours (before any exists: an estimate)."""
    s, data = ctx.settings, ctx.project.config.data
    return s.topics * s.questions_per_topic + sizes.chunks * data.pairs_per_chunk + sizes.yours


def made_count(ctx: Context, sizes: Sizes) -> int:
    """Examples the teacher makes (generated + ingested), which curation rates."""
    return pool_size(ctx, sizes) - sizes.yours
