"""The procedural face renderer that trains the demo generator: determinism, variety, ranges and
smoothness of image against latent (no timed tests)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from latentmirror.training import faces


def _z(seed: int, count: int = 16, dims: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, dims)).astype(np.float32)


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# ------------------------------------------------------------------------------ determinism


def test_same_z_gives_the_same_image_bit_for_bit():
    z = _z(0, 4)
    first = faces.render_batch(z, 64)
    second = faces.render_batch(z.copy(), 64)
    assert np.array_equal(first, second)


def test_same_z_gives_the_same_params_and_grain_seed():
    z = _z(1, 1)[0]
    assert faces.params_from_latent(z) == faces.params_from_latent(z.astype(np.float64))


def test_dims_after_the_used_ones_are_ignored():
    z = _z(2, 1)[0]
    other = z.copy()
    other[faces.LATENT_DIMS :] = 5.0
    assert np.array_equal(
        faces.render_face(faces.params_from_latent(z)),
        faces.render_face(faces.params_from_latent(other)),
    )


def test_render_batch_matches_render_face():
    z = _z(3, 3)
    batch = faces.render_batch(z, 32, supersample=2)
    for row, image in zip(z, batch, strict=True):
        assert np.array_equal(image, faces.render_face(faces.params_from_latent(row), 32, 2))


# ---------------------------------------------------------------------------------- variety


def test_different_z_give_clearly_different_images():
    images = faces.render_batch(_z(4, 12), 64, grain=False)
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert _mean_abs_diff(images[i], images[j]) > 0.02, (i, j)


def test_random_z_cover_every_hair_style_and_the_optional_features():
    params = [faces.params_from_latent(row) for row in _z(5, 400)]
    assert {p.hair_style for p in params} == {faces.BALD, faces.SHORT, faces.LONG, faces.FRINGE}
    glasses = np.mean([p.glasses > 0 for p in params])
    beards = np.mean([p.beard > 0 for p in params])
    assert 0.1 < glasses < 0.35 and 0.25 < beards < 0.5


def test_skin_tones_span_dark_to_light():
    images = faces.render_batch(_z(6, 64), 32, supersample=2, grain=False)
    # The pixel between the eyes and the mouth is skin on every face (mostly centred heads).
    centre = images[:, 19, 16].mean(axis=1)
    assert centre.min() < 0.3 and centre.max() > 0.7


# ---------------------------------------------------------------------------- output contract


@pytest.mark.parametrize("size, supersample", [(64, 4), (64, 1), (32, 2), (128, 2)])
def test_output_is_float32_rgb_in_unit_range(size, supersample):
    images = faces.render_batch(_z(7, 6), size, supersample)
    assert images.dtype == np.float32
    assert images.shape == (6, size, size, 3)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.isfinite(images).all()


def test_params_respect_their_ranges_for_random_z():
    z = np.concatenate([_z(8, 300), _z(9, 20) * 4.0])  # include far tails
    for row in z:
        p = faces.params_from_latent(row)
        for name, (low, high) in faces.PARAM_RANGES.items():
            assert low <= getattr(p, name) <= high, (name, getattr(p, name))
        assert p.hair_style in (faces.BALD, faces.SHORT, faces.LONG, faces.FRINGE)
        assert isinstance(p.grain_seed, int) and p.grain_seed >= 0


def test_every_float_param_has_a_range_and_a_latent_dim():
    names = {f.name for f in dataclasses.fields(faces.FaceParams)}
    assert set(faces.PARAM_RANGES) == names - {"hair_style", "grain_seed"}
    assert faces.LATENT_DIMS == len(faces.PARAM_RANGES) + 1  # + hair_style


def test_too_short_or_wrongly_shaped_z_is_refused():
    with pytest.raises(ValueError, match="at least"):
        faces.params_from_latent(np.zeros(faces.LATENT_DIMS - 1))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        faces.render_batch(np.zeros(64), 64)


def test_grain_off_is_the_noise_free_target():
    z = _z(10, 4)
    noisy, clean = faces.render_batch(z, 64), faces.render_batch(z, 64, grain=False)
    assert 0.0 < _mean_abs_diff(noisy, clean) < 0.02


# -------------------------------------------------------------------------------- smoothness


def test_small_z_changes_give_small_image_changes_on_average():
    rng = np.random.default_rng(11)
    z = _z(12, 48)
    base = faces.render_batch(z, 64, grain=False)
    unrelated = _mean_abs_diff(base, faces.render_batch(_z(13, 48), 64, grain=False))

    def change(eps: float) -> float:
        step = eps * rng.standard_normal(z.shape).astype(np.float32)
        return _mean_abs_diff(base, faces.render_batch(z + step, 64, grain=False))

    small, medium, large = change(0.02), change(0.1), change(0.4)
    # Measured here: about 0.005, 0.023, 0.08 against 0.22 for unrelated faces.
    assert small < 0.05 * unrelated
    assert small < medium < large < unrelated


def test_sample_grid_is_written(tmp_path):
    path = tmp_path / "grid.png"
    grid = faces.write_sample_grid(str(path), rows=2, columns=3, size=32, zoom=2)
    assert path.stat().st_size > 0
    assert grid.dtype == np.uint8 and grid.shape == (2 * (2 * 34 + 2), 2 * (3 * 34 + 2), 3)
