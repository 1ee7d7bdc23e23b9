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
from typing import TYPE_CHECKING, Any

from underdog.autopilot.journal import Journal, decision_lines
from underdog.project import Project

if TYPE_CHECKING:
    from underdog.autopilot.run import Outcome

BUNDLE_DIR = "submission"


def write_bundle(project: Project, outcome: Outcome, journal: Journal, merge: bool = False) -> dict[str, Path]:
    """Write the report (with the autopilot section) and the submission bundle; return their paths."""
    from underdog.data import export_dataset
    from underdog.report import write_report
    from underdog.train.runs import load_run

    assert outcome.pick is not None
    folder = journal.folder / BUNDLE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    run = load_run(project.root, outcome.pick.run_id)
    adapter = folder / "adapter"
    shutil.rmtree(adapter, ignore_errors=True)
    shutil.copytree(project.root / run.adapter_dir, adapter)
    generation = {**outcome.generation, "base_model": run.base_model, "run": run.id, "dataset": run.dataset,
                  "hyperparameters": {k: run.hyperparameters.get(k) for k in ("epoch", "learning_rate", "lora_r",
                                                                              "lora_alpha", "lora_dropout")}}
    (folder / "generation.json").write_text(json.dumps(generation, indent=2) + "\n")
    jumpstart = folder / "jumpstart"
    shutil.rmtree(jumpstart, ignore_errors=True)
    export_dataset(project, run.dataset, "jumpstart", out=jumpstart)
    paths = {"bundle": folder, "adapter": adapter, "generation": folder / "generation.json", "jumpstart": jumpstart}
    if merge:
        from underdog.train.merge import merge_run

        paths["merged"] = Path(merge_run(project, run.id, str(folder / "merged")))
    log = decision_lines(journal.entries("decision"))
    (folder / "decision-log.md").write_text("# Autopilot decision log\n\n" + "".join(f"- {line}\n" for line in log))
    from underdog.autopilot.run import DEV
    from underdog.evaluate.leaderboard import board_config, leaderboard

    entries = leaderboard(project, evalset=DEV, judges=outcome.jury)  # the runs as the search saw them
    board = board_config(project, evalset=DEV, judges=outcome.jury)
    report = write_report(project, entries, board, sections=[section(outcome, log)])
    for kind in ("markdown", "html"):
        shutil.copy(report[kind], folder / f"report{report[kind].suffix}")
    return paths | {"report": report["html"], "decision_log": folder / "decision-log.md"}


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
