"""Progress without printing: library code reports to a `Reporter` it is handed; the CLI hands it rich bars.

    with reporter.task("answers", total=40) as task:
        task.advance()                       # a `Silent` reporter (the default) does nothing

A project carries its reporter (`Project(..., reporter=...)`), and every model it builds gets it, so stages
report without printing and tests and library users see nothing unless they ask (torchtune's metric logger,
nanochat's DummyWandb).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def grow(self, more: int) -> None:
        """More work than announced was found on the way."""
        ...

    def describe(self, text: str) -> None:
        """Replace the task's label (e.g. with the latest losses)."""
        ...


class Reporter(Protocol):
    def step(self, title: str) -> None:
        """A new stage of a longer job begins."""
        ...

    def note(self, text: str) -> None:
        """A line worth reading afterwards."""
        ...

    def task(self, label: str, total: int) -> AbstractContextManager[Task]:
        """A context manager giving a `Task` that counts to `total`."""
        ...


class NoTask:
    """A task that counts nothing."""

    def advance(self, n: int = 1) -> None:
        pass

    def grow(self, more: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class Silent:
    """The do-nothing reporter."""

    def step(self, title: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[Task]:
        yield NoTask()


SILENT = Silent()
