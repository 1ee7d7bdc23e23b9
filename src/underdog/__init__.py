"""underdog: fine-tune a small open LLM until it beats a much bigger one on your domain."""

import os

# OpenMP threads that spin while waiting make CPU inference up to 10x slower when other processes share the
# cores (measured: SmolLM2 generation 30 s -> 3 s on 2 busy cores). Set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
