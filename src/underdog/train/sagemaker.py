"""SageMaker JumpStart executor: the same `train:` config becomes a JumpStart training job (`pip install
'underdog[sagemaker]'`; AWS credentials from the usual boto3 sources, never from underdog.yaml).

    underdog train --dataset v1 --sagemaker epoch=3 lora_r=16     # with train.sagemaker.{role_arn, bucket, ...}

Steps: export the dataset version in the `jumpstart` format (train.jsonl with instruction/context/response +
template.json; JumpStart makes its own validation split from validation_split_ratio), upload both files to
`s3://<bucket>/<prefix>/<run-id>/training/`, then call CreateTrainingJob with the JumpStart container, script and
base weights for `model_id` and the hyperparameters under JumpStart's names (all strings). underdog's own
settings that JumpStart does not know (packing, warmup, scheduler, overfit checks...) are not sent; the job uses
JumpStart's behaviour for them. The run is recorded locally with status "running" and the job name.

What the tests check, and what they cannot: `tests/test_train_executors.py` stubs the S3 and SageMaker clients
with botocore's Stubber and compares the exact PutObject and CreateTrainingJob parameters; botocore also
validates them against the service's API model. No AWS is reachable here, so nothing checks that the
container/script/model URIs exist, that the role may read the bucket, or that JumpStart's script accepts every
value: submit one small job (epoch=1) before a sweep.
"""

from __future__ import annotations

from typing import Any

from underdog.config import SageMakerConfig, TrainConfig
from underdog.errors import ConfigError, UnderdogError
from underdog.project import Project
from underdog.train.runs import RunManifest

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
    from underdog.train.lora import _record, library_versions, new_run_id, resolve_config, resolve_dataset

    cfg = resolve_config(project, overrides)
    dataset = resolve_dataset(project.root, dataset or cfg.dataset)
    _required(cfg.sagemaker)
    run_id = run_id or new_run_id(dataset)
    job_name = ("underdog-" + run_id.replace("_", "-").replace(".", "-"))[:63]
    s3, sagemaker = s3 or _client("s3", cfg), sagemaker or _client("sagemaker", cfg)
    key_prefix = f"{cfg.sagemaker.prefix}/{run_id}/training"
    files = export_dataset(project, dataset, "jumpstart", out=project.runs_dir / run_id / "jumpstart",
                           validation_split=0.0)
    for path in files:
        s3.put_object(Bucket=cfg.sagemaker.bucket, Key=f"{key_prefix}/{path.name}", Body=path.read_bytes())
    request = training_job_request(cfg, job_name, f"s3://{cfg.sagemaker.bucket}/{key_prefix}/")
    response = sagemaker.create_training_job(**request)
    manifest = RunManifest(id=run_id, status="running", dataset=dataset, base_model=cfg.sagemaker.model_id,
                           hyperparameters=cfg.model_dump(), dataset_sha256=load_manifest(project.root, dataset).sha256,
                           device=f"sagemaker:{cfg.sagemaker.instance_type}", versions=library_versions())
    manifest.metrics = {"sagemaker_job": job_name, "sagemaker_job_arn": response.get("TrainingJobArn")}
    _record(project, manifest)
    return manifest


def _client(name: str, cfg: TrainConfig) -> Any:
    try:
        import boto3
    except ImportError:
        raise UnderdogError("the SageMaker executor needs boto3: pip install 'underdog[sagemaker]'") from None
    return boto3.client(name, region_name=cfg.sagemaker.region)
