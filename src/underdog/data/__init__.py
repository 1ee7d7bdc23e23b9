"""Data stages: topics, generate, ingest, augment, curate, import, export — each writing a dataset version.

The public API (each also a CLI command; every function takes a `Project` first and returns a `Manifest`):

    from underdog import data
    data.expand_topics(project, size=140, extra=["food trucks"])          # -> [Topic], writes topics.yaml
    data.generate(project, questions_per_topic=6, name="base")            # -> Manifest of "base"
    data.ingest(project, ["handbook.pdf"], name="docs")
    data.augment(project, "base", ["refusals", "spanish"])                # -> "base+refusals+spanish"
    manifest, report = data.curate(project, "base")                       # -> "base-curated"
    data.import_dataset(project, "old.jsonl", name="old")
    data.export_dataset(project, "base", "jumpstart")                     # -> [train.jsonl, template.json, ...]
    data.load_dataset(project.root, "base"), data.list_datasets(project.root)

Names are imported lazily (`underdog.lazy`), so `underdog.data.dataset` stays cheap for other stages; the
tables are in `store.py`. The modules are named
after the noun (`generation`, `curation`, `augmentation`, `ingestion`) so that a function and a module never
share a name; `from underdog.data.generation import generate` is the explicit form.
"""

from __future__ import annotations

from underdog.lazy import lazy_exports

_EXPORTS = {
    "expand_topics": "topics", "load_topics": "topics", "Topic": "topics",
    "generate": "generation", "ingest": "ingestion", "augment": "augmentation", "curate": "curation",
    "import_dataset": "formats", "export_dataset": "formats", "FORMATS": "formats",
    "dataset_rows": "stats", "dataset_stats": "stats", "length_histogram": "stats", "preference_stats": "stats",
    "Example": "dataset", "Manifest": "dataset", "save_dataset": "dataset", "load_dataset": "dataset",
    "load_manifest": "dataset", "list_datasets": "dataset",
    "PreferencePair": "preferences", "save_preferences": "preferences", "load_preferences": "preferences",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
