#!/usr/bin/env bash
# The main job: make a demo plate and render it headless through a template.
# For now Load EXR -> OCIO (to the display) -> Save EXR; the GAN issues make it the full look.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/installers/setup.sh"
out="${1:-$root/demo_output}"
py="$root/.venv/bin/python"

echo "[demo] writing the demo plate (24 frames, scene-linear ACEScg EXR) to $out/plate"
plate="$("$py" "$root/installers/demo_plate.py" "$out/plate")"
echo "[demo] rendering example_workflows/plate_to_display.json"
"$py" -m latentmirror render "$root/example_workflows/plate_to_display.json" \
  --set "1.path=$plate" --set "3.path=$out/render/display.####.exr" --set 3.existing=overwrite
"$py" -m latentmirror info "$out/render/display.####.exr"
echo "[demo] done: frames in $out/render"
