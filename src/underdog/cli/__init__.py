"""The `underdog` command: a thin Typer layer over the library. Each command's docstring is its --help.

Stage commands live in one module per pipeline stage (core, data, train, evaluate, tune, arena), each adding
its commands to `app`. A user error (UnderdogError) becomes one red line and its exit code, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from underdog.errors import UnderdogError

if TYPE_CHECKING:
    from underdog.project import Project


class PipeConsole(Console):
    """A rich Console that wraps lines only on a terminal: piped or redirected output (files, CI logs, tests)
    keeps each line whole, so a long path stays on the line that names it."""

    @property
    def soft_wrap(self) -> bool:  # type: ignore[override]
        return not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        """Decided by the output, not set."""


console = PipeConsole()
err_console = PipeConsole(stderr=True)


class UnderdogGroup(TyperGroup):
    """Turns UnderdogError into one clean line and KeyboardInterrupt into a short note."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except UnderdogError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished work is saved; run the same command again to resume")
            raise typer.Exit(130) from None


app = typer.Typer(cls=UnderdogGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False, help="Fine-tune a small open LLM to beat a much bigger one.")


@app.callback()
def _root(
    ctx: typer.Context,
    project: Path = typer.Option(Path(os.environ.get("UNDERDOG_PROJECT", ".")), "--project", "-C",
                                 help="Project folder (holds underdog.yaml).", show_default=False),
    set_: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set train.epoch=3."),
) -> None:
    from underdog.cli.progress import RichReporter
    from underdog.project import Project  # here, not at the top: `underdog --help` needs no project

    ctx.obj = Project(project, overrides=set_, reporter=RichReporter(console))


# Commands that call models or write artifacts: one at a time per project (a second one says who holds the lock).
WRITING_COMMANDS = {"topics", "generate", "ingest", "augment", "curate", "import", "train", "sweep", "merge",
                    "answer", "judge", "compare", "tune-prompt", "evalset import", "evalset generate", "arena add",
                    "arena judge", "evalset from-docs", "arena import-votes", "arena simulate-panel", "calibrate",
                    "preferences", "export-model"}


def get_project(ctx: typer.Context, required: bool = True) -> Project:
    """The project the command runs in (from -C / $UNDERDOG_PROJECT / the current folder, or the nearest folder
    above holding an underdog.yaml); unless not `required`, a one-line error outside a project. A writing
    command holds the project's lock until it ends."""
    project: Project = ctx.find_root().obj
    if not required:
        return project
    command = " ".join(command_names(ctx))
    if command in WRITING_COMMANDS and "underdog.lock" not in ctx.meta:
        ctx.meta["underdog.lock"] = ctx.with_resource(project.lock(f"underdog {command}"))
    return project.require()


def command_names(ctx: click.Context) -> list[str]:
    """The names from the root to this command, e.g. ["evalset", "import"]."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


def main() -> None:
    app()


# Stage modules register their commands on import, in pipeline order (the order of `underdog --help`).
from underdog.cli import core, data, train, evaluate, tune, arena, autopilot, demo, studio  # noqa: E402,F401,I001
