#!/usr/bin/env bash
# Create ./.venv and install collapse-monitor with its pins on a fresh machine.
# Usage: bash scripts/setup.sh [EXTRAS]   e.g. "test" or "test,bench"
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
# The CPU build of torch first: an unpinned resolve would pull GBs of CUDA wheels.
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.*"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet -e ".[${extras}]"
else
  .venv/bin/python -m pip install --quiet -e .
fi
