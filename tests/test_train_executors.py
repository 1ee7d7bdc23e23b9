"""Executors beyond one process: `accelerate launch` (CPU path), Ray Tune (local instance), SageMaker JumpStart
(the exact boto3 requests, checked with botocore's Stubber: no AWS is reachable here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train import arithmetic, use_student
from underdog.data.dataset import save_dataset
from underdog.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # the 2 cores are shared
TINY = {"epoch": 1, "per_device_train_batch_size": 2, "validation_split_ratio": 0.25, "max_steps": 2}


def test_ray_tune_sweep_on_a_local_instance(project_dir: Path, tiny_llama_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="Ray Tune is the optional extra 'ray' (pip install 'underdog[ray]')")
    from underdog.train import run_sweep

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(8))
    sweep = project_dir / "sweep.yaml"
    sweep.write_text(json.dumps({"name": "r", "method": "list", "executor": "ray", "max_concurrent": 1,
                                 "fixed": TINY, "runs": [{"lora_r": 4}, {"target_modules": ["nope_proj"]}]}))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the Ray workers inherit it
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        runs = run_sweep(project, str(sweep))
    finally:
        ray.shutdown()
    assert [(m.id, m.status) for m in runs] == [("r-000", "done"), ("r-001", "failed")]
    assert runs[0].metrics["steps"] == 2 and "nope_proj" in runs[1].error
    assert (project_dir / "runs" / "r-000" / "adapter" / "adapter_config.json").exists()


def test_accelerate_launch_runs_one_run_on_two_processes(project_dir: Path, tiny_llama_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The multi-GPU path (`underdog train --processes N`) on 2 CPU processes with the gloo backend."""
    from underdog.train import load_run
    from underdog.train.launch import accelerate_command, launch

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(16))
    from conftest import free_port

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
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


def test_sagemaker_jumpstart_job_exact_requests(project_dir: Path) -> None:
    """Export + upload + CreateTrainingJob, compared parameter by parameter with botocore's Stubber (which also
    validates them against the S3 and SageMaker API models). What AWS would do with them is not tested here."""
    boto3 = pytest.importorskip("boto3", reason="SageMaker is the optional extra 'sagemaker'")
    from botocore.stub import ANY, Stubber

    from underdog.train import load_run
    from underdog.train.sagemaker import submit

    save_dataset(project_dir, "arith", arithmetic(3))
    sm_settings = {"role_arn": "arn:aws:iam::123456789012:role/sm", "bucket": "my-bucket", "accept_eula": True,
                   "image_uri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:x",
                   "source_uri": "s3://jumpstart-cache-prod-us-east-1/source-directory-tarballs/x/sourcedir.tar.gz",
                   "model_uri": "s3://jumpstart-cache-prod-us-east-1/meta-textgeneration/x/artifacts/"}
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    records = [{"instruction": f"What is {i} plus {i}?", "context": "", "response": f"The answer is {2 * i}."}
               for i in range(3)]
    train_jsonl = "".join(json.dumps(r) + "\n" for r in records)
    with Stubber(s3) as s3_stub, Stubber(sm) as sm_stub:
        for name in ("train.jsonl", "template.json"):
            s3_stub.add_response("put_object", {}, {"Bucket": "my-bucket", "Key": f"underdog/j1/training/{name}",
                                                    "Body": ANY})  # the files, checked below
        hyper = {"epoch": "3", "learning_rate": "0.0002", "lora_r": "16", "lora_alpha": "32", "lora_dropout": "0.05",
                 "target_modules": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                 "per_device_train_batch_size": "4", "per_device_eval_batch_size": "4", "max_input_length": "-1",
                 "validation_split_ratio": "0.2", "train_data_split_seed": "0", "seed": "0",
                 "max_train_samples": "-1", "max_val_samples": "-1", "instruction_tuned": "True",
                 "chat_dataset": "False", "int8_quantization": "False", "enable_fsdp": "True",
                 "sagemaker_program": "transfer_learning.py", "sagemaker_submit_directory": sm_settings["source_uri"],
                 "sagemaker_region": "us-east-1", "sagemaker_container_log_level": "20",
                 "sagemaker_job_name": "underdog-j1"}
        expected = {
            "TrainingJobName": "underdog-j1", "HyperParameters": hyper, "RoleArn": sm_settings["role_arn"],
            "AlgorithmSpecification": {"TrainingImage": sm_settings["image_uri"], "TrainingInputMode": "File"},
            "InputDataConfig": [
                {"ChannelName": "model", "InputMode": "File", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": sm_settings["model_uri"],
                    "S3DataDistributionType": "FullyReplicated", "ModelAccessConfig": {"AcceptEula": True}}}},
                {"ChannelName": "training", "InputMode": "File", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://my-bucket/underdog/j1/training/",
                    "S3DataDistributionType": "FullyReplicated"}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://my-bucket/underdog/underdog-j1/output"},
            "ResourceConfig": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1, "VolumeSizeInGB": 256},
            "StoppingCondition": {"MaxRuntimeInSeconds": 360000},
            "Tags": [{"Key": "underdog:model_id", "Value": "meta-textgeneration-llama-3-8b-instruct"}]}
        arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/underdog-j1"
        sm_stub.add_response("create_training_job", {"TrainingJobArn": arn}, expected)
        overrides = {"epoch": 3, "learning_rate": 2e-4, "lora_r": 16, "sagemaker": sm_settings}
        manifest = submit(Project(project_dir), "arith", overrides, run_id="j1", s3=s3, sagemaker=sm)
        s3_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    folder = project_dir / "runs" / "j1" / "jumpstart"
    assert sorted((folder / "train.jsonl").read_text().splitlines()) == sorted(train_jsonl.splitlines())
    assert json.loads((folder / "template.json").read_text())["completion"] == " {response}"
    assert manifest.status == "running" and load_run(Project(project_dir), "j1").metrics["sagemaker_job_arn"] == arn


def test_killed_training_process_resumes(project_dir: Path, tiny_llama_dir: Path) -> None:
    """`underdog train` killed with SIGKILL after a checkpoint (no chance to clean up) resumes from it."""
    import os
    import subprocess
    import sys
    import time

    from underdog.train import load_run, train

    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project_dir, "arith", arithmetic(20))
    cmd = [sys.executable, "-c", "from underdog.cli import main; main()", "train", "--dataset", "arith",
           "--run-id", "k", "epoch=2", "per_device_train_batch_size=2", "save_steps=2", "validation_split_ratio=0.1",
           "evals_per_epoch=1"]
    proc = subprocess.Popen(cmd, cwd=project_dir, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = project_dir / "runs" / "k" / "checkpoints"
    deadline = time.time() + 120
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")) and time.time() < deadline:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert load_run(project, "k").status == "running"  # killed: nothing recorded the end
    assert list(checkpoints.glob("checkpoint-*"))

    done = train(project, run_id="k")
    assert done.status == "done" and done.metrics["steps"] == 18  # 18 train examples / 2 per step x 2 epochs
    assert [h["step"] for h in done.history if "loss" in h] == list(range(1, 19))
