"""`underdog studio`: the local web app over the project (underdog/studio, docs/studio.md)."""

from __future__ import annotations

import os
import secrets

import typer

from underdog.cli.root import app, console, get_project

TOKEN_ENV = "UNDERDOG_STUDIO_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def studio(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="127.0.0.1: this machine only; 0.0.0.0 lets others on "
                             "the network read (and, with the token, act)."),
    port: int = typer.Option(8766, "--port"),
) -> None:
    """Open the project in a browser: data and its lineage, runs with live loss curves, answers and every judge's
    verdict, the final round, the autopilot, and actions (train, judge, tune-prompt, autopilot) started from the
    page. Reading needs nothing; acting needs the link with the token printed here ($UNDERDOG_STUDIO_TOKEN, else a
    fresh random one)."""
    from underdog.studio.app import create_app, serve  # lazy: start-up (`underdog --help` imports no server)

    project = get_project(ctx)
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(18)
    application = create_app(project, token, hosts=list(LOOPBACK) if host in LOOPBACK else None)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"studio (read): http://{shown}:{port}/\n"
                  f"studio (act):  http://{shown}:{port}/?token={token}   open this one to start commands",
                  soft_wrap=True, highlight=False)
    if host not in LOOPBACK:
        console.print(f"[yellow]listening on {host}: anyone who can reach this machine can read the project[/]")
    serve(application, host, port)
