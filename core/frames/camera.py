"""Camera moves over still photos: a real-photo "shot" for benchmarks, tests and the demo plate.

A move is a path of crop windows over the photo (pan and push-in), each resampled to the output
size with area averaging, so frames differ the way a real camera move's frames do: sub-pixel
motion, parallax-free but with real texture.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

PHOTOS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "assets", "photos"
)


def read_photo(name_or_path: str) -> np.ndarray:
    """A photo shipped in assets/photos (by name) or any image file -> RGB float32 [H, W, 3] in
    [0, 1], display-referred sRGB as stored."""
    path = name_or_path if os.path.sep in name_or_path else os.path.join(PHOTOS, name_or_path)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read the photo {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def camera_move(
    photo: np.ndarray,
    frames: int,
    width: int,
    height: int,
    pan: float = 0.25,
    push: float = 0.15,
) -> np.ndarray:
    """``frames`` views ``[frames, height, width, 3]`` of ``photo``: a window of the output's
    aspect, as large as fits at the start, panning right by ``pan`` of the photo's width and
    pushing in by ``push`` (the window shrinks by that fraction) over the move."""
    ph, pw = photo.shape[:2]
    aspect = width / height
    base_h = min(ph, pw / (aspect * (1 + pan)))
    out = np.empty((frames, height, width, 3), np.float32)
    for i in range(frames):
        t = i / max(1, frames - 1)
        win_h = base_h * (1 - push * t)
        win_w = win_h * aspect
        x0 = (pw - base_h * aspect * (1 + pan)) / 2 + t * pan * base_h * aspect
        x0 += (base_h - win_h) * aspect / 2
        y0 = (ph - win_h) / 2
        out[i] = _crop_resample(photo, x0, y0, win_w, win_h, width, height)
    return out


def _crop_resample(photo, x0, y0, win_w, win_h, width, height) -> np.ndarray:
    """The window ``(x0, y0, win_w, win_h)`` (sub-pixel) resampled to ``width x height``."""
    scale_x, scale_y = width / win_w, height / win_h
    matrix = np.array([[scale_x, 0, -x0 * scale_x], [0, scale_y, -y0 * scale_y]], np.float32)
    if scale_x < 1:  # shrink: blur first so the warp does not alias
        sigma = 0.5 / scale_x
        photo = cv2.GaussianBlur(photo, (0, 0), sigma)
    return cv2.warpAffine(
        photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
