"""Make the demo plate: a scene-linear (ACEScg) EXR sequence with a camera move.

By default a camera move (pan and push-in) over a real photo shipped in assets/photos (CC BY 2.0,
see assets/photos/ATTRIBUTION.md), linearised from sRGB to ACEScg with OpenColorIO; or a
procedural landscape (a sun far above 1.0, for highlight handling). Nothing is downloaded.
Run: ``python installers/demo_plate.py OUT_FOLDER [--frames 24] [--size 256x144]
[--source china.jpg|flower.jpg|procedural]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

# the checkout's parent, last: `latentmirror` resolves when the pack is not installed, and no
# sibling folder (another node pack, a checkout named like a library) hides an installed package
sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from latentmirror.core.frames.exr import Attribute, Box, ExrWriteOptions, write_exr  # noqa: E402

FIRST_FRAME = 1001


def landscape(width: int, height: int, pan: float) -> np.ndarray:
    """One frame, scene-linear RGB; ``pan`` moves the camera to the right (in image widths)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width + pan, y / height
    sky = np.stack([0.25 + 0.3 * v, 0.45 + 0.3 * v, 1.1 - 0.2 * v], -1) * 0.8
    sun = 40.0 * np.exp(-(((u - 0.9) ** 2) + (v - 0.25) ** 2) / 0.002)[..., None]
    ridge = 0.55 + 0.08 * np.sin(u * 9.0) + 0.05 * np.sin(u * 23.0 + 1.0)
    hills = (v > ridge)[..., None] * np.stack(
        [0.05 + 0.04 * np.sin(u * 40), 0.12 + 0.03 * np.sin(v * 30), 0.03 + 0 * u], -1
    )
    lake = (v > 0.8)[..., None] * np.stack([0.02 + 0 * u, 0.05 + 0 * u, 0.09 + 0.02 * v], -1)
    image = np.where(hills.any(-1, keepdims=True), hills, sky + sun)
    image = np.where(lake.any(-1, keepdims=True), lake + 0.3 * sun[::-1], image)
    return image.astype(np.float32)


def photo_frames(photo: str, frames: int, width: int, height: int) -> np.ndarray:
    """A camera move over ``photo`` as scene-linear ACEScg ``[frames, height, width, 3]``."""
    from latentmirror.core import color
    from latentmirror.core.frames.camera import camera_move, read_photo

    moves = camera_move(read_photo(photo), frames, width, height)
    cfg = color.resolve_config("")
    return color.apply_transform(moves, cfg, "sRGB - Texture", "ACEScg").astype(np.float32)


def write_plate(
    folder: str, frames: int = 24, width: int = 256, height: int = 144, source="procedural"
) -> str:
    pattern = os.path.join(folder, "plate.####.exr")
    window = Box(0, 0, width, height)
    photo = None if source == "procedural" else photo_frames(source, frames, width, height)
    for index in range(frames):
        frame = FIRST_FRAME + index
        rgb = landscape(width, height, pan=0.01 * index) if photo is None else photo[index]
        rgba = np.concatenate([rgb, np.ones_like(rgb[..., :1])], -1)
        write_exr(
            pattern.replace("####", f"{frame:04d}"),
            rgba,
            ["R", "G", "B", "A"],
            window,
            window,
            options=ExrWriteOptions("half", "zip"),
            attributes=[
                Attribute("latentmirror:colorspace", "string", "ACEScg"),
                Attribute("smpte:TimeCode", "timecode", (0x01000000 + index, 0)),
                Attribute("framesPerSecond", "rational", (24, 1)),
            ],
        )
    return pattern


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="256x144")
    parser.add_argument(
        "--source", default="china.jpg", help="a photo in assets/photos, or procedural"
    )
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.lower().split("x"))
    print(write_plate(args.folder, args.frames, width, height, args.source))


if __name__ == "__main__":
    main()
