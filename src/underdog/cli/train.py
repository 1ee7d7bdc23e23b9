"""Training commands: train, merge, sweep, runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from underdog.cli import app, console, get_project
from underdog.cli.lazy import lazy

load_run = lazy("underdog.train.runs", "load_run")


@app.command()
def train(
    ctx: typer.Context,
    overrides: list[str] = typer.Argument(None, help="Hyperparameters as key=value: epoch=3 lora_r=16 ..."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset version (default: the newest)."),
    resume: str | None = typer.Option(None, "--resume", help="Continue an interrupted run from its checkpoint."),
    run_id: str | None = typer.Option(None, "--run-id", help="Name the run (default: time-dataset-random)."),
    processes: int = typer.Option(1, "--processes", help="GPUs for this run, via `accelerate launch` (DDP)."),
    fsdp: bool = typer.Option(False, "--fsdp", help="With --processes: shard with FSDP instead of DDP."),
    on_sagemaker: bool = typer.Option(False, "--sagemaker", help="Submit as a SageMaker JumpStart training job "
                                      "(settings under train.sagemaker in underdog.yaml)."),
    sweep: str | None = typer.Option(None, "--sweep", hidden=True),
) -> None:
    """LoRA fine-tune the student on a dataset version; writes runs/<id>/ (adapter, manifest, loss.png)."""
    from underdog.train.lora import new_run_id
    from underdog.train.lora import train as train_run

    project = get_project(ctx)
    overrides = overrides or []
    if resume:
        load_run(project.root, resume)  # an unknown run is an error, not a new run
    if on_sagemaker:
        from underdog.train.sagemaker import submit

        m = submit(project, dataset, overrides, run_id=run_id)
        console.print(f"submitted {m.metrics['sagemaker_job']} ({m.metrics['sagemaker_job_arn']}) as run {m.id}")
        return
    if processes > 1:
        from underdog.train.launch import launch
        from underdog.train.lora import resolve_dataset

        name = resolve_dataset(project.root, dataset or project.config.train.dataset)
        run = resume or run_id or new_run_id(name)
        launch(project.root, name, run, overrides, processes=processes, fsdp=fsdp)
        manifest = load_run(project.root, run)
    else:
        try:
            manifest = train_run(project, dataset, overrides, run_id=resume or run_id, sweep=sweep)
        except KeyboardInterrupt:
            from underdog.train.runs import list_runs

            stopped = [m for m in list_runs(project.root) if (m.error or "").startswith("interrupted")]
            if stopped:
                console.print(f"run {stopped[-1].id} stopped at its last checkpoint: "
                              f"underdog train --resume {stopped[-1].id}")
            raise
    _print_run(manifest)


def _print_run(m) -> None:  # type: ignore[no-untyped-def]
    loss = m.metrics
    console.print(f"run [bold]{m.id}[/] {m.status}: train loss {_fmt(loss.get('train_loss'))}, "
                  f"eval loss {_fmt(loss.get('eval_loss'))}")
    if m.overfit.get("flag"):
        console.print(f"[yellow]overfit[/] from epoch {m.overfit['epoch']}: {m.overfit['reason']}")
    console.print(f"adapter: {m.adapter_dir}   use it: underdog chat {m.id} \"...\"   serve: underdog serve {m.id}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command()
def merge(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run id."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: runs/<id>/merged)."),
) -> None:
    """Merge a run's LoRA adapter into the base model: full weights for serving elsewhere (vLLM, TGI...)."""
    from underdog.train.merge import merge_run

    path = merge_run(get_project(ctx), run, out)
    console.print(f"merged weights: {path}")


@app.command()
def sweep(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Sweep YAML (grid, list or optuna; see docs/training.md)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed runs again."),
) -> None:
    """Run (or resume) a sweep of training runs; failed runs are recorded and the sweep goes on."""
    from underdog.train.sweep import run_sweep

    project = get_project(ctx)
    manifests = run_sweep(project, path, retry_failed=retry_failed)
    console.print(runs_table(manifests))


@app.command()
def runs(
    ctx: typer.Context,
    sweep: str | None = typer.Option(None, "--sweep", help="Only the runs of this sweep."),
) -> None:
    """List training runs: dataset, hyperparameters, final losses, overfit flag, status."""
    from underdog.train.runs import list_runs

    manifests = [m for m in list_runs(get_project(ctx).root) if sweep is None or m.sweep == sweep]
    console.print(runs_table(manifests))


SHOWN = ("epoch", "learning_rate", "lora_r", "lora_alpha", "per_device_train_batch_size")


def runs_table(manifests: list) -> Table:  # type: ignore[type-arg]
    table = Table("run", "status", "dataset", "hyperparameters", "train loss", "eval loss", "overfit", "note")
    for m in manifests:
        hp = " ".join(f"{k.replace('per_device_train_batch_size', 'batch')}={m.hyperparameters.get(k)}"
                      for k in SHOWN)
        flag = f"[yellow]yes (epoch {m.overfit.get('epoch')})[/]" if m.overfit.get("flag") else "no"
        status = {"done": "[green]done[/]", "failed": "[red]failed[/]"}.get(m.status, m.status)
        table.add_row(m.id, status, m.dataset, hp, _fmt(m.metrics.get("train_loss")),
                      _fmt(m.metrics.get("eval_loss")), flag if m.status == "done" else "-", m.error or "")
    return table
