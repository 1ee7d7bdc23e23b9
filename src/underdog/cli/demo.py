"""`underdog demo`: the whole loop on the shipped Harrowgate County pack, offline (see underdog.pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from underdog.cli.progress import RichReporter
from underdog.cli.root import app, console

if TYPE_CHECKING:
    from underdog.evaluate.judges.facts import Recall


@app.command()
def demo(
    directory: Path = typer.Argument(Path("demo-project"), help="Where to put the demo project."),
    quick: bool = typer.Option(False, "--quick", help="Smallest sizes (a couple of minutes; what CI runs)."),
    autopilot: bool = typer.Option(False, "--autopilot", help="Set up the pack for `underdog autopilot` with "
                                   "tiny settings and run it (about 15 minutes on 2 cores)."),
    people: bool = typer.Option(False, "--people", help="After the SFT run (reused when DIR holds it): DPO toward "
                                "what a SIMULATED voter panel prefers, judged by it on the held-out questions."),
) -> None:
    """Run the whole loop offline on a fictional county: ingest its handbook, train on its Q&A, judge vs the base."""
    from transformers.utils import logging as hf_logging

    from underdog.pipeline import REFUSALS_RUN, run_demo  # lazy: start-up

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load is noise here
    if autopilot:
        _autopilot(directory)
        return
    if people:
        from underdog.cli.demo_people import people_demo  # lazy: start-up

        people_demo(directory, quick)
        return
    console.print(f"[bold]underdog demo[/] in {escape(str(directory))} ({'quick' if quick else 'full'} size), offline "
                  "on the embedded smollm2-135m: can it learn facts about a county that does not exist, and when to "
                  "decline?")
    outcome = run_demo(directory, quick=quick, reporter=RichReporter(console))
    r = outcome.result
    recalls = ((f"{r.reference} (base)", r.reference_recall), (f"{r.candidate} (plain)", r.recall),
               (f"{REFUSALS_RUN} (+refusals)", outcome.results[REFUSALS_RUN].recall))
    for name, recall in recalls:
        console.print(f"  {escape(name)}: {_recall(recall)}", highlight=False)
    for result in outcome.results.values():
        console.print(f"  {result.candidate} vs {result.reference}: win rate {100 * result.win_rate:.1f}% (95% CI "
                      f"{100 * result.ci[0]:.1f}-{100 * result.ci[1]:.1f}%) over {result.n} questions ({result.wins} "
                      f"wins, {result.ties} ties, {result.losses} losses), jury: {', '.join(result.judges)}",
                      highlight=False)
    g = outcome.grounded
    console.print(f"  {r.candidate} under the grounded judges alone: win rate {100 * g.win_rate:.1f}% (95% CI "
                  f"{100 * g.ci[0]:.1f}-{100 * g.ci[1]:.1f}%) over {g.n} questions ({g.wins} wins, {g.ties} ties)",
                  highlight=False)
    for question, *answers in outcome.probes:
        console.print(f"  refusal probe: {escape(question)}", highlight=False)
        for (name, _), text in zip(recalls, answers, strict=True):
            console.print(f"    {escape(name)}: {escape(' '.join(text.split()))}", highlight=False)
    console.print("  phases: " + ", ".join(f"{title.split(':')[0]} {seconds:.0f} s"
                                           for title, seconds in outcome.phases.items()), highlight=False)
    console.print(f"[bold green]done in {outcome.seconds:.0f} s.[/] Report: {outcome.paths['html']}")
    _studio_hint(directory)


def _recall(recall: Recall | None) -> str:
    if recall is None:
        return "no ground truth"
    parts = []
    if recall.ci is not None and recall.fact_recall is not None:
        low, high = recall.ci
        parts.append(f"fact recall {100 * recall.fact_recall:.0f}% (95% CI {100 * low:.0f}-{100 * high:.0f}%, "
                     f"{recall.stated} of {recall.facts} facts), declined {recall.over_refused} fact questions")
    if recall.refusal_ci is not None and recall.refusal_accuracy is not None:
        low, high = recall.refusal_ci
        parts.append(f"refusal accuracy {100 * recall.refusal_accuracy:.0f}% (95% CI {100 * low:.0f}-"
                     f"{100 * high:.0f}%, {recall.refused} of {recall.probes} refusal probes declined)")
    return "; ".join(parts)


def _autopilot(directory: Path) -> None:
    from underdog.autopilot import Budgets, run_autopilot  # lazy: start-up
    from underdog.autopilot.bundle import summary_lines  # lazy: start-up
    from underdog.pipeline import setup_autopilot_demo  # lazy: start-up

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
