"""Sweeps (grid, list, optuna), the memory estimate, and the overfitting diagnosis on hand-made histories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train import arithmetic, use_student
from underdog.data.dataset import save_dataset
from underdog.errors import ConfigError
from underdog.train.diagnose import diagnose
from underdog.train.executors import RunPlan
from underdog.train.memory import estimate, model_shape
from underdog.train.sweep import SweepConfig, load_sweep, plan


# -- diagnosis ------------------------------------------------------------------------------------------------
def _history(train: list[float], evals: list[float]) -> list[dict]:
    """One train loss per step, one eval every 2 steps; 4 steps an epoch."""
    out = [{"step": i + 1, "epoch": (i + 1) / 4, "loss": v} for i, v in enumerate(train)]
    out += [{"step": 2 * (i + 1), "epoch": 2 * (i + 1) / 4, "eval_loss": v} for i, v in enumerate(evals)]
    return sorted(out, key=lambda h: (h["step"], "eval_loss" in h))

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the 2 cores are shared


def test_diagnosis_rising_eval_loss_gap_and_healthy() -> None:
    falling = [3.0 - 0.2 * i for i in range(12)]
    rising = diagnose(_history(falling, [3.0, 2.6, 2.5, 2.6, 2.7, 2.8]), gap=5.0, patience=2)
    assert rising.flag and rising.epoch == 1.5 and "rose" in rising.reason  # the minimum was at step 6
    once = diagnose(_history(falling, [3.0, 2.6, 2.5, 2.6, 2.55, 2.5]), gap=5.0, patience=2)
    assert not once.flag  # one rise then a fall is noise, not overfitting
    gap = diagnose(_history(falling, [3.0, 2.9, 2.9, 2.9, 2.9, 2.85]), gap=0.5, patience=2)
    assert gap.flag and "exceeded" in gap.reason and gap.epoch == 1.5  # step 6: 2.9 - mean(2.4, 2.2, 2.0) > 0.5
    healthy = diagnose(_history(falling, [2.9, 2.5, 2.1, 1.7, 1.4, 1.2]), gap=0.5, patience=2)
    assert not healthy.flag and healthy.reason is None and healthy.epoch is None
    both_history = _history(falling, [3.0, 3.2, 3.1, 2.9, 3.0, 3.1])
    rise_only = diagnose(both_history, gap=100.0, patience=2)
    gap_only = diagnose(both_history, gap=0.5, patience=2, min_rise=100.0)
    both = diagnose(both_history, gap=0.5, patience=2)
    assert rise_only.flag and gap_only.flag and gap_only.epoch < rise_only.epoch
    assert both.epoch == gap_only.epoch and "rose" in both.reason and "exceeded" in both.reason
    flat_train = diagnose(_history([2.0] * 12, [2.0, 1.9, 2.0, 2.1, 2.2, 2.3]), gap=5.0, patience=2)
    assert not flat_train.flag  # eval rising while train does not fall is not memorisation


def test_diagnosis_ignores_noise_at_near_zero_loss_and_single_gaps() -> None:
    """issue 9: eval loss 0.040 -> 0.046 over two evaluations at near-zero loss is noise, not overfitting."""
    falling = [0.5 / (i + 1) for i in range(12)]  # 0.5 ... 0.04: still falling
    near_zero = _history(falling, [0.30, 0.10, 0.05, 0.040, 0.043, 0.046])
    assert not diagnose(near_zero).flag
    assert diagnose(near_zero, min_rise=0.0, min_rise_ratio=0.0).flag  # the old rule: any rise counted
    real = diagnose(_history(falling, [0.30, 0.10, 0.05, 0.040, 0.09, 0.16]))
    assert real.flag and real.epoch == 2.0 and "0.040 to 0.160" in real.reason
    relative = _history([3.0 - 0.2 * i for i in range(12)], [3.0, 2.6, 2.0, 2.03, 2.06, 2.09])
    assert not diagnose(relative, gap=100.0).flag  # +0.09 nats on 2.0 is under 5% of it
    assert diagnose(relative, gap=100.0, min_rise_ratio=0.01).flag
    one_spike = _history(falling, [0.30, 0.10, 0.9, 0.05, 0.04, 0.04])  # one evaluation over the gap
    assert not diagnose(one_spike, gap=0.5).flag
    assert diagnose(one_spike, gap=0.5, patience=1).flag


def test_runs_lists_an_overfit_run_with_a_warning_and_its_kept_epoch(project_dir: Path) -> None:
    """`underdog runs` shows the flag as a warning beside the eval loss of the kept adapter, and lists the run."""
    from typer.testing import CliRunner

    from underdog.cli import app
    from underdog.project import Project
    from underdog.train.runs import RunManifest, save_manifest

    project = Project(project_dir)
    for run_id, flag in (("flagged-run", True), ("clean-run", False)):
        save_manifest(project_dir, RunManifest(
            id=run_id, status="done", dataset="v1", base_model="m", hyperparameters={"epoch": 3},
            metrics={"train_loss": 0.01, "eval_loss": 0.04, "kept": {"step": 8, "epoch": 2.0, "eval_loss": 0.04}},
            overfit={"flag": flag, "reason": "eval loss rose", "epoch": 2.0}), project.store)
    result = CliRunner().invoke(app, ["runs"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if "-run" in line}
    assert "warning: overfit from epoch 2.0" in lines["flagged-run"] and "0.040 (2.0)" in lines["flagged-run"]
    assert "warning" not in lines["clean-run"]


# -- memory estimate ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "batch", "ckpt", "measured_gib"), [
    ("1B", 8, False, 33.6), ("1B", 16, True, 27.1), ("8B", 4, False, 57.4), ("8B", 8, True, 29.4)])
def test_memory_estimate_matches_the_measured_h200_peaks(shape: str, batch: int, ckpt: bool,
                                                         measured_gib: float) -> None:
    """Peaks of the plain stack from ../shared/reference/gpu-baselines.md (bf16, LoRA r=16, all linear, seq 1024)."""
    from transformers import LlamaConfig

    shapes = {"1B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
              "8B": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False)}
    dims = model_shape(LlamaConfig(**shapes[shape], max_position_embeddings=4096))
    est = estimate(dims, lora_r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                    "down_proj"], batch_size=batch, seq_len=1024,
                   gradient_checkpointing=ckpt)
    assert abs(est.total_gb - measured_gib) / measured_gib < 0.12, est.describe()


# -- sweep config ---------------------------------------------------------------------------------------------
def test_sweep_yaml_grid_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("name: s\ndatasets: [v1, v2]\nfixed: {learning_rate: 0.001}\n"
                    "grid: {epoch: [3, 4], lora_r: [8, 16]}\n")
    runs = plan(load_sweep(path), None)
    assert len(runs) == 8 and runs[0] == RunPlan(run_id="s-000", dataset="v1", sweep="s",
                                                 overrides={"learning_rate": 0.001, "epoch": 3, "lora_r": 8})
    assert {r.dataset for r in runs} == {"v1", "v2"} and len({r.run_id for r in runs}) == 8
    listed = plan(SweepConfig(name="l", method="list", runs=[{"lora_r": 8, "dataset": "v2"}, {"lora_r": 16}]), "v1")
    assert [(r.dataset, r.overrides) for r in listed] == [("v2", {"lora_r": 8}), ("v1", {"lora_r": 16})]
    path.write_text("name: s\nmethod: grid\ngird: {epoch: [1]}\n")
    with pytest.raises(ConfigError, match=r"sweep.yaml:3: gird: unknown key"):
        load_sweep(path)
    path.write_text("name: s\nmethod: optuna\n")
    with pytest.raises(ConfigError, match="needs a 'search' section"):
        load_sweep(path)


@pytest.mark.parametrize(("dimension", "problem"), [
    ("{low: 1, high: 0}", "low (1) is above high (0)"),
    ("{low: 0, high: 1, log: true}", "log: true needs low > 0 (got 0)"),
    ("{low: 1, hihg: 2}", "expected a list of choices or {low, high, log?}"),
    ("{low: 1e-5, high: 1e-3, lg: true}", "unknown key 'lg' (expected {low, high, log?})"),
    ("{low: a, high: 1}", "low and high must be numbers (got 'a' and 1)"),
])
def test_a_malformed_search_range_is_one_line_naming_it_before_anything_runs(tmp_path: Path, cli, dimension: str,
                                                                            problem: str) -> None:
    """Shared with `autopilot.space` (test_autopilot.py): optuna's own ValueError never reaches the user."""
    path = tmp_path / "sweep.yaml"
    path.write_text(f"name: s\nmethod: optuna\nsearch:\n  space: {{learning_rate: {dimension}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    assert str(caught.value) == f"{path}:4: search.space: learning_rate: {problem}"
    (tmp_path / "underdog.yaml").write_text("domain: permits\nmodels: {}\n")
    result = cli("-C", tmp_path, "sweep", str(path))
    assert result.exit_code == 2 and problem in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing started


# -- sweeps on the tiny model ---------------------------------------------------------------------------------
TINY = {"epoch": 1, "per_device_train_batch_size": 4, "validation_split_ratio": 0.25, "max_steps": 2}


def test_sweep_goes_on_after_a_failed_run_and_resumes(project_dir: Path, tiny_llama_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from underdog.train import list_runs, run_sweep

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(12))
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "s", "method": "list", "fixed": TINY, "runs": [
        {"lora_r": 4}, {"target_modules": ["no_such_proj"]}, {"lora_r": 8, "lora_alpha": 8}]}))
    runs = run_sweep(project, str(sweep))
    assert [(m.id, m.status) for m in runs] == [("s-000", "done"), ("s-001", "failed"), ("s-002", "done")]
    assert "no_such_proj" in runs[1].error and runs[1].sweep == "s"
    assert runs[2].hyperparameters["lora_r"] == 8 and runs[2].metrics["steps"] == 2

    # a crash leaves a run "running": the next `underdog sweep` trains only that one again
    manifest = project_dir / "runs" / "s-002" / "manifest.json"
    crashed = json.loads(manifest.read_text()) | {"status": "running", "metrics": {}}
    manifest.write_text(json.dumps(crashed))
    before = {m.id: m.updated for m in list_runs(project)}
    again = run_sweep(project, str(sweep))
    assert [m.status for m in again] == ["done", "failed", "done"]
    after = {m.id: m.updated for m in list_runs(project)}
    assert after["s-000"] == before["s-000"] and after["s-001"] == before["s-001"]
    assert after["s-002"] > before["s-002"] and again[2].metrics["steps"] == 2

    rows = project.store.query("SELECT id, status, error FROM train_runs WHERE sweep = 's' ORDER BY id")
    assert [(r["id"], r["status"]) for r in rows] == [("s-000", "done"), ("s-001", "failed"), ("s-002", "done")]

    from typer.testing import CliRunner

    from underdog.cli import app

    monkeypatch.setenv("COLUMNS", "250")
    listing = CliRunner().invoke(app, ["runs"])
    assert listing.exit_code == 0 and "failed" in listing.output and "no_such_proj" in listing.output
    assert "s-000" not in CliRunner().invoke(app, ["runs", "--sweep", "other"]).output


def test_refused_run_is_recorded_before_launch(project_dir: Path, tiny_llama_dir: Path) -> None:
    from underdog.train import run_sweep

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(12))
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "m", "method": "list", "fixed": {**TINY, "device_memory_gb": 1.5},
                                 "runs": [{"per_device_train_batch_size": 64, "max_input_length": 512},
                                          {"per_device_train_batch_size": 1}]}))
    big, small = run_sweep(project, str(sweep))
    assert big.status == "failed" and "needs ~" in big.error and "1.4 GiB free" in big.error  # 1.5 GB
    assert big.memory_estimate_gb > 1.5 and "steps" not in big.metrics
    assert small.status == "done"


def test_optuna_search(project_dir: Path, tiny_llama_dir: Path) -> None:
    from underdog.train import run_sweep

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(12))
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "o", "method": "optuna", "fixed": TINY, "search": {
        "n_trials": 2, "space": {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "lora_r": [4, 8]}}}))
    runs = run_sweep(project, str(sweep))
    assert [m.id for m in runs] == ["o-000", "o-001"] and all(m.status == "done" for m in runs)
    assert all(1e-4 <= m.hyperparameters["learning_rate"] <= 1e-2 and m.hyperparameters["lora_r"] in (4, 8)
               for m in runs)
    assert run_sweep(project, str(sweep))[0].updated == runs[0].updated  # finished: nothing runs again
    import optuna

    study = optuna.load_study(study_name="o", storage=f"sqlite:///{project_dir / 'runs/_sweeps/o/optuna.db'}")
    assert sorted(t.value for t in study.trials) == sorted(m.metrics["eval_loss"] for m in runs)


def test_sweep_cli_runs_concurrent_slots_in_subprocesses(project_dir: Path, tiny_llama_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Two slots (as with two GPUs): each run in its own `python -m underdog.train.launch` process, a failure
    recorded."""
    from typer.testing import CliRunner

    from underdog.cli import app
    from underdog.train import executors, list_runs

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(12))
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "c", "method": "grid", "max_concurrent": 2, "fixed": TINY,
                                 "grid": {"lora_r": [8], "target_modules": [["q_proj", "v_proj"], ["nope"]]}}))
    monkeypatch.setattr(executors, "devices", lambda n: ["cpu"] * n)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(app, ["sweep", str(sweep)])
    assert result.exit_code == 0, result.output
    runs = {m.id: m for m in list_runs(project)}
    assert [(i, runs[i].status) for i in sorted(runs)] == [("c-000", "done"), ("c-001", "failed")]
    assert runs["c-000"].hyperparameters["lora_r"] == 8 and runs["c-000"].sweep == "c"
    assert runs["c-000"].hyperparameters["target_modules"] == ["q_proj", "v_proj"]
    assert "nope" in runs["c-001"].error and "c-001" in result.output
    assert runs["c-001"].created < runs["c-000"].updated  # the second slot started before the first finished


def test_keep_best_follows_early_stopping_unless_set() -> None:
    from underdog.config import TrainConfig
    from underdog.train.lora import keeps_best

    assert not keeps_best(TrainConfig(), has_eval=True)  # eval loss is not quality: the last adapter by default
    assert keeps_best(TrainConfig(early_stopping=True), has_eval=True)
    assert keeps_best(TrainConfig(keep_best=True), has_eval=True)
    assert not keeps_best(TrainConfig(keep_best=True), has_eval=False)
    assert not keeps_best(TrainConfig(early_stopping=True, keep_best=False), has_eval=True)
