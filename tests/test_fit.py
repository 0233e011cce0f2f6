"""Fitting plates to the model's square and undoing it (core/fit.py)."""

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import apply_fit, apply_fit_to_mask, plan_fit, undo_fit


def ramp(h, w):
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([x, y, x * y])[None]


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
@pytest.mark.parametrize("size", [(48, 80), (80, 48), (64, 64)])
def test_fit_gives_the_model_square_and_undo_gives_the_plate_size(mode, size):
    plate = ramp(*size)
    plan = plan_fit(mode, *size, 32)
    fitted = apply_fit(plate, plan)
    assert fitted.shape == (1, 3, 32, 32)
    back = undo_fit(fitted, plan, plate)
    assert back.shape == plate.shape


def test_crop_takes_the_centre_square_and_pastes_it_back_into_the_plate():
    plate = ramp(40, 80)
    plan = plan_fit("crop", 40, 80, 40)  # no scaling: side 40 == resolution
    assert (plan.top, plan.left, plan.side) == (0, 20, 40)
    fitted = apply_fit(plate, plan)
    assert torch.equal(fitted, plate[..., :, 20:60])
    # Undo with the plate as background: outside the square is the plate, inside the new image.
    back = undo_fit(torch.zeros_like(fitted), plan, plate)
    assert torch.equal(back[..., :, :20], plate[..., :, :20])
    assert torch.equal(back[..., :, 60:], plate[..., :, 60:])
    assert back[..., :, 20:60].abs().max() == 0


def test_pad_mirrors_the_border_and_undo_crops_it_away_exactly():
    plate = ramp(40, 80)
    plan = plan_fit("pad", 40, 80, 80)  # no scaling
    assert (plan.top, plan.left, plan.side) == (20, 0, 80)
    fitted = apply_fit(plate, plan)
    assert torch.equal(fitted[..., 20:60, :], plate)
    assert torch.equal(fitted[..., 19, :], plate[..., 1, :])  # reflection, not black
    assert torch.equal(undo_fit(fitted, plan), plate)


def test_stretch_round_trip_of_a_smooth_plate_is_close():
    plate = ramp(48, 96)
    plan = plan_fit("stretch", 48, 96, 64)
    back = undo_fit(apply_fit(plate, plan), plan)
    assert (back - plate).abs().max() < 0.03


def test_mask_fits_like_the_images_and_padding_weighs_nothing():
    plan = plan_fit("pad", 40, 80, 80)
    mask = torch.ones(2, 40, 80)
    fitted = apply_fit_to_mask(mask, plan)
    assert fitted.shape == (2, 80, 80)
    assert fitted[:, :20].abs().max() == 0 and fitted[:, 20:60].min() == 1
    crop = apply_fit_to_mask(torch.arange(80.0).expand(1, 40, 80), plan_fit("crop", 40, 80, 40))
    assert torch.equal(crop[0, 0], torch.arange(20.0, 60.0))


def test_unknown_fit_and_wrong_size_are_errors():
    with pytest.raises(LatentmirrorError, match="unknown fit 'squash'"):
        plan_fit("squash", 10, 10, 8)
    with pytest.raises(LatentmirrorError, match="planned for 10x10"):
        apply_fit(torch.zeros(1, 3, 12, 12), plan_fit("crop", 10, 10, 8))


def test_tiles_cover_the_plate_with_overlap_and_merge_back_exactly():
    from latentmirror.core.fit import merge_tiles, split_tiles, tile_positions

    plan = plan_fit("tiles", 144, 256, 64)
    tops, lefts = tile_positions(plan)
    assert plan.overlap == 16 and plan.tile_count == len(tops) * len(lefts) == 15
    assert tops[0] == lefts[0] == 0 and tops[-1] + 64 == 144 and lefts[-1] + 64 == 256
    assert all(b - a <= 64 - 16 for a, b in zip(lefts, lefts[1:], strict=False))  # overlap kept
    plate = torch.rand(2, 3, 144, 256, generator=torch.Generator().manual_seed(3))
    tiles = split_tiles(plate, plan)
    assert tiles.shape == (30, 3, 64, 64)
    assert torch.equal(tiles[16], plate[1, :, 0:64, 48:112])  # frame-major: frame 1, tile 1
    # no seam: blending the tiles of one image gives that image
    assert torch.allclose(merge_tiles(tiles, plan), plate, atol=1e-6)
    assert torch.allclose(undo_fit(apply_fit(plate, plan), plan), plate, atol=1e-6)


def test_tile_seams_are_feathered_not_cut():
    from latentmirror.core.fit import merge_tiles

    plan = plan_fit("tiles", 64, 112, 64, overlap=16)  # two tiles side by side, sharing 16 px
    tiles = torch.stack([torch.zeros(3, 64, 64), torch.ones(3, 64, 64)])
    merged = merge_tiles(tiles, plan)[0, 0, 0]
    overlap = merged[48:64]  # tile 0 covers 0-63, tile 1 covers 48-111
    assert torch.all(overlap[1:] > overlap[:-1])  # a ramp, not a step
    assert merged[:48].abs().max() == 0 and torch.all(merged[64:] == 1)


def test_tiles_need_a_plate_as_large_as_the_model():
    with pytest.raises(LatentmirrorError, match="at least as large as the model") as info:
        plan_fit("tiles", 48, 200, 64)
    assert info.value.where.input == "fit"
    mask = apply_fit_to_mask(torch.ones(1, 144, 256), plan_fit("tiles", 144, 256, 64))
    assert mask.shape == (15, 64, 64)
