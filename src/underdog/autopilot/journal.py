"""The autopilot's journal, `autopilot/journal.jsonl`: one JSON object per line, appended and flushed to disk as
it happens, so that a run killed at any point resumes from it.

    journal = Journal(project.path("autopilot"))
    journal.decide("sweep", "run autopilot-t03-r1 dropped at rung 1", numbers={...}, why="below the best half")
    journal.entries("decision")

Two kinds of entries: `decision` (what was compared, the numbers, the choice and why: the decision log shown by
`underdog autopilot --log` and in the report) and `event` (the successive-halving history the scheduler is
rebuilt from on resume). A torn last line (a kill mid-write) is ignored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

JOURNAL_FILE = "journal.jsonl"


class Journal:
    def __init__(self, folder: Path, on_decision: Callable[[str], None] | None = None):
        self.folder = folder
        self.path = folder / JOURNAL_FILE
        self.on_decision = on_decision  # told each new decision as a line (the CLI prints it)

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every entry (of `kind`), oldest first."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from a kill mid-write
            if kind is None or entry.get("kind") == kind:
                out.append(entry)
        return out

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = {"time": round(time.time(), 3), **entry}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def decide(self, stage: str, choice: str, *, why: str = "", numbers: dict[str, Any] | None = None,
               compared: list[str] | None = None) -> dict[str, Any]:
        """Record a decision of `stage`, unless the same one is already recorded (a resumed run repeats none)."""
        entry = {"kind": "decision", "stage": stage, "choice": choice, "why": why, "numbers": numbers or {},
                 "compared": compared or []}
        for old in self.entries("decision"):
            if all(old.get(k) == v for k, v in entry.items()):
                return old
        if self.on_decision:
            self.on_decision(decision_lines([entry])[0])
        return self.append(entry)

    def event(self, **fields: Any) -> dict[str, Any]:
        return self.append({"kind": "event", **fields})

    def events(self, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries("event") if all(e.get(k) == v for k, v in match.items())]


def decision_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The decision log as one line per decision: `stage: choice (why)`."""
    return [f"{e['stage']}: {e['choice']}" + (f" ({e['why']})" if e.get("why") else "") for e in entries]
