"""User-facing errors: each one becomes a single clean line on the command line, never a traceback."""

from __future__ import annotations

import os


class UnderdogError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(UnderdogError):
    """The config file is missing, malformed, or has a wrong key or value."""

    exit_code = 2


class ModelError(UnderdogError):
    """A model call failed for good (after retries), or a model could not be loaded."""


class BudgetExceeded(UnderdogError):
    """The configured spending limit would be passed by the next call."""


_SECRET_ENV_NAMES: set[str] = set()


def register_secret_env(name: str) -> None:
    """Remember an environment variable that holds a secret so `redact` can hide its value."""
    _SECRET_ENV_NAMES.add(name)


def redact(text: str) -> str:
    """Replace the value of every registered secret environment variable in `text` with `***`."""
    for name in _SECRET_ENV_NAMES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
