"""core/imageops: resizing, masks, weighted means, Gaussian windows and blur."""

from __future__ import annotations

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.imageops import (
    blur,
    gaussian_window,
    resize_mask,
    resize_to,
    weighted_mean,
)


def test_resize_to_averages_when_shrinking_and_interpolates_when_growing():
    checker = ((torch.arange(8)[:, None] + torch.arange(8)[None]) % 2).float()[None, None]
    assert torch.allclose(resize_to(checker, (4, 4)), torch.full((1, 1, 4, 4), 0.5))
    assert resize_to(checker, (8, 8)) is checker  # same size: untouched
    grown = resize_to(torch.ones(1, 3, 4, 4), (16, 8), upsample="bicubic")
    assert grown.shape == (1, 3, 16, 8) and torch.allclose(grown, torch.ones_like(grown))


def test_resize_mask_picks_rows_and_checks_them():
    mask = torch.arange(3.0)[:, None, None].expand(3, 8, 8)
    picked = resize_mask(mask, (4, 4), batch=2, indices=[2, 0])
    assert picked.shape == (2, 1, 4, 4) and picked[:, 0, 0, 0].tolist() == [2.0, 0.0]
    with pytest.raises(LatentmirrorError, match="cannot pick rows"):
        resize_mask(mask, (4, 4), batch=2, indices=[3, 0])
    with pytest.raises(LatentmirrorError, match="mask has 3 frames but the batch has 2"):
        resize_mask(mask, (4, 4), batch=2)


def test_weighted_mean_is_normalised_by_the_mask():
    values = torch.arange(2 * 1 * 2 * 2, dtype=torch.float32).reshape(2, 1, 2, 2)
    assert torch.equal(weighted_mean(values, None), torch.tensor([1.5, 5.5]))
    left = torch.tensor([[1.0, 0.0], [1.0, 0.0]])[None, None]
    assert torch.equal(weighted_mean(values, left), torch.tensor([1.0, 5.0]))
    assert torch.equal(weighted_mean(values, 3 * left), torch.tensor([1.0, 5.0]))  # scale-free
    assert torch.equal(weighted_mean(values, torch.zeros(2, 1, 2, 2)), torch.zeros(2))
    big = torch.ones(1, 1, 8, 8)  # another size: resized to the values' first
    assert torch.equal(weighted_mean(values, big), weighted_mean(values, None))


def test_gaussian_window_and_blur():
    window = gaussian_window(7, 1.5, dtype=torch.float64)
    assert window.sum().item() == pytest.approx(1.0)
    assert torch.equal(window, window.flip(0)) and window.argmax().item() == 3
    constant = torch.full((2, 3, 9, 9), 0.25)
    assert torch.allclose(blur(constant, gaussian_window(5, 2.0)), constant)
    dot = torch.zeros(1, 1, 9, 9)
    dot[..., 4, 4] = 1
    spread = blur(dot, gaussian_window(3, 1.0))
    assert spread.sum().item() == pytest.approx(1.0) and spread[..., 4, 4] < 1
    tiny = blur(torch.rand(1, 1, 2, 2), gaussian_window(7, 1.5))  # smaller than the padding
    assert tiny.shape == (1, 1, 2, 2) and torch.isfinite(tiny).all()
