"""The `underdog` command: a thin Typer layer over the library. Each command's docstring is its --help.

Stage commands live in one module per pipeline stage (core, data, train, evaluate, tune, arena), each adding
its commands to `app`. A user error (UnderdogError) becomes one red line and its exit code, never a traceback.
"""

from underdog.cli.root import (
    WRITING_COMMANDS,
    PipeConsole,
    UnderdogGroup,
    app,
    command_names,
    console,
    err_console,
    get_project,
    main,
)

__all__ = ["WRITING_COMMANDS", "PipeConsole", "UnderdogGroup", "app", "command_names", "console", "err_console",
           "get_project", "main"]

# Stage modules register their commands on import, in pipeline order (the order of `underdog --help`).
from underdog.cli import core, data, train, evaluate, tune, arena, autopilot, demo, studio  # noqa: E402,F401,I001
