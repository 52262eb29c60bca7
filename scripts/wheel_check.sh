#!/usr/bin/env bash
# Build the wheel, install it (not editable) into a fresh venv and run a short demo from outside the checkout:
# proves the shipped corpus, rules and every subpackage are in the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet "torch==2.13.*"   # the CPU build first, as scripts/setup.sh does
"$work/venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/collapse_monitor-*.whl
cd "$work"  # outside the checkout: nothing can be imported from the source tree
PREFECT_SERVER_ANALYTICS_ENABLED=false "$work/venv/bin/collapse-monitor" --home "$work/home" demo --rounds 2 \
  --no-serve --n-samples 600 --n-audit 120 --n-reference 120 --bootstrap 5
echo "wheel_check: the installed wheel ran the demo"
