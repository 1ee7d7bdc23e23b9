"""Executors beyond one process: `accelerate launch` (CPU path), Ray Tune (local instance), SageMaker JumpStart
(the exact boto3 requests, checked with botocore's Stubber: no AWS is reachable here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train import arithmetic, use_student
from underdog.data.dataset import save_dataset

pytestmark = pytest.mark.slow
TINY = {"epoch": 1, "per_device_train_batch_size": 2, "validation_split_ratio": 0.25, "max_steps": 2}


def test_ray_tune_sweep_on_a_local_instance(project_dir: Path, tiny_llama_dir: Path) -> None:
    ray = pytest.importorskip("ray", reason="Ray Tune is the optional extra 'ray' (pip install 'underdog[ray]')")
    from underdog.train import run_sweep

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(8))
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "r", "method": "list", "executor": "ray", "max_concurrent": 1,
                                 "fixed": TINY, "runs": [{"lora_r": 4}, {"target_modules": ["nope_proj"]}]}))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        runs = run_sweep(project, str(sweep))
    finally:
        ray.shutdown()
    assert [(m.id, m.status) for m in runs] == [("r-000", "done"), ("r-001", "failed")]
    assert runs[0].metrics["steps"] == 2 and "nope_proj" in runs[1].error
    assert (project_dir / "runs" / "r-000" / "adapter" / "adapter_config.json").exists()


def test_accelerate_launch_runs_one_run_on_two_processes(project_dir: Path, tiny_llama_dir: Path) -> None:
    """The multi-GPU path (`underdog train --processes N`) on 2 CPU processes with the gloo backend."""
    from underdog.train import load_run
    from underdog.train.launch import accelerate_command, launch

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(16))
    from conftest import free_port

    launch(project_dir, "arith", "ddp", ["epoch=1", "per_device_train_batch_size=2", "validation_split_ratio=0.25"],
           processes=2, cpu=True, port=free_port())
    m = load_run(project, "ddp")
    assert m.status == "done" and m.metrics["train_examples"] == 12
    assert m.metrics["steps"] == 3  # 12 examples / (2 per device x 2 processes)
    assert (project_dir / "runs" / "ddp" / "adapter" / "adapter_model.safetensors").exists()
    rows = project.store.query("SELECT COUNT(*) AS n FROM train_metrics WHERE run_id = 'ddp' AND split = 'train'")
    assert rows[0]["n"] == 3  # rank 0 alone writes
    gpu = accelerate_command(project_dir, "arith", "x", [], processes=4)
    assert gpu[gpu.index("--num_processes") + 1] == "4" and "--multi_gpu" in gpu and "bf16" in gpu
    fsdp = accelerate_command(project_dir, "arith", "x", [], processes=8, fsdp=True)
    assert "--use_fsdp" in fsdp and "--multi_gpu" not in fsdp
