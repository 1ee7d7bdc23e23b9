"""The blind voting arena: `underdog arena add | judge | serve | standings | export`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from underdog.cli import app, console, get_project

arena_app = typer.Typer(no_args_is_help=True, help="Blind A/B voting by people: add candidates, serve the "
                        "voting page, see the standings, export the votes.")
app.add_typer(arena_app, name="arena")
TOKEN_ENV = "UNDERDOG_ARENA_TOKEN"


@arena_app.command("add")
def add(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="A role, run id, or model id."),
    name: str | None = typer.Option(None, "--name", help="Name revealed after each vote (default: MODEL)."),
    evalset: str | None = typer.Option(None, "--evalset", "-e", help="Eval set (default: the newest)."),
    questions: str | None = typer.Option(None, "--questions", "-q", help="Put other questions on show instead "
                                         "of the eval set: dataset:NAME (a dataset's questions) or a question "
                                         "file. Votes on them can become preference data; eval-set votes never."),
    max_questions: int | None = typer.Option(None, "--max-questions", min=1, help="With --questions: the first N."),
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt (e.g. from tune-prompt)."),
    temperature: float | None = typer.Option(None, "--temperature", "-t"),
    top_p: float | None = typer.Option(None, "--top-p"),
    settings: Path | None = typer.Option(None, "--settings", help="A tune-prompt best.yaml (system prompt, "
                                         "temperature, top_p); the options above override it."),
) -> None:
    """Answer the eval set (or --questions) with a candidate and put its answers in the arena (2+ candidates
    needed)."""
    from underdog.arena.prepare import add_candidate, load_settings

    tuned = load_settings(settings) if settings else {}
    count = add_candidate(get_project(ctx), model, name=name, evalset=evalset, questions=questions,
                          max_questions=max_questions,
                          system_prompt=system if system is not None else tuned.get("system_prompt"),
                          temperature=temperature if temperature is not None else tuned.get("temperature"),
                          top_p=top_p if top_p is not None else tuned.get("top_p"))
    console.print(f"added {count} answers of {escape(name or model)} to the arena")


@arena_app.command("judge")
def judge(ctx: typer.Context) -> None:
    """Have the LLM jury (evaluate.judges) judge every arena pair: the blended score's LLM share, and its
    agreement with the human votes."""
    from underdog.arena.prepare import judge_arena

    console.print(f"{judge_arena(get_project(ctx))} pairs judged")


@arena_app.command("serve")
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Default arena.host (127.0.0.1: this machine only; "
                                    "0.0.0.0 lets others on the network vote)."),
    port: int | None = typer.Option(None, "--port", help="Default arena.port."),
    invite_only: bool = typer.Option(False, "--invite-only", help="Only voters with an invite code "
                                     "(`underdog arena invite`) or the judge link may vote."),
) -> None:
    """Run the voting page. The organiser token comes from $UNDERDOG_ARENA_TOKEN, else a fresh random one."""
    import uvicorn

    from underdog.arena.app import create_app, judge_key

    project = get_project(ctx)
    cfg = project.config.arena
    host, port = host or cfg.host, port or cfg.port
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(18)
    application = create_app(project.store, token, weights=cfg.weights, rounds=cfg.bootstrap_rounds,
                             invite_only=invite_only)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"voters:    http://{shown}:{port}/\n"
                  f"judges:    http://{shown}:{port}/join?key={judge_key(token)}\n"
                  f"organiser: http://{shown}:{port}/organiser?token={token}", soft_wrap=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]listening on {host}: anyone who can reach this machine can vote[/]")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@arena_app.command("invite")
def invite(
    ctx: typer.Context,
    count: int = typer.Option(20, "--count", "-n", min=1, help="How many codes."),
    judges: bool = typer.Option(False, "--judges", help="Codes for judges (their votes count as the judges' "
                                "share), not for the audience."),
) -> None:
    """Create invite codes, one voter each: hand one link per person. A code brings back the same voter on any
    browser, so clearing cookies does not give a second vote on a pair."""
    from underdog.arena.votes import create_invites

    project = get_project(ctx)
    cfg = project.config.arena
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
    for code in create_invites(project.store, count, role="judge" if judges else "audience"):
        console.print(f"http://{shown}:{cfg.port}/invite/{code}", soft_wrap=True, highlight=False)


@arena_app.command("standings")
def standings(ctx: typer.Context) -> None:
    """Ratings (Bradley-Terry, 95% bootstrap CI), the same with style held equal and what the voters reward,
    win rates per group, the blended score; writes reports/arena.md."""
    from underdog.arena.standings import reward_text, to_markdown
    from underdog.arena.standings import standings as compute

    project = get_project(ctx)
    table = compute(project.store, project.config.arena.weights, project.config.arena.bootstrap_rounds)
    out = Table("#", "candidate", "rating", "95% CI", "style-controlled", "votes", "judges", "LLM", "audience",
                "blended")
    for i, r in enumerate(table.rows, 1):
        styled = f"{r.styled.rating:.0f} ({r.styled.low:.0f}-{r.styled.high:.0f})" if r.styled else "-"
        out.add_row(str(i), escape(r.candidate), f"{r.rating.rating:.0f}", f"{r.rating.low:.0f}-{r.rating.high:.0f}",
                    styled, str(r.rating.games), _pct(r.human), _pct(r.llm), _pct(r.audience), _pct(r.blended))
    console.print(out)
    console.print(f"{table.voters} voters, {table.anonymous} of them anonymous (no invite code or judge link)")
    if table.simulated:
        console.print(f"[yellow]SIMULATED: {table.simulated} of the votes come from the simulated voter panel, "
                      "not from people[/]")
    if table.agreement:
        a = table.agreement
        console.print(f"LLM vs humans: {a.percent:.1%} agreement on {a.n} votes, Cohen's kappa {a.kappa:.2f}")
    if table.rewards:
        console.print("what your voters reward (style control: log-odds per standard deviation more, 95% CI):")
        for name, estimate in table.rewards.items():
            console.print(f"  {reward_text(name, estimate)}", highlight=False)
    project.reports_dir.mkdir(parents=True, exist_ok=True)
    path = project.reports_dir / "arena.md"
    path.write_text(to_markdown(table))
    console.print(f"wrote {path}")


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


@arena_app.command("import-votes")
def import_votes(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or JSONL: the columns `arena export` writes, or question, answer_a, "
                                "answer_b, winner (a|b|tie|both_bad), voter, role (judge|audience) [, candidate_a, "
                                "candidate_b, question_set]."),
    question_set: str | None = typer.Option(None, "--question-set", help="The question set the votes belong to "
                                            "when a row names none (default: import:<file name>)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the file, e.g. latin-1."),
) -> None:
    """Import votes collected elsewhere (a form, a spreadsheet, another arena). Every row is checked first; the
    first bad one is named (file:line) and nothing is imported. Importing a file again adds nothing."""
    from underdog.arena.importing import import_votes as run_import

    result = run_import(get_project(ctx), file, question_set=question_set, encoding=encoding)
    sets = ", ".join(f"{escape(name)} ({count})" for name, count in sorted(result.question_sets.items()))
    console.print(f"imported {result.added} votes from {escape(str(file))} ({result.already} already there); "
                  f"question sets: {sets}", highlight=False)
    if result.on_eval_questions:
        console.print(f"{result.on_eval_questions} of them are on eval-set questions: they evaluate (standings, "
                      "calibration), they never become training data", highlight=False)


@arena_app.command("simulate-panel")
def simulate_panel(
    ctx: typer.Context,
    voters: int = typer.Option(5, "--voters", min=1, help="Simulated voters; each votes on every pair."),
    noise: float = typer.Option(0.1, "--noise", min=0.0, max=1.0, help="Share of votes cast at random."),
    seed: int = typer.Option(0, "--seed"),
    role: str = typer.Option("judge", "--role", help="judge or audience: the share of the blended score."),
    question_set: str | None = typer.Option(None, "--question-set", help="Only pairs of this question set, e.g. "
                                            "dataset:base."),
) -> None:
    """SIMULATION, not people: a scripted panel votes on the arena's pairs (it prefers an answer that first
    acknowledges the resident's situation in one sentence, then gives the fact). For the offline demo and tests;
    its votes are marked simulated everywhere."""
    from underdog.arena.simulated_panel import cast_simulated_votes

    if role not in ("judge", "audience"):
        raise typer.BadParameter(f"--role {role!r}: judge or audience")
    added = cast_simulated_votes(get_project(ctx), voters=voters, noise=noise, seed=seed, role=role,
                                 question_set=question_set)
    console.print(f"[yellow]SIMULATED[/]: {added} votes cast by {voters} simulated voters (the simulated panel, "
                  "not people)")


@arena_app.command("export")
def export(ctx: typer.Context, file: Path = typer.Argument(Path("votes.csv"), help="CSV file to write.")) -> None:
    """Write every vote (voter, role, question, pair, shown order, choice, winner, time) to a CSV file."""
    from underdog.arena.votes import export_votes

    console.print(f"wrote {export_votes(get_project(ctx).store, file)} votes to {file}")
