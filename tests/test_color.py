"""Colour management with real OpenColorIO (no mocks): known values, round trips, no clamping,
alpha, errors with suggestions, roles and aliases, config resolution, and the OCIO Transform node.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import PyOpenColorIO as ocio
import pytest
import torch

from latentmirror.core import color
from latentmirror.core.errors import LatentmirrorError
from latentmirror.nodes.color_nodes import OCIOTransform

SRGB_ENCODED = "sRGB Encoded Rec.709 (sRGB)"
SDR_DISPLAY_VIEW = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"


@pytest.fixture
def cfg(monkeypatch) -> color.ColorConfig:
    """The built-in studio config, whatever $OCIO the machine running the tests has."""
    monkeypatch.delenv("OCIO", raising=False)
    return color.resolve_config("")


def _rgb(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def _random_rgb(seed: int, low: float, high: float, count: int = 4096) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, (count, 3)).astype(np.float32)


# ------------------------------------------------------------------------------ known values


def test_acescg_red_to_aces2065_1_matches_the_ap1_to_ap0_matrix(cfg):
    out = color.apply_transform(_rgb([1.0, 0.0, 0.0]), cfg, "ACEScg", "ACES2065-1")
    np.testing.assert_allclose(out[0], [0.6954522, 0.0447946, -0.0055259], atol=1e-5)


def test_mid_grey_and_white_to_srgb_encoding(cfg):
    out = color.apply_transform(_rgb([0.18] * 3, [1.0] * 3), cfg, "lin_rec709", SRGB_ENCODED)
    np.testing.assert_allclose(out[0], [0.461356] * 3, atol=1e-4)
    np.testing.assert_allclose(out[1], [1.0] * 3, atol=1e-4)


def test_transform_returns_a_new_array_and_leaves_the_input_alone(cfg):
    pixels = _rgb([0.18] * 3)
    out = color.apply_transform(pixels, cfg, "lin_rec709", SRGB_ENCODED)
    assert out is not pixels
    np.testing.assert_array_equal(pixels, _rgb([0.18] * 3))
    assert out.dtype == np.float32 and out.shape == pixels.shape


# ------------------------------------------------------------------------------ round trips

ROUND_TRIP_PAIRS = [
    ("ACEScg", "ACES2065-1"),
    ("ACES2065-1", "ACEScg"),
    ("ACEScg", "lin_rec709"),
    ("lin_rec709", "ACEScg"),
    ("ACEScg", "ACEScct"),
    ("ACEScct", "ACEScg"),
    ("lin_rec709", SRGB_ENCODED),
    (SRGB_ENCODED, "lin_rec709"),
]


# scene-linear sources are tried over 0..1 and 0..8; encodings (ACEScct, sRGB) only over 0..1
ROUND_TRIP_CASES = [
    pytest.param(src, dst, high, id=f"{src}->{dst}@0..{high:g}")
    for src, dst in ROUND_TRIP_PAIRS
    for high in (1.0, 8.0)
    if high == 1.0 or src not in ("ACEScct", SRGB_ENCODED)
]


@pytest.mark.parametrize("src,dst,high", ROUND_TRIP_CASES)
def test_forward_then_inverse_is_identity(cfg, src, dst, high):
    pixels = _random_rgb(seed=zlib.crc32(f"{src}>{dst}:{high}".encode()), low=0.0, high=high)
    forward = color.apply_transform(pixels, cfg, src, dst)
    assert np.abs(forward - pixels).max() > 1e-3  # the transform really did something
    back = color.apply_transform(forward, cfg, src, dst, inverse=True)
    # 1e-4 absolute up to 1.0, relative above: OCIO's CPU path evaluates the sRGB curve's pow
    # with ~1.3e-5 relative precision, so values near 8 come back within ~1.02e-4 (measured).
    assert (np.abs(back - pixels) / np.maximum(1.0, np.abs(pixels))).max() < 1e-4
    if high <= 1.0:
        assert np.abs(back - pixels).max() < 1e-4


def test_inverse_direction_equals_the_swapped_transform(cfg):
    pixels = _random_rgb(seed=3, low=0.0, high=4.0)
    inverse = color.apply_transform(pixels, cfg, "ACEScg", "ACES2065-1", inverse=True)
    swapped = color.apply_transform(pixels, cfg, "ACES2065-1", "ACEScg")
    np.testing.assert_allclose(inverse, swapped, atol=1e-5)


def test_display_view_forward_then_inverse(cfg):
    """Scene values whose display image sits well inside 0..1 survive the ACES 2.0 SDR view.

    Measured with OCIO 2.6 / studio-config v5.0.0: Rec.709-gamut colours of 0.01..1.0 (linear)
    map to display values of about 0.009..0.79, and come back within 4.2e-5 (at most ~1.1e-4
    for 0.05..2.0). Saturated ACEScg colours outside Rec.709 do *not* come back (the view's
    gamut compression is not invertible there: errors of 0.07 and more), so they are not used.
    Tolerance here: 1e-3.
    """
    target = color.parse_target(cfg, SDR_DISPLAY_VIEW)
    assert target == color.DisplayView("sRGB - Display", "ACES 2.0 - SDR 100 nits (Rec.709)")
    rec709 = _random_rgb(seed=7, low=0.01, high=1.0)
    scene = color.apply_transform(rec709, cfg, "lin_rec709", "ACEScg")
    shown = color.apply_transform(scene, cfg, "ACEScg", SDR_DISPLAY_VIEW)
    assert 0.0 < shown.min() and shown.max() < 0.95  # well inside the display range
    assert np.abs(shown - scene).max() > 0.05  # a real tone curve, not an identity
    back = color.apply_transform(shown, cfg, "ACEScg", SDR_DISPLAY_VIEW, inverse=True)
    assert np.abs(back - scene).max() < 1e-3


def test_display_view_given_as_string_and_as_displayview_agree(cfg):
    pixels = _random_rgb(seed=11, low=0.0, high=2.0, count=64)
    by_text = color.apply_transform(pixels, cfg, "ACEScg", SDR_DISPLAY_VIEW)
    by_object = color.apply_transform(
        pixels,
        cfg,
        "ACEScg",
        color.DisplayView("sRGB - Display", "ACES 2.0 - SDR 100 nits (Rec.709)"),
    )
    np.testing.assert_array_equal(by_text, by_object)


# ------------------------------------------------------------------------------ no clamping


def test_values_above_one_and_below_zero_are_not_clamped(cfg):
    out = color.apply_transform(
        _rgb([4.0, -0.1, 2.0], [4.0, -1.0, 2.0]), cfg, "ACEScg", "ACES2065-1"
    )
    assert out[0, 0] > 1.0 and out[0, 2] > 1.0  # (3.095, 0.284, 1.980)
    assert out[1, 0] > 1.0 and out[1, 1] < 0.0  # (2.969, -0.489, 1.977)
    # a matrix transform is linear: unclamped output is the same combination of the columns
    columns = color.apply_transform(np.eye(3, dtype=np.float32), cfg, "ACEScg", "ACES2065-1")
    np.testing.assert_allclose(out[0], _rgb([4.0, -0.1, 2.0])[0] @ columns, atol=1e-5)
    np.testing.assert_allclose(out[1], _rgb([4.0, -1.0, 2.0])[0] @ columns, atol=1e-5)


def test_negative_values_survive_a_gamut_change(cfg):
    out = color.apply_transform(_rgb([4.0, -0.1, 2.0]), cfg, "ACEScg", "lin_rec709")
    assert out[0, 0] > 4.0 and out[0, 1] < -0.5  # (6.716, -0.656, 2.223)


# ------------------------------------------------------------------------------ channels


def test_alpha_passes_through_unchanged(cfg):
    rng = np.random.default_rng(5)
    rgba = rng.uniform(-0.5, 6.0, (8, 5, 4)).astype(np.float32)
    out = color.apply_transform(rgba, cfg, "ACEScg", "ACES2065-1")
    assert out.shape == rgba.shape
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_allclose(
        out[..., :3], color.apply_transform(rgba[..., :3], cfg, "ACEScg", "ACES2065-1"), atol=1e-6
    )
    assert np.abs(out[..., :3] - rgba[..., :3]).max() > 1e-2


def test_alpha_passes_through_a_display_view(cfg):
    rgba = np.concatenate([_random_rgb(2, 0.0, 3.0, 100), np.linspace(0, 1, 100)[:, None]], -1)
    out = color.apply_transform(rgba.astype(np.float32), cfg, "ACEScg", SDR_DISPLAY_VIEW)
    np.testing.assert_array_equal(out[:, 3], rgba[:, 3].astype(np.float32))


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_wrong_channel_count_is_refused(cfg, channels):
    with pytest.raises(LatentmirrorError, match=f"got {channels}"):
        color.apply_transform(np.zeros((4, channels), np.float32), cfg, "ACEScg", "ACES2065-1")


# ------------------------------------------------------------------------------ names


def test_unknown_colorspace_suggests_the_close_name(cfg):
    with pytest.raises(LatentmirrorError) as caught:
        color.find_colorspace(cfg, "ACEScgg")
    message = str(caught.value)
    assert "'ACEScgg'" in message
    assert "did you mean" in message and "'ACEScg'" in message


def test_unknown_colorspace_in_a_transform_is_a_latentmirror_error(cfg):
    with pytest.raises(LatentmirrorError, match="ACEScg"):
        color.apply_transform(_rgb([0.5] * 3), cfg, "ACEScgg", "ACES2065-1")
    with pytest.raises(LatentmirrorError, match="ACES2065-1"):
        color.apply_transform(_rgb([0.5] * 3), cfg, "ACEScg", "ACES2065-2")


def test_unknown_display_view_suggests_the_close_one(cfg):
    with pytest.raises(LatentmirrorError) as caught:
        color.parse_target(cfg, "sRGB - Display/ACES 2.0 - SDR 100 nit")
    message = str(caught.value)
    assert "did you mean" in message
    assert f"'{SDR_DISPLAY_VIEW}'" in message


def test_misspelt_display_suggests_the_right_display_view(cfg):
    with pytest.raises(LatentmirrorError, match="did you mean .*'sRGB - Display/Raw'"):
        color.parse_target(cfg, "sRGB Display/Raw")


def test_roles_and_aliases_resolve_to_canonical_names(cfg):
    assert color.find_colorspace(cfg, "scene_linear") == "ACEScg"
    assert color.scene_linear(cfg) == "ACEScg"
    assert color.find_colorspace(cfg, "lin_rec709") == "Linear Rec.709 (sRGB)"
    assert color.find_colorspace(cfg, "  ACEScg  ") == "ACEScg"
    assert color.parse_target(cfg, "lin_rec709") == "Linear Rec.709 (sRGB)"


def test_alias_and_canonical_name_give_the_same_pixels(cfg):
    pixels = _random_rgb(seed=13, low=0.0, high=4.0, count=64)
    by_alias = color.apply_transform(pixels, cfg, "scene_linear", "lin_rec709")
    by_name = color.apply_transform(pixels, cfg, "ACEScg", "Linear Rec.709 (sRGB)")
    np.testing.assert_array_equal(by_alias, by_name)


# ------------------------------------------------------------------------------ config resolution


def _write_studio_config(folder) -> str:
    path = os.path.join(str(folder), "studio.ocio")
    text = ocio.Config.CreateFromFile("ocio://studio-config-latest").serialize()
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def test_empty_request_gives_the_versioned_builtin_config(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    cfg = color.resolve_config("")
    assert cfg.name.startswith("ocio://studio-config-v")
    assert "latest" not in cfg.name
    assert cfg.config.getColorSpace("ACEScg") is not None


def test_builtin_uri_resolves_to_its_versioned_name(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    assert color.resolve_config("ocio://studio-config-latest").name.startswith(
        "ocio://studio-config-v"
    )


def test_ocio_environment_variable_is_used(tmp_path, monkeypatch):
    path = _write_studio_config(tmp_path)
    monkeypatch.setenv("OCIO", path)
    cfg = color.resolve_config("")
    assert path in cfg.name
    assert not cfg.name.startswith("ocio://")
    out = color.apply_transform(_rgb([1.0, 0.0, 0.0]), cfg, "ACEScg", "ACES2065-1")
    np.testing.assert_allclose(out[0], [0.6954522, 0.0447946, -0.0055259], atol=1e-5)


def test_node_input_wins_over_ocio_environment_variable(tmp_path, monkeypatch):
    path = _write_studio_config(tmp_path)
    monkeypatch.setenv("OCIO", path)
    cfg = color.resolve_config("ocio://studio-config-latest")
    assert cfg.name.startswith("ocio://studio-config-v")
    assert path not in cfg.name


def test_config_file_given_as_input_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    path = _write_studio_config(tmp_path)
    assert path in color.resolve_config(path).name


def test_missing_config_file_from_ocio_names_the_file(tmp_path, monkeypatch):
    missing = str(tmp_path / "nowhere" / "config.ocio")
    monkeypatch.setenv("OCIO", missing)
    with pytest.raises(LatentmirrorError) as caught:
        color.resolve_config("")
    assert missing in str(caught.value)
    assert "$OCIO" in str(caught.value)


def test_missing_config_file_from_input_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    missing = str(tmp_path / "missing.ocio")
    with pytest.raises(LatentmirrorError) as caught:
        color.resolve_config(missing)
    assert missing in str(caught.value)


def test_unreadable_config_file_is_a_latentmirror_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    broken = tmp_path / "broken.ocio"
    broken.write_text("this is: not [an OCIO config\n")
    with pytest.raises(LatentmirrorError) as caught:
        color.resolve_config(str(broken))
    assert str(broken) in str(caught.value)


# ------------------------------------------------------------------------------ the node


def _image_tensor(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(0.0, 8.0, (2, 6, 5, 3)).astype(np.float32))


def test_ocio_transform_node_forward_then_inverse(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    image = _image_tensor()
    node = OCIOTransform()
    (forward,) = node.transform(image, "ACEScg", "ACEScct", "forward", precision="exact")
    assert isinstance(forward, torch.Tensor)
    assert forward.dtype == torch.float32 and forward.shape == image.shape
    assert (forward - image).abs().max() > 0.5
    (back,) = OCIOTransform().transform(forward, "ACEScg", "ACEScct", "inverse", precision="exact")
    assert (back - image).abs().max() < 1e-4
    # the input tensor is not modified in place
    assert torch.equal(image, _image_tensor())


def test_ocio_transform_node_matches_the_library(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    image = _image_tensor(seed=1)
    (out,) = OCIOTransform().transform(
        image, "scene_linear", SDR_DISPLAY_VIEW, "forward", precision="exact"
    )
    cfg = color.resolve_config("")
    expected = color.apply_transform(image.numpy(), cfg, "ACEScg", SDR_DISPLAY_VIEW)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_ocio_transform_node_bad_src_names_node_and_input(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    with pytest.raises(LatentmirrorError) as caught:
        OCIOTransform().transform(_image_tensor(), "ACEScgg", "ACES2065-1", "forward")
    message = str(caught.value)
    assert "OCIO Transform" in message
    assert "input 'src'" in message
    assert "'ACEScg'" in message  # the suggestion


def test_ocio_transform_node_bad_dst_names_the_input(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    with pytest.raises(LatentmirrorError) as caught:
        OCIOTransform().transform(_image_tensor(), "ACEScg", "No Such Space", "forward")
    assert "OCIO Transform" in str(caught.value) and "input 'dst'" in str(caught.value)


def test_ocio_transform_node_bad_config_names_the_input(tmp_path, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    missing = str(tmp_path / "missing.ocio")
    with pytest.raises(LatentmirrorError) as caught:
        OCIOTransform().transform(_image_tensor(), "ACEScg", "ACES2065-1", "forward", missing)
    assert "input 'ocio_config'" in str(caught.value) and missing in str(caught.value)
