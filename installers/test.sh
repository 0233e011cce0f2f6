#!/usr/bin/env bash
# Set up (idempotent), lint, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/installers/setup.sh"
cd "$root"
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
