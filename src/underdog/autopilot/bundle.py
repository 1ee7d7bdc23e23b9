"""The autopilot's submission bundle and its report section.

    autopilot/submission/
      adapter/            the picked run's PEFT adapter (and merged/ full weights with --merge)
      generation.json     the chosen system prompt, temperature and top_p, the base model and the run
      jumpstart/          the winning data variant exported for SageMaker JumpStart (train.jsonl, template.json)
      report.md  report.html  decision-log.md
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

from underdog.autopilot.base import Estimate, Outcome, Sizes
from underdog.autopilot.context import Budget, Context
from underdog.autopilot.journal import decision_lines
from underdog.autopilot.names import DEV, FOLDER
from underdog.data.formats import export_dataset
from underdog.evaluate.leaderboard import board_config, leaderboard
from underdog.project import Project
from underdog.report import write_report
from underdog.train.merge import merge_run
from underdog.train.runs import load_run

BUNDLE_DIR = "submission"


class Bundle:
    key, title = "bundle", "report and submission bundle"
    artifact = f"{FOLDER}/{BUNDLE_DIR}/ (adapter, generation.json, jumpstart/, report, decision log)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        return []  # no model call

    def done(self, ctx: Context) -> bool:
        return False  # written again on every run, from what the stages recorded

    def run(self, ctx: Context, budget: Budget) -> None:
        write_bundle(ctx)


def bundle_paths(project: Project, merge: bool = False) -> dict[str, Path]:
    """Where the bundle and the report are."""
    folder = project.path(FOLDER, BUNDLE_DIR)
    paths = {"bundle": folder, "adapter": folder / "adapter", "generation": folder / "generation.json",
             "jumpstart": folder / "jumpstart", "report": project.reports_dir / "leaderboard.html",
             "decision_log": folder / "decision-log.md"}
    return paths | ({"merged": folder / "merged"} if merge else {})


def write_bundle(ctx: Context) -> dict[str, Path]:
    """Write the report (with the autopilot section) and the submission bundle; return their paths."""
    project, outcome = ctx.project, ctx.outcome()
    assert outcome.pick is not None
    paths = bundle_paths(project, ctx.options.merge)
    paths["bundle"].mkdir(parents=True, exist_ok=True)
    run = load_run(project.root, outcome.pick.run_id)
    shutil.rmtree(paths["adapter"], ignore_errors=True)
    shutil.copytree(project.root / run.adapter_dir, paths["adapter"])
    generation = {**outcome.generation, "base_model": run.base_model, "run": run.id, "dataset": run.dataset,
                  "hyperparameters": {k: run.hyperparameters.get(k) for k in ("epoch", "learning_rate", "lora_r",
                                                                              "lora_alpha", "lora_dropout")}}
    paths["generation"].write_text(json.dumps(generation, indent=2) + "\n")
    shutil.rmtree(paths["jumpstart"], ignore_errors=True)
    export_dataset(project, run.dataset, "jumpstart", out=paths["jumpstart"])
    if ctx.options.merge:
        merge_run(project, run.id, str(paths["merged"]))
    log = decision_lines(ctx.journal.entries("decision"))
    paths["decision_log"].write_text("# Autopilot decision log\n\n" + "".join(f"- {line}\n" for line in log))
    entries = leaderboard(project, evalset=DEV, judges=outcome.jury)  # the runs as the search saw them
    board = board_config(project, evalset=DEV, judges=outcome.jury)
    report = write_report(project, entries, board, sections=[section(outcome, log)])
    for kind in ("markdown", "html"):
        shutil.copy(report[kind], paths["bundle"] / f"report{report[kind].suffix}")
    return paths


def summary_lines(outcome: Outcome) -> list[str]:
    """What the autopilot found, honestly stated: how many candidates the dev split compared, then the pick's
    test result alone, with its interval."""
    pick, test = outcome.pick, outcome.test
    assert pick is not None
    gen = outcome.generation
    lines = [f"Picked {pick.run_id} (data variant {pick.params.get('variant')}, {pick.epochs} epochs) out of "
             f"{outcome.compared} candidates compared on the dev split, then system prompt "
             f"{'(none)' if not gen.get('system_prompt') else repr(gen['system_prompt'][:60])}, temperature "
             f"{gen.get('temperature')}, top_p {gen.get('top_p')}.",
             f"Test split ({test.get('evalset')}), judged once, for the pick only: {test['pick']['summary']} "
             f"against {test.get('reference')}.",
             f"Base student on the same test split: {test['base']['summary']}.",
             "The best of many dev scores overstates the winner; only the test numbers above estimate how the "
             "pick will do on new questions, and their intervals are wide on a small test split."]
    return lines


def section(outcome: Outcome, log: list[str]) -> tuple[str, str]:
    """The report's autopilot section: (Markdown, HTML)."""
    lines = summary_lines(outcome)
    md = "\n## Autopilot\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n### Decision log\n\n" + "".join(
        f"1. {line}\n" for line in log)
    body = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    decisions = "".join(f"<li>{html.escape(line)}</li>" for line in log)
    return md, f"<h2>Autopilot</h2><ul>{body}</ul><h3>Decision log</h3><ol>{decisions}</ol>"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    pick = outcome.pick
    return {"pick": pick.run_id if pick else None, "generation": outcome.generation, "test": outcome.test,
            "compared": outcome.compared, "seconds": round(outcome.seconds, 1)}
