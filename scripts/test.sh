#!/usr/bin/env bash
# Set up a fresh machine for the test suite and run all of it (CI runs exactly this).
#   bash scripts/test.sh                 everything, slow and model tests included
#   bash scripts/test.sh -m "not slow"   quick feedback
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check src tests bench
.venv/bin/mypy src
.venv/bin/pytest "$@"
