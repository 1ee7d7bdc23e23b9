"""The CLI's `Reporter`: rich progress bars (count, rate, ETA) and lines on the console."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Task as RichTask
from rich.text import Text

from underdog.progress import NoTask


class RateColumn(ProgressColumn):
    """Average completions per second since the bar started (local batches finish in bursts)."""

    def render(self, task: RichTask) -> Text:
        rate = task.completed / task.elapsed if task.elapsed and task.completed else None
        return Text(f"{rate:.2f}/s" if rate else "–/s", style="progress.data.speed")


class _Bar:
    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.id = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.id, n)

    def grow(self, more: int) -> None:
        total = self.progress.tasks[0].total or 0
        self.progress.update(self.id, total=total + more)

    def describe(self, text: str) -> None:
        self.progress.update(self.id, description=text)


class RichReporter:
    """Lines and bars on the CLI's console: one bar per task of more than one item."""

    def __init__(self, console: Console):
        self.console = console

    def step(self, title: str) -> None:
        self.console.rule(escape(title))

    def note(self, text: str) -> None:
        self.console.print(f"  {escape(text)}", highlight=False)

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[_Bar | NoTask]:
        if total <= 1:
            yield NoTask()
            return
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                            TimeRemainingColumn(), console=self.console)
        with progress:
            yield _Bar(progress, progress.add_task(label, total=total))
