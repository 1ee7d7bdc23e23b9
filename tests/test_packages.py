"""The stage packages share one style: a docstring naming the public API, `__all__`, names imported lazily."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

PACKAGES = ["underdog.data", "underdog.evaluate", "underdog.arena", "underdog.tune"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_to_what_its_module_defines(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__all__ == sorted(package._EXPORTS) and package.__doc__
    for public in package.__all__:
        value = getattr(package, public)
        assert not isinstance(value, types.ModuleType), f"{name}.{public} is shadowed by a module of that name"
        assert inspect.getmodule(value) is None or inspect.getmodule(value).__name__.startswith(name + ".")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018

