"""Compatibility alias: `from underdog.data.generate import generate` (the code lives in `generation.py`)."""

from underdog.data.generation import generate

__all__ = ["generate"]
