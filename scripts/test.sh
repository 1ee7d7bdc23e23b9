#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite plus the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh
export UNDERDOG_CACHE="${UNDERDOG_CACHE:-$PWD/.cache/underdog}"
.venv/bin/ruff check src tests bench
.venv/bin/python -m pytest -q "$@"
