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

console = Console()
err_console = Console(stderr=True)


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
    from underdog.project import Project  # here, not at the top: `underdog --help` needs no project

    ctx.obj = Project(project, overrides=set_)


def get_project(ctx: typer.Context) -> Project:
    """The project the command runs in (from -C / $UNDERDOG_PROJECT / the current folder)."""
    return ctx.find_root().obj


def main() -> None:
    app()


# Stage modules register their commands on import, in pipeline order (the order of `underdog --help`).
from underdog.cli import core, data, train, evaluate, tune, arena, demo  # noqa: E402,F401,I001
