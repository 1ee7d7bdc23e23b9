"""Final-round tuning: `underdog tune-prompt`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from underdog.cli import app, console, get_project
from underdog.cli.evaluate import print_jury_status
from underdog.cli.lazy import lazy

load_prompts = lazy("underdog.tune.prompt", "load_prompts")
record_best = lazy("underdog.tune.prompt", "record_best")
tune_prompt = lazy("underdog.tune.prompt", "tune_prompt")
write_report = lazy("underdog.tune.prompt", "write_report")
report_dir = lazy("underdog.tune.prompt", "report_dir")


@app.command("tune-prompt")
def tune_prompt_command(
    ctx: typer.Context,
    model: str = typer.Argument("student", help="The fixed model: a role, run id, or model id."),
    prompts: Path | None = typer.Option(None, "--prompts", "-p", help="System prompts (YAML list/mapping, or "
                                        "text split by '---' lines; default: tune.prompts)."),
    temperature: list[float] = typer.Option([], "--temperature", "-t", help="Repeat for a grid (default: "
                                            "tune.temperatures)."),
    top_p: list[float] = typer.Option([], "--top-p", help="Repeat for a grid (default: tune.top_ps)."),
    best_of: int | None = typer.Option(None, "--best-of", "-n", min=1, help="Samples per question; the judge "
                                       "keeps the best (default: tune.best_of)."),
    evalset: str | None = typer.Option(None, "--evalset", "-e", help="Eval set (default: tune.evalset, else "
                                       "evaluate.evalset, else the newest)."),
    reference: str | None = typer.Option(None, "--reference", help="Judge against this (default: "
                                         "evaluate.reference)."),
) -> None:
    """Grid of system prompt x temperature x top_p for one model, each cell judged against the reference:
    a ranked table, reports/tune/<id>/{results.csv, heatmap.png, summary.md, best.yaml}."""
    project = get_project(ctx)
    cfg = project.config.tune
    candidates = load_prompts(prompts or project.root / cfg.prompts)
    result = tune_prompt(project, model, candidates, temperature or cfg.temperatures, top_p or cfg.top_ps,
                         best_of=best_of or cfg.best_of, evalset=evalset, reference=reference,
                         on_cell=lambda c: console.print(f"  {escape(c.prompt.name)} t={c.temperature:g} "
                                                         f"p={c.top_p:g}: {c.win_rate:.1%}"))
    paths = write_report(result, report_dir(project, model))
    table = Table("#", "prompt", "temperature", "top_p", "win rate", "95% CI", "W/T/L", "mean chars",
                  title=f"{model} vs {result.reference} on {result.evalset}"
                  + (f" (best of {result.best_of})" if result.best_of > 1 else ""))
    for i, c in enumerate(result.ranked(), 1):
        table.add_row(str(i), escape(c.prompt.name), f"{c.temperature:g}", f"{c.top_p:g}", f"{c.win_rate:.1%}",
                      f"{c.ci[0]:.0%}-{c.ci[1]:.0%}", f"{c.count('first')}/{c.count('tie')}/{c.count('second')}",
                      f"{c.mean_chars:.0f}")
    console.print(table)
    console.print(f"heatmap: {paths['heatmap']}\nbest settings (paste into the model's spec, or `underdog arena add "
                  f"{model} --settings`): {paths['best']}", soft_wrap=True)
    recorded = record_best(project, result)
    if recorded:
        console.print(f"on the leaderboard as {recorded.candidate!r}", markup=False, highlight=False)
    print_jury_status(project)
