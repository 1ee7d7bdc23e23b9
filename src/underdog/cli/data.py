"""Data commands: topics, generate, ingest, augment, curate, import, export, preferences, datasets [show NAME]."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from underdog.cli import app, console, get_project
from underdog.cli.lazy import lazy

augment_dataset = lazy("underdog.data.augmentation", "augment")
curate_dataset = lazy("underdog.data.curation", "curate")
export_dataset = lazy("underdog.data.formats", "export_dataset")
import_dataset = lazy("underdog.data.formats", "import_dataset")
generate_dataset = lazy("underdog.data.generation", "generate")
ingest_documents = lazy("underdog.data.ingestion", "ingest")
dataset_rows = lazy("underdog.data.stats", "dataset_rows")
dataset_stats = lazy("underdog.data.stats", "dataset_stats")
preference_stats = lazy("underdog.data.stats", "preference_stats")
load_manifest = lazy("underdog.data.dataset", "load_manifest")
build_preferences = lazy("underdog.arena.preferences", "build_preferences")
length_histogram = lazy("underdog.data.stats", "length_histogram")
recipe_summary = lazy("underdog.data.stats", "recipe_summary")
expand_topics = lazy("underdog.data.topics", "expand_topics")

if TYPE_CHECKING:
    from underdog.data.dataset import Manifest

ENCODING = typer.Option("utf-8", "--encoding", help="Text encoding of the file(s), e.g. latin-1, cp1252.")
datasets_app = typer.Typer(help="List dataset versions, or show one.", invoke_without_command=True)
app.add_typer(datasets_app, name="datasets")


def _report(manifest: Manifest, skip: tuple[str, ...] = ()) -> None:
    console.print(f"[green]wrote dataset[/] [bold]{manifest.name}[/]: {manifest.count} examples "
                  f"(sha256 {manifest.sha256[:12]})")
    for key, value in manifest.counts.items():
        if key not in skip and value not in ({}, []):
            console.print(f"  {key}: {escape(str(value))}", highlight=False)


@app.command()
def topics(
    ctx: typer.Context,
    size: int | None = typer.Option(None, "--size", "-n", help="How many topics in all (default: data.num_topics)."),
    topic: list[str] = typer.Option([], "--topic", "-t", help="A topic of your own (repeatable)."),
) -> None:
    """Expand the domain into categories and subtopics with the teacher; write an editable topics.yaml.

    Your topics (--topic, data.topics, and an existing topics.yaml) are always kept.
    """
    project = get_project(ctx)
    found = expand_topics(project, size=size, extra=topic)
    categories = {t.category for t in found}
    console.print(f"wrote {project.root / 'topics.yaml'}: {len(found)} topics in {len(categories)} categories")


@app.command()
def generate(
    ctx: typer.Context,
    name: str = typer.Option("base", "--name", help="Name of the new dataset version."),
    questions: int | None = typer.Option(None, "--questions", "-q",
                                         help="Questions per topic (default: data.questions_per_topic)."),
    teacher: str = typer.Option("teacher", "--teacher", help="Model (role, provider:model) that writes the data."),
    skip_failed: bool = typer.Option(False, "--skip-failed", help="Write the dataset even if some calls failed."),
) -> None:
    """Generate realistic questions per topic (topics.yaml) and answer each with the teacher. Resumable."""
    _report(generate_dataset(get_project(ctx), questions_per_topic=questions, name=name, teacher=teacher,
                             allow_failures=skip_failed))


@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders: PDF, HTML, Markdown, TXT, DOCX, CSV."),
    name: str = typer.Option("ingested", "--name", help="Name of the new dataset version."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help="Characters per chunk (data.chunk_size)."),
    overlap: int | None = typer.Option(None, "--overlap", help="Characters of overlap (data.chunk_overlap)."),
    pairs: int | None = typer.Option(None, "--pairs", help="Q&A pairs per chunk (data.pairs_per_chunk)."),
    skip_failed: bool = typer.Option(False, "--skip-failed", help="Write the dataset even if some calls failed."),
    encoding: str = ENCODING,
) -> None:
    """Turn documents into chunks and grounded Q&A pairs; corrupt or unsupported files are reported and skipped."""
    manifest = ingest_documents(get_project(ctx), paths, name=name, chunk_size=chunk_size, overlap=overlap,
                                pairs_per_chunk=pairs, allow_failures=skip_failed, encoding=encoding)
    _report(manifest, skip=("skipped",))
    for item in manifest.counts.get("skipped", []):
        console.print(f"[yellow]skipped[/] {escape(item['file'])}: {escape(item['reason'])}", highlight=False)


@app.command()
def augment(
    ctx: typer.Context,
    slices: list[str] = typer.Argument(..., help="refusals, spanish (any language), locality, summary, or a dataset."),
    base: str = typer.Option("base", "--base", help="Dataset version to add the slices to."),
    name: str | None = typer.Option(None, "--name", help="New version name (default: base+slice+...)."),
    skip_failed: bool = typer.Option(False, "--skip-failed", help="Write the dataset even if some calls failed."),
) -> None:
    """Mix named slices (refusals, translations, locality variants, summaries, other versions) into a new one."""
    _report(augment_dataset(get_project(ctx), base, slices, name=name, allow_failures=skip_failed))


@app.command()
def curate(
    ctx: typer.Context,
    dataset: str = typer.Argument("base", help="Dataset version to curate."),
    name: str | None = typer.Option(None, "--name", help="New version name (default: <dataset>-curated)."),
    rate: bool | None = typer.Option(None, "--rate/--no-rate", help="LLM quality rating (data.curate.rate)."),
    threshold: float | None = typer.Option(None, "--threshold", help="Keep ratings >= this (1-10)."),
    near_dup: float | None = typer.Option(None, "--near-dup", help="Near-duplicate Jaccard threshold."),
    decontam: float | None = typer.Option(None, "--decontam", help="Eval-question similarity that removes."),
    semantic: bool | None = typer.Option(None, "--semantic/--no-semantic",
                                         help="Also compare questions by meaning (data.curate.semantic)."),
    semantic_dup: float | None = typer.Option(None, "--semantic-dup", help="Near-duplicate cosine threshold."),
    semantic_decontam: float | None = typer.Option(None, "--semantic-decontam",
                                                   help="Eval-question cosine similarity that removes."),
    rater: str = typer.Option("teacher", "--rater", help="Model that rates (role or provider:model)."),
    evalset: list[str] = typer.Option([], "--evalset", help="Eval sets to decontaminate against (default: all)."),
) -> None:
    """Rate, deduplicate, clean and decontaminate a dataset; report what was removed and why."""
    manifest, report = curate_dataset(get_project(ctx), dataset, name, rate=rate, threshold=threshold,
                                   near_dup_threshold=near_dup, decontam_threshold=decontam, semantic=semantic,
                                   semantic_dup_threshold=semantic_dup, semantic_decontam_threshold=semantic_decontam,
                                   evalsets=evalset or None, rater=rater)
    console.print(f"[green]wrote dataset[/] [bold]{manifest.name}[/]: kept {report['kept']} of {report['input']}")
    _print_reasons(report)


def _print_reasons(report: dict[str, Any]) -> None:
    table = Table("removed / fixed", "count", "examples")
    for reason, count in [*report["removed"].items(), *[(f"fixed: {k}", v) for k, v in report["fixed"].items()]]:
        table.add_row(reason, str(count), "\n".join(report["examples"].get(reason, [])))
    if table.row_count:
        console.print(table)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A JSONL or CSV file (messages, alpaca, sharegpt, prompt/completion...)."),
    name: str | None = typer.Option(None, "--name", help="Dataset version name (default: the file name)."),
    encoding: str = ENCODING,
) -> None:
    """Import an existing dataset file as a dataset version; malformed lines are reported with their number."""
    manifest = import_dataset(get_project(ctx), file, name=name, encoding=encoding)
    _report(manifest, skip=("problems", "trimmed"))
    if trimmed := manifest.counts.get("trimmed"):
        fields = ", ".join(f"'{key}' of {n} record{'s' * (n != 1)}" for key, n in trimmed.items())
        console.print(f"  whitespace trimmed at the ends of {escape(fields)}", highlight=False)
    for problem in manifest.counts.get("problems", []):
        console.print(f"[yellow]skipped[/] {escape(problem)}", highlight=False)


@app.command()
def export(
    ctx: typer.Context,
    name: str = typer.Argument("base", help="Dataset version to export."),
    fmt: str = typer.Option("messages", "--format", "-f", help="messages | alpaca | sharegpt | jumpstart | csv | trl "
                            "(TRL's prompt-completion rows; a preference dataset's prompt/chosen/rejected rows)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: exports/<name>-<format>)."),
    validation: float | None = typer.Option(None, "--validation", help="Validation share (data.validation_split)."),
    seed: int | None = typer.Option(None, "--seed", help="Split seed (data.seed)."),
) -> None:
    """Write a dataset version for other tools, with a seeded train/validation split."""
    for path in export_dataset(get_project(ctx), name, fmt, out, validation_split=validation, seed=seed):
        console.print(f"wrote {path}", highlight=False)


@datasets_app.callback()
def datasets(ctx: typer.Context) -> None:
    """List dataset versions with counts, parents and recipes."""
    if ctx.invoked_subcommand:
        return
    rows = dataset_rows(get_project(ctx))
    if not rows:
        console.print("no dataset versions yet: create one with `underdog generate`, `ingest` or `import`")
        return
    table = Table(Column("name", no_wrap=True), "kind", "examples", "parent", "recipe", "created")
    for row in rows:
        table.add_row(row["name"], row["kind"], str(row["count"]), row["parent"], escape(row["recipe"]),
                      row["created"])
    console.print(table)


@datasets_app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset version."),
    sample: int = typer.Option(3, "--sample", help="How many examples to print."),
) -> None:
    """Print a sample and statistics of one version (topic coverage; length histogram as a PNG)."""
    project = get_project(ctx)
    if load_manifest(project.root, name).kind == "preference":
        _show_preferences(project, name, sample)
        return
    stats = dataset_stats(project, name, sample=sample)
    console.print(f"[bold]{name}[/]: {stats['count']} examples, parent {stats['parent'] or '-'}, "
                  f"sha256 {stats['sha256'][:12]}")
    console.print(f"recipe: {escape(recipe_summary(stats['recipe']))}", highlight=False)
    console.print(f"slices: {stats['slices']}  sources: {stats['sources']}", highlight=False)
    for label in ("question_words", "answer_words"):
        console.print(f"{label}: {stats[label]}", highlight=False)
    topics = Table("topic", "examples")
    for topic, count in stats["topics"][:30]:
        topics.add_row(escape(topic), str(count))
    console.print(topics)
    for example in stats["sample"]:
        console.print(f"[bold cyan]Q:[/] {escape(example.question)}\n[bold green]A:[/] {escape(example.answer)}\n")
    console.print(f"length histogram: {length_histogram(project, name)}", highlight=False)


def _show_preferences(project: Any, name: str, sample: int) -> None:
    stats = preference_stats(project, name, sample=sample)
    console.print(f"[bold]{name}[/]: {stats['count']} preference pairs (prompt, chosen, rejected), parent "
                  f"{stats['parent'] or '-'}, sha256 {stats['sha256'][:12]}")
    console.print(f"recipe: {escape(recipe_summary(stats['recipe']))}", highlight=False)
    console.print(f"sources: {stats['sources']}  question sets: {stats['question_sets']}", highlight=False)
    if stats["simulated"]:
        console.print(f"[yellow]SIMULATED: {stats['simulated']} pairs come from the simulated voter panel's votes, "
                      "not people's[/]")
    for label in ("weight", "chosen_words", "rejected_words"):
        console.print(f"{label}: {stats[label]}", highlight=False)
    for key, value in stats["counts"].items():
        console.print(f"  {key}: {escape(str(value))}", highlight=False)
    for pair in stats["sample"]:
        console.print(f"[bold cyan]Q:[/] {escape(pair.question)}\n[bold green]chosen:[/] {escape(pair.chosen)}\n"
                      f"[bold red]rejected:[/] {escape(pair.rejected)}\n")


@app.command()
def preferences(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Name of the new preference dataset version."),
    votes: bool = typer.Option(False, "--votes", help="Pairs from the arena's votes (ties and 'both bad' dropped, "
                               "roles weighted as in the blended score; eval-set votes refused)."),
    verdicts: tuple[str, str] | None = typer.Option(None, "--verdicts", help="Two candidates (roles, runs, models) "
                                                    "answer --questions; the jury's pick is chosen."),
    samples: str | None = typer.Option(None, "--samples", help="A model answers --questions n times; the jury "
                                       "ranks the samples (best chosen, worst rejected)."),
    n: int = typer.Option(4, "--n", "-n", min=2, help="Samples per question (with --samples)."),
    questions: str | None = typer.Option(None, "--questions", "-q", help="Training questions for --verdicts / "
                                         "--samples: dataset:NAME or a question file (eval-set questions refused)."),
    max_questions: int | None = typer.Option(None, "--max-questions", min=1, help="The first N questions only."),
    judges: list[str] | None = typer.Option(None, "--judge", "-j", help="The jury for --verdicts / --samples, e.g. "
                                            "-j people (default: evaluate.judges)."),
) -> None:
    """Build an immutable preference dataset version (prompt, chosen, rejected) from votes, jury verdicts
    between two candidates, or ranked samples; for `underdog train --method dpo`."""
    from underdog.cli.evaluate import check_judges  # the one check of judge names, shared with `judge`

    project = get_project(ctx)
    manifest, counts = build_preferences(project, name, votes=votes, verdicts=verdicts, samples=samples,
                                         questions=questions, judges=check_judges(project, judges), n=n,
                                         max_questions=max_questions)
    console.print(f"[green]wrote preference dataset[/] [bold]{manifest.name}[/]: {manifest.count} pairs "
                  f"(sha256 {manifest.sha256[:12]})")
    for key, value in counts.items():
        console.print(f"  {key}: {escape(str(value))}", highlight=False)
    refused = (counts.get("votes") or {}).get("eval_set_votes_refused", 0) + counts.get(
        "eval_set_questions_refused", 0)
    if refused:
        console.print(f"left out {refused} votes/questions on eval-set questions: they evaluate, they never become "
                      "training data", highlight=False)
    if (counts.get("votes") or {}).get("simulated_votes"):
        console.print("[yellow]SIMULATED: some votes come from the simulated voter panel, not people[/]")
