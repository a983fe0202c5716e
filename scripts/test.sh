#!/usr/bin/env bash
# The whole test suite on a fresh machine: venv, install with [dev], pytest.
# README.md tells people to run exactly this; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${MW_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -e ".[dev]"
# Two workers (pytest-xdist), a test file per worker at a time: every test has its own stores,
# ports and Jupyter dirs, and a file's module fixtures (a JupyterLab, a browser) start once.
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
