#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install with [dev], pytest.
# README.md tells people to run exactly this; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${MW_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e ".[dev]"
exec .venv/bin/python -m pytest "$@"
