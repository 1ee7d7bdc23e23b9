"""SageMaker JumpStart executor: the same `train:` config becomes a JumpStart training job (`pip install
'underdog[sagemaker]'`; AWS credentials from the usual boto3 sources, never from underdog.yaml).

    underdog train --dataset v1 --sagemaker epoch=3 lora_r=16     # with train.sagemaker.{role_arn, bucket, ...}

Steps: export the dataset version in the `jumpstart` format (train.jsonl with instruction/context/response +
template.json; JumpStart makes its own validation split from validation_split_ratio), upload both files to
`s3://<bucket>/<prefix>/<run-id>/training/`, then call CreateTrainingJob with the JumpStart container, script and
base weights for `model_id` and the hyperparameters under JumpStart's names (all strings). underdog's own
settings that JumpStart does not know (packing, warmup, scheduler, overfit checks...) are not sent; the job uses
JumpStart's behaviour for them. The run is recorded locally with status "running" and the job name.

Then `underdog runs` (or `poll(project, manifest)`) asks DescribeTrainingJob for each running SageMaker run: the
status follows the job's (`sagemaker_status` in its metrics); a completed job's model artifact (`model.tar.gz`) is
downloaded and unpacked into `runs/<id>/adapter` and the run is `done` (with JumpStart's final metrics); a failed or
stopped job fails the run with SageMaker's reason. A run that was submitted is never submitted again (a sweep
re-run polls it instead); a failed one retried with `--retry-failed` gets a new job name (`-r2`, ...), since
SageMaker job names are unique. AWS errors become one line naming the call, the error code and its message.

What the tests check, and what they cannot: `tests/test_train_executors.py` stubs the S3 and SageMaker clients
with botocore's Stubber and compares the exact PutObject and CreateTrainingJob parameters; botocore also
validates them against the service's API model. No AWS is reachable here, so nothing checks that the
container/script/model URIs exist, that the role may read the bucket, or that JumpStart's script accepts every
value: submit one small job (epoch=1) before a sweep.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from underdog.config import SageMakerConfig, TrainConfig
from underdog.errors import ConfigError, UnderdogError
from underdog.layout import ADAPTER_DIR
from underdog.project import Project
from underdog.train.executors import Resources, RunPlan
from underdog.train.runs import RunManifest, has_run, load_run

RUNNING = ("InProgress", "Stopping")

JUMPSTART_NAMES = ("epoch", "learning_rate", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                   "per_device_train_batch_size", "per_device_eval_batch_size", "max_input_length",
                   "validation_split_ratio", "train_data_split_seed", "seed", "max_train_samples", "max_val_samples")


def jumpstart_hyperparameters(cfg: TrainConfig) -> dict[str, str]:
    """The hyperparameters of a JumpStart Llama fine-tuning job, as the strings SageMaker passes on."""
    values = cfg.model_dump()
    out = {name: ",".join(values[name]) if name == "target_modules" else str(values[name])
           for name in JUMPSTART_NAMES}
    out.update(instruction_tuned="True", chat_dataset="False", int8_quantization="False", enable_fsdp="True")
    return out


def _required(sm: SageMakerConfig) -> None:
    missing = [k for k in ("role_arn", "bucket", "image_uri", "source_uri", "model_uri") if not getattr(sm, k)]
    if missing:
        raise ConfigError(f"train.sagemaker: set {', '.join(missing)} in underdog.yaml to submit JumpStart jobs")


def training_job_request(cfg: TrainConfig, job_name: str, data_uri: str) -> dict[str, Any]:
    """The CreateTrainingJob parameters for one run."""
    sm = cfg.sagemaker
    _required(sm)
    hyper = jumpstart_hyperparameters(cfg) | {
        "sagemaker_program": "transfer_learning.py", "sagemaker_submit_directory": str(sm.source_uri),
        "sagemaker_region": sm.region, "sagemaker_container_log_level": "20", "sagemaker_job_name": job_name}
    model_source: dict[str, Any] = {"S3DataType": "S3Prefix", "S3Uri": sm.model_uri,
                                    "S3DataDistributionType": "FullyReplicated"}
    if sm.accept_eula:
        model_source["ModelAccessConfig"] = {"AcceptEula": True}
    return {
        "TrainingJobName": job_name,
        "HyperParameters": hyper,
        "AlgorithmSpecification": {"TrainingImage": sm.image_uri, "TrainingInputMode": "File"},
        "RoleArn": sm.role_arn,
        "InputDataConfig": [
            {"ChannelName": "model", "DataSource": {"S3DataSource": model_source}, "InputMode": "File"},
            {"ChannelName": "training", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": data_uri, "S3DataDistributionType": "FullyReplicated"}},
             "InputMode": "File"},
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{sm.bucket}/{sm.prefix}/{job_name}/output"},
        "ResourceConfig": {"InstanceType": sm.instance_type, "InstanceCount": 1, "VolumeSizeInGB": sm.volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": sm.max_runtime_s},
        "Tags": [{"Key": "underdog:model_id", "Value": sm.model_id}],
    }


def submit(project: Project, dataset: str | None = None, overrides: dict[str, Any] | list[str] | None = None, *,
           run_id: str | None = None, s3: Any = None, sagemaker: Any = None) -> RunManifest:
    """Export, upload and submit one run as a JumpStart training job; the clients default to boto3's."""
    from underdog.data.dataset import load_manifest
    from underdog.data.formats import export_dataset
    from underdog.train.lora import library_versions, new_run_id, record_manifest, resolve_config, resolve_dataset

    previous = _submitted(project, run_id)
    if previous is not None and previous.status != "failed":
        return poll(project, previous, sagemaker=sagemaker, s3=s3)  # submitted already: never twice
    cfg = resolve_config(project, overrides)
    if cfg.method != "sft":
        raise ConfigError(f"train --method {cfg.method}: SageMaker JumpStart's script trains supervised runs only; "
                          "train preference runs locally, with --processes or on Ray")
    dataset = resolve_dataset(project.root, dataset or cfg.dataset)
    _required(cfg.sagemaker)
    run_id = run_id or new_run_id(dataset)
    attempt = (previous.metrics.get("sagemaker_attempt", 1) + 1) if previous is not None else 1
    job_name = job_name_for(run_id, attempt)
    s3, sagemaker = s3 or _client("s3", cfg), sagemaker or _client("sagemaker", cfg)
    key_prefix = f"{cfg.sagemaker.prefix}/{run_id}/training"
    files = export_dataset(project, dataset, "jumpstart", out=project.runs_dir / run_id / "jumpstart",
                           validation_split=0.0)
    manifest = RunManifest(id=run_id, status="running", dataset=dataset, base_model=cfg.sagemaker.model_id,
                           hyperparameters=cfg.model_dump(), dataset_sha256=load_manifest(project.root, dataset).sha256,
                           device=f"sagemaker:{cfg.sagemaker.instance_type}", versions=library_versions())
    manifest.metrics = {"sagemaker_job": job_name, "sagemaker_job_arn": None, "sagemaker_attempt": attempt}
    record_manifest(project, manifest)  # before the job exists: a crash after CreateTrainingJob is polled
    try:
        with aws_errors("upload the dataset to S3"):
            for path in files:
                s3.put_object(Bucket=cfg.sagemaker.bucket, Key=f"{key_prefix}/{path.name}", Body=path.read_bytes())
        request = training_job_request(cfg, job_name, f"s3://{cfg.sagemaker.bucket}/{key_prefix}/")
        with aws_errors("CreateTrainingJob"):
            response = sagemaker.create_training_job(**request)
    except UnderdogError as exc:
        manifest.status, manifest.error = "failed", str(exc)
        record_manifest(project, manifest)
        raise
    manifest.metrics["sagemaker_job_arn"] = response.get("TrainingJobArn")
    record_manifest(project, manifest)
    return manifest


class SageMakerExecutor:
    """One JumpStart training job per run (`submit`); `status` polls the job and fetches the adapter when done."""

    def __init__(self, project: Project, resources: Resources) -> None:
        self.project = project

    def submit(self, plans: Sequence[RunPlan]) -> list[RunManifest]:
        out = []
        for plan in plans:
            try:
                out.append(submit(self.project, plan.dataset, plan.overrides, run_id=plan.run_id))
            except UnderdogError:
                if not has_run(self.project.root, plan.run_id):
                    raise  # nothing submitted: a configuration error
                out.append(load_run(self.project.root, plan.run_id))  # the reason is in its manifest
        return out

    def status(self, run: RunManifest) -> RunManifest:
        return poll(self.project, run)


def job_name_for(run_id: str, attempt: int = 1) -> str:
    """The SageMaker training job name of a run's `attempt` (names are unique per account and region)."""
    suffix = f"-r{attempt}" if attempt > 1 else ""
    return ("underdog-" + run_id.replace("_", "-").replace(".", "-"))[:63 - len(suffix)] + suffix


def _submitted(project: Project, run_id: str | None) -> RunManifest | None:
    """The run's manifest when it was already submitted to SageMaker."""
    if not has_run(project.root, run_id):
        return None
    manifest = load_run(project.root, run_id)
    return manifest if manifest.metrics.get("sagemaker_job") else None


def poll(project: Project, manifest: RunManifest, *, sagemaker: Any = None, s3: Any = None) -> RunManifest:
    """Update a running SageMaker run from its training job; fetch the model artifact when the job completed."""
    from underdog.train.lora import record_manifest

    job = manifest.metrics.get("sagemaker_job")
    if manifest.status != "running" or not job:
        return manifest
    cfg = TrainConfig.model_validate(manifest.hyperparameters)
    with aws_errors("DescribeTrainingJob"):
        described = (sagemaker or _client("sagemaker", cfg)).describe_training_job(TrainingJobName=job)
    status = described["TrainingJobStatus"]
    manifest.metrics.update(sagemaker_status=status, sagemaker_job_arn=described.get("TrainingJobArn"),
                            sagemaker_secondary_status=described.get("SecondaryStatus"))
    if status in RUNNING:
        record_manifest(project, manifest)
        return manifest
    if status != "Completed":
        manifest.status = "failed"
        manifest.error = f"SageMaker job {job} {status.lower()}: {described.get('FailureReason') or 'no reason given'}"
        record_manifest(project, manifest)
        return manifest
    artifact = described.get("ModelArtifacts", {}).get("S3ModelArtifacts", "")
    folder = project.run_dir(manifest.id)
    fetch_artifact(s3 or _client("s3", cfg), artifact, folder / ADAPTER_DIR)
    manifest.metrics.update(_final_metrics(described))
    manifest.metrics["sagemaker_artifact"] = artifact
    manifest.metrics["artifact_kind"] = "adapter" if (folder / ADAPTER_DIR / "adapter_config.json").exists() \
        else "full model"
    manifest.status, manifest.error = "done", None
    record_manifest(project, manifest)
    return manifest


def poll_running(project: Project, manifests: list[RunManifest]) -> list[str]:
    """Poll every running SageMaker run among `manifests` (updated in place); the one-line errors, if any."""
    errors = []
    for i, manifest in enumerate(manifests):
        if manifest.status == "running" and manifest.metrics.get("sagemaker_job"):
            try:
                manifests[i] = poll(project, manifest)
            except UnderdogError as exc:
                errors.append(f"run {manifest.id}: {exc}")
    return errors


def fetch_artifact(s3: Any, uri: str, target: Path) -> None:
    """Download `s3://bucket/key.tar.gz` and unpack it into `target` (streamed; only plain files and folders)."""
    if not uri.startswith("s3://") or not uri.endswith(".tar.gz"):
        raise UnderdogError(f"SageMaker model artifact {uri!r}: expected an s3://... .tar.gz")
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    archive = target.parent / "model.tar.gz"
    with aws_errors(f"download {uri}"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with archive.open("wb") as out:
            for chunk in body.iter_chunks(1 << 20):
                out.write(chunk)
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")  # refuses absolute paths, `..`, links out of the folder
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    archive.unlink()


def _final_metrics(described: dict[str, Any]) -> dict[str, float]:
    """JumpStart's final metrics (`huggingface-textgeneration:train-loss` ...) as train_loss / eval_loss."""
    out = {}
    for metric in described.get("FinalMetricDataList", []):
        name = metric["MetricName"].rsplit(":", 1)[-1].replace("-", "_")
        if name in ("train_loss", "eval_loss"):
            out[name] = metric["Value"]
    return out


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """botocore's ClientError and connection / credential errors as one UnderdogError line."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise UnderdogError("the SageMaker executor needs boto3: pip install 'underdog[sagemaker]'") from None
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise UnderdogError(f"AWS {action} failed: {error.get('Code', 'error')}: "
                            f"{error.get('Message') or 'no message'}") from None
    except BotoCoreError as exc:
        raise UnderdogError(f"AWS {action} failed: {exc}") from None


def _client(name: str, cfg: TrainConfig) -> Any:
    try:
        import boto3
    except ImportError:
        raise UnderdogError("the SageMaker executor needs boto3: pip install 'underdog[sagemaker]'") from None
    return boto3.client(name, region_name=cfg.sagemaker.region)
