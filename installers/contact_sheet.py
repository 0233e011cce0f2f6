"""A contact sheet PNG of a render: plate | reconstruction | resynthesis for every frame (or any
sequences side by side, e.g. plate | dissolve to show a look changing over the shot).

Each sequence is read as EXR, shown through the OCIO config's display/view (the same one the
templates use), and laid out a frame per cell, a few cells per row, with frame numbers.
Run: ``python installers/contact_sheet.py PLATE RECONSTRUCTION RESULT OUT.png [--columns 2]``
or ``python installers/contact_sheet.py PLATE RESULT OUT.png --labels plate,dissolve
--frames 1001-1024x3 --columns 4``.
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


def contact_sheet(
    sequences: list[str],
    columns: int = 2,
    gap: int = 4,
    labels: tuple[str, ...] = LABELS,
    frames: str = "",
) -> np.ndarray:
    """RGB uint8: one cell per frame (the sequences side by side, captioned ``labels``),
    ``columns`` cells per row; ``frames``: a range (empty: every frame of the first)."""
    loaded = [display_frames(p, frames=frames) for p in sequences]
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
            parts.append(label(image, f"{frame} {labels[k]}" if k == 0 else labels[k]))
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
    parser.add_argument("sequences", nargs="+", help="EXR sequences (####), then OUT.png")
    parser.add_argument("--columns", type=int, default=2)
    parser.add_argument(
        "--labels", default=",".join(LABELS), help="a caption per sequence, comma-separated"
    )
    parser.add_argument("--frames", default="", help="a frame range, e.g. 1001-1024x3")
    args = parser.parse_args()
    *sequences, out = args.sequences
    labels = tuple(args.labels.split(","))
    if len(sequences) < 1 or len(labels) < len(sequences):
        parser.error("give at least one sequence, OUT.png, and a label per sequence")
    sheet = contact_sheet(sequences, args.columns, labels=labels, frames=args.frames)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    cv2.imwrite(out, sheet[..., ::-1])
    print(out)


if __name__ == "__main__":
    main()
