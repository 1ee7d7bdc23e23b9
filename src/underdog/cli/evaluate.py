"""Evaluation commands: evalset import/generate/list, answer, judge, compare, leaderboard, calibrate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from underdog.cli import app, console, get_project
from underdog.cli.lazy import lazy
from underdog.errors import ConfigError

known_judge = lazy("underdog.config", "known_judge")
apply_calibration = lazy("underdog.evaluate.calibrate", "apply_calibration")
calibrate_judges = lazy("underdog.evaluate.calibrate", "calibrate")
disagreement_text = lazy("underdog.evaluate.jury_status", "disagreement_text")
jury_status = lazy("underdog.evaluate.jury_status", "jury_status")
answer_questions = lazy("underdog.evaluate.answer", "answer")
check_answered = lazy("underdog.evaluate.answer", "check_answered")
variant = lazy("underdog.evaluate.answer", "variant")
compare_candidates = lazy("underdog.evaluate.compare", "compare")
generate_evalset = lazy("underdog.evaluate.evalset", "generate_evalset")
evalset_from_documents = lazy("underdog.evaluate.docs_evalset", "evalset_from_documents")
import_evalset = lazy("underdog.evaluate.evalset", "import_evalset")
list_evalsets = lazy("underdog.evaluate.evalset", "list_evalsets")
load_evalset = lazy("underdog.evaluate.evalset", "load_evalset")
judge_candidate = lazy("underdog.evaluate.judge", "judge")
board_config = lazy("underdog.evaluate.leaderboard", "board_config")
leaderboard_entries = lazy("underdog.evaluate.leaderboard", "leaderboard")
recommend = lazy("underdog.evaluate.leaderboard", "recommend")
describe_config = lazy("underdog.report", "describe_config")
fmt = lazy("underdog.report", "fmt")
write_report = lazy("underdog.report", "write_report")

if TYPE_CHECKING:
    from underdog.evaluate.judge import JudgeResult
    from underdog.project import Project

evalset_app = typer.Typer(no_args_is_help=True, help="Held-out eval sets (never trained on).")
app.add_typer(evalset_app, name="evalset")

EVALSET = typer.Option(None, "--evalset", "-e", help="Eval set name (default: evaluate.evalset, else the newest).")
JUDGES = typer.Option(None, "--judge", "-j", help="Judge role or model, the grounded `facts` / `similarity`, or "
                      "`people` (fitted on the arena's votes); repeat for a jury (default: evaluate.judges).")
RUBRIC = typer.Option(None, "--rubric", help="Comma-separated criteria, e.g. correctness,empathy.")


def check_judges(project: Project, judges: list[str] | None) -> list[str] | None:
    """The `--judge` names, or a one-line error for a name that is no judge (most likely a typo)."""
    for name in judges or []:
        if not known_judge(name, project.config.models):
            raise ConfigError(f"--judge {name!r}: unknown judge (use a role of `models`, facts, similarity, "
                              "people, provider:model or a model path)")
    return judges or None


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def lc_text(x: float | None) -> str:
    """The length-controlled win rate, or why there is none."""
    return "not identifiable (length separates the outcomes, or no answers of comparable length)" if x is None \
        else pct(x)


@evalset_app.command("import")
def evalset_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help=".jsonl/.json/.csv with a 'question' field, or .txt (one per line)."),
    name: str | None = typer.Option(None, "--name", help="Eval set name (default: the file name)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the file, e.g. latin-1."),
) -> None:
    """Import held-out questions from a file."""
    questions = import_evalset(get_project(ctx), file, name, encoding=encoding)
    console.print(f"imported {len(questions)} questions as eval set {name or file.stem!r}")


@evalset_app.command("generate")
def evalset_generate(
    ctx: typer.Context,
    name: str = typer.Option("default", "--name", help="Eval set name."),
    size: int | None = typer.Option(None, "--size", help="Number of questions (default: evaluate.evalset_size)."),
    ground_truth: bool = typer.Option(False, "--ground-truth", help="Also ask the teacher for each question's "
                                      "reference answer and facts (for the grounded judges)."),
) -> None:
    """Have the teacher write held-out questions over the project's topics."""
    questions = generate_evalset(get_project(ctx), name, size, ground_truth=ground_truth)
    grounded = sum(bool(q.facts or q.expect) for q in questions)
    console.print(f"wrote {len(questions)} questions to evalsets/{name}/questions.jsonl"
                  + (f", {grounded} with a reference answer and facts (the rest: the teacher's reply did not parse)"
                     if ground_truth else ""))


@evalset_app.command("from-docs")
def evalset_from_docs(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files or folders: PDF, HTML, Markdown, TXT, DOCX, CSV."),
    name: str = typer.Option("docs", "--name", help="Eval set name."),
    size: int | None = typer.Option(None, "--size", min=1, help="Most questions: chunks asked, spread over the "
                                    "documents (default: evaluate.evalset_size)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the files, e.g. latin-1."),
) -> None:
    """Have the teacher write one question per document chunk, with a reference answer and facts from it."""
    built = evalset_from_documents(get_project(ctx), paths, name, size, encoding=encoding)
    for item in built.skipped:
        console.print(f"[yellow]skipped[/] {escape(item['file'])}: {escape(item['reason'])}", highlight=False)
    console.print(f"wrote {len(built.questions)} questions with a reference answer and facts to "
                  f"evalsets/{name}/questions.jsonl from {built.chunks} chunks"
                  + (f"; dropped {built.dropped} (the teacher's question or answer key did not parse, failed, or "
                     "repeated another)" if built.dropped else ""), highlight=False)


@evalset_app.command("show")
def evalset_show(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Eval set name (default: evaluate.evalset, else the newest)."),
) -> None:
    """Show an eval set's questions with their reference answers, facts and expected refusals."""
    project = get_project(ctx)
    questions = load_evalset(project, name)
    for q in questions:
        lines = [f"[bold]{escape(q.id)}[/] {escape(q.question)}"]
        lines += [f"  reference: {escape(q.reference)}"] if q.reference else []
        lines += [f"  facts: {escape(' | '.join(q.facts))}"] if q.facts else []
        lines += [f"  expect: {escape(q.expect)}"] if q.expect else []
        console.print("\n".join(lines), highlight=False)
    console.print(f"{len(questions)} questions: {sum(bool(q.reference) for q in questions)} with a reference answer, "
                  f"{sum(bool(q.facts) for q in questions)} with facts, "
                  f"{sum(q.expect == 'refusal' for q in questions)} refusal probes", highlight=False)


@evalset_app.command("list")
def evalset_list(ctx: typer.Context) -> None:
    """List eval sets and their sizes."""
    project = get_project(ctx)
    for name in list_evalsets(project):
        console.print(f"{name}\t{len(load_evalset(project, name))} questions")


@app.command()
def answer(
    ctx: typer.Context,
    candidate: str = typer.Argument(..., help="A role, run id, provider:model, or local model."),
    evalset: str | None = EVALSET,
    system: str | None = typer.Option(None, "--system", "-s", help="System prompt."),
    temperature: float | None = typer.Option(None, "--temperature", "-t"),
    top_p: float | None = typer.Option(None, "--top-p"),
    show: bool = typer.Option(False, "--show", help="Print every answer."),
) -> None:
    """Answer every eval question with a candidate (batched, cached, stored)."""
    project = get_project(ctx)
    cand = variant(project, candidate, system_prompt=system, temperature=temperature, top_p=top_p)
    answers = answer_questions(project, cand, evalset)
    failed = [a for a in answers if a.error]
    for a in answers if show else []:
        console.print(f"[bold]{escape(a.question)}[/]\n{escape(a.answer or '(error) ' + str(a.error))}\n")
    check_answered(cand.name, answers)
    console.print(f"{len(answers) - len(failed)} answers from {candidate}" + (
        f", {len(failed)} failed (run again to retry), e.g.: {escape(str(failed[0].error))}" if failed else ""))


def print_result(result: JudgeResult, rows: bool = True) -> None:
    if rows:
        table = Table("question", "outcome", *result.judges, "len cand", "len ref")
        for r in result.rows:
            votes = [f"{ab}/{ba}" for ab, ba in (r.votes.get(j, ("-", "-")) for j in result.judges)]
            table.add_row(escape(r.question[:60]), r.outcome, *votes, str(len(r.candidate_answer)),
                          str(len(r.reference_answer)))
        console.print(table)
    low, high = result.ci
    first = result.first_position_share
    bias = f" · first answer preferred in {pct(first)} of A/B verdicts" if first is not None else ""
    console.print(
        f"[bold]{escape(result.candidate)}[/] vs {escape(result.reference)} on {result.evalset}: win rate "
        f"[bold]{pct(result.win_rate)}[/] (95% CI {pct(low)}-{pct(high)}), {result.wins} wins / {result.ties} ties"
        f" / {result.losses} losses of n={result.n}" + (f", {result.errors} errors" if result.errors else "")
        + (f", {result.abstentions} without ground truth (abstained)" if result.abstentions else "")
        + f"\ntie share {pct(result.tie_share)} · position consistency {pct(result.consistency)} · mean length "
        f"{result.mean_len_candidate:.0f} vs {result.mean_len_reference:.0f} chars · length-controlled win rate "
        f"{lc_text(result.lc_win_rate)} · {result.calls} new verdicts" + bias
        + f"\njudge configuration {result.config_id}", highlight=False)
    print_grounded(result)


def print_grounded(result: JudgeResult) -> None:
    """Fact recall and refusal accuracy of both sides, and how the LLM judges agree with the grounded ones."""
    for name, numbers in ((result.candidate, result.recall), (result.reference, result.reference_recall)):
        if numbers is None:
            continue
        parts = []
        if numbers.facts:
            low, high = numbers.ci
            parts.append(f"fact recall {pct(numbers.fact_recall)} (95% CI {pct(low)}-{pct(high)}, "
                         f"{numbers.stated} of {numbers.facts} facts)")
        if numbers.probes:
            parts.append(f"refusal accuracy {pct(numbers.refusal_accuracy)} ({numbers.refused} of "
                         f"{numbers.probes} refusal probes refused)")
        console.print(f"{escape(name)}: " + " · ".join(parts), highlight=False)
    for a in result.agreement:
        line = (f"{escape(a.judge)} agrees with the grounded judges on {pct(a.agreement)} of {a.compared} questions"
                f" · picks the longer answer in {pct(a.longer_share)} of its decisive verdicts (grounded: "
                f"{pct(a.grounded_longer_share)})")
        if a.follows_length:
            line += " · [yellow]warning: it follows answer length more than the ground truth does[/]"
        console.print(line, highlight=False)


@app.command()
def judge(
    ctx: typer.Context,
    candidate: str = typer.Argument(..., help="A role, run id, provider:model, or local model."),
    against: str | None = typer.Option(None, "--against", help="Reference (default: evaluate.reference)."),
    evalset: str | None = EVALSET,
    judges: list[str] | None = JUDGES,
    rubric: str | None = RUBRIC,
    system: str | None = typer.Option(None, "--system", "-s", help="Candidate's system prompt."),
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="Candidate's temperature."),
    top_p: float | None = typer.Option(None, "--top-p", help="Candidate's top_p."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Summary only, no per-question table."),
) -> None:
    """Pairwise LLM-as-judge against a reference, both orders per question; win rate with a 95% interval."""
    project = get_project(ctx)
    cand = variant(project, candidate, system_prompt=system, temperature=temperature, top_p=top_p)
    result = judge_candidate(project, cand, against, evalset, judges=check_judges(project, judges),
                             rubric=rubric.split(",") if rubric else None)
    print_result(result, rows=not quiet)


@app.command()
def compare(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="First candidate."),
    b: str = typer.Argument(..., help="Second candidate."),
    against: str | None = typer.Option(None, "--against", help="Reference (default: evaluate.reference)."),
    evalset: str | None = EVALSET,
    judges: list[str] | None = JUDGES,
    rubric: str | None = RUBRIC,
) -> None:
    """Paired comparison of two candidates on the same questions (bootstrap interval of the difference)."""
    project = get_project(ctx)
    cmp = compare_candidates(project, a, b, against, evalset, judges=check_judges(project, judges),
                             rubric=rubric.split(",") if rubric else None)
    print_result(cmp.a, rows=False)
    print_result(cmp.b, rows=False)
    boot = cmp.bootstrap
    needed = "no difference seen" if math.isinf(cmp.needed) else f"about {cmp.needed:.0f} questions (paired)"
    if not math.isinf(cmp.needed_unpaired):
        needed += f", {cmp.needed_unpaired:.0f} per candidate if judged on different questions"
    console.print(
        f"difference {escape(a)} - {escape(b)}: {100 * boot.diff:+.1f} points (95% CI {100 * boot.low:+.1f} to "
        f"{100 * boot.high:+.1f}) on {boot.n} shared questions; P({escape(a)} better) = {boot.p_better:.2f}\n"
        + ("the interval excludes zero: the eval set separates them" if cmp.separated else
           f"the interval includes zero: to separate them you need {needed}"), highlight=False)


@app.command()
def leaderboard(
    ctx: typer.Context,
    against: str | None = typer.Option(None, "--against", help="Reference (default: evaluate.reference)."),
    evalset: str | None = EVALSET,
    output: str = typer.Option("table", "--format", "-f", help="table, markdown or csv (to stdout)."),
    judges: list[str] | None = typer.Option(None, "--judge", "-j", help="Rank the results of this jury (repeat "
                                            "for several judges; default: evaluate.judges)."),
    config: str | None = typer.Option(None, "--config", help="Rank the results of this judge configuration id."),
) -> None:
    """Every run with data, hyperparameters, losses, overfit flag and win rate under one judge configuration;
    writes reports/."""
    project = get_project(ctx)
    judges = check_judges(project, judges)
    board = board_config(project, against, evalset, judges=judges, config_id=config)
    entries = leaderboard_entries(project, against, evalset, judges=judges, config_id=config)
    paths = write_report(project, entries, board, judges=judges)
    if output in ("markdown", "csv"):
        typer.echo(paths[output].read_text(), nl=False)
        return
    if output != "table":
        raise typer.BadParameter(f"--format {output!r}: use table, markdown or csv")
    table = Table("#", "candidate", "dataset", "epoch", "lr", "r/alpha", "loss train/eval", "overfit",
                  "win rate [95% CI]", "n", "lc", "fact recall")
    for i, e in enumerate(entries, 1):
        hp, m = e.hyperparameters, e.metrics
        rate = f"{pct(e.win_rate)} [{100 * e.ci[0]:.0f}-{100 * e.ci[1]:.0f}]" if e.result else "-"
        flag = "[red]yes[/]" if e.overfit else ("no" if e.kind == "run" else "-")
        losses = f"{fmt(m.get('train_loss'))}/{fmt(m.get('eval_loss'))}" if e.kind == "run" else "-"
        shape = f"{fmt(hp.get('lora_r'))}/{fmt(hp.get('lora_alpha'))}" if e.kind == "run" else "-"
        table.add_row(str(i), escape(e.name) + ("" if e.status in ("done", "judged") else f" ({e.status})"),
                      e.dataset or "-", fmt(hp.get("epoch")), fmt(hp.get("learning_rate")), shape, losses, flag, rate,
                      fmt(e.result["n"] if e.result else None),
                      (pct(e.result["lc_win_rate"]) if e.result["lc_win_rate"] is not None else "n/i") if e.result
                      else "-", _recall_cell(e.result))
    console.print(table)
    console.print(describe_config(board), highlight=False)
    best = recommend(entries)
    console.print(f"recommended: [bold]{escape(best.name)}[/]" + (" [yellow](flagged as overfit: its held-out "
                  "quality is still the best)[/]" if best.overfit else "") if best else
                  "no recommendation yet: no finished, judged run")
    print_jury_status(project, judges)
    console.print(f"report: {paths['html']} (also {paths['markdown'].name}, {paths['csv'].name})")


def _recall_cell(result: dict | None) -> str:
    if not result or result.get("fact_recall") is None:
        return "-"
    low, high = result["fact_recall_low"], result["fact_recall_high"]
    return f"{pct(result['fact_recall'])} [{100 * low:.0f}-{100 * high:.0f}]"


def print_jury_status(project: Project, judges: list[str] | None = None) -> None:
    """Whether the jury was calibrated against the arena's votes (and its held-out agreement), and warnings for
    judges that disagree with the people beyond chance."""
    status = jury_status(project, judges)
    if line := status.summary():
        console.print(line, highlight=False)
    for warning in status.warnings:
        console.print(f"[yellow]{escape(warning)}[/]", highlight=False)


def _estimate(e: object) -> str:
    return "-" if e is None else f"{100 * e.value:.0f}% [{100 * e.low:.0f}-{100 * e.high:.0f}]"


@app.command()
def calibrate(
    ctx: typer.Context,
    judges: list[str] | None = JUDGES,
    apply: bool = typer.Option(False, "--apply", help="Write the best jury (members and weights) to "
                               "evaluate.judges / evaluate.judge_weights in underdog.yaml."),
    rounds: int = typer.Option(1000, "--rounds", min=100, help="Bootstrap rounds of the intervals."),
) -> None:
    """Check each judge, the configured jury and the `people` judge against the arena's votes (agreement,
    Cohen's kappa, Kendall's tau of the rankings, 95% bootstrap intervals), and find the jury that predicts
    held-out votes best (cross-validated over questions)."""
    project = get_project(ctx)
    report = calibrate_judges(project, check_judges(project, judges), rounds=rounds)
    simulated = f"; [yellow]{report.simulated} SIMULATED by the simulated voter panel, not people[/]" \
        if report.simulated else ""
    console.print(f"{report.votes} votes ({report.decisive} decisive){simulated}")
    table = Table("judge", "votes decided", "accuracy without ties [95% CI]", "Cohen's kappa [95% CI]",
                  "Kendall's tau (candidates)")
    for row in report.rows:
        kappa = "-" if row.kappa is None else f"{row.kappa.value:.2f} [{row.kappa.low:.2f} to {row.kappa.high:.2f}]"
        tau = "-" if row.tau is None else f"{row.tau:.2f} ({row.candidates})"
        table.add_row(escape(row.judge), str(row.votes), _estimate(row.accuracy) if not row.note else
                      escape(row.note), kappa, tau)
    console.print(table)
    for row in report.rows:
        if row.disagrees:
            console.print(f"[yellow]{escape(disagreement_text(row))}[/]", highlight=False)
        elif row.chance and row.votes:
            console.print(f"{escape(row.judge)}: no better than chance (kappa's interval includes 0)",
                          highlight=False)
    best = report.best
    if best is None:
        console.print("no jury to recommend: no judge gave a verdict on the voted pairs")
        return
    members = " + ".join(f"{escape(j)} ({best.weights[j]:g})" for j in best.judges)
    console.print(f"best jury on held-out votes (cross-validated over questions): [bold]{members}[/]: "
                  f"{best.held_out:.1%} of held-out decisive votes (95% CI {best.low:.1%}-{best.high:.1%}; a tie "
                  "counts half)", highlight=False)
    if apply:
        apply_calibration(project, report)
        console.print(f"wrote evaluate.judges: {best.judges} to {project.config_path}", highlight=False)
    else:
        console.print("use it: `underdog calibrate --apply` (writes evaluate.judges and judge_weights)")
