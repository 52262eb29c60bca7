#!/usr/bin/env bash
# Set up from scratch (venv, pins, test extras) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# promtool, amtool and the prometheus, alertmanager and pushgateway binaries for the
# tests: Debian packages prometheus, prometheus-alertmanager and prometheus-pushgateway, installed only
# when missing. Without apt-get (or root/sudo) the tests that need them skip.
if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null || ! command -v prometheus >/dev/null \
   || ! command -v prometheus-pushgateway >/dev/null \
   || ! { command -v alertmanager >/dev/null || command -v prometheus-alertmanager >/dev/null; }; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "test.sh: apt-get not available: not installing the prometheus packages; their tests will skip" >&2
  elif [ "$sudo" = none ]; then
    echo "test.sh: not root and no passwordless sudo: not installing the prometheus packages; their tests will skip" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    pkgs="prometheus prometheus-alertmanager prometheus-pushgateway"
    $sudo apt-get install -y -q --no-install-recommends $pkgs >/dev/null 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q --no-install-recommends $pkgs >/dev/null; } \
      || echo "test.sh: could not install $pkgs; their tests will skip" >&2
  fi
fi
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/python -m pytest -q --durations=25 "$@"
