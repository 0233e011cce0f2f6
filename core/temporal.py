"""Temporal stability: the warping error of an output against its plate.

The video-consistency community's measure (Lai et al., "Learning Blind Video Temporal
Consistency", 2018): optical flow is computed on the *plate* (OpenCV's DIS), the output's previous
frame is warped by it onto the current frame, and the squared difference is averaged over the
pixels where the flow is reliable: those that pass the forward-backward consistency check (Ruder
et al. 2016: occlusions and flow errors fail it) and whose source lies inside the previous frame.
The plate's own previous frame, warped the same way, gives the plate's warping error (flow is
never perfect: resampling blurs, lighting changes), so the figure to read is the **ratio**
output / plate: 1 moves exactly as the plate does, above 1 flickers, swims or lags behind it.

Unlike the old flicker figure (the output's frame-to-frame change minus the plate's), a frozen
output scores badly: the plate moved, the output did not follow.

Frames are float arrays ``[T, H, W, C]`` (ComfyUI's IMAGE layout; a torch tensor works too).
``space`` says what the values are: ``"display"`` (display-referred, about 0..1, what the
benchmarks use: it is what the GAN sees and the eye judges) or ``"linear"`` (scene-linear: the
flow is then computed on a tone-mapped copy, so highlights above 1 keep their texture, and the
error is measured on the linear values).

>>> import numpy as np
>>> texture = np.random.default_rng(0).random((64, 96, 3), dtype=np.float32)
>>> plate = np.stack([np.roll(texture, 2 * t, axis=1) for t in range(3)])
>>> score = temporal_score(plate, plate)
>>> round(score.ratio, 3), score.output_error == score.plate_error
(1.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import error

SPACES = ("display", "linear")
# Ruder et al.'s forward-backward test: a pixel is unreliable when the two flows do not cancel,
# |f + b|^2 > CONSISTENCY_SCALE * (|f|^2 + |b|^2) + CONSISTENCY_SLACK (pixels^2)
CONSISTENCY_SCALE, CONSISTENCY_SLACK = 0.01, 0.5
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec.709, to give the flow one channel


@dataclass(frozen=True)
class PairFlow:
    """The plate's motion from frame t-1 to frame t, seen from frame t.

    ``backward[y, x]``: where pixel (x, y) of frame t was in frame t-1, as an offset (dx, dy);
    ``reliable``: the pixels whose offset passed the forward-backward check and lands inside
    frame t-1 (the others are occluded, newly revealed, or the flow is wrong there).
    """

    backward: np.ndarray  # [H, W, 2] float32
    reliable: np.ndarray  # [H, W] bool

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """``previous`` (frame t-1, ``[H, W, C]``) carried onto frame t along the flow."""
        return _sample(previous, self.backward)


@dataclass(frozen=True)
class TemporalScore:
    """Mean warping errors (squared, summed over channels, over reliable pixels) and how much
    of the frame they cover."""

    output_error: float
    plate_error: float
    reliable_fraction: float  # of the pixels of frames 2..T

    @property
    def ratio(self) -> float:
        """output / plate; 1.0 when both are exactly 0 (a still plate, a still output)."""
        if self.plate_error > 0:
            return self.output_error / self.plate_error
        return 1.0 if self.output_error == 0 else math.inf

    def __str__(self) -> str:
        return (
            f"warping error {self.output_error:.6f} (plate {self.plate_error:.6f}, "
            f"ratio {self.ratio:.3f}, {self.reliable_fraction:.0%} of pixels reliable)"
        )


def temporal_score(
    output, plate, space: str = "display", flows: list[PairFlow] | None = None
) -> TemporalScore:
    """The output's warping error beside the plate's, along the plate's flow.

    ``flows`` (from :func:`plate_flows`) saves computing the flow again when several outputs of
    one plate are scored.
    """
    plate = _frames(plate, "plate")
    output = _frames(output, "output")
    if output.shape != plate.shape:
        raise error(
            f"the output is {_describe(output)} but the plate is {_describe(plate)}: the warping "
            "error compares them frame by frame, pixel by pixel",
            input="output",
        )
    flows = plate_flows(plate, space) if flows is None else flows
    if len(flows) != len(plate) - 1:
        raise error(
            f"{len(flows)} flows given for {len(plate)} frames (one per pair of frames expected)",
            input="flows",
        )
    reliable = sum(int(flow.reliable.sum()) for flow in flows)
    if reliable == 0:
        raise error(
            "the plate's optical flow is reliable nowhere (no texture, or everything occluded): "
            "there is nothing to measure the warping error on",
            input="plate",
        )
    return TemporalScore(
        output_error=warping_error(output, flows),
        plate_error=warping_error(plate, flows),
        reliable_fraction=reliable / (len(flows) * flows[0].reliable.size),
    )


def warping_error(frames, flows: list[PairFlow]) -> float:
    """Mean over pairs of mean over reliable pixels of |frame t - warp(frame t-1)|^2 (summed over
    channels); pairs with no reliable pixel are left out."""
    frames = _frames(frames, "frames")
    errors = []
    for t, flow in enumerate(flows, start=1):
        if not flow.reliable.any():
            continue
        difference = frames[t] - flow.warp(frames[t - 1])
        errors.append(float((difference**2).sum(-1)[flow.reliable].mean()))
    return float(np.mean(errors)) if errors else math.nan


def plate_flows(plate, space: str = "display") -> list[PairFlow]:
    """The plate's flow for each pair of consecutive frames, with its reliable pixels."""
    if space not in SPACES:
        raise error(f"unknown space {space!r}; expected one of: {', '.join(SPACES)}", input="space")
    gray = [_flow_image(frame, space) for frame in _frames(plate, "plate")]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = []
    for previous, current in zip(gray[:-1], gray[1:], strict=True):
        backward = dis.calc(current, previous, None)  # current(x) ~ previous(x + backward(x))
        forward = dis.calc(previous, current, None)  # previous(y) ~ current(y + forward(y))
        flows.append(PairFlow(backward, reliable_pixels(forward, backward)))
    return flows


def reliable_pixels(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose backward flow lands inside frame t-1 and is undone by the
    forward flow found there (Ruder et al.'s check; occlusions fail it).

    >>> still = np.zeros((4, 5, 2), np.float32)
    >>> left = still + np.array([-2, 0], np.float32)  # everything came from 2 px to the left
    >>> reliable_pixels(-left, left).astype(int)[0]  # the first 2 columns came from outside
    array([0, 0, 1, 1, 1])
    """
    height, width = backward.shape[:2]
    x, y = _grid(height, width)
    source_x, source_y = x + backward[..., 0], y + backward[..., 1]
    inside = (source_x >= 0) & (source_x <= width - 1) & (source_y >= 0) & (source_y <= height - 1)
    forward_there = _sample(forward, backward)
    mismatch = ((forward_there + backward) ** 2).sum(-1)
    size = (forward_there**2).sum(-1) + (backward**2).sum(-1)
    return inside & (mismatch <= CONSISTENCY_SCALE * size + CONSISTENCY_SLACK)


def _frames(frames, name: str) -> np.ndarray:
    """Frames as float32 ``[T, H, W, C]``; anything else refused naming ``name``."""
    if hasattr(frames, "detach"):  # a torch tensor
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4) or min(frames.shape[1:3]) < 8:
        raise error(
            f"expected frames [T, H, W, C] (C 1, 3 or 4, at least 8x8 pixels), got shape "
            f"{tuple(frames.shape)}",
            input=name,
        )
    if frames.shape[0] < 2:
        raise error(f"{frames.shape[0]} frame: the warping error needs two or more", input=name)
    if not np.issubdtype(frames.dtype, np.floating):
        raise error(f"expected float frames, got {frames.dtype}", input=name)
    frames = frames.astype(np.float32, copy=False)
    bad = ~np.isfinite(frames)
    if bad.any():
        frame = int(np.argwhere(bad)[0][0])
        raise error(
            f"{int(bad.sum())} values are NaN or infinite (first in frame index {frame}): "
            "the warping error of such frames means nothing",
            input=name,
        )
    return frames


def _flow_image(frame: np.ndarray, space: str) -> np.ndarray:
    """One 8-bit channel for DIS: luma, display-encoded (scene-linear is tone-mapped first)."""
    rgb = frame[..., :3] if frame.shape[-1] >= 3 else np.repeat(frame[..., :1], 3, -1)
    luma = rgb @ LUMA
    if space == "linear":  # keep texture in highlights and shadows, then a display-like gamma
        luma = (np.maximum(luma, 0) / (1 + np.maximum(luma, 0))) ** (1 / 2.2)
    return np.clip(np.rint(luma * 255), 0, 255).astype(np.uint8)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return x, y


def _sample(image: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``image`` read at each pixel + ``offset`` (bilinear; edges replicated, masked anyway)."""
    x, y = _grid(*offset.shape[:2])
    sampled = cv2.remap(
        np.ascontiguousarray(image, np.float32),
        x + offset[..., 0],
        y + offset[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return sampled.reshape(image.shape)  # remap drops a trailing channel axis of 1


def _describe(frames: np.ndarray) -> str:
    t, h, w, c = frames.shape
    return f"{t} frames of {w}x{h}x{c}"
