"""Provider name -> backend class, through the `underdog.providers` entry-point group.

Built-in providers are declared in pyproject.toml exactly as an outside plugin would declare its own:

    [project.entry-points."underdog.providers"]
    myprovider = "my_package.module:MyBackend"
"""

from __future__ import annotations

from typing import Any

from underdog.config import ModelSpec
from underdog.errors import ModelError
from underdog.providers import GROUP, provider_entry, provider_names

__all__ = ["GROUP", "backend_class", "create_backend", "provider_names"]  # the names are read in providers.py


def backend_class(provider: str) -> Any:
    """The backend class registered for `provider` (its module is imported only now)."""
    entry = provider_entry(provider)
    if entry is None:
        raise ModelError(f"unknown provider {provider!r} (known: {', '.join(provider_names())})")
    try:
        return entry.load()
    except ImportError as exc:
        raise ModelError(
            f"provider {provider!r} needs an optional package: {exc.name or exc} (pip install 'underdog[{provider}]')"
        ) from None


def create_backend(spec: ModelSpec) -> Any:
    """Instantiate the backend for `spec.provider`."""
    return backend_class(spec.provider)(spec)
