"""OCIO transforms through baked LUTs (core/color_lut.py), against OCIO's exact CPU processor.

Errors are measured in display space (an inverse transform's results are mapped back through the
exact forward transform) over a real photo's pixels, the GAN's display range and the full range.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentmirror.core import caches, color, color_lut
from latentmirror.core.errors import LatentmirrorError
from latentmirror.nodes.color_nodes import OCIOTransform

from .support import installers_module

SRGB_ENCODED = "sRGB Encoded Rec.709 (sRGB)"
SDR_DISPLAY_VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
P99_BOUND, MAX_BOUND, PLATE_MAX_BOUND = 1e-3, 1e-2, 2e-3


@pytest.fixture(scope="module")
def cfg() -> color.ColorConfig:
    return color.resolve_config("ocio://studio-config-latest")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo's pixels as scene-linear ACEScg (one 256x144 frame of the demo plate)."""
    frames = installers_module("demo_plate").photo_frames("china.jpg", 1, 256, 144)
    return frames.reshape(-1, 3)


def _assert_bounds(cfg, photo, dst, inverse):
    full = color_lut.full_range_samples(cfg, dst if inverse else "ACEScg", 60_000, seed=3)
    plate = color.apply_transform(photo, cfg, "ACEScg", dst) if inverse else photo
    full_error = color_lut.lut_error(full, cfg, "ACEScg", dst, inverse)
    plate_error = color_lut.lut_error(plate, cfg, "ACEScg", dst, inverse)
    assert np.percentile(full_error, 99) <= P99_BOUND
    assert full_error.max() <= MAX_BOUND
    assert plate_error.max() <= PLATE_MAX_BOUND


@pytest.mark.slow
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_srgb_lut_meets_the_error_bounds(cfg, photo, inverse):
    _assert_bounds(cfg, photo, SRGB_ENCODED, inverse)


@pytest.mark.slow
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_aces2_display_lut_meets_the_error_bounds(cfg, photo, inverse):
    _assert_bounds(cfg, photo, SDR_DISPLAY_VIEW, inverse)


def test_gan_display_range_through_the_inverse_sdr_view(cfg):
    """The templates' Back to ACEScg node on the GAN's outputs: uniform display values."""
    display = np.random.default_rng(5).uniform(0.0, 1.0, (20_000, 3)).astype(np.float32)
    error = color_lut.lut_error(display, cfg, "ACEScg", SDR_DISPLAY_VIEW, True, size=33)
    assert np.percentile(error, 99) <= P99_BOUND and error.max() <= MAX_BOUND


@pytest.mark.parametrize("interpolation", ["tetrahedral", "trilinear"])
def test_interpolations_are_exact_on_grid_points_and_linear_functions(interpolation):
    interpolate = color_lut.INTERPOLATIONS[interpolation]
    matrix = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [3.0, 0.0, 1.0]])
    axis = torch.linspace(0.0, 1.0, 9)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
    points = torch.rand(5000, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(interpolate(grid @ matrix, points), points @ matrix)
    table = torch.rand(9, 9, 9, 3, generator=torch.Generator().manual_seed(1))
    nodes = torch.tensor([[0.0, 0.125, 0.25], [1.0, 1.0, 1.0], [0.5, 0.0, 0.875]])
    expected = torch.stack([table[0, 1, 2], table[8, 8, 8], table[4, 0, 7]])
    torch.testing.assert_close(interpolate(table, nodes), expected)


def test_tetrahedral_beats_trilinear_on_the_sdr_view(cfg, photo):
    """The bare interpolations (no exact cells) of a small LUT on a photo's pixels."""
    view = color.parse_target(cfg, SDR_DISPLAY_VIEW)
    lut = color_lut.baked_lut(cfg, "ACEScg", view, False, 17)
    exact = color.apply_transform(photo, cfg, "ACEScg", view)
    coords = lut.source.to_unit(torch.from_numpy(photo))
    errors = {
        name: np.abs(interpolate(lut.table, coords).numpy() - exact).mean()
        for name, interpolate in color_lut.INTERPOLATIONS.items()
    }
    assert errors["tetrahedral"] < errors["trilinear"]


@pytest.fixture
def coarse_lut_without_exact_cells(monkeypatch):
    """A 9^3 LUT that never takes the exact path for a cell: every difference to OCIO shows."""
    monkeypatch.setattr(color_lut, "CELL_TOLERANCE", float("inf"))
    caches.release_models()
    yield 9
    caches.release_models()


def test_pixels_out_of_the_lut_range_take_the_exact_path(cfg, coarse_lut_without_exact_cells):
    """Highlights past the shaper, deep negatives, NaN and Inf: exactly OCIO's values."""
    odd = [[5000.0, 1.0, 0.5], [-3.0, 0.2, 0.1], [np.nan, 0.5, 0.5], [np.inf, 0.1, 0.1]]
    pixels = np.array([*odd, [0.3, 0.2, 0.1]], np.float32)
    out = color_lut.apply_lut_transform(
        torch.from_numpy(pixels), cfg, "ACEScg", SRGB_ENCODED, size=coarse_lut_without_exact_cells
    ).numpy()
    exact = color.apply_transform(pixels, cfg, "ACEScg", SRGB_ENCODED)
    np.testing.assert_array_equal(out[:4], exact[:4])
    assert not np.array_equal(out[4], exact[4])  # the in-range pixel went through the LUT


def test_alpha_passes_unchanged_and_the_input_is_left_alone(cfg, coarse_lut_without_exact_cells):
    rgba = torch.rand(2, 4, 5, 4, generator=torch.Generator().manual_seed(2))
    before = rgba.clone()
    size = coarse_lut_without_exact_cells
    out = color_lut.apply_lut_transform(rgba, cfg, "ACEScg", SRGB_ENCODED, size=size)
    assert torch.equal(out[..., 3], rgba[..., 3]) and torch.equal(rgba, before)
    assert out.shape == rgba.shape and out.dtype == torch.float32


def test_luts_are_cached_and_freed_by_unload_models(cfg):
    first = color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, False, 17)
    assert color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, inverse=False, size=17) is first
    caches.release_models()
    assert color_lut._baked_lut.cache_info().currsize == 0
    assert color_lut._lut_on_device.cache_info().currsize == 0


def test_node_exact_is_bit_identical_to_ocio_cpu_processor(cfg, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    frames = torch.from_numpy(
        np.random.default_rng(7).uniform(-0.5, 20.0, (3, 9, 11, 3)).astype(np.float32)
    )
    (out,) = OCIOTransform().transform(frames, "ACEScg", SDR_DISPLAY_VIEW, "forward", "", "exact")
    display, view = SDR_DISPLAY_VIEW.split("/")
    transform = color.ocio.DisplayViewTransform(src="ACEScg", display=display, view=view)
    processor = cfg.config.getProcessor(transform).getDefaultCPUProcessor()
    expected = frames.numpy().copy()
    processor.applyRGB(expected.reshape(-1))
    assert np.array_equal(out.numpy(), expected)


@pytest.mark.slow  # bakes the default 129^3 LUT
def test_node_lut_is_the_default_and_close_to_exact(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    image = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(4))
    (lut,) = OCIOTransform().transform(image, "ACEScg", SRGB_ENCODED, "inverse")
    (exact,) = OCIOTransform().transform(image, "ACEScg", SRGB_ENCODED, "inverse", "", "exact")
    assert not torch.equal(lut, exact)  # the LUT ran
    assert (lut - exact).abs().max() < 1e-3


def test_node_bad_precision_names_the_input(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    image = torch.rand(1, 2, 2, 3)
    with pytest.raises(LatentmirrorError) as caught:
        OCIOTransform().transform(image, "ACEScg", SRGB_ENCODED, "forward", "", "fast")
    assert "input 'precision'" in str(caught.value) and "fast" in str(caught.value)
