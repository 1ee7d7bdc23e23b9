"""The Project owns every artifact path: stages that take a bare folder build theirs through the same Layout."""

from __future__ import annotations

import json
from pathlib import Path

from underdog.data.dataset import Example, list_datasets, load_manifest, save_dataset
from underdog.evaluate.evalset import Question, list_evalsets, save_evalset
from underdog.layout import DATA_FILE, MANIFEST_FILE, QUESTIONS_FILE, Layout
from underdog.project import Project, init_project


def test_project_paths_are_its_layout(tmp_path: Path) -> None:
    init_project("permits", tmp_path)
    (tmp_path / "sub").mkdir()
    project = Project(tmp_path / "sub")  # the project folder is found from below
    assert project.root == tmp_path.resolve()
    assert project.dataset_dir("base") == project.root / "datasets" / "base" == Layout(project.root).dataset_dir("base")
    assert project.evalset_dir("qs") == project.root / "evalsets" / "qs"
    assert project.run_dir("r1") == project.root / "runs" / "r1"
    assert project.report_dir() == project.reports_dir == project.root / "reports"
    assert project.report_dir("tune", "x") == project.root / "reports" / "tune" / "x"


def test_stages_write_where_the_project_says(tmp_path: Path) -> None:
    init_project("permits", tmp_path)
    project = Project(tmp_path)
    save_dataset(project.root, "base", [Example([{"role": "user", "content": "Q?"},
                                                 {"role": "assistant", "content": "A."}])])
    assert (project.dataset_dir("base") / DATA_FILE).is_file() and list_datasets(project.root) == ["base"]
    assert json.loads((project.dataset_dir("base") / MANIFEST_FILE).read_text())["count"] == 1
    assert load_manifest(project.root, "base").count == 1
    folder = save_evalset(project, "qs", [Question(id="q1", question="Q?")], source="test")
    assert folder == project.evalset_dir("qs") and (folder / QUESTIONS_FILE).is_file()
    assert list_evalsets(project) == ["qs"]


def test_the_layout_imports_nothing() -> None:
    import subprocess
    import sys

    probe = "import sys, underdog.layout\nprint(sorted(m for m in sys.modules if m.startswith('underdog.')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['underdog.layout']"


def test_runs_live_where_the_layout_says(tmp_path: Path, monkeypatch) -> None:
    """One definition of where a run lives: moving the layout's runs folder moves every run function with it."""
    from underdog.train.runs import RunManifest, has_run, list_runs, load_run, run_dir, save_manifest

    monkeypatch.setattr(Layout, "runs_dir", property(lambda self: self.root / "training"))
    init_project("permits", tmp_path)
    project = Project(tmp_path)
    (project.run_dir("r1") / "adapter").mkdir(parents=True)
    save_manifest(project.root, RunManifest("r1", "done", "base", "m", {}), project.store)
    assert run_dir(project.root, "r1") == project.run_dir("r1") == project.root / "training" / "r1"
    assert (project.root / "training" / "r1" / MANIFEST_FILE).is_file() and not (project.root / "runs").exists()
    assert (project.run_dir("r1") / "adapter" / "underdog_run.json").is_file()
    assert load_run(project.root, "r1").status == "done" and [m.id for m in list_runs(project.root)] == ["r1"]
    assert has_run(project.root, "r1") and not has_run(project.root, "r2") and not has_run(project.root, None)
