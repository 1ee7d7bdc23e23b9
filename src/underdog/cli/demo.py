"""`underdog demo`: the main job on the embedded model, offline, end to end (see underdog.evaluate.demo)."""

from __future__ import annotations

from pathlib import Path

import typer

from underdog.cli import app, console


@app.command()
def demo(
    directory: Path = typer.Argument(Path("demo-project"), help="Where to put the demo project."),
    quick: bool = typer.Option(False, "--quick", help="Smallest sizes (about a minute; what CI runs)."),
) -> None:
    """Run the whole loop offline on the embedded SmolLM2: topics, eval set, data, two LoRA runs, judge, report."""
    from underdog.evaluate.demo import run_demo

    run_demo(directory, quick=quick, console=console)
