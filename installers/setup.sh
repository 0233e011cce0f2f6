#!/usr/bin/env bash
# Standalone set-up: a .venv with torch and the pack installed editable (with its test extras).
# Idempotent: a second run only checks. Inside ComfyUI use installers/install_comfyui.py instead,
# which never touches the user's torch.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python_bin="${PYTHON:-python3.11}"
torch_pins=(torch==2.14.1 torchvision==0.29.1)

if [[ ! -x "$venv/bin/python" ]]; then
  echo "[setup] creating $venv with $python_bin"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check --quiet)

# torch first, so that lpips and friends find it and pull nothing bigger.
if ! "$py" -c 'import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith("2.14.1") and torchvision.__version__.startswith("0.29.1")))' 2>/dev/null; then
  echo "[setup] installing ${torch_pins[*]} (a few minutes the first time)"
  "${pip[@]}" install "${torch_pins[@]}"
fi

# The package itself; re-installed only when pyproject.toml changed.
stamp="$venv/.latentmirror-installed"
if [[ ! -f "$stamp" ]] || ! cmp -s "$root/pyproject.toml" "$stamp"; then
  echo "[setup] installing latentmirror (editable) with test extras"
  "${pip[@]}" install "${torch_pins[@]}" -e "$root[test]"
  cp "$root/pyproject.toml" "$stamp"
fi
echo "[setup] ready: $venv"
