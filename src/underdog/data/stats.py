"""`underdog datasets [show NAME]`: versions with counts, parents and recipes; a sample and statistics of one.

    rows = dataset_rows(project)                 # [{"name", "count", "parent", "recipe", "created"}]
    stats = dataset_stats(project, "base")       # counts by topic / slice / source, length summary, sample
    stats = preference_stats(project, "prefs")   # a preference version: pairs by source, weights, lengths
    png = length_histogram(project, "base")      # reports/datasets/base-lengths.png
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from underdog.data.dataset import Example, list_datasets, load_dataset, load_manifest
from underdog.data.preferences import load_preferences
from underdog.project import Project


def recipe_summary(recipe: dict[str, Any]) -> str:
    """One short line: the command and its main settings."""
    command = recipe.get("command", "?")
    keys = {"generate": ("teacher", "questions_per_topic"), "augment": ("base", "slices"),
            "curate": ("base", "threshold", "near_dup_threshold"), "ingest": ("teacher", "chunk_size"),
            "import": ("file",), "preferences": ("votes", "verdicts", "samples", "n", "questions", "judges")
            }.get(command, ())
    parts = [f"{k}={recipe[k] if not isinstance(recipe[k], list) else ','.join(map(str, recipe[k]))}"
             for k in keys if recipe.get(k) not in (None, False)]
    return " ".join([command, *parts])


def dataset_rows(project: Project) -> list[dict[str, Any]]:
    rows = []
    for name in list_datasets(project.root):
        m = load_manifest(project.root, name)
        parent = ", ".join(m.parent) if isinstance(m.parent, list) else m.parent
        rows.append({"name": name, "kind": m.kind, "count": m.count, "parent": parent or "",
                     "recipe": recipe_summary(m.recipe),
                     "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created)), "sha256": m.sha256})
    return rows


def _summary(values: list[int] | list[float]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {"min": min(values), "median": statistics.median(values), "mean": round(statistics.fmean(values), 1),
            "max": max(values)}


def dataset_stats(project: Project, name: str, sample: int = 3, seed: int = 0) -> dict[str, Any]:
    """Counts by topic, slice and source, word-length summaries, and a seeded sample of examples."""
    examples = load_dataset(project.root, name)
    manifest = load_manifest(project.root, name)
    return {
        "name": name, "count": len(examples), "parent": manifest.parent, "recipe": manifest.recipe,
        "counts": manifest.counts, "sha256": manifest.sha256,
        "topics": Counter(str(e.meta.get("topic") or f"({e.meta.get('slice', 'no topic')})")
                          for e in examples).most_common(),
        "slices": dict(Counter(str(e.meta.get("slice", "base")) for e in examples)),
        "sources": dict(Counter(str(e.meta.get("source", "-")) for e in examples)),
        "question_words": _summary([len(e.question.split()) for e in examples]),
        "answer_words": _summary([len(e.answer.split()) for e in examples]),
        "sample": random.Random(seed).sample(examples, min(sample, len(examples))),
    }


def preference_stats(project: Project, name: str, sample: int = 3, seed: int = 0) -> dict[str, Any]:
    """A preference version: pairs by source and question set, weights, word lengths of chosen and rejected
    answers, the build's counts, and a seeded sample of pairs."""
    pairs = load_preferences(project.root, name)
    manifest = load_manifest(project.root, name)
    return {
        "name": name, "count": len(pairs), "parent": manifest.parent, "recipe": manifest.recipe,
        "counts": manifest.counts, "sha256": manifest.sha256,
        "sources": dict(Counter(str(p.meta.get("source", "-")) for p in pairs)),
        "question_sets": dict(Counter(str(p.meta.get("question_set", "-")) for p in pairs)),
        "simulated": sum(bool(p.meta.get("simulated")) for p in pairs),
        "weight": _summary([p.weight for p in pairs]),
        "chosen_words": _summary([len(p.chosen.split()) for p in pairs]),
        "rejected_words": _summary([len(p.rejected.split()) for p in pairs]),
        "sample": random.Random(seed).sample(pairs, min(sample, len(pairs))),
    }


def length_histogram(project: Project, name: str, examples: list[Example] | None = None) -> Path:
    """A PNG histogram of question and answer lengths (words)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    examples = examples if examples is not None else load_dataset(project.root, name)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, label, values in ((axes[0], "question", [len(e.question.split()) for e in examples]),
                              (axes[1], "answer", [len(e.answer.split()) for e in examples])):
        ax.hist(values, bins=min(30, max(5, len(set(values)))), color="#4c72b0")
        ax.set_title(f"{label} length (words)")
        ax.set_ylabel("examples")
    fig.suptitle(f"dataset {name}: {len(examples)} examples")
    fig.tight_layout()
    path = project.report_dir("datasets") / f"{name}-lengths.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
