"""The maths of the loss terms: the loss resolution, pixel distances, SSIM and MS-SSIM,
discriminator features and their distance, the latent and noise regularisers, temporal change.

Pure functions of tensors, following the conventions of :mod:`latentmirror.core.losses`; the
registry (:mod:`.terms`) wires them into loss terms.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..errors import error
from ..imageops import blur, gaussian_window, resize_to, weighted_mean

DEFAULT_RESOLUTION = 256
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


# ----------------------------------------------------------------------------------------------
# The loss resolution.


def loss_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """The size images of ``height x width`` are compared at: the longer side scaled down to
    ``resolution`` (aspect kept), or unchanged when it already fits. Never larger.

    >>> loss_size(1024, 1024, 256), loss_size(64, 32, 256), loss_size(512, 256, 256)
    ((256, 256), (64, 32), (256, 128))
    """
    longest = max(height, width)
    if longest <= resolution:
        return height, width
    scale = resolution / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_for_loss(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, h, w]`` at :func:`loss_size`, area-averaged; never upsamples."""
    return resize_to(images, loss_size(images.shape[-2], images.shape[-1], resolution))


# ----------------------------------------------------------------------------------------------
# Pixel distances and SSIM.


def l1_distance(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean absolute difference per frame: ``[B, C, H, W]`` x2 -> ``[B]``.

    >>> l1_distance(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
    tensor([1.])
    """
    return weighted_mean((x - y).abs(), mask)


def l2_distance(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean squared difference per frame: ``[B, C, H, W]`` x2 -> ``[B]``."""
    return weighted_mean((x - y).square(), mask)


def ssim_maps(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range=2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and its contrast-structure part, per pixel: ``[B, C, H, W]`` x2 -> two ``[B, C, H, W]``.

    Gaussian window (reflect-padded, so maps align with the images and masks); ``data_range`` is
    2 for images in [-1, 1]. The window shrinks to fit images smaller than it.
    """
    window = min(window, max(1, min(x.shape[-2:]) // 2 * 2 - 1))
    kernel = gaussian_window(window, sigma, x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x, kernel), blur(y, kernel)
    var_x = blur(x * x, kernel) - mu_x.square()
    var_y = blur(y * y, kernel) - mu_y.square()
    cov = blur(x * y, kernel) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x.square() + mu_y.square() + c1)
    return luminance * cs, cs


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    window: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Mean SSIM per frame (1 = identical): ``[B, C, H, W]`` x2 in [-1, 1] -> ``[B]``.

    >>> img = torch.rand(2, 3, 16, 16) * 2 - 1
    >>> ssim(img, img)
    tensor([1., 1.])
    """
    return weighted_mean(ssim_maps(x, y, window, sigma)[0], mask)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    window: int = 11,
    sigma: float = 1.5,
    scales: int = 5,
) -> torch.Tensor:
    """Multi-scale SSIM per frame (Wang et al. 2003): ``[B, C, H, W]`` x2 -> ``[B]``.

    Scales halve the images (2x2 average) while the smaller side stays >= ``window``; with fewer
    than ``scales`` available the standard weights are truncated and renormalised.
    """
    available = 1
    while available < scales and min(x.shape[-2:]) // 2**available >= window:
        available += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:available], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    result = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
    for i in range(available):
        if i:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            mask = F.avg_pool2d(mask, 2) if mask is not None else None
        full, cs = ssim_maps(x, y, window, sigma)
        value = weighted_mean(full if i == available - 1 else cs, mask)
        result = result * value.clamp_min(1e-6) ** weights[i]
    return result


# ----------------------------------------------------------------------------------------------
# Discriminator feature matching.


@contextmanager
def per_sample_minibatch_std(discriminator: torch.nn.Module) -> Iterator[None]:
    """Run D's minibatch-std layers with groups of one, so features of a frame do not depend on
    the other frames of the batch and any batch size works."""
    layers = [m for m in discriminator.modules() if type(m).__name__ == "MinibatchStdLayer"]
    saved = [m.group_size for m in layers]
    try:
        for m in layers:
            m.group_size = 1
        yield
    finally:
        for m, size in zip(layers, saved, strict=True):
            m.group_size = size


def discriminator_features(
    discriminator: torch.nn.Module, images: torch.Tensor, c: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """``D.features`` of ``images [B, 3, H, W]`` (resized to D's resolution), as float32."""
    size = int(discriminator.img_resolution)
    dtype = next(discriminator.parameters()).dtype
    images = resize_to(images, (size, size)).to(dtype)
    with per_sample_minibatch_std(discriminator):
        feats = discriminator.features(images, c)
    return [f.float() for f in feats]


def feature_distance(
    fx: list[torch.Tensor],
    fy: list[torch.Tensor],
    mask: torch.Tensor | None = None,
    distance: str = "l1",
) -> torch.Tensor:
    """Per-layer normalised feature matching, per frame ``[B]``: each layer's mean |a - b| (or
    squared) divided by the target's mean |b| (or b^2), averaged over layers."""
    total = 0
    for a, b in zip(fx, fy, strict=True):
        if distance == "l1":
            diff, scale = (a - b).abs(), b.detach().abs()
        else:
            diff, scale = (a - b).square(), b.detach().square()
        total = total + weighted_mean(diff, mask) / scale.mean(dim=(1, 2, 3)).clamp_min(1e-8)
    return total / len(fx)


# ----------------------------------------------------------------------------------------------
# Latent and noise regularisers, temporal change.


def w_prior(ws: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of ``ws [B, num_ws, w_dim]`` (or ``[B, w_dim]``) to ``w_avg
    [w_dim]`` over all elements -> ``[]``.

    >>> w_prior(torch.ones(2, 4, 8), torch.zeros(8))
    tensor(1.)
    """
    return (ws.float() - w_avg.to(ws.device).float()).square().mean()


def noise_maps_list(noise) -> list[torch.Tensor]:
    """Noise maps given as a dict (name -> map) or a sequence; None entries dropped."""
    if noise is None:
        return []
    values = noise.values() if isinstance(noise, Mapping) else noise
    return [n for n in values if n is not None]


def noise_regularization(noise, min_size: int = 8) -> torch.Tensor:
    """The NVlabs projector's noise regulariser -> ``[]``.

    For each map ``[R, R]``, ``[1, 1, R, R]`` or per frame ``[N, 1, R, R]``, at every scale
    (halving by 2x2 average pooling while the map is larger than ``min_size``): the squared mean
    autocorrelation with a one-pixel (wrapping) shift along x and along y, summed over scales
    and maps, averaged over frames. White noise scores ~0; structured noise is penalised.
    """
    maps = noise_maps_list(noise)
    total = torch.zeros([], device=maps[0].device if maps else None)
    for n in maps:
        n = n.float().reshape(-1, 1, *n.shape[-2:])
        while True:
            for dim in (3, 2):
                total = (
                    total
                    + (n * torch.roll(n, shifts=1, dims=dim)).mean(dim=(1, 2, 3)).square().mean()
                )
            if n.shape[2] <= min_size:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total


def temporal_change(
    output: torch.Tensor,
    target: torch.Tensor,
    prev_output: torch.Tensor | None = None,
    prev_target: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean |(out[t] - out[t-1]) - (tgt[t] - tgt[t-1])| over consecutive pairs -> ``[]``.

    ``output``/``target`` ``[B, 3, H, W]``; ``prev_*`` ``[3, H, W]`` or ``[1, 3, H, W]``: the
    previous batch's last frame, linking batches (both or neither). ``mask [B or 1, 1, H, W]``
    weights frame t's change. A plate that moves exactly as the output does scores 0.
    """
    if (prev_output is None) != (prev_target is None):
        raise error("temporal term: give both prev_output and prev_target, or neither")
    if prev_output is not None:
        output = torch.cat([prev_output.reshape(1, *output.shape[1:]).to(output), output])
        target = torch.cat([prev_target.reshape(1, *target.shape[1:]).to(target), target])
    elif mask is not None and mask.shape[0] > 1:
        mask = mask[1:]
    if output.shape[0] < 2:
        return torch.zeros([], device=output.device, dtype=output.dtype)
    change = (output[1:] - output[:-1]) - (target[1:] - target[:-1])
    return weighted_mean(change.abs(), mask).mean()
