"""Experiment trackers (issue 19): a run's hyperparameters, dataset version and hash, losses, final metrics and
later judged results land in MLflow (its local file store), TensorBoard (event files), Trackio (local mode) and
W&B (offline mode), read back from each tracker's own storage. Nothing reaches the network.

The training and judging run in a child process: Trackio fixes its storage folder (TRACKIO_DIR) when imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from underdog.data.dataset import Example, save_dataset
from underdog.errors import ConfigError
from underdog.evaluate.evalset import Question, save_evalset
from underdog.progress import Silent
from underdog.project import Project
from underdog.tracking import TRACKERS, check_installed

ALL = ["mlflow", "wandb", "tensorboard", "trackio"]
INSTALLED = [name for name in ALL if importlib.util.find_spec(TRACKERS[name].module)]  # dev installs all four
CHILD = """
import json, sys
from transformers import TrainerCallback
from underdog.errors import UnderdogError
from underdog.evaluate.judge import judge
from underdog.project import Project
from underdog.train.lora import train
from underdog.tune.prompt import Prompt, record_best, tune_prompt

class Boom(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        raise RuntimeError("boom")

project = Project(sys.argv[1])
run = train(project, "sums", {"max_steps": 3})
judged = judge(project, run.id, "student", "facts", judges=["facts"], progress=False)
tuned = record_best(project, tune_prompt(project, run.id, [Prompt("brief", "Answer briefly.")], [0.0], [1.0],
                                         evalset="facts", progress=False))
try:
    train(project, "sums", {"max_steps": 3, "report_to": json.loads(sys.argv[3])}, run_id="failing",
          callbacks=[Boom()])
except UnderdogError:
    pass
logs = config = None
if "trackio" in run.trackers:
    import trackio  # read back here: this process has the test's TRACKIO_DIR
    logs = trackio.SQLiteStorage.get_logs(project.root.name, run.id)
    config = trackio.SQLiteStorage.get_run_config(project.root.name, run.id)
json.dump({"run": run.id, "win_rate": judged.win_rate, "ci": judged.ci, "fact_recall": judged.recall.fact_recall,
           "tuned": tuned.win_rate, "trackio_logs": logs, "trackio_config": config}, open(sys.argv[2], "w"),
          default=str)
"""


def test_a_missing_tracker_package_is_one_line(monkeypatch: pytest.MonkeyPatch, project_dir: Path) -> None:
    monkeypatch.setattr(TRACKERS["wandb"], "module", "no_such_module_for_underdog")
    with pytest.raises(ConfigError, match=r"^train.report_to: wandb needs the package wandb: pip install"):
        check_installed(["wandb"])
    check_installed([name for name in INSTALLED if name != "wandb"])  # the installed others pass

    from underdog.train.lora import resolve_config

    with pytest.raises(ConfigError, match="report_to"):
        resolve_config(Project(project_dir), ["report_to=[mlfow]"])
    assert resolve_config(Project(project_dir)).report_to == []  # none by default


def wandb_records(path: Path) -> dict:
    """history / summary / config / run of one offline W&B run file (LevelDB-log framing of protobuf records,
    after a 7-byte W&B header); wandb itself ships no reader."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, pending, chunks = path.read_bytes(), 7, b"", []
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # a full record, or the last piece of one
            chunks.append(pending)
    out: dict = {"history": [], "summary": {}, "config": {}}
    for raw in chunks:
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.summary.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "run":
            out["run"] = (record.run.run_id, record.run.project, record.run.display_name)
    return out


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> dict:
    """One project: a 3-step run reporting to every installed tracker, judged and tuned, then a run that fails
    (in a child process); what the child saw, the run's manifest and where each tracker wrote."""
    if not INSTALLED:
        pytest.skip("no experiment tracker installed: pip install 'underdog[trackers]'")
    from underdog.project import init_project

    tmp_path = tmp_path_factory.mktemp("tracking")
    project_dir = tmp_path / "proj"
    init_project("US state and local government services", project_dir)
    config = yaml.safe_load((project_dir / "underdog.yaml").read_text())
    config["models"]["student"]["model"] = str(tiny_llama_dir)
    config["train"] = {"report_to": INSTALLED, "logging_steps": 1, "evals_per_epoch": 1, "device": "cpu"}
    config["evaluate"] = {"answer_max_tokens": 8, "judges": ["facts"]}
    (project_dir / "underdog.yaml").write_text(yaml.safe_dump(config))
    project = Project(project_dir)
    save_dataset(project_dir, "sums", [Example([{"role": "user", "content": f"What is {i} plus {i}?"},
                                                {"role": "assistant", "content": f"It is {2 * i}."}])
                                       for i in range(12)], recipe={"command": "test"})
    save_evalset(project, "facts", [Question(f"q{i}", f"What is {i} plus {i}?", facts=[str(2 * i)])
                                    for i in range(3)], source="test")
    mlruns, out = tmp_path / "mlruns", tmp_path / "child.json"
    env = {k: v for k, v in os.environ.items() if k != "UNDERDOG_PROJECT"}
    env |= {"MLFLOW_TRACKING_URI": f"file:{mlruns}", "MLFLOW_ALLOW_FILE_STORE": "true",
           "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "TRACKIO_DIR": str(tmp_path / "trackio"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", CHILD, str(project_dir), str(out), json.dumps(INSTALLED)],
                           env=env, cwd=project_dir, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    got = json.loads(out.read_text())
    manifest = json.loads((project_dir / "runs" / got["run"] / "manifest.json").read_text())
    failing = json.loads((project_dir / "runs" / "failing" / "manifest.json").read_text())
    assert set(manifest["trackers"]) == set(INSTALLED) == set(failing["trackers"])
    assert failing["status"] == "failed"
    return {**got, "project": project_dir, "mlruns": mlruns, "manifest": manifest, "failing": failing,
            "steps": manifest["metrics"]["steps"], "sha": manifest["dataset_sha256"],
            "judged": {"win_rate": got["win_rate"], "win_rate_ci_low": got["ci"][0],
                       "win_rate_ci_high": got["ci"][1], "fact_recall": got["fact_recall"]}}


def need(name: str) -> None:
    if name not in INSTALLED:
        pytest.skip(f"{TRACKERS[name].package} is not installed (pip install 'underdog[trackers]')")


@pytest.mark.slow
def test_mlflow_file_store_has_the_run_its_losses_and_judged_results(tracked: dict,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    need("mlflow")
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(f"file:{tracked['mlruns']}")
    manifest = tracked["manifest"]
    run = client.get_run(manifest["trackers"]["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == tracked["run"]
    assert run.data.params["underdog/dataset"] == "sums"
    assert run.data.params["underdog/dataset_sha256"] == tracked["sha"]
    assert run.data.params["underdog/lora_r"] == str(manifest["hyperparameters"]["lora_r"])
    assert "learning_rate" in run.data.params  # the Trainer's arguments, by transformers' MLflowCallback
    assert len(client.get_metric_history(run.info.run_id, "loss")) == tracked["steps"]
    assert run.data.metrics["final/train_loss"] == pytest.approx(manifest["metrics"]["train_loss"])
    for key, value in tracked["judged"].items():
        assert run.data.metrics[f"judge/{key}"] == pytest.approx(value)
    assert run.data.metrics["tune/win_rate"] == pytest.approx(tracked["tuned"])
    assert client.get_run(tracked["failing"]["trackers"]["mlflow"]["run_id"]).info.status == "FAILED"


@pytest.mark.slow
def test_tensorboard_event_files_have_the_losses_finals_and_judged_results(tracked: dict) -> None:
    need("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    manifest = tracked["manifest"]
    events = EventAccumulator(str(tracked["project"] / manifest["trackers"]["tensorboard"]["log_dir"]),
                              size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    assert len(events.Scalars("train/loss")) == tracked["steps"]
    assert events.Scalars("judge/win_rate")[-1].value == pytest.approx(tracked["win_rate"])
    assert events.Scalars("tune/win_rate")[-1].value == pytest.approx(tracked["tuned"])
    assert events.Scalars("final/train_loss")[-1].value == pytest.approx(manifest["metrics"]["train_loss"])
    sha_text = events.Tensors("underdog/dataset_sha256/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert sha_text == tracked["sha"]


@pytest.mark.slow
def test_trackio_local_mode_has_the_losses_config_and_judged_results(tracked: dict) -> None:
    need("trackio")
    logged = {k for row in tracked["trackio_logs"] for k in row}
    assert {"train/loss", "final/train_loss", "judge/win_rate", "judge/fact_recall", "tune/win_rate"} <= logged
    config = tracked["trackio_config"]  # the training's params, then the judge's and tune's beside them
    assert config["underdog/dataset_sha256"] == tracked["sha"] and config["underdog/dataset"] == "sums"
    assert sum(key.startswith(("judge/", "tune/")) for key in config) == 2


@pytest.mark.slow
def test_wandb_offline_files_have_the_run_then_its_judged_results(tracked: dict) -> None:
    need("wandb")
    ref = tracked["manifest"]["trackers"]["wandb"]
    files = sorted(Path(ref["dir"]).glob(f"wandb/offline-run-*-{ref['id']}/run-{ref['id']}.wandb"))
    runs = [wandb_records(f) for f in files]
    assert runs[0]["run"][1:] == (tracked["project"].name, tracked["run"])
    assert sum("train/loss" in h for h in runs[0]["history"]) == tracked["steps"]
    assert runs[0]["config"]["underdog/dataset_sha256"] == tracked["sha"]
    assert runs[0]["config"]["underdog/dataset"] == "sums"
    assert runs[0]["summary"]["final/train_loss"] == pytest.approx(tracked["manifest"]["metrics"]["train_loss"])
    later = {k: v for r in runs[1:] for h in r["history"] for k, v in h.items()}
    assert later["judge/win_rate"] == pytest.approx(tracked["win_rate"])
    assert later["tune/win_rate"] == pytest.approx(tracked["tuned"])


class Notes(Silent):
    """A reporter that keeps the notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


@pytest.mark.slow
def test_mlflow_defaults_to_a_sqlite_store_in_the_project_and_a_failing_tracker_is_one_note(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("mlflow")
    import mlflow

    from underdog.tracking import Target, record

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    tracker, target = TRACKERS["mlflow"], Target(project_dir, "r1")
    ref, _ = tracker.start(target, None)
    tracker.write(target, ref, {"underdog/dataset": "v1"}, {"final/train_loss": 0.5}, 3, "FINISHED")
    assert ref["tracking_uri"] == f"sqlite:///{(project_dir / 'mlflow.db').resolve()}"
    run = mlflow.MlflowClient(ref["tracking_uri"]).get_run(ref["run_id"])
    assert (run.info.status, run.info.run_name) == ("FINISHED", "r1")
    assert mlflow.get_experiment(run.info.experiment_id).name == project_dir.name
    assert run.data.params == {"underdog/dataset": "v1"} and run.data.metrics == {"final/train_loss": 0.5}

    # a later result for a run whose tracker run is gone: one note, nothing raised
    adapter = project_dir / "runs" / "r1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter.parent / "manifest.json").write_text(json.dumps(
        {"id": "r1", "trackers": {"mlflow": {**ref, "run_id": "0" * 32}}}))
    notes = Notes()
    project = Project(project_dir, reporter=notes)
    assert record(project, str(adapter), {}, {"judge/win_rate": 0.7}, 1) == []
    assert len(notes.notes) == 1 and notes.notes[0].startswith("mlflow: not sent to the tracker (")
    assert record(project, str(project_dir / "runs" / "elsewhere" / "adapter"), {}, {"judge/win_rate": 0.7}, 1) == []
