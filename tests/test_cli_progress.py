"""The CLI's reporter: bars and rules on a terminal, whole lines on piped output (logs keep every word)."""

from __future__ import annotations

import io

from underdog.cli.progress import RichReporter
from underdog.cli.root import PipeConsole

TITLE = "train harrowgate-tuned-refusals on harrowgate-train+refusals, a step title longer than 80 columns"
LABEL = "training harrowgate-tuned  train 0.004 · eval 0.305, a bar description longer than eighty columns"


def _report(console: PipeConsole) -> None:
    reporter = RichReporter(console)
    reporter.step(TITLE)
    with reporter.task("embedding questions", 3) as task:
        task.advance(2)
        task.grow(1)
        task.advance(2)
        task.describe(LABEL)
    reporter.note("done")


def test_piped_output_is_whole_lines() -> None:
    out = io.StringIO()
    _report(PipeConsole(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert lines[0] == f"== {TITLE}"
    assert lines[1].startswith(f"  {LABEL}: 4/4 in 0 s")
    assert lines[2:] == ["  done"]
    assert "━" not in out.getvalue() and "…" not in out.getvalue()


def test_a_terminal_gets_a_rule_and_a_bar() -> None:
    out = io.StringIO()
    _report(PipeConsole(file=out, width=80, force_terminal=True))
    assert "─" in out.getvalue() and "━" in out.getvalue()
