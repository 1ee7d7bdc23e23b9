"""The CLI's `Reporter`: rich progress bars (count, rate, ETA) and lines on a terminal; on piped or redirected
output (logs, CI, nohup) whole lines instead: a step as `== title`, a task as one line when it ends."""

from __future__ import annotations

import time
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


class _Line:
    """A task on piped output: counted, then said in one line when it ends (a bar's last frame is cut at 80
    columns there)."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done, self.start = label, total, 0, time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n

    def grow(self, more: int) -> None:
        self.total += more

    def describe(self, text: str) -> None:
        self.label = text

    def summary(self) -> str:
        seconds = time.monotonic() - self.start
        rate = f", {self.done / seconds:.2f}/s" if seconds > 0 and self.done else ""
        return f"{self.label}: {self.done}/{self.total} in {seconds:.0f} s{rate}"


class RichReporter:
    """Lines and bars on the CLI's console: one bar per task of more than one item (one line where piped)."""

    def __init__(self, console: Console):
        self.console = console

    def step(self, title: str) -> None:
        if self.console.is_terminal:
            self.console.rule(escape(title))
        else:
            self.console.print(f"== {escape(title)}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(f"  {escape(text)}", highlight=False)

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[_Bar | NoTask]:
        if total <= 1:
            yield NoTask()
            return
        if not self.console.is_terminal:
            line = _Line(label, total)
            try:
                yield line
            finally:
                self.console.print(f"  {escape(line.summary())}", highlight=False)
            return
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                            TimeRemainingColumn(), console=self.console)
        with progress:
            yield _Bar(progress, progress.add_task(label, total=total))
