"""User-facing errors: each one becomes a single clean line on the command line, never a traceback."""

from __future__ import annotations

import os
import re


class UnderdogError(Exception):
    """A problem the user can fix; the CLI prints its message on one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(UnderdogError):
    """The config file is missing, malformed, or has a wrong key or value."""

    exit_code = 2


class InputError(UnderdogError):
    """A file the user hands us (a dataset, an eval set) cannot be read as one: names the file and line."""

    exit_code = 2


class ModelError(UnderdogError):
    """A model call failed for good (after retries), or a model could not be loaded."""


class BudgetExceeded(UnderdogError):
    """The configured spending limit would be passed by the next call."""


_SECRET_ENV_NAMES: set[str] = set()


def register_secret_env(name: str) -> None:
    """Remember an environment variable that holds a secret so `redact` can hide its value."""
    _SECRET_ENV_NAMES.add(name)


# Key shapes of the common providers (OpenAI/Anthropic "sk-...", AWS access key ids, Google "AIza..."), hidden
# even when they come from a variable underdog was not told about (litellm reads its own).
_KEY_SHAPES = re.compile(r"\b(sk-|AKIA|ASIA|AIza)[A-Za-z0-9_\-]{8,}")


def redact(text: str) -> str:
    """Replace the value of every registered secret environment variable, and anything shaped like an API
    key, in `text` with `***`."""
    for name in _SECRET_ENV_NAMES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return _KEY_SHAPES.sub(lambda m: f"{m.group(1)}***", text)
