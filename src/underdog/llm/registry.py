"""Provider name -> backend class, through the `underdog.providers` entry-point group.

Built-in providers are declared in pyproject.toml exactly as an outside plugin would declare its own:

    [project.entry-points."underdog.providers"]
    myprovider = "my_package.module:MyBackend"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from underdog.errors import ModelError

if TYPE_CHECKING:
    from underdog.config import ModelSpec

GROUP = "underdog.providers"


@cache
def _providers() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def provider_names() -> list[str]:
    return sorted(_providers())


def backend_class(provider: str) -> Any:
    """The backend class registered for `provider` (its module is imported only now)."""
    try:
        return _providers()[provider].load()
    except KeyError:
        raise ModelError(f"unknown provider {provider!r} (known: {', '.join(provider_names())})") from None
    except ImportError as exc:
        raise ModelError(
            f"provider {provider!r} needs an optional package: {exc.name or exc} (pip install 'underdog[{provider}]')"
        ) from None


def create_backend(spec: ModelSpec) -> Any:
    """Instantiate the backend for `spec.provider`."""
    return backend_class(spec.provider)(spec)
