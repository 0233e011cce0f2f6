"""OCIO transforms through baked LUTs (core/color_lut.py), against OCIO's exact CPU processor.

Errors are measured in display space (an inverse transform's results are mapped back through the
exact forward transform) over a real photo's pixels, the GAN's display range and the full range,
for both backends: ``ocio`` (OCIO's CPU processor runs the LUT; the CPU default) and ``torch``
(the tensor path other devices take, run here on the CPU). Baked LUTs are cached on disk
(core/lut_cache.py); conftest points that cache at a per-session folder.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from latentmirror.core import caches, color, color_lut, lut_cache
from latentmirror.core.errors import LatentmirrorError
from latentmirror.nodes.color_nodes import OCIOTransform

from .support import installers_module

SRGB_ENCODED = "sRGB Encoded Rec.709 (sRGB)"
SDR_DISPLAY_VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
P99_BOUND, MAX_BOUND, PLATE_MAX_BOUND = 1e-3, 1e-2, 2e-3
BACKENDS = list(color_lut.BACKENDS)


@pytest.fixture(scope="module")
def cfg() -> color.ColorConfig:
    return color.resolve_config("ocio://studio-config-latest")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo's pixels as scene-linear ACEScg (one 256x144 frame of the demo plate)."""
    frames = installers_module("demo_plate").photo_frames("china.jpg", 1, 256, 144)
    return frames.reshape(-1, 3)


def _assert_bounds(cfg, photo, dst, inverse, backend):
    full = color_lut.full_range_samples(cfg, dst if inverse else "ACEScg", 60_000, seed=3)
    plate = color.apply_transform(photo, cfg, "ACEScg", dst) if inverse else photo
    full_error = color_lut.lut_error(full, cfg, "ACEScg", dst, inverse, backend=backend)
    plate_error = color_lut.lut_error(plate, cfg, "ACEScg", dst, inverse, backend=backend)
    assert np.percentile(full_error, 99) <= P99_BOUND
    assert full_error.max() <= MAX_BOUND
    assert plate_error.max() <= PLATE_MAX_BOUND


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_srgb_lut_meets_the_error_bounds(cfg, photo, inverse, backend):
    _assert_bounds(cfg, photo, SRGB_ENCODED, inverse, backend)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_aces2_display_lut_meets_the_error_bounds(cfg, photo, inverse, backend):
    _assert_bounds(cfg, photo, SDR_DISPLAY_VIEW, inverse, backend)


def test_gan_display_range_through_the_inverse_sdr_view(cfg):
    """The templates' Back to ACEScg node on the GAN's outputs: uniform display values."""
    display = np.random.default_rng(5).uniform(0.0, 1.0, (20_000, 3)).astype(np.float32)
    for backend in BACKENDS:
        error = color_lut.lut_error(
            display, cfg, "ACEScg", SDR_DISPLAY_VIEW, True, size=33, backend=backend
        )
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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_pixels_out_of_the_lut_range_take_the_exact_path(
    cfg, coarse_lut_without_exact_cells, backend, inverse
):
    """Highlights past the shaper, deep negatives, NaN and Inf: exactly OCIO's values (forward:
    a scene-linear input and its log shaper; inverse: a display input in [0, 1])."""
    odd = [[5000.0, 1.0, 0.5], [-3.0, 0.2, 0.1], [np.nan, 0.5, 0.5], [np.inf, 0.1, 0.1]]
    odd += [[0.3, -np.inf, 0.1], [1.0000001, 0.5, 0.5], [0.2, 0.3, -1e-6]]
    pixels = np.array([*odd, [0.3, 0.2, 0.1]], np.float32)
    size = coarse_lut_without_exact_cells
    out = color_lut.apply_lut_transform(
        torch.from_numpy(pixels), cfg, "ACEScg", SRGB_ENCODED, inverse, size, backend=backend
    ).numpy()
    exact = color.apply_transform(pixels, cfg, "ACEScg", SRGB_ENCODED, inverse)
    outside = len(odd) if inverse else 5  # just past 1 and below 0: inside the log shaper's range
    np.testing.assert_array_equal(out[:outside], exact[:outside])
    assert not np.array_equal(out[-1], exact[-1])  # the in-range pixel went through the LUT


@pytest.mark.parametrize("backend", BACKENDS)
def test_alpha_passes_unchanged_and_the_input_is_left_alone(
    cfg, coarse_lut_without_exact_cells, backend
):
    rgba = torch.rand(2, 4, 5, 4, generator=torch.Generator().manual_seed(2))
    before = rgba.clone()
    size = coarse_lut_without_exact_cells
    out = color_lut.apply_lut_transform(
        rgba, cfg, "ACEScg", SRGB_ENCODED, size=size, backend=backend
    )
    assert torch.equal(out[..., 3], rgba[..., 3]) and torch.equal(rgba, before)
    assert out.shape == rgba.shape and out.dtype == torch.float32


@pytest.mark.parametrize(
    ("dst", "inverse"),
    [(SDR_DISPLAY_VIEW, True), (SDR_DISPLAY_VIEW, False), (SRGB_ENCODED, True)],
    ids=["aces2-inverse", "aces2-forward", "srgb-inverse"],
)
def test_every_pixel_in_a_cell_the_lut_misses_takes_the_exact_path(cfg, dst, inverse):
    """Pixels anywhere in those cells come out exactly OCIO's, through both backends. With a
    display-referred input also on the cells' faces and corners and on the cube's outer faces
    at 0 and 1 (a scene-linear input's shaper may round a point on a face to either side)."""
    target = color.parse_target(cfg, dst)
    lut = color_lut.baked_lut(cfg, "ACEScg", target, inverse, 17)
    cells = lut.exact_cells.view(16, 16, 16).nonzero().double()
    assert 0 < len(cells) < 16**3  # the test needs cells of both kinds
    offsets = np.random.default_rng(11).uniform(0.05, 0.95, (6, 3))
    if lut.source.kind == "identity":
        offsets = np.concatenate([offsets, [[0, 0, 0], [1, 1, 1], [1, 0.5, 0], [0, 1, 0.3]]])
    units = ((cells[:, None, :] + torch.from_numpy(offsets)[None]) / 16).reshape(-1, 3)
    units = units[lut.exact_cells[color_lut._cell_index(units, 17)]]  # faces: some are next door
    pixels = lut.source.from_unit(units).float()
    exact = color.apply_transform(pixels.numpy(), cfg, "ACEScg", target, inverse)
    for backend in BACKENDS:
        out = color_lut.apply_lut_transform(
            pixels, cfg, "ACEScg", target, inverse, 17, backend=backend
        )
        np.testing.assert_array_equal(out.numpy(), exact)


def test_the_cpu_backend_finds_the_cells_as_the_torch_path_does(cfg):
    """OCIO's path finds a pixel's cell with padded flags and one clipped lookup: the same flag
    as :func:`_cell_index` for every coordinate in [0, 1] (faces and the far corner too), and
    some flag, never an error, for NaN, infinite and out-of-range coordinates."""
    target = color.parse_target(cfg, SDR_DISPLAY_VIEW)
    lut = color_lut._lut_in_ocio(cfg, "ACEScg", target, True, 17, "tetrahedral")
    rng = np.random.default_rng(5)
    edges = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0.5], [0.5, 1, 0], [15 / 16, 1 / 16, 1]])
    units = np.concatenate([rng.random((50_000, 3)), edges]).astype(np.float32)
    coords = np.concatenate([units, np.zeros((len(units), 1), np.float32)], axis=1)
    baked = color_lut.baked_lut(cfg, "ACEScg", target, True, 17)
    expected = baked.exact_cells[color_lut._cell_index(torch.from_numpy(units), 17)].numpy()
    assert 0 < expected.sum() < len(expected)
    assert np.array_equal(color_lut._in_exact_cells(coords, lut), expected)
    wild = np.array([[np.nan, 0.5, 0.5, 0], [-np.inf, 2, 0.5, 0], [1e30, -3, np.inf, 0]])
    assert color_lut._in_exact_cells(wild.astype(np.float32), lut).shape == (3,)


@pytest.mark.parametrize(
    ("dst", "inverse"),
    [(SDR_DISPLAY_VIEW, False), (SDR_DISPLAY_VIEW, True), (SRGB_ENCODED, False)],
    ids=["aces2-forward", "aces2-inverse", "srgb-forward"],
)
def test_the_backends_agree_where_the_lut_is_used(
    cfg, coarse_lut_without_exact_cells, dst, inverse
):
    """OCIO runs the shapers as its LogCamera ops (ACEScct) and the LUT tetrahedrally: the same
    values as the torch path up to float rounding. Forward and inverse of one size in one
    process: OCIO's own processor cache would hand one LUT back for the other."""
    target = color.parse_target(cfg, dst)
    space = target if inverse else "ACEScg"
    pixels = torch.from_numpy(color_lut.full_range_samples(cfg, space, 20_000, seed=4))
    size = coarse_lut_without_exact_cells
    results = [
        color_lut.apply_lut_transform(pixels, cfg, "ACEScg", target, inverse, size, backend=b)
        for b in BACKENDS
    ]
    difference = (results[0] - results[1]).abs() / results[1].abs().clamp_min(1.0)
    in_display_range = results[1].abs().amax(dim=-1) <= 1.0
    assert difference[in_display_range].max() < 2e-5
    # far above display white (sRGB-encoded 1000s of scene-linear) float32 rounding of the
    # shaper, the same in both, meets an output that climbs steeply within a cell
    assert difference.max() < 1e-3


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


def _node(precision="fast", channels=3):
    image = torch.rand(1, 2, 2, channels)
    return OCIOTransform().transform(image, "ACEScg", SRGB_ENCODED, "forward", "", precision)


def _lut(channels=3, **options):
    pixels = torch.rand(2, 2, channels)
    cfg = color.resolve_config("ocio://studio-config-latest")
    return color_lut.apply_lut_transform(pixels, cfg, "ACEScg", SRGB_ENCODED, size=5, **options)


# Refused, each with a message that names what is wrong (and, through the node, node and input);
# nothing is written by these calls. (Damaged and unwritable LUT caches are warned-and-correct:
# see the disk cache tests below.)
BAD_INPUT_CASES = [
    ("node precision", lambda: _node("fast"), ["OCIO Transform", "input 'precision'", "fast"]),
    ("node lut on 2 channels", lambda: _node("lut", 2), ["OCIO Transform", "2"]),
    ("lut backend", lambda: _lut(backend="gpu"), ["backend", "gpu", "ocio, torch"]),
    ("lut interpolation", lambda: _lut(interpolation="cubic"), ["cubic", "tetrahedral"]),
    ("lut on 5 channels", lambda: _lut(5), ["3 or 4 channels", "5"]),
]


@pytest.mark.parametrize(
    ("call", "mentions"), [c[1:] for c in BAD_INPUT_CASES], ids=[c[0] for c in BAD_INPUT_CASES]
)
def test_bad_input_is_refused_with_a_message_naming_it(monkeypatch, call, mentions):
    monkeypatch.delenv("OCIO", raising=False)
    with pytest.raises(LatentmirrorError) as caught:
        call()
    for mention in mentions:
        assert mention in str(caught.value)


# ---------------------------------------------------------------------------- the disk cache


@pytest.fixture
def lut_folder(tmp_path, monkeypatch):
    """An empty LUT cache of this test's own, and no LUT in memory."""
    folder = tmp_path / "luts"
    monkeypatch.setenv("LATENTMIRROR_LUT_CACHE", str(folder))
    caches.release_models()
    yield folder
    caches.release_models()


def _bake_fails(*_args, **_kwargs):
    raise AssertionError("baked again: the disk cache was not used")


def test_a_baked_lut_is_read_back_from_disk_without_baking(cfg, lut_folder, monkeypatch):
    baked = color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, True, 5)
    assert len(list(lut_folder.glob("*.safetensors"))) == 1
    caches.release_models()  # a new process: only the disk remembers
    monkeypatch.setattr(color_lut, "_apply_in_chunks", _bake_fails)
    loaded = color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, True, 5)
    assert torch.equal(loaded.table, baked.table)
    assert torch.equal(loaded.exact_cells, baked.exact_cells)
    assert (loaded.source, loaded.target) == (baked.source, baked.target)
    with pytest.raises(AssertionError, match="baked again"):  # another LUT is a miss
        color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, False, 5)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _flip_a_table_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the table's bytes (the header is short)
    path.write_bytes(bytes(data))


def _garbage(path):
    path.write_bytes(b"not a safetensors file")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_table_byte, _garbage])
def test_a_damaged_cache_entry_is_warned_baked_again_and_replaced(cfg, lut_folder, caplog, damage):
    baked = color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, True, 5)
    (entry,) = lut_folder.glob("*.safetensors")
    damage(entry)
    caches.release_models()
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        again = color_lut.baked_lut(cfg, "ACEScg", SRGB_ENCODED, True, 5)
    assert str(entry) in caplog.text and "baking again" in caplog.text
    assert torch.equal(again.table, baked.table)
    key = entry.name.removesuffix(".safetensors")
    assert lut_cache.load_entry(key) is not None  # replaced by a good entry


def test_an_unwritable_cache_folder_warns_and_still_colours(cfg, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv("LATENTMIRROR_LUT_CACHE", str(blocker / "luts"))
    caches.release_models()
    pixels = torch.rand(64, 3, generator=torch.Generator().manual_seed(6))
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        out = color_lut.apply_lut_transform(pixels, cfg, "ACEScg", SRGB_ENCODED, True, 5)
    caches.release_models()
    assert "cannot be written" in caplog.text and str(blocker) in caplog.text
    exact = color.apply_transform(pixels.numpy(), cfg, "ACEScg", SRGB_ENCODED, True)
    assert np.abs(out.numpy() - exact).max() < 0.05  # a 5^3 LUT: coarse, but it ran


def _key(cfg, dst=SRGB_ENCODED, inverse=True, size=5):
    target = color.target_of(cfg, dst)
    source, target_shaper = color_lut.shaper_for(cfg, "ACEScg"), color_lut.shaper_for(cfg, target)
    return color_lut._disk_key(cfg, "ACEScg", target, inverse, size, source, target_shaper)


def test_the_cache_key_changes_with_the_config_and_the_lut(cfg, tmp_path):
    """An edited config (ACEScg defined otherwise) must never meet the old config's LUTs."""
    same_text = tmp_path / "same.ocio"
    same_text.write_text(cfg.config.serialize())
    edited = tmp_path / "edited.ocio"
    text = cfg.config.serialize()
    assert text.count("ACEScg_to_ACES2065-1") == 1
    edited.write_text(text.replace("ACEScg_to_ACES2065-1", "ACEScct_to_ACES2065-1"))
    keys = {
        "built-in": _key(cfg),
        "edited config": _key(color.resolve_config(str(edited))),
        "forward": _key(cfg, inverse=False),
        "size": _key(cfg, size=9),
        "other target": _key(cfg, dst=SDR_DISPLAY_VIEW),
    }
    assert len(set(keys.values())) == len(keys)
    assert _key(cfg) == keys["built-in"]  # stable within a process
    assert _key(color.resolve_config(str(same_text))) != keys["edited config"]
