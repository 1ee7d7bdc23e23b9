"""`underdog autopilot`: plan, run (or resume) and explain the whole loop within budgets (docs/autopilot.md)."""

from __future__ import annotations

import datetime
import re
import time

import typer
from rich.markup import escape
from rich.table import Table

from underdog.cli import app, console, get_project
from underdog.errors import ConfigError

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")


def parse_deadline(text: str | None, now: float | None = None) -> float | None:
    """`--deadline`: a duration from now (`90m`, `2h`, `3d`) or a local date-time (`2026-12-01T18:00`), as epoch
    seconds; ConfigError (exit 2) naming the option otherwise."""
    if text is None:
        return None
    now = time.time() if now is None else now
    if m := DURATION.match(text.strip()):
        return now + float(m[1]) * {"m": 60, "h": 3600, "d": 86400}[m[2]]
    try:
        return datetime.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ConfigError(f"--deadline {text!r}: expected a duration (90m, 2h, 3d) or a date-time "
                            "(2026-12-01T18:00)") from None


@app.command()
def autopilot(
    ctx: typer.Context,
    plan: bool = typer.Option(False, "--plan", help="Print the plan (calls, tokens, dollars, runs, time) and "
                              "spend nothing."),
    log: bool = typer.Option(False, "--log", help="Print the decision log of this project's autopilot."),
    budget_usd: float | None = typer.Option(None, "--budget-usd", min=0, help="API dollars it may spend "
                                            "(default: what underdog.yaml budget_usd leaves)."),
    max_runs: int | None = typer.Option(None, "--max-runs", min=1, help="Training runs at most."),
    train_hours: float | None = typer.Option(None, "--train-hours", min=0, help="Hours of training at most."),
    deadline: str | None = typer.Option(None, "--deadline", help="Stop starting runs after this: 90m, 2h, or "
                                        "2026-12-01T18:00."),
    merge: bool = typer.Option(False, "--merge", help="Put merged full weights in the bundle too."),
    skip_failed: bool = typer.Option(False, "--skip-failed", help="Write generated, ingested and augmented "
                                     "datasets even if some teacher calls failed for good."),
) -> None:
    """From underdog.yaml to the best honest run: data, variants, successive-halving sweep on a dev split, prompt
    and sampling tuning, one final judgment on a test split, report and submission bundle. Resumable."""
    # the library is imported when the command runs: `underdog --help` stays fast
    from underdog.autopilot import Budgets, Journal, decision_lines, plan_autopilot, run_autopilot
    from underdog.autopilot.names import FOLDER

    project = get_project(ctx)
    if log:
        lines = decision_lines(Journal(project.path(FOLDER)).entries("decision"))
        if not lines:
            console.print("no autopilot decisions yet: run `underdog autopilot`", highlight=False)
        for i, line in enumerate(lines, 1):
            console.print(f"{i:3d}. {escape(line)}", highlight=False, soft_wrap=True)
        return
    budgets = Budgets(budget_usd, max_runs, train_hours, parse_deadline(deadline))
    if plan:
        print_plan(plan_autopilot(project, budgets))
        return
    from transformers.utils import logging as hf_logging  # heavy: only when the autopilot runs

    from underdog.autopilot.bundle import summary_lines

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load is noise here
    ctx.with_resource(project.lock("underdog autopilot"))
    outcome = run_autopilot(project, budgets, merge=merge, skip_failed=skip_failed)

    for line in summary_lines(outcome):
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(f"[bold green]done in {outcome.seconds / 60:.1f} min.[/] Bundle: "
                  f"{escape(str(outcome.paths['bundle']))}  Report: {escape(str(outcome.paths['report']))}")


def print_plan(plan: object) -> None:
    from underdog.autopilot.plan import Plan, describe  # with the library, at run time (start-up)

    assert isinstance(plan, Plan)
    table = Table("stage", "calls", "tokens", "USD", "status", title="autopilot plan (estimates are upper bounds)")
    for row in describe(plan):
        table.add_row(escape(row["stage"]), str(row["calls"]), f"{row['tokens']:,}", f"{row['usd']:.2f}",
                      row["status"])
    console.print(table)
    s = plan.settings
    console.print(f"API: ${plan.usd:.2f} estimated" + (f" (${plan.spent_usd:.2f} already spent)" if plan.spent_usd
                                                        else "")
                  + (f", budget ${plan.budgets.usd:.2f}" if plan.budgets.usd is not None else ", no budget set"),
                  highlight=False)
    rungs = ", ".join(f"{n} x {e} epochs" for n, e in zip(plan.runs_per_rung, s.rungs, strict=True))
    runs = f"{plan.runs} run{'s' * (plan.runs != 1)}"
    console.print(f"training: up to {runs} ({rungs}) over {len(s.variants)} data variant(s) "
                  f"({', '.join(s.variants)}), ~{plan.train_seconds / 60:.0f} min at {plan.seconds_per_epoch:.0f} "
                  f"s per epoch ({plan.speed_source})", highlight=False, soft_wrap=True)
    console.print(f"selection jury: {', '.join(plan.jury)}; tuning: {s.cells} cells; test split judged once",
                  highlight=False)
    if plan.fixed_at:
        console.print(f"this autopilot started {time.strftime('%Y-%m-%d %H:%M', time.localtime(plan.fixed_at))} "
                      "with this plan; it keeps it (and its cuts) to the end", highlight=False)
    for line in plan.shrunk:
        console.print(f"[yellow]shrunk to fit:[/] {escape(line)}", soft_wrap=True)
    for line in plan.when_short:
        console.print(f"if a budget runs short: {escape(line)}", soft_wrap=True, highlight=False)
