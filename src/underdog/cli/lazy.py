"""Stand-ins for library imports that load their module on first use, so `underdog --help` and each command
import only the stages they run (issue 11: start-up).

    curate_dataset = lazy("underdog.data.curation", "curate")   # instead of `from ... import curate as ...`
    curate_dataset(project, "base")                            # imports underdog.data.curation now

A package's own public names are lazy through `underdog.lazy.lazy_exports` (docs/design.md says why both).
"""

from __future__ import annotations

import importlib
from typing import Any


class lazy:  # noqa: N801 - used like the import it replaces
    """`from module import name`, deferred until the name is called or an attribute of it is read."""

    def __init__(self, module: str, name: str):
        self._module = module
        self._name = name

    def _target(self) -> Any:
        return getattr(importlib.import_module(self._module), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __repr__(self) -> str:
        return f"lazy({self._module}.{self._name})"
