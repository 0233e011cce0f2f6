"""Previews show what a compositor's viewer shows: the default display/view, never raw linear."""

import numpy as np

from latentmirror.core import color


def test_display_referred_images_are_not_tone_mapped_twice(rng):
    cfg = color.resolve_config()
    scene = (rng.random((4, 5, 3)) * 3).astype(np.float32)
    view = color.default_display_view(cfg)
    displayed = color.apply_transform(scene, cfg, "ACEScg", view)
    from_scene = color.to_display(scene, cfg, "ACEScg")
    from_display = color.to_display(displayed, cfg, view.display)
    assert np.allclose(from_scene, from_display, atol=1e-5)
    assert from_scene.min() >= 0 and from_scene.max() <= 1


def test_scene_linear_preview_rolls_off_highlights(rng):
    cfg = color.resolve_config()
    bright = np.array([[[1.0, 1.0, 1.0], [8.0, 8.0, 8.0]]], np.float32)
    shown = color.to_display(bright, cfg, "ACEScg")
    assert shown[0, 0, 0] < shown[0, 1, 0] <= 1.0  # a view transform, not a clip at 1
