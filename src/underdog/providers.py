"""The names of the model providers: the `underdog.providers` entry-point group, read once per process.

Here, below `config.py` (which checks a spec's `provider` against these names) and `llm/registry.py` (which loads
a provider's backend class): the configuration needs the names, never the backends.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

GROUP = "underdog.providers"


@cache
def _providers() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def provider_names() -> list[str]:
    return sorted(_providers())


def provider_entry(provider: str) -> EntryPoint | None:
    """The entry point that names `provider`'s backend class, or None for an unknown provider."""
    return _providers().get(provider)
