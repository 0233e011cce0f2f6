"""Resynthesis: latents back to images, with the knobs that shape the look.

In order: temporal smoothing of the latents across frames, truncation toward ``w_avg`` (all
layers or chosen ones), the references' ``style_mix``, then synthesis in batches with the chosen
noise, and the fit undone so frames come out at plate size (both in :mod:`.synthesis`, shared
with Invert's reconstruction).

Images are ``[B, 3, H, W]`` display-referred in [0, 1] (the generator's [-1, 1] mapped and
clipped: the IMAGE wire is display-referred).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .curves import Curve
from .errors import error
from .imageops import gaussian_window
from .latents import GanLatent
from .reference import Reference, ReferenceInversion, parse_layers, style_mix, style_mix_latents
from .synthesis import NOISE_MODES, OUTPUT_SIZES, synthesise_frames

log = logging.getLogger("latentmirror")


@dataclass(frozen=True)
class ResynthSettings:
    """What Resynthesize's inputs choose.

    truncation: psi; 1 keeps the latents, 0 gives the average face, between blends.
    truncation_curve: psi per frame number (a CURVE), in place of ``truncation`` when given.
    temporal_smoothing: the Gaussian's sigma in frames (0: off).
    """

    truncation: float = 1.0
    truncation_layers: str = "all"
    noise_mode: str = "const"
    temporal_smoothing: float = 0.0
    output_size: str = "plate"
    seed: int = 0
    batch_size: int = 8
    truncation_curve: Curve | None = None

    def __post_init__(self) -> None:
        checks = [
            (
                self.truncation_curve is None or isinstance(self.truncation_curve, Curve),
                "truncation_curve",
                "a CURVE",
            ),
            (self.noise_mode in NOISE_MODES, "noise_mode", f"one of {NOISE_MODES}"),
            (self.output_size in OUTPUT_SIZES, "output_size", f"one of {OUTPUT_SIZES}"),
            (math.isfinite(self.truncation), "truncation", "a finite number"),
            (self.temporal_smoothing >= 0, "temporal_smoothing", ">= 0"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise error(f"{name} must be {rule}, got {getattr(self, name)!r}", input=name)


# ----------------------------------------------------------------------------------------------
# Latent operations.


def truncate(
    ws: torch.Tensor,
    w_avg: torch.Tensor,
    psi: float | torch.Tensor,
    rows: list[int] | None = None,
):
    """``ws [B, L, D]`` pulled toward ``w_avg [D]``: ``w_avg + psi * (w - w_avg)`` on ``rows``
    (all by default): a style mix toward the average latent with strength ``1 - psi``. ``psi``:
    one number, or ``[B]``, one per row.

    >>> truncate(torch.ones(1, 2, 1), torch.zeros(1), 0.5, [1])[0, :, 0]
    tensor([1.0000, 0.5000])
    """
    rows = list(range(ws.shape[1])) if rows is None else rows
    strength = 1.0 - (psi if isinstance(psi, torch.Tensor) else float(psi))
    return style_mix(ws, w_avg.expand(ws.shape[1], -1), rows, strength)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised Gaussian over ``[-ceil(3 sigma), ceil(3 sigma)]`` frames (float64)."""
    radius = max(1, math.ceil(3 * sigma))
    return gaussian_window(2 * radius + 1, sigma, dtype=torch.float64)


def smooth_latents(ws: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing of ``ws [B, ...]`` along the frames, sigma in frames (0: unchanged).

    At the ends of the sequence the latents are extended by point reflection (``2 w[0] - w[k]``),
    so a constant or a steady drift (a camera move) passes through unchanged up to the first and
    last frame, instead of being pulled toward the middle or toward zero.

    >>> ramp = torch.arange(6.0).reshape(6, 1, 1)
    >>> torch.allclose(smooth_latents(ramp, 2.0), ramp)
    True
    """
    count = ws.shape[0]
    if sigma <= 0 or count < 2:
        return ws.clone()
    kernel = gaussian_kernel(sigma)
    radius = min(kernel.numel() // 2, count - 1)  # reflection cannot reach past the other end
    kernel = kernel[kernel.numel() // 2 - radius : kernel.numel() // 2 + radius + 1]
    kernel = (kernel / kernel.sum()).to(ws.device, torch.float64)
    flat = ws.reshape(count, -1).double().T[:, None]  # [features, 1, frames]
    head = 2 * flat[..., :1] - flat[..., 1 : radius + 1].flip(-1)
    tail = 2 * flat[..., -1:] - flat[..., -radius - 1 : -1].flip(-1)
    padded = torch.cat([head, flat, tail], dim=-1)
    smoothed = F.conv1d(padded, kernel.view(1, 1, -1))
    return smoothed[:, 0].T.reshape(ws.shape).to(ws.dtype)


# ----------------------------------------------------------------------------------------------
# The whole pass.


def prepare_latents(
    model,
    latent: GanLatent,
    settings: ResynthSettings,
    reference: Reference | None = None,
    reference_inversion: ReferenceInversion | None = None,
) -> torch.Tensor:
    """The latents as they will be synthesised: smoothed, truncated and style-mixed."""
    if latent.num_ws != model.num_ws or latent.w_dim != model.w_dim:
        raise error(
            f"the latents are [{latent.num_ws}, {latent.w_dim}] per frame but this model needs "
            f"[{model.num_ws}, {model.w_dim}]: they were made with another model",
            input="latent",
        )
    # a model tuned to these latents (Tune GAN to Shot) is theirs too
    if latent.model_hash not in (model.content_hash, model.architecture.get("tuned_from")):
        log.warning(
            "Resynthesize: the latents were made with model %s, not this one (%s); using them "
            "anyway (same shapes)",
            latent.model_hash[:12],
            model.content_hash[:12],
        )
    tiles = latent.fit.tile_count  # smooth each tile's sequence: frames are rows of T tiles
    by_frame = latent.ws.float().reshape(-1, tiles, latent.num_ws, latent.w_dim)
    ws = smooth_latents(by_frame, settings.temporal_smoothing).reshape(latent.ws.shape)
    psi = settings.truncation
    if settings.truncation_curve is not None:  # read on each row's real frame number
        psi = settings.truncation_curve.weights(latent.frames)
    if settings.truncation_curve is not None or psi != 1.0:
        rows = parse_layers(settings.truncation_layers, model.num_ws, model.resolution)
        ws = truncate(ws, model.w_avg.detach().float().cpu(), psi, rows)
    return style_mix_latents(ws, model, reference, reference_inversion, latent.frames)


@torch.inference_mode(False)
def resynthesize(
    model,
    latent: GanLatent,
    settings: ResynthSettings = ResynthSettings(),
    *,
    reference: Reference | None = None,
    reference_inversion: ReferenceInversion | None = None,
    plate: torch.Tensor | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> torch.Tensor:
    """The latents' images ``[B, 3, H, W]`` in [0, 1]: at plate size (``plate [B, 3, H, W]``, the
    original frames, fills the sides of a ``crop`` fit; without it they are black) or at the
    model's size. ``reference_inversion`` inverts the style_mix references."""
    ws = prepare_latents(model, latent, settings, reference, reference_inversion)
    return synthesise_frames(
        model, latent, ws, noise_mode=settings.noise_mode, seed=settings.seed,
        batch_size=settings.batch_size, output_size=settings.output_size, plate=plate,
        on_frame=on_frame, check_interrupt=check_interrupt,
    )  # fmt: skip
