"""`underdog demo`: the whole loop on the shipped Harrowgate County pack, offline (see underdog.pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from underdog.cli import app, console
from underdog.cli.progress import RichReporter

if TYPE_CHECKING:
    from underdog.evaluate.judges.facts import Recall


@app.command()
def demo(
    directory: Path = typer.Argument(Path("demo-project"), help="Where to put the demo project."),
    quick: bool = typer.Option(False, "--quick", help="Smallest sizes (a couple of minutes; what CI runs)."),
    autopilot: bool = typer.Option(False, "--autopilot", help="Set up the pack for `underdog autopilot` with "
                                   "tiny settings and run it (about 15 minutes on 2 cores)."),
) -> None:
    """Run the whole loop offline on a fictional county: ingest its handbook, train on its Q&A, judge vs the base."""
    from transformers.utils import logging as hf_logging

    from underdog.pipeline import run_demo

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load is noise here
    if autopilot:
        _autopilot(directory)
        return
    console.print(f"[bold]underdog demo[/] in {escape(str(directory))} ({'quick' if quick else 'full'} size), offline "
                  "on the embedded smollm2-135m: can it learn facts about a county that does not exist?")
    outcome = run_demo(directory, quick=quick, reporter=RichReporter(console))
    r = outcome.result
    for name, recall in ((r.reference, r.reference_recall), (r.candidate, r.recall)):
        console.print(f"  {name}: {_recall(recall)}", highlight=False)
    console.print(f"  {r.candidate} vs {r.reference}: win rate {100 * r.win_rate:.1f}% (95% CI {100 * r.ci[0]:.1f}-"
                  f"{100 * r.ci[1]:.1f}%) over {r.n} questions ({r.wins} wins, {r.ties} ties, {r.losses} losses), "
                  f"jury: {', '.join(r.judges)}", highlight=False)
    g = outcome.grounded
    console.print(f"  under the grounded judges alone: win rate {100 * g.win_rate:.1f}% (95% CI {100 * g.ci[0]:.1f}-"
                  f"{100 * g.ci[1]:.1f}%) over {g.n} questions ({g.wins} wins, {g.ties} ties)", highlight=False)
    console.print(f"[bold green]done in {outcome.seconds:.0f} s.[/] Report: {outcome.paths['html']}")
    _studio_hint(directory)


def _recall(recall: Recall | None) -> str:
    if recall is None or recall.fact_recall is None or recall.ci is None:
        return "no facts to recall"
    low, high = recall.ci
    return (f"fact recall {100 * recall.fact_recall:.0f}% (95% CI {100 * low:.0f}-{100 * high:.0f}%, "
            f"{recall.stated} of {recall.facts} facts), refused {recall.refused} of {recall.probes} refusal probes")


def _autopilot(directory: Path) -> None:
    from underdog.autopilot import Budgets, run_autopilot
    from underdog.autopilot.bundle import summary_lines
    from underdog.pipeline import setup_autopilot_demo

    console.print(f"[bold]underdog demo --autopilot[/] in {escape(str(directory))}: the autopilot on the fictional "
                  "county, offline on the embedded smollm2-135m (resume with `underdog -C DIR autopilot`)")
    project = setup_autopilot_demo(directory, RichReporter(console))
    with project.lock("underdog demo --autopilot"):
        outcome = run_autopilot(project, Budgets())
    for line in summary_lines(outcome):
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(f"[bold green]done in {outcome.seconds / 60:.1f} min.[/] Decision log: `underdog -C "
                  f"{escape(str(directory))} autopilot --log`; bundle: {escape(str(outcome.paths['bundle']))}")
    _studio_hint(directory)


def _studio_hint(directory: Path) -> None:
    console.print(f"Open it in a browser: [bold]underdog -C {escape(str(directory))} studio[/]", soft_wrap=True)
