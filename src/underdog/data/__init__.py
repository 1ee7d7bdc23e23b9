"""Data stages: topics, generate, ingest, augment, curate, import, export — each writing a dataset version."""
