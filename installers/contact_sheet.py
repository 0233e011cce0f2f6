"""A contact sheet PNG of a render: plate | reconstruction | resynthesis for every frame.

Each sequence is read as EXR, shown through the OCIO config's display/view (the same one the
templates use), and laid out a frame per cell, a few cells per row, with frame numbers.
Run: ``python installers/contact_sheet.py PLATE RECONSTRUCTION RESULT OUT.png [--columns 2]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

# the checkout's parent, last: `latentmirror` resolves when the pack is not installed, and no
# sibling folder (another node pack, a checkout named like a library) hides an installed package
sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from latentmirror.core import color  # noqa: E402
from latentmirror.core.frames.sequence import load_sequence  # noqa: E402

DISPLAY_VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
LABELS = ("plate", "reconstruction", "resynthesis")


def display_referred(
    pattern: str, colorspace: str = "ACEScg", frames: str = ""
) -> tuple[list[int], np.ndarray]:
    """(frame numbers, display-referred float32 RGB [N, H, W, 3] in 0..1, as the display shows
    it) of an EXR sequence (``frames``: a range; empty: all)."""
    loaded = load_sequence(pattern, frames=frames)
    cfg = color.resolve_config("")
    shown = color.apply_transform(
        loaded.rgb, cfg, colorspace, color.parse_target(cfg, DISPLAY_VIEW)
    )
    return loaded.info.frames, np.clip(shown, 0, 1)


def display_frames(
    pattern: str, colorspace: str = "ACEScg", frames: str = ""
) -> tuple[list[int], np.ndarray]:
    """(frame numbers, display-referred uint8 RGB [N, H, W, 3]) of an EXR sequence."""
    numbers, shown = display_referred(pattern, colorspace, frames)
    return numbers, (shown * 255).round().astype(np.uint8)


def label(image: np.ndarray, text: str, scale: float = 0.4) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
    return out


def contact_sheet(sequences: list[str], columns: int = 2, gap: int = 4) -> np.ndarray:
    """RGB uint8: one cell per frame (the sequences side by side), ``columns`` cells per row."""
    loaded = [display_frames(p) for p in sequences]
    frames = loaded[0][0]
    for other, pattern in zip(loaded[1:], sequences[1:], strict=True):
        if other[0] != frames:
            raise SystemExit(f"{pattern} has frames {other[0][:3]}..., the plate {frames[:3]}...")
    height, width = loaded[0][1].shape[1:3]
    cells = []
    for i, frame in enumerate(frames):
        parts = []
        for k, (_, images) in enumerate(loaded):
            image = cv2.resize(images[i], (width, height), interpolation=cv2.INTER_AREA)
            parts.append(label(image, f"{frame} {LABELS[k]}" if k == 0 else LABELS[k]))
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        cells.append(np.concatenate(parts[:-1], axis=1))
    while len(cells) % columns:
        cells.append(np.full_like(cells[0], 255))
    rows = []
    for r in range(0, len(cells), columns):
        spacer = np.full((height, gap * 4, 3), 255, np.uint8)
        row = [c for cell in cells[r : r + columns] for c in (cell, spacer)][:-1]
        rows.append(np.concatenate(row, axis=1))
        rows.append(np.full((gap * 2, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plate")
    parser.add_argument("reconstruction")
    parser.add_argument("result")
    parser.add_argument("out")
    parser.add_argument("--columns", type=int, default=2)
    args = parser.parse_args()
    sheet = contact_sheet([args.plate, args.reconstruction, args.result], args.columns)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    cv2.imwrite(args.out, sheet[..., ::-1])
    print(args.out)


if __name__ == "__main__":
    main()
