"""Resynthesis: latents back to images, with the knobs that shape the look.

In order: temporal smoothing of the latents across frames, truncation toward ``w_avg`` (all
layers or chosen ones), the references' ``style_mix``, then synthesis in batches with the chosen
noise, and the fit undone so frames come out at plate size.

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

from . import fit as fitting
from .errors import LatentmirrorError, error, is_out_of_memory
from .imageops import gaussian_window
from .latents import GanLatent
from .reference import Reference, parse_layers, style_mix

log = logging.getLogger("latentmirror")

NOISE_MODES = ("const", "random", "none", "stored")
OUTPUT_SIZES = ("plate", "model")


@dataclass(frozen=True)
class ResynthSettings:
    """What Resynthesize's inputs choose.

    truncation: psi; 1 keeps the latents, 0 gives the average face, between blends.
    temporal_smoothing: the Gaussian's sigma in frames (0: off).
    """

    truncation: float = 1.0
    truncation_layers: str = "all"
    noise_mode: str = "const"
    temporal_smoothing: float = 0.0
    output_size: str = "plate"
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        checks = [
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


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, rows: list[int] | None = None):
    """``ws [B, L, D]`` pulled toward ``w_avg [D]``: ``w_avg + psi * (w - w_avg)`` on ``rows``
    (all by default): a style mix toward the average latent with strength ``1 - psi``.

    >>> truncate(torch.ones(1, 2, 1), torch.zeros(1), 0.5, [1])[0, :, 0]
    tensor([1.0000, 0.5000])
    """
    rows = list(range(ws.shape[1])) if rows is None else rows
    return style_mix(ws, w_avg.expand(ws.shape[1], -1), rows, 1.0 - float(psi))


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
# Noise.


def noise_maps(
    model, latent: GanLatent, mode: str, indices: list[int], seed: int
) -> tuple[str, dict | None]:
    """(noise_mode for the synthesis network, explicit maps or None) for frames ``indices``.

    random: maps drawn per frame from ``seed`` and the frame number, so any frame renders the
    same alone, in a batch or in another chunk. stored: the maps saved with the latents.
    """
    if mode in ("const", "none"):
        return mode, None
    from .invert import noise_layer_sizes

    if mode == "stored":
        if not latent.noise:
            raise error(
                "noise_mode 'stored': these latents carry no noise maps (invert in space "
                "w_plus_noise or with the classic schedule, or pick const)",
                input="noise_mode",
            )
        return "const", {k: v[indices].to(model.device) for k, v in latent.noise.items()}
    sizes = noise_layer_sizes(model)
    maps: dict[str, list[torch.Tensor]] = {name: [] for name in sizes}
    for i in indices:
        gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(latent.frames[i])) % 2**63)
        for name, size in sizes.items():
            maps[name].append(torch.randn(1, 1, size, size, generator=gen))
    return "const", {k: torch.cat(v).to(model.device) for k, v in maps.items()}


# ----------------------------------------------------------------------------------------------
# The whole pass.


def style_mix_latents(ws: torch.Tensor, model, reference: Reference | None, **invert_kwargs):
    """``ws`` with every ``style_mix`` reference applied in chain order. The references are
    inverted once per model (see :func:`~.invert.reference_latent`); ``invert_kwargs``:
    ``reference_settings``, ``mix``, ``lpips_folders``, ``allow_random_backbone``."""
    from .invert import InvertSettings, reference_latent, reference_mix

    if reference is None:
        return ws
    settings = invert_kwargs.pop("reference_settings", None) or InvertSettings()
    invert_kwargs["mix"] = reference_mix(invert_kwargs.get("mix"))
    for item in reference.of_mode("style_mix"):
        rows = parse_layers(item.layers, model.num_ws, model.resolution)
        ref_ws = reference_latent(model, item, settings, **invert_kwargs)
        ws = style_mix(ws, ref_ws.to(ws.device), rows, item.strength)
    return ws


def prepare_latents(model, latent: GanLatent, settings: ResynthSettings, reference=None, **kw):
    """The latents as they will be synthesised: smoothed, truncated and style-mixed."""
    if latent.num_ws != model.num_ws or latent.w_dim != model.w_dim:
        raise error(
            f"the latents are [{latent.num_ws}, {latent.w_dim}] per frame but this model needs "
            f"[{model.num_ws}, {model.w_dim}]: they were made with another model",
            input="latent",
        )
    if latent.model_hash != model.content_hash:
        log.warning(
            "Resynthesize: the latents were made with model %s, not this one (%s); using them "
            "anyway (same shapes)",
            latent.model_hash[:12],
            model.content_hash[:12],
        )
    tiles = latent.fit.tile_count  # smooth each tile's sequence: frames are rows of T tiles
    by_frame = latent.ws.float().reshape(-1, tiles, latent.num_ws, latent.w_dim)
    ws = smooth_latents(by_frame, settings.temporal_smoothing).reshape(latent.ws.shape)
    if settings.truncation != 1.0:
        rows = parse_layers(settings.truncation_layers, model.num_ws, model.resolution)
        ws = truncate(ws, model.w_avg.detach().float().cpu(), settings.truncation, rows)
    return style_mix_latents(ws, model, reference, **kw)


@torch.inference_mode(False)
def resynthesize(
    model,
    latent: GanLatent,
    settings: ResynthSettings = ResynthSettings(),
    *,
    reference: Reference | None = None,
    plate: torch.Tensor | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    check_interrupt: Callable[[], None] | None = None,
    **reference_kwargs,
) -> torch.Tensor:
    """The latents' images ``[B, 3, H, W]`` in [0, 1]: at plate size (``plate [B, 3, H, W]``, the
    original frames, fills the sides of a ``crop`` fit; without it they are black) or at the
    model's size. ``reference_kwargs`` go to the inversion of style_mix references."""
    from .invert import halve_batch_after_oom

    ws = prepare_latents(model, latent, settings, reference, **reference_kwargs)
    tiles = latent.fit.tile_count  # images per frame
    frames = len(latent) // tiles
    if plate is not None and plate.shape[0] not in (1, frames):
        raise error(f"plate has {plate.shape[0]} frames, the latents {frames}", input="plate")
    out: list[torch.Tensor] = []
    start, batch = 0, settings.batch_size  # in frames
    while start < frames:
        chosen = list(range(start, min(start + batch, frames)))
        indices = [f * tiles + t for f in chosen for t in range(tiles)]
        try:
            images = _synthesise_batch(model, latent, ws, indices, settings)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if isinstance(exc, LatentmirrorError) or not is_out_of_memory(exc):
                raise
            batch = halve_batch_after_oom(len(chosen), model)
            continue
        out.append(_to_output(images, latent, chosen, settings, plate))
        start += len(chosen)
        if on_frame:
            on_frame(start, frames)
        if check_interrupt and start < frames:
            check_interrupt()
    return torch.cat(out)


def _synthesise_batch(model, latent, ws, indices, settings) -> torch.Tensor:
    mode, noise = noise_maps(model, latent, settings.noise_mode, indices, settings.seed)
    with torch.no_grad():
        images = model.synthesis(ws[indices].to(model.device), noise_mode=mode, noise=noise)
    return ((images.float() + 1) / 2).clamp(0, 1)


def _to_output(images, latent: GanLatent, frames, settings, plate) -> torch.Tensor:
    """A batch's images at the model's size (tiles: merged, at plate scale) or at plate size."""
    if settings.output_size == "model" and latent.fit.mode != "tiles":
        return images.cpu()
    background = None
    if plate is not None:
        rows = frames if plate.shape[0] > 1 else [0]
        background = plate[rows].to(images.device).float()
    # bicubic growth overshoots a little at edges: clip again, the wire is [0, 1]
    return fitting.undo_fit(images, latent.fit, background).clamp(0, 1).cpu()
