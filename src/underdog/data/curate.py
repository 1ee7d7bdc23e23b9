"""Compatibility alias: `from underdog.data.curate import curate` (the code lives in `curation.py`)."""

from underdog.data.curation import curate

__all__ = ["curate"]
