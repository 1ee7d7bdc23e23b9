"""The training package's seams: one executor registry behind one protocol, modules that import alone, no import
circles and no private imports across modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_train import arithmetic, use_student
from underdog.data.dataset import save_dataset
from underdog.errors import ConfigError
from underdog.project import Project
from underdog.train import executors
from underdog.train.executors import EXECUTORS, Executor, Resources, RunPlan, get_executor

TRAIN = Path(executors.__file__).parent
MODULES = sorted(p.stem for p in TRAIN.glob("*.py") if p.stem != "__init__")

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the 2 cores are shared


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """`(module, names)` of every `from underdog... import` in a file, at any depth (lazy imports included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("underdog"):
            out.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("underdog")]
    return out


def test_train_modules_form_no_import_circle_and_import_nothing_private() -> None:
    graph = {m: {mod.rsplit(".", 1)[-1] for mod, _ in _imports(TRAIN / f"{m}.py")
                 if mod.startswith("underdog.train.")} for m in MODULES}
    assert graph["sweep"] and graph["search"] and graph["ray_executor"]  # the parser sees the imports

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [m for m in MODULES if reaches(m, m, set())] == []
    private = [(m, mod, name) for m in MODULES for mod, names in _imports(TRAIN / f"{m}.py") for name in names
               if name.startswith("_") and mod != f"underdog.train.{m}"]
    assert private == []


@pytest.mark.parametrize("module", MODULES)
def test_each_train_module_imports_alone(module: str) -> None:
    code = f"import underdog.train.{module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_registry_builds_every_executor_behind_the_protocol(project_dir: Path) -> None:
    project = Project(project_dir)
    built = {name: get_executor(name, project, Resources(slots=[None])) for name in EXECUTORS}
    assert set(built) == {"local", "accelerate", "ray", "sagemaker"}
    assert all(isinstance(e, Executor) for e in built.values())
    with pytest.raises(ConfigError, match="executor 'slurm': expected one of local, accelerate, ray, sagemaker"):
        get_executor("slurm", project)
    sweep = project_dir / "sweep.yaml"
    sweep.write_text("name: s\nmethod: list\nruns: [{epoch: 1}]\nexecutor: slurm\n")
    from underdog.train.sweep import load_sweep

    with pytest.raises(ConfigError, match=r"sweep.yaml:4: executor: .*expected one of local, accelerate"):
        load_sweep(sweep)
    sweep.write_text("name: s\nmethod: optuna\nsearch: {space: {lora_r: [4]}}\nexecutor: sagemaker\n")
    with pytest.raises(ConfigError, match="executor 'sagemaker' cannot"):
        load_sweep(sweep)


@pytest.mark.slow
def test_a_killed_slot_process_is_recorded_as_failed(project_dir: Path, tiny_llama_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A training process that dies without a word (the OOM killer) leaves a failed run with its exit code."""
    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(4))
    seen: list[list[str]] = []

    def killed(cmd: list[str], **kwargs: Any) -> Any:
        seen.append(cmd)
        return type("Exited", (), {"returncode": -9})()

    monkeypatch.setattr(executors.subprocess, "run", killed)
    local = executors.LocalExecutor(project, Resources(slots=["cpu", "cpu"]))
    [run] = local.submit([RunPlan(dataset="arith", overrides={"lora_r": 4}, run_id="k-000", sweep="k")])
    assert run.status == "failed" and run.error.startswith("the training process exited with code -9")
    assert run.sweep == "k" and run.hyperparameters["lora_r"] == 4
    assert seen[0][1:3] == ["-m", "underdog.train.launch"] and "--sweep" in seen[0]
    assert json.loads(seen[0][6]) == ["lora_r=4", "device=cpu"]


@pytest.mark.slow
def test_accelerate_executor_sweep_two_processes_a_run(project_dir: Path, tiny_llama_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`executor: accelerate` in a sweep: each run over 2 CPU processes (gloo); a failed run is recorded."""
    from conftest import free_port
    from underdog.train import run_sweep

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(16))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "a", "method": "list", "executor": "accelerate", "processes": 2,
                                 "port": free_port(),
                                 "fixed": {"device": "cpu", "epoch": 1, "per_device_train_batch_size": 2,
                                           "validation_split_ratio": 0.25},
                                 "runs": [{"lora_r": 4}, {"target_modules": ["nope_proj"]}]}))
    runs = run_sweep(project, str(sweep))
    assert [(m.id, m.status, m.sweep) for m in runs] == [("a-000", "done", "a"), ("a-001", "failed", "a")]
    assert runs[0].metrics["steps"] == 3  # 12 examples / (2 per device x 2 processes)
    assert "nope_proj" in (runs[1].error or "")


@pytest.mark.slow
def test_cli_train_reports_a_failed_run_in_one_line(project_dir: Path, tiny_llama_dir: Path) -> None:
    """`underdog train` goes through the local executor: the failure recorded in the manifest is the CLI's line."""
    from typer.testing import CliRunner

    from underdog.cli import app
    from underdog.train import load_run

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(4))
    result = CliRunner().invoke(app, ["train", "--dataset", "arith", "--run-id", "bad", "target_modules=[nope_proj]"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]  # (above it: transformers' own weight-loading bar, on stderr)
    assert last.startswith("error: run bad failed: ") and "nope_proj" in last
    assert result.output.count("run bad failed") == 1
    assert load_run(project, "bad").status == "failed" and "nope_proj" in (load_run(project, "bad").error or "")
