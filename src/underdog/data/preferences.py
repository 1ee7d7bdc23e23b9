"""Preference dataset versions: (prompt, chosen, rejected) pairs, stored like every dataset version.

    save_preferences(project.root, "prefs", pairs, parent="votes", recipe={"command": "preferences", ...})
    pairs = load_preferences(project.root, "prefs")          # -> [PreferencePair]
    rows = [to_trl(p) for p in pairs]                         # TRL's conversational preference format

One line of `datasets/<name>/data.jsonl` per pair:
    {"id": "...", "prompt": [{"role": "system"?, ...}, {"role": "user", "content": ...}],
     "chosen": "the preferred answer", "rejected": "the other answer",
     "meta": {"source": "votes" | "verdicts" | "samples", "weight": 1.0, ...}}
The manifest says `"kind": "preference"`, so supervised training refuses it and preference training refuses a
supervised dataset (`dataset.read_version`). Builders of pairs (from votes, jury verdicts, ranked samples) live
beside the stages they read; this module is only the format both they and training agree on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underdog.data.dataset import Manifest, read_version, write_version
from underdog.errors import UnderdogError

KIND = "preference"


@dataclass
class PreferencePair:
    prompt: list[dict[str, str]]  # the conversation up to and including the last user turn
    chosen: str
    rejected: str
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            content = json.dumps([self.prompt, self.chosen, self.rejected], sort_keys=True)
            self.id = hashlib.sha256(content.encode()).hexdigest()[:16]

    @property
    def question(self) -> str:
        return next(m["content"] for m in reversed(self.prompt) if m["role"] == "user")

    @property
    def weight(self) -> float:
        return float(self.meta.get("weight", 1.0))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected,
                "meta": self.meta}


def save_preferences(root: Path, name: str, pairs: list[PreferencePair], *, parent: str | list[str] | None = None,
                     recipe: dict[str, Any] | None = None, counts: dict[str, Any] | None = None) -> Manifest:
    """Write a new immutable preference version `name`; a version with no pair is refused (nothing written)."""
    if not pairs:
        raise UnderdogError(f"preference dataset {name!r} would hold no pair: nothing written")
    return write_version(root, name, [p.to_json() for p in pairs], kind=KIND, parent=parent, recipe=recipe,
                         counts=counts)


def load_preferences(root: Path, name: str) -> list[PreferencePair]:
    """All pairs of preference version `name` (one line naming file:line for a malformed one)."""
    pairs = []
    for where, record in read_version(root, name, KIND):
        try:
            pair = PreferencePair(prompt=record["prompt"], chosen=record["chosen"], rejected=record["rejected"],
                                  meta=record.get("meta", {}), id=record["id"])
        except (KeyError, TypeError) as exc:
            raise UnderdogError(f"{where}: malformed preference pair (missing {exc})") from None
        if not (isinstance(pair.chosen, str) and isinstance(pair.rejected, str) and pair.prompt):
            raise UnderdogError(f"{where}: malformed preference pair (prompt, chosen and rejected must be given)")
        pairs.append(pair)
    return pairs


def to_trl(pair: PreferencePair) -> dict[str, Any]:
    """The pair in TRL's conversational preference format (what `DPOTrainer` and its siblings read)."""
    return {"prompt": pair.prompt, "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}]}
