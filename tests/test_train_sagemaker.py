"""SageMaker runs finish (issue 13 item 7): `underdog runs` polls the training job, fetches the adapter when the job
is done, a submitted run is never submitted again, and AWS errors are one line. botocore's Stubber checks the exact
calls; moto plays S3 and SageMaker end to end (its jobs complete at once). No real AWS is reachable here."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from test_train import arithmetic
from underdog.data.dataset import save_dataset
from underdog.errors import UnderdogError
from underdog.project import Project

boto3 = pytest.importorskip("boto3", reason="SageMaker is the optional extra 'sagemaker'")
from botocore.stub import ANY, Stubber  # noqa: E402

SETTINGS = {"role_arn": "arn:aws:iam::123456789012:role/sm", "bucket": "my-bucket",
            "image_uri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:x",
            "source_uri": "s3://jumpstart-cache-prod-us-east-1/source-directory-tarballs/x/sourcedir.tar.gz",
            "model_uri": "s3://jumpstart-cache-prod-us-east-1/meta-textgeneration/x/artifacts/"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/underdog-j1"
ARTIFACT = "s3://my-bucket/underdog/underdog-j1/output/underdog-j1/output/model.tar.gz"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)


def clients() -> tuple[Any, Any]:
    kw = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client("s3", **kw), boto3.client("sagemaker", **kw)


def project_with_settings(project_dir: Path) -> Project:
    import yaml

    config = yaml.safe_load((project_dir / "underdog.yaml").read_text())
    config.setdefault("train", {})["sagemaker"] = SETTINGS
    (project_dir / "underdog.yaml").write_text(yaml.safe_dump(config))
    save_dataset(project_dir, "arith", arithmetic(3))
    return Project(project_dir)


def adapter_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("adapter_config.json", b'{"r": 8}'), ("adapter_model.safetensors", b"weights")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def described(status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeTrainingJob response (the fields botocore's model requires, plus `extra`)."""
    import datetime

    return {"TrainingJobName": "underdog-j1", "TrainingJobArn": ARN, "TrainingJobStatus": status,
            "SecondaryStatus": "Training" if status == "InProgress" else status,
            "AlgorithmSpecification": {"TrainingImage": SETTINGS["image_uri"], "TrainingInputMode": "File"},
            "ResourceConfig": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1, "VolumeSizeInGB": 256},
            "StoppingCondition": {"MaxRuntimeInSeconds": 360000}, "ModelArtifacts": {"S3ModelArtifacts": ARTIFACT},
            "CreationTime": datetime.datetime(2026, 11, 29), **extra}


def stub_submit(s3_stub: Stubber, sm_stub: Stubber, job: str = "underdog-j1") -> None:
    for name in ("train.jsonl", "template.json"):
        s3_stub.add_response("put_object", {}, {"Bucket": "my-bucket", "Key": f"underdog/j1/training/{name}",
                                                "Body": ANY})
    sm_stub.add_response("create_training_job", {"TrainingJobArn": ARN.replace("underdog-j1", job)},
                         {"TrainingJobName": job, "HyperParameters": ANY, "AlgorithmSpecification": ANY,
                          "RoleArn": ANY, "InputDataConfig": ANY, "OutputDataConfig": ANY, "ResourceConfig": ANY,
                          "StoppingCondition": ANY, "Tags": ANY})


def test_poll_follows_the_job_and_fetches_the_adapter(project_dir: Path) -> None:
    from botocore.response import StreamingBody

    from underdog.train.sagemaker import poll, submit

    project = project_with_settings(project_dir)
    s3, sm = clients()
    data = adapter_tarball()
    with Stubber(s3) as s3_stub, Stubber(sm) as sm_stub:
        stub_submit(s3_stub, sm_stub)
        run = submit(project, "arith", run_id="j1", s3=s3, sagemaker=sm)
        assert run.status == "running" and run.metrics["sagemaker_job_arn"] == ARN

        sm_stub.add_response("describe_training_job", described("InProgress"), {"TrainingJobName": "underdog-j1"})
        run = poll(project, run, sagemaker=sm, s3=s3)
        assert run.status == "running" and run.metrics["sagemaker_status"] == "InProgress"

        sm_stub.add_response("describe_training_job", described("Completed", FinalMetricDataList=[
            {"MetricName": "huggingface-textgeneration:eval-loss", "Value": 0.42},
            {"MetricName": "huggingface-textgeneration:train-loss", "Value": 0.31}]),
            {"TrainingJobName": "underdog-j1"})
        s3_stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(data), len(data))},
                             {"Bucket": "my-bucket", "Key": ARTIFACT.removeprefix("s3://my-bucket/")})
        run = poll(project, run, sagemaker=sm, s3=s3)
        s3_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    adapter = project_dir / "runs" / "j1" / "adapter"
    assert run.status == "done" and run.metrics["eval_loss"] == 0.42 and run.metrics["train_loss"] == 0.31
    assert (adapter / "adapter_model.safetensors").read_bytes() == b"weights"
    assert run.metrics["artifact_kind"] == "adapter" and not (project_dir / "runs" / "j1" / "model.tar.gz").exists()
    assert json.loads((adapter / "underdog_run.json").read_text())["status"] == "done"
    row = project.store.query("SELECT status, eval_loss FROM train_runs WHERE id = 'j1'")[0]
    assert (row["status"], row["eval_loss"]) == ("done", 0.42)


def test_failed_job_fails_the_run_and_a_retry_gets_a_new_job_name(project_dir: Path) -> None:
    from underdog.train.sagemaker import poll, submit

    project = project_with_settings(project_dir)
    s3, sm = clients()
    with Stubber(s3) as s3_stub, Stubber(sm) as sm_stub:
        stub_submit(s3_stub, sm_stub)
        run = submit(project, "arith", run_id="j1", s3=s3, sagemaker=sm)
        sm_stub.add_response("describe_training_job", described("Failed", FailureReason="CUDA out of memory"),
                             {"TrainingJobName": "underdog-j1"})
        run = poll(project, run, sagemaker=sm, s3=s3)
        assert run.status == "failed" and run.error == "SageMaker job underdog-j1 failed: CUDA out of memory"
        stub_submit(s3_stub, sm_stub, job="underdog-j1-r2")  # names are unique: the retry is a new job
        retry = submit(project, "arith", run_id="j1", s3=s3, sagemaker=sm)
        sm_stub.assert_no_pending_responses()
    assert retry.status == "running" and retry.metrics["sagemaker_job"] == "underdog-j1-r2"


def test_submitted_run_is_not_submitted_again(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep re-run polls its submitted jobs; a second CreateTrainingJob would be an unstubbed call."""
    from underdog.train import sagemaker as executor
    from underdog.train.sweep import run_sweep

    project = project_with_settings(project_dir)
    s3, sm = clients()
    monkeypatch.setattr(executor, "_client", lambda name, cfg: {"s3": s3, "sagemaker": sm}[name])
    sweep = project_dir / "sweep.yaml"
    sweep.write_text("name: j\nmethod: list\nexecutor: sagemaker\nruns: [{epoch: 1}]\n")
    with Stubber(s3) as s3_stub, Stubber(sm) as sm_stub:
        for name in ("train.jsonl", "template.json"):
            s3_stub.add_response("put_object", {}, {"Bucket": "my-bucket", "Key": f"underdog/j-000/training/{name}",
                                                    "Body": ANY})
        sm_stub.add_response("create_training_job", {"TrainingJobArn": ARN}, None)
        first = run_sweep(project, sweep)
        sm_stub.add_response("describe_training_job", described("InProgress", TrainingJobName="underdog-j-000"),
                             {"TrainingJobName": "underdog-j-000"})
        again = run_sweep(project, sweep)
        sm_stub.assert_no_pending_responses()
    assert [m.status for m in first] == [m.status for m in again] == ["running"]
    assert again[0].metrics["sagemaker_status"] == "InProgress"


def test_aws_errors_are_one_line(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import NoCredentialsError
    from typer.testing import CliRunner

    from underdog.cli import app
    from underdog.train import load_run
    from underdog.train import sagemaker as executor

    project = project_with_settings(project_dir)
    s3, sm = clients()
    monkeypatch.setattr(executor, "_client", lambda name, cfg: {"s3": s3, "sagemaker": sm}[name])
    runner = CliRunner()
    with Stubber(s3) as s3_stub, Stubber(sm) as sm_stub:
        for name in ("train.jsonl", "template.json"):
            s3_stub.add_response("put_object", {}, {"Bucket": "my-bucket", "Key": f"underdog/j1/training/{name}",
                                                    "Body": ANY})
        sm_stub.add_client_error("create_training_job", "ValidationException",
                                 "Could not assume role arn:aws:iam::123456789012:role/sm")
        result = runner.invoke(app, ["train", "--sagemaker", "--dataset", "arith", "--run-id", "j1"])
    assert result.exit_code == 1 and "Traceback" not in result.output and "ClientError" not in result.output
    assert "AWS CreateTrainingJob failed: ValidationException: Could not assume role" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert load_run(project, "j1").status == "failed"

    def no_credentials(**kwargs: Any) -> Any:
        raise NoCredentialsError

    run = load_run(project, "j1")
    run.status, run.error = "running", None
    from underdog.train.runs import save_manifest

    save_manifest(project_dir, run)
    monkeypatch.setattr(sm, "describe_training_job", no_credentials)
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0 and "warning: run j1: AWS DescribeTrainingJob failed: Unable to locate" \
        in " ".join(result.output.split())
    with pytest.raises(UnderdogError, match="^AWS DescribeTrainingJob failed"):
        executor.poll(project, load_run(project, "j1"))


def test_moto_end_to_end_runs_fetches_the_adapter(project_dir: Path, aws_env: None) -> None:
    """moto's S3 and SageMaker: submit, the job completes, `underdog runs` downloads and unpacks the artifact."""
    moto = pytest.importorskip("moto")
    from typer.testing import CliRunner

    from underdog.cli import app
    from underdog.train import load_run

    project = project_with_settings(project_dir)
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="my-bucket")
        runner = CliRunner()
        result = runner.invoke(app, ["train", "--sagemaker", "--dataset", "arith", "--run-id", "j1"])
        assert result.exit_code == 0, result.output
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="my-bucket")["Contents"])
        assert keys == ["underdog/j1/training/template.json", "underdog/j1/training/train.jsonl"]
        job = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(TrainingJobName="underdog-j1")
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        s3.put_object(Bucket="my-bucket", Key=artifact.removeprefix("s3://my-bucket/"), Body=adapter_tarball())
        result = runner.invoke(app, ["runs"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        again = runner.invoke(app, ["train", "--sagemaker", "--dataset", "arith", "--run-id", "j1"])
        assert again.exit_code == 0, again.output
    run = load_run(project, "j1")
    assert run.status == "done" and run.metrics["sagemaker_job"] == "underdog-j1"
    assert (project_dir / "runs" / "j1" / "adapter" / "adapter_config.json").read_bytes() == b'{"r": 8}'
    assert "j1" in result.output and "done" in result.output
