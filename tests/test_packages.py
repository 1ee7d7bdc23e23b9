"""The stage packages share one style: a docstring naming the public API, `__all__`, names imported lazily."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

PACKAGES = ["underdog.data", "underdog.evaluate", "underdog.arena", "underdog.tune", "underdog.train", "underdog.llm"]


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



def test_train_run_functions_take_a_project_or_its_folder(tmp_path) -> None:
    from underdog.project import Project, init_project
    from underdog.train import RunManifest, list_runs, load_run
    from underdog.train.runs import save_manifest

    init_project("permits", tmp_path)
    project = Project(tmp_path)
    save_manifest(project, RunManifest("r1", "done", "base", "m", {}))
    assert load_run(project, "r1") == load_run(project.root, "r1")
    assert [m.id for m in list_runs(project)] == [m.id for m in list_runs(str(project.root))] == ["r1"]
