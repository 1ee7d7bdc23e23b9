"""Lazy package exports: a package's public names, each imported from its module only when first used.

    _EXPORTS = {"generate": "generation", ...}     # public name -> module of the package that defines it
    __all__ = sorted(_EXPORTS)
    __getattr__ = lazy_exports(__name__, _EXPORTS)

So `import underdog.data` (and `import underdog.cli`) stays light: no stage's heavy libraries load until a name
that needs them is used.

The CLI's call-time stand-ins for single functions are `underdog.cli.lazy` (docs/design.md says why both).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that imports `package.<module>` for a name in `exports`."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
