"""Training commands: train, merge, export-model, sweep, runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from underdog import train as training
from underdog.cli.lazy import lazy
from underdog.cli.root import app, console, get_project
from underdog.errors import UnderdogError

push_token = lazy("underdog.train.push", "push_token")


@app.command()
def train(
    ctx: typer.Context,
    overrides: list[str] = typer.Argument(None, help="Hyperparameters as key=value: epoch=3 lora_r=16 ..."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset version (default: the newest); a "
                                       "preference dataset with --method dpo."),
    method: str | None = typer.Option(None, "--method", help="sft (supervised, the default) or dpo (preference "
                                      "training with TRL's DPOTrainer on top of the --from run)."),
    from_run: str | None = typer.Option(None, "--from", help="--method dpo: the supervised run whose adapter is "
                                        "trained and kept as the reference policy."),
    resume: str | None = typer.Option(None, "--resume", help="Continue an interrupted run from its checkpoint."),
    run_id: str | None = typer.Option(None, "--run-id", help="Name the run (default: time-dataset-random)."),
    processes: int = typer.Option(1, "--processes", help="GPUs for this run, via `accelerate launch` (DDP)."),
    fsdp: bool = typer.Option(False, "--fsdp", help="With --processes: shard with FSDP instead of DDP."),
    on_sagemaker: bool = typer.Option(False, "--sagemaker", help="Submit as a SageMaker JumpStart training job "
                                      "(settings under train.sagemaker in underdog.yaml)."),
    sweep: str | None = typer.Option(None, "--sweep", hidden=True),
) -> None:
    """LoRA fine-tune the student on a dataset version; writes runs/<id>/ (adapter, manifest, loss.png).

    With --method dpo -d PREFS --from RUN: preference training (TRL's DPOTrainer) of RUN's adapter, RUN being the
    reference policy."""
    from underdog.train.executors import Resources, RunPlan, get_executor  # lazy: start-up

    project = get_project(ctx)
    if resume:
        training.load_run(project.root, resume)  # an unknown run is an error, not a new run
    name = "sagemaker" if on_sagemaker else "accelerate" if processes > 1 else "local"
    executor = get_executor(name, project, Resources(slots=[None], processes=processes, fsdp=fsdp))
    chosen = [f"method={method}"] * bool(method) + [f"from_run={from_run}"] * bool(from_run)
    plan = RunPlan(dataset=dataset, overrides=[*chosen, *(overrides or [])], run_id=resume or run_id, sweep=sweep)
    try:
        [m] = executor.submit([plan])
    except KeyboardInterrupt:
        from underdog.train.runs import list_runs  # lazy: start-up

        stopped = [m for m in list_runs(project.root) if (m.error or "").startswith("interrupted")]
        if stopped:
            console.print(f"run {stopped[-1].id} stopped at its last checkpoint: "
                          f"underdog train --resume {stopped[-1].id}")
        raise
    if m.status == "failed":
        raise UnderdogError(f"run {m.id} failed: {m.error}")
    if m.status == "running" and on_sagemaker:
        console.print(f"submitted {m.metrics['sagemaker_job']} ({m.metrics['sagemaker_job_arn']}) as run {m.id}: "
                      "`underdog runs` follows it and fetches the adapter when it is done")
        return
    _print_run(m)
    if name == "local":
        _note_one_gpu(m.device)


def _note_one_gpu(device: str | None) -> None:
    """Say so when a run used one GPU of several (a run without a launcher never uses DataParallel)."""
    import torch

    if (device or "").startswith("cuda") and torch.cuda.device_count() > 1:
        console.print(f"trained on {device} only, one of {torch.cuda.device_count()} GPUs: "
                      "`underdog train --processes N` trains one run on N GPUs (DDP, or --fsdp)")


def _print_run(m) -> None:  # type: ignore[no-untyped-def]
    loss = m.metrics
    console.print(f"run [bold]{m.id}[/] {m.status}: train loss {_fmt(loss.get('train_loss'))}, "
                  f"eval loss {_fmt(loss.get('eval_loss'))}")
    if m.method != "sft":
        console.print(f"{m.method} from run {m.hyperparameters.get('from_run')}: {_rewards(m)}")
    kept = loss.get("kept")
    if kept:
        console.print(f"kept the best adapter: epoch {kept['epoch']}, step {kept['step']}, "
                      f"eval loss {_fmt(kept['eval_loss'])} (last {_fmt(loss.get('last_eval_loss'))})")
    if m.overfit.get("flag"):
        console.print(f"[yellow]warning: overfit[/] from epoch {m.overfit['epoch']}: {m.overfit['reason']}")
    console.print(f"adapter: {m.adapter_dir}   use it: underdog chat {m.id} \"...\"   serve: underdog serve {m.id}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rewards(m) -> str:  # type: ignore[no-untyped-def]
    """A preference run's last reward accuracy and margin (held-out pairs when it has them)."""
    split = "eval" if m.metrics.get("eval_reward_accuracy") is not None else "train"
    return (f"reward accuracy {_fmt(m.metrics.get(f'{split}_reward_accuracy'))}, margin "
            f"{_fmt(m.metrics.get(f'{split}_reward_margin'))} ({'held-out' if split == 'eval' else 'training'} pairs)")


@app.command()
def merge(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: runs/<id>/merged)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (the base model's) or float32: no bf16 rounding of "
                              "the LoRA delta, twice the size."),
    push: str | None = typer.Option(None, "--push", help="Publish the folder to this Hugging Face model repo "
                                    "(owner/name; token from $HF_TOKEN)."),
) -> None:
    """Merge a run's LoRA adapter into the base model: full weights and a model card (README.md) for serving
    elsewhere (vLLM, TGI...)."""
    if push:
        push_token(push)  # before the work: a missing token is said at once
    path = training.merge_run(get_project(ctx), run, out, dtype=dtype)
    console.print(f"merged weights: {path} (model card: {path / 'README.md'})")
    _push(path, push)


@app.command("export-model")
def export_model_command(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id."),
    fmt: str = typer.Option("gguf", "--format", "-f", help="gguf (llama.cpp, LM Studio), or ollama: the GGUF plus a "
                            "Modelfile."),
    quant: str = typer.Option("q8_0", "--quant", "-q", help="q8_0, q4_k_m (llama.cpp's mix of 4- and 6-bit "
                              "k-quants), f16 or f32."),
    settings: Path | None = typer.Option(None, "--settings", help="A tune-prompt best.yaml for the Modelfile "
                                         "(default: the newest one of `underdog tune-prompt RUN`)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: runs/<id>/export-<quant>)."),
    push: str | None = typer.Option(None, "--push", help="Publish the folder to this Hugging Face model repo "
                                    "(owner/name; token from $HF_TOKEN)."),
) -> None:
    """The run's merged model as one GGUF file (+ an Ollama Modelfile), with its model card (README.md)."""
    if push:
        push_token(push)
    result = training.export_model(get_project(ctx), run, fmt, quant, out, settings)
    console.print(f"GGUF: {result.gguf} ({result.size / 2**20:.1f} MiB, {quant})", highlight=False)
    if result.modelfile:
        console.print(f"Modelfile: {result.modelfile}   use it: cd {result.folder} && ollama create "
                      f"{result.gguf.stem} -f Modelfile", highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    console.print(f"model card: {result.card}", highlight=False)
    _push(result.folder, push)


def _push(folder: Path, repo: str | None) -> None:
    if repo:
        console.print(f"pushed {folder.name} to {repo}: {training.push_folder(folder, repo)}", highlight=False)


@app.command()
def sweep(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Sweep YAML (grid, list or optuna; see docs/training.md)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again."),
) -> None:
    """Run (or resume) a sweep of training runs; failed runs are recorded and the sweep goes on."""
    from underdog.train.sweep import run_sweep  # lazy: start-up

    project = get_project(ctx)
    manifests = run_sweep(project, path, retry_failed=retry_failed)
    console.print(runs_table(manifests))


@app.command()
def runs(
    ctx: typer.Context,
    sweep: str | None = typer.Option(None, "--sweep", help="Only the runs of this sweep."),
) -> None:
    """List training runs: dataset, hyperparameters, losses of the kept adapter, overfit warning, status
    (SageMaker jobs are polled, and their adapter fetched once done)."""
    from underdog.train.runs import list_runs  # lazy: start-up
    from underdog.train.sagemaker import poll_running  # lazy: start-up

    project = get_project(ctx)
    manifests = [m for m in list_runs(project.root) if sweep is None or m.sweep == sweep]
    errors = poll_running(project, manifests)  # SageMaker jobs: status, and the adapter once done
    console.print(runs_table(manifests))
    for line in errors:
        console.print(f"[yellow]warning:[/] {line}")


SHOWN = ("epoch", "learning_rate", "lora_r", "lora_alpha", "per_device_train_batch_size")


def runs_table(manifests: list) -> Table:  # type: ignore[type-arg]
    table = Table("run", "status", "dataset", "hyperparameters", "train loss", "eval loss (kept epoch)",
                  "warning / note")
    for m in manifests:
        hp = " ".join(f"{k.replace('per_device_train_batch_size', 'batch')}={m.hyperparameters.get(k)}"
                      for k in SHOWN)
        status = {"done": "[green]done[/]", "failed": "[red]failed[/]"}.get(m.status, m.status)
        kept = m.metrics.get("kept")
        eval_loss = _fmt(m.metrics.get("eval_loss")) + (f" ({kept['epoch']})" if kept else "")
        note = _warning(m) if m.status == "done" else (m.error or "")
        if m.method != "sft":
            hp = f"{m.method} from {m.hyperparameters.get('from_run')} beta={m.hyperparameters.get('beta')} " + hp
            note = " ".join(filter(None, [_rewards(m) if m.status == "done" else "", note]))
        table.add_row(m.id, status, m.dataset, hp, _fmt(m.metrics.get("train_loss")), eval_loss, note)
    return table


def _warning(m) -> str:  # type: ignore[no-untyped-def]
    """The overfit flag as a warning beside the run's numbers (the run is listed and ranked all the same)."""
    return f"[yellow]warning: overfit from epoch {m.overfit.get('epoch')}[/]" if m.overfit.get("flag") else ""
