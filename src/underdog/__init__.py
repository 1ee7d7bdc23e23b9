"""underdog: fine-tune a small open LLM until it beats a much bigger one on your domain."""

__version__ = "0.1.0"
