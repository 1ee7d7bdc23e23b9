"""`underdog demo`: the main job on the embedded model, offline, end to end (grows with the pipeline)."""

from __future__ import annotations

from pathlib import Path

import typer

from underdog.cli import app, console
from underdog.project import Project, init_project

DEMO_DOMAIN = "US state and local government services: permits, licensing, DMV, property, public health"


@app.command()
def demo(
    directory: Path = typer.Argument(Path("demo-project"), help="Where to put the demo project."),
) -> None:
    """Run the pipeline offline on the embedded SmolLM2 model in a fresh demo project."""
    if not (directory / "underdog.yaml").exists():
        init_project(DEMO_DOMAIN, directory)
    project = Project(directory)
    question = "I want to open a food truck. Which permits do I need?"
    for role in ("student", "reference"):
        reply = project.llm(role, stage="demo").chat(question, max_tokens=80)
        console.print(f"[bold]{role}[/] ({project.model_spec(role).model}): {reply.text}", markup=True)
    console.print(f"demo project: {directory.resolve()}")
