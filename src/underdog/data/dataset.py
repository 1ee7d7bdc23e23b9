"""Immutable, named dataset versions: `datasets/<name>/data.jsonl` + `manifest.json`.

Each line of data.jsonl is one example:
    {"id": "...", "messages": [{"role": "system"?, ...}, {"role": "user", ...}, {"role": "assistant", ...}],
     "meta": {"topic": ..., "source": ..., "teacher": ..., "prompt_version": ..., "created": ...}}
The manifest records name, kind, parent, recipe, counts and a content hash, so a training run can name exactly
the data it saw. A version is never overwritten: saving under an existing name is an error.

Two kinds share this storage: "sft" (the examples above) and "preference" (prompt, chosen, rejected pairs;
`data/preferences.py`). Each loader refuses the other kind with a line saying which command takes it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underdog.errors import UnderdogError
from underdog.layout import DATA_FILE, MANIFEST_FILE, Layout


@dataclass
class Example:
    messages: list[dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = hashlib.sha256(json.dumps(self.messages, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def question(self) -> str:
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def answer(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "assistant")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "messages": self.messages, "meta": self.meta}


@dataclass
class Manifest:
    name: str
    count: int
    sha256: str
    kind: str = "sft"
    parent: str | list[str] | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)


def save_dataset(root: Path, name: str, examples: list[Example], *, parent: str | list[str] | None = None,
                 recipe: dict[str, Any] | None = None, counts: dict[str, Any] | None = None) -> Manifest:
    """Write a new immutable version `name` under `root/datasets/` and return its manifest."""
    return write_version(root, name, [e.to_json() for e in examples], kind="sft", parent=parent, recipe=recipe,
                         counts=counts)


def write_version(root: Path, name: str, records: list[dict[str, Any]], *, kind: str,
                  parent: str | list[str] | None = None, recipe: dict[str, Any] | None = None,
                  counts: dict[str, Any] | None = None) -> Manifest:
    """Write `records` as the new immutable version `name` of `kind` (one JSON object per line)."""
    folder = Layout(root).dataset_dir(name)
    if (folder / MANIFEST_FILE).exists():
        raise UnderdogError(f"dataset {name!r} already exists (versions are immutable; pick another name)")
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    (folder / DATA_FILE).write_text(body, encoding="utf-8")
    manifest = Manifest(name=name, count=len(records), sha256=hashlib.sha256(body.encode()).hexdigest(), kind=kind,
                        parent=parent, recipe=recipe or {}, counts=counts or {})
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest.__dict__, indent=2))  # written last: marks complete
    return manifest


def load_manifest(root: Path, name: str) -> Manifest:
    path = Layout(root).dataset_dir(name) / MANIFEST_FILE
    if not path.exists():
        known = ", ".join(list_datasets(root)) or "none yet"
        raise UnderdogError(f"no dataset named {name!r} in {Layout(root).datasets_dir} (known: {known})")
    return Manifest(**json.loads(path.read_text()))


def read_version(root: Path, name: str, kind: str) -> list[tuple[str, Any]]:
    """("file:line", record) of each line of version `name`, which must be of `kind` (else one line saying which
    command takes it)."""
    manifest = load_manifest(root, name)
    if manifest.kind != kind:
        takes = {"sft": "`underdog train` (supervised)", "preference": "`underdog train --method dpo`"}
        raise UnderdogError(f"dataset {name!r} holds {manifest.kind} data, not {kind} data: "
                            f"it is for {takes.get(manifest.kind, manifest.kind)}")
    path = Layout(root).dataset_dir(name) / DATA_FILE
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):  # U+2028 may be in a line
        if not line.strip():
            continue
        try:
            records.append((f"{path}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UnderdogError(f"{path}:{number}: malformed record ({exc})") from None
    return records


def load_dataset(root: Path, name: str) -> list[Example]:
    """All examples of (supervised) dataset version `name`."""
    examples = []
    for where, record in read_version(root, name, "sft"):
        try:
            examples.append(Example(messages=record["messages"], meta=record.get("meta", {}), id=record["id"]))
        except (KeyError, TypeError) as exc:
            raise UnderdogError(f"{where}: malformed example ({exc})") from None
    return examples


def list_datasets(root: Path) -> list[str]:
    """Names of complete dataset versions, oldest first."""
    folder = Layout(root).datasets_dir
    if not folder.exists():
        return []
    manifests = [p for p in folder.glob(f"*/{MANIFEST_FILE}")]
    return [p.parent.name for p in sorted(manifests, key=lambda p: p.stat().st_mtime)]
