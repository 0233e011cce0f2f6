"""The warping error (core/temporal.py), with real OpenCV optical flow on textured plates."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.temporal import (
    PairFlow,
    plate_flows,
    reliable_pixels,
    temporal_score,
    warping_error,
)

FRAMES, HEIGHT, WIDTH, STEP = 6, 64, 96, 3  # the camera pans STEP px right per frame


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture in 0..1 (DIS tracks it well)."""
    noise = np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min())


@pytest.fixture(scope="module")
def plate() -> np.ndarray:
    """A pan over a larger texture: content moves STEP px left, new content enters at the right."""
    scene = texture(HEIGHT + 20, WIDTH + STEP * FRAMES + 20)
    return np.stack(
        [scene[10 : 10 + HEIGHT, 10 + STEP * t : 10 + STEP * t + WIDTH] for t in range(FRAMES)]
    )


@pytest.fixture(scope="module")
def flows(plate) -> list[PairFlow]:
    return plate_flows(plate)


def old_flicker(output: np.ndarray, plate: np.ndarray) -> float:
    """The figure bench_invert reported before: output frame-to-frame change minus the plate's."""
    return float(np.abs(np.diff(output, axis=0)).mean() - np.abs(np.diff(plate, axis=0)).mean())


def test_the_flow_follows_the_pan_and_excludes_what_came_from_outside(flows):
    for flow in flows:
        reliable = flow.reliable[:, 10:-10]  # away from the edges DIS extrapolates at
        assert np.median(flow.backward[..., 0][:, 10:-10][reliable]) == pytest.approx(STEP, 0.05)
        assert not flow.reliable[:, -STEP:].any()  # entered the frame at the right: no source
    assert np.mean([f.reliable.mean() for f in flows]) > 0.85


def test_an_output_equal_to_the_plate_scores_a_ratio_of_one(plate, flows):
    score = temporal_score(plate, plate, flows=flows)
    assert score.ratio == pytest.approx(1.0)
    assert 0 < score.plate_error < 1e-3  # resampling the plate is not free, but it is small


def test_a_stable_regraded_output_scores_close_to_one(plate, flows):
    """A look that moves with the plate (a grade: contrast, gamma, lift) is temporally stable."""
    graded = plate**1.2 * 0.8 + 0.1
    assert 0.3 < temporal_score(graded, plate, flows=flows).ratio < 1.5


def test_a_frozen_output_is_punished_though_the_old_flicker_figure_rewarded_it(plate, flows):
    frozen = np.repeat(plate[:1], FRAMES, axis=0)
    assert old_flicker(frozen, plate) < old_flicker(plate, plate)  # "better" than the plate
    assert temporal_score(frozen, plate, flows=flows).ratio > 50


def test_per_frame_noise_scores_worse_than_a_stable_output(plate, flows):
    noise = np.random.default_rng(1).normal(0, 0.02, plate.shape).astype(np.float32)
    stable = temporal_score(plate, plate, flows=flows)
    noisy = temporal_score(plate + noise, plate, flows=flows)
    assert noisy.ratio > 10 * stable.ratio
    # the error of independent noise of sigma s is about 2 s^2 per channel, 3 channels
    assert noisy.output_error == pytest.approx(6 * 0.02**2, rel=0.25)


def test_pixels_that_entered_the_frame_do_not_count(plate, flows):
    """Garbage only where the last frame's content has no source in the frame before (it
    entered at the right) changes nothing; in an earlier frame it would be warped and count."""
    garbage = plate.copy()
    garbage[-1, :, -STEP:] = np.random.default_rng(2).random(garbage[-1, :, -STEP:].shape)
    assert warping_error(garbage, flows) == pytest.approx(warping_error(plate, flows), rel=1e-6)
    visible = plate.copy()  # the same garbage in the middle of the frame counts
    visible[-1, :, 40 : 40 + STEP] = garbage[-1, :, -STEP:]
    assert warping_error(visible, flows) > 10 * warping_error(plate, flows)


def test_occluded_pixels_fail_the_forward_backward_check():
    """A square moves 4 px right over a still background: the background it uncovers was hidden
    in the previous frame, so no flow can be right there (exact flows, the check alone)."""
    height, width, step = 32, 48, 4
    square = (slice(8, 24), slice(12, 28))  # where it was in frame t-1
    forward = np.zeros((height, width, 2), np.float32)  # frame t-1 -> t
    forward[square[0], square[1], 0] = step
    backward = np.zeros((height, width, 2), np.float32)  # frame t -> t-1
    backward[8:24, 12 + step : 28 + step, 0] = -step
    reliable = reliable_pixels(forward, backward)
    assert not reliable[8:24, 12 : 12 + step].any()  # uncovered background: occluded before
    assert reliable[8:24, 12 + step : 28 + step].all()  # the square itself: tracked
    assert reliable[:8].all() and reliable[24:].all()  # background away from it


def test_scene_linear_plates_with_highlights_are_measured_in_linear():
    scene = texture(HEIGHT, WIDTH + 40, seed=3) ** 2 * 20  # linear values up to 20
    plate = np.stack([scene[:, 4 * t : 4 * t + WIDTH] for t in range(4)])
    flows = plate_flows(plate, "linear")
    assert np.mean([f.reliable.mean() for f in flows]) > 0.8
    frozen = np.repeat(plate[:1], 4, axis=0)
    assert temporal_score(plate, plate, "linear", flows).ratio == pytest.approx(1.0)
    assert temporal_score(frozen, plate, "linear", flows).ratio > 50


def test_torch_frames_in_comfyui_layout_are_accepted(plate, flows):
    assert temporal_score(torch.from_numpy(plate), plate, flows=flows).ratio == pytest.approx(1.0)


def test_a_still_plate_and_a_still_output_score_one_not_nan():
    still = np.repeat(texture(32, 32)[None], 3, axis=0)
    assert temporal_score(still, still).ratio == 1.0
    fading = still * np.float32([1.0, 0.9, 0.8])[:, None, None, None]
    assert math.isinf(temporal_score(fading, still).ratio)  # changes where the plate is exact


def _with_nan(frames):
    frames = frames.copy()
    frames[2, 5, 5, 1] = np.nan
    return frames


def _with_inf(frames):
    frames = frames.copy()
    frames[1, 0, 0, 0] = np.inf
    return frames


# (case, output, plate, space, input named, words the message must contain): all refused
REFUSED = [
    ("sizes differ", lambda p: p[:, :32], lambda p: p, "display", "output", ["96x32x3", "96x64x3"]),
    ("frame counts differ", lambda p: p[:3], lambda p: p, "display", "output", ["3 frames"]),
    ("one frame", lambda p: p[:1], lambda p: p[:1], "display", "plate", ["two or more"]),
    ("no frame axis", lambda p: p[0], lambda p: p, "display", "output", ["[T, H, W, C]"]),
    ("channels first", lambda p: p.transpose(0, 3, 1, 2), lambda p: p, "display", "output",
     ["[T, H, W, C]"]),
    ("NaN in the output", _with_nan, lambda p: p, "display", "output", ["NaN", "frame index 2"]),
    ("inf in the plate", lambda p: p, _with_inf, "display", "plate", ["infinite", "index 1"]),
    ("8-bit frames", lambda p: (p * 255).astype(np.uint8), lambda p: p, "display", "output",
     ["float", "uint8"]),
    ("unknown space", lambda p: p, lambda p: p, "log", "space", ["'log'", "display, linear"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "plate_of", "space", "named", "mentions"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_bad_frames_are_refused_naming_the_input(plate, output, plate_of, space, named, mentions):
    before = plate.copy()
    with pytest.raises(LatentmirrorError) as raised:
        temporal_score(output(plate), plate_of(plate), space)
    assert raised.value.where.input == named
    for mention in mentions:
        assert mention in raised.value.message
    assert np.array_equal(plate, before)  # the caller's frames are not touched
