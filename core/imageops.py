"""Image operations on ``[B, C, H, W]`` tensors: resizing, Gaussian windows, blur, weighted means.

Small pure functions shared by the loss terms, plate fitting and resynthesis. Masks are weights
``[B or 1, 1, h, w]`` (non-negative); a MASK as ComfyUI passes it is ``[N, H, W]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .errors import error


def resize_to(
    images: torch.Tensor, size: tuple[int, int], upsample: str = "bilinear"
) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, *size]``: area when shrinking (no aliasing), ``upsample``
    (bilinear or bicubic) when growing; unchanged when the size matches.

    >>> resize_to(torch.arange(4.0).reshape(1, 1, 2, 2), (1, 1))
    tensor([[[[1.5000]]]])
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if images.shape[-2] >= size[0] and images.shape[-1] >= size[1]:
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode=upsample, align_corners=False)


def resize_mask(
    mask: torch.Tensor,
    size: tuple[int, int],
    batch: int,
    indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """A MASK ``[N, H, W]`` -> weights ``[batch or 1, 1, *size]`` for a batch of ``batch`` frames.

    Rows: one row broadcasts; else ``indices`` pick the batch's rows; else N must equal batch.

    >>> resize_mask(torch.ones(1, 64, 64), (16, 16), batch=4).shape
    torch.Size([1, 1, 16, 16])
    """
    if mask.shape[0] != 1:
        if indices is not None:
            idx = list(indices)
            if len(idx) != batch or max(idx) >= mask.shape[0] or min(idx) < -mask.shape[0]:
                raise error(
                    f"mask has {mask.shape[0]} frames; cannot pick rows {idx} for {batch} images"
                )
            mask = mask[idx]
        elif mask.shape[0] != batch:
            raise error(f"mask has {mask.shape[0]} frames but the batch has {batch} images")
    return resize_to(mask[:, None].float(), size)


def weighted_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-frame mean of ``values [B, C, h, w]`` weighted by ``mask [B or 1, 1, h, w]`` -> ``[B]``.

    Normalised by the mask's mean: ones equal no mask; an all-zero mask gives 0. A mask of
    another size is resized to the values' first.

    >>> weighted_mean(torch.ones(2, 3, 4, 4), torch.ones(1, 1, 4, 4))
    tensor([1., 1.])
    """
    if mask is None:
        return values.mean(dim=(1, 2, 3))
    mask = mask.to(values.device, values.dtype)
    if tuple(mask.shape[-2:]) != tuple(values.shape[-2:]):
        mask = resize_to(mask, tuple(values.shape[-2:]))
    num = (values * mask).mean(dim=(1, 2, 3))
    den = mask.mean(dim=(1, 2, 3)).clamp_min(1e-8)
    return num / den


def gaussian_window(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """A normalised 1-D Gaussian ``[size]`` centred on the middle sample.

    >>> gaussian_window(3, 1e-3)
    tensor([0., 1., 0.])
    """
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-coords.square() / (2 * sigma * sigma))
    return g / g.sum()


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable depthwise blur by the 1-D ``kernel [K]`` (odd K), reflect-padded (replicate
    when the image is smaller than the padding): ``[B, C, H, W]`` keeps its size.

    >>> blur(torch.ones(1, 2, 5, 5), gaussian_window(3, 1.0)).shape
    torch.Size([1, 2, 5, 5])
    """
    channels, pad = x.shape[1], kernel.numel() // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    x = F.pad(x, (pad, pad, pad, pad), mode=mode)
    kh = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    kw = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, groups=channels), kw, groups=channels)
