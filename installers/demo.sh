#!/usr/bin/env bash
# The main job: a real-photo plate (a camera move, 24 frames, scene-linear ACEScg EXR) rendered
# headless through the obscura template with the bundled demo model, then a contact sheet
# (plate | reconstruction | resynthesis per frame); then the dissolve template (curves animate the
# look) and its sheet (plate | dissolve over the shot). Usage: ./installers/demo.sh [OUT_FOLDER]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/installers/setup.sh"
out="$(mkdir -p "${1:-$root/demo_output}" && cd "${1:-$root/demo_output}" && pwd)"
py="$root/.venv/bin/python"
started=$SECONDS

echo "[demo] writing the plate: 24 frames of assets/photos/china.jpg (CC BY 2.0), pan and push-in, ACEScg EXR"
plate="$("$py" "$root/installers/demo_plate.py" "$out/plate" --frames 24 --size 256x144 --source china.jpg)"
echo "[demo] rendering example_workflows/obscura.json (invert, faces take over, resynthesize)"
"$py" -m latentmirror render "$root/example_workflows/obscura.json" \
  --set "1.path=$plate" \
  --set "10.path=$out/render/obscura.####.exr" --set 10.existing=overwrite \
  --set "15.path=$out/render/reconstruction.####.exr" --set 15.existing=overwrite
"$py" -m latentmirror info "$out/render/obscura.####.exr"
sheet="$("$py" "$root/installers/contact_sheet.py" "$plate" "$out/render/reconstruction.####.exr" \
  "$out/render/obscura.####.exr" "$out/contact_sheet.png")"
echo "[demo] rendering example_workflows/dissolve.json (the plate dissolves into faces over the shot)"
"$py" -m latentmirror render "$root/example_workflows/dissolve.json" \
  --set "1.path=$plate" --set "10.path=$out/render/dissolve.####.exr" --set 10.existing=overwrite
dissolve_sheet="$("$py" "$root/installers/contact_sheet.py" "$plate" "$out/render/dissolve.####.exr" \
  "$out/dissolve_sheet.png" --labels plate,dissolve --frames 1001-1024x3 --columns 4)"
echo "[demo] done in $((SECONDS - started)) s"
echo "[demo] plate:          $plate"
echo "[demo] resynthesis:    $out/render/obscura.####.exr"
echo "[demo] reconstruction: $out/render/reconstruction.####.exr"
echo "[demo] contact sheet:  $sheet"
echo "[demo] dissolve:       $out/render/dissolve.####.exr"
echo "[demo] dissolve sheet: $dissolve_sheet"
