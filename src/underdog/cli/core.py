"""Project and model commands: init, models, chat, serve, usage."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from underdog.cli import app, console, get_project
from underdog.cli.lazy import lazy

check_model = lazy("underdog.llm.health", "check_model")
usable = lazy("underdog.llm.health", "usable")
init_project = lazy("underdog.project", "init_project")


@app.command()
def init(
    domain: str = typer.Argument(..., help='What your model should be good at, e.g. "US state & local services".'),
    directory: Path = typer.Argument(Path("."), help="Project folder to create."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing underdog.yaml."),
) -> None:
    """Create a project: a commented underdog.yaml that runs offline on the embedded model."""
    path = init_project(domain, directory, force=force)
    console.print(f"wrote {path} — edit the models: section to use your teacher, judge and reference models")


@app.command()
def models(
    ctx: typer.Context,
    check: bool = typer.Option(True, "--check/--no-check", help="Check that each model answers."),
) -> None:
    """List the configured roles and whether each model is reachable (exit 1 when one is not)."""
    project = get_project(ctx)
    table = Table("role", "provider", "model", "endpoint / adapter", "status")
    failed = 0
    for role, spec in project.config.models.items():
        status = check_model(spec) if check else "-"
        failed += check and not usable(status)
        colour = "green" if status == "ok" else "red" if check else ""
        where = spec.base_url or spec.adapter or ""
        table.add_row(role, spec.provider, spec.model, where, f"[{colour}]{escape(status)}[/]" if colour else status)
    console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def chat(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="A role (teacher, judge, student, reference), run id, or model id."),
    prompt: str = typer.Argument(..., help="The user message."),
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt."),
    temperature: float | None = typer.Option(None, "--temperature", "-t"),
    top_p: float | None = typer.Option(None, "--top-p"),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
) -> None:
    """Ask one model one question (cached and logged like every call)."""
    llm = get_project(ctx).llm(model, stage="chat")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    reply = llm.chat(messages, temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    console.print(reply.text, markup=False, highlight=False)
    note = "cached" if reply.cached else f"{reply.latency_s:.1f} s"
    console.print(f"[dim]{llm.name} · {reply.input_tokens}+{reply.output_tokens} tokens · {note}[/]")


@app.command()
def serve(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="HF model id or path, smollm2-135m, a role, or a run id."),
    adapter: Path | None = typer.Option(None, "--adapter", help="PEFT adapter directory."),
    host: str = typer.Option("127.0.0.1", "--host", help="Use 0.0.0.0 to accept other machines."),
    port: int = typer.Option(8000, "--port"),
    name: str | None = typer.Option(None, "--name", help="Model name clients use (default: MODEL)."),
    max_queue: int = typer.Option(64, "--max-queue", min=1, help="Requests in progress at most (503 beyond)."),
) -> None:
    """Serve a local model (+ adapter) as an OpenAI-compatible API (/v1/chat/completions, /v1/models)."""
    from underdog.serve import serve as run_server

    spec = get_project(ctx, required=False).model_spec(model)
    if spec.provider != "local":
        raise typer.BadParameter(f"{model} is a {spec.provider} model; serve runs local models only")
    if adapter:
        spec = spec.model_copy(update={"adapter": str(adapter)})
    console.print(f"loading {spec.model}{' + ' + spec.adapter if spec.adapter else ''} …")
    console.print(f"serving as {name or model!r} on http://{host}:{port}/v1 (Ctrl-C to stop)")
    run_server(spec, host=host, port=port, served_name=name or model, max_queue=max_queue)


@app.command()
def usage(ctx: typer.Context) -> None:
    """Calls, cache hits, tokens, latency and cost per stage and model; calls a killed process had in flight
    (sent, never recorded) are listed as possibly paid and counted in budgets."""
    store = get_project(ctx).store
    table = Table("stage", "model", "calls", "cached", "errors", "tokens in", "tokens out", "mean latency",
                  "cost")
    total = 0.0
    for r in store.usage():
        total += r["cost_usd"]
        table.add_row(r["stage"] or "-", r["model"], str(r["calls"]), str(r["cached"]), str(r["errors"]),
                      f"{r['input_tokens']:,}", f"{r['output_tokens']:,}", f"{r['mean_latency_s']:.2f} s",
                      f"${r['cost_usd']:.4f}")
    console.print(table)
    possibly = 0.0
    for p in store.pending_calls():
        state = "still running" if p["alive"] else "gone (killed or crashed)"
        possibly += 0.0 if p["alive"] else p["estimate_usd"]
        console.print(f"{'in flight' if p['alive'] else '[yellow]possibly paid[/]'}: {p['calls']} call(s) to "
                      f"{escape(p['model'])} (stage {escape(p['stage'] or '-')}) sent by process {p['pid']}, "
                      f"{state}, and never recorded: up to ${p['estimate_usd']:.4f}", highlight=False)
    console.print(f"total cost: ${total:.4f}" + (f" + up to ${possibly:.4f} possibly paid (counted in budgets)"
                                                  if possibly else ""))
