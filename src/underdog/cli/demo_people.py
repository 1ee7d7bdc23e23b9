"""`underdog demo DIR --people`: the demo's SFT run moved toward a SIMULATED voter panel (see underdog.people_loop)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from underdog.cli.progress import RichReporter
from underdog.cli.root import console


def people_demo(directory: Path, quick: bool) -> None:
    """Run (or resume) the people loop on the demo pack and print its figures."""
    from underdog.people_loop import SIMULATED, run_people_demo, summary_lines  # lazy: start-up

    console.print(f"[bold]underdog demo --people[/] in {escape(str(directory))}: no people are reachable offline, so "
                  f"a [yellow]{SIMULATED}[/] (a simulation, not people) votes; can DPO move the SFT run toward it?")
    outcome = run_people_demo(directory, quick=quick, reporter=RichReporter(console))
    for line in summary_lines(outcome):
        console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    console.print(f"[bold green]done in {outcome.seconds:.0f} s[/] (the people loop). Report: "
                  f"{escape(str(outcome.paths['html']))}")
