#!/usr/bin/env bash
# Set up (if needed) and run the offline demo on the embedded model. Extra args go to `underdog demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/underdog demo "$@"
