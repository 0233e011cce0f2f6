#!/usr/bin/env bash
# Set up (idempotent), lint, check the import layers, then run the test suite. Extra arguments
# go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/installers/setup.sh"
cd "$root"
.venv/bin/python -m ruff check .
.venv/bin/lint-imports  # the contracts in pyproject.toml [tool.importlinter]
.venv/bin/python -m pytest "$@"
