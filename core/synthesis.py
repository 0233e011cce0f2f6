"""Running the generator: noise maps, synthesis in batches, and the fit undone.

Shared by Invert (its optimisation steps and its reconstruction) and Resynthesize, so both make
their images the same way: batches that halve when the device runs out of memory, noise maps
chosen by one rule, and frames returned at plate size (the fit undone) or the model's size.

Images leaving :func:`synthesise_frames` are ``[B, 3, H, W]`` display-referred in [0, 1] (the
generator's [-1, 1] mapped and clipped: the IMAGE wire is display-referred).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import fit as fitting
from .errors import LatentmirrorError, error, is_out_of_memory
from .latents import GanLatent

NOISE_MODES = ("const", "random", "none", "stored")
OUTPUT_SIZES = ("plate", "model")


def synthesise(
    model, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None = None, autocast=None
) -> torch.Tensor:
    """The generator's images ``[B, 3, R, R]`` in about [-1, 1] with the model's constant noise or
    the maps ``noise``; under autocast in ``autocast`` (a dtype) when given."""
    if autocast is None:
        return model.synthesis(ws, noise_mode="const", noise=noise or None)
    with torch.autocast(model.device.type, dtype=autocast):
        images = model.synthesis(ws, noise_mode="const", noise=noise or None)
    return images.float()


def halve_batch_after_oom(size: int, model) -> int:
    """After running out of device memory: the next batch size, or a clear error at one frame."""
    if size == 1:
        raise error(
            f"out of device memory with one {model.resolution} px frame; use dtype float16 or "
            "bfloat16, a smaller model, or a device with more memory",
            input="batch_size",
        ) from None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return max(1, size // 2)


def is_retryable_oom(exc: BaseException) -> bool:
    """True for the device's out-of-memory error (not one of ours that mentions memory)."""
    return not isinstance(exc, LatentmirrorError) and is_out_of_memory(exc)


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
    if mode == "stored":
        if not latent.noise:
            raise error(
                "noise_mode 'stored': these latents carry no noise maps (invert in space "
                "w_plus_noise or with the classic schedule, or pick const)",
                input="noise_mode",
            )
        return "const", {k: v[indices].to(model.device) for k, v in latent.noise.items()}
    sizes = model.noise_layer_sizes()
    maps: dict[str, list[torch.Tensor]] = {name: [] for name in sizes}
    for i in indices:
        gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(latent.frames[i])) % 2**63)
        for name, size in sizes.items():
            maps[name].append(torch.randn(1, 1, size, size, generator=gen))
    return "const", {k: torch.cat(v).to(model.device) for k, v in maps.items()}


# ----------------------------------------------------------------------------------------------
# Frames.


def synthesise_frames(
    model,
    latent: GanLatent,
    ws: torch.Tensor,
    *,
    noise_mode: str = "const",
    seed: int = 0,
    batch_size: int = 8,
    output_size: str = "plate",
    plate: torch.Tensor | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> torch.Tensor:
    """The images of ``ws`` (``latent``'s rows, as prepared for synthesis) ``[B, 3, H, W]`` in
    [0, 1] (CPU), ``batch_size`` frames at a time (halved when out of memory): at plate size
    (``plate [B or 1, 3, H, W]``, the original frames, fills the sides of a ``crop`` fit;
    without it they are black) or at the model's size (``output_size="model"``)."""
    tiles = latent.fit.tile_count  # images per frame
    frames = len(latent) // tiles
    if plate is not None and plate.shape[0] not in (1, frames):
        raise error(f"plate has {plate.shape[0]} frames, the latents {frames}", input="plate")
    out: list[torch.Tensor] = []
    start, batch = 0, batch_size  # in frames
    while start < frames:
        chosen = list(range(start, min(start + batch, frames)))
        indices = [f * tiles + t for f in chosen for t in range(tiles)]
        try:
            mode, noise = noise_maps(model, latent, noise_mode, indices, seed)
            images = _display_images(model, ws[indices], mode, noise)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_retryable_oom(exc):
                raise
            batch = halve_batch_after_oom(len(chosen), model)
            continue
        out.append(_at_output_size(images, latent.fit, chosen, output_size, plate))
        start += len(chosen)
        if on_frame:
            on_frame(start, frames)
        if check_interrupt and start < frames:
            check_interrupt()
    return torch.cat(out)


def _display_images(model, ws: torch.Tensor, mode: str, noise: dict | None) -> torch.Tensor:
    with torch.no_grad():
        images = model.synthesis(ws.to(model.device), noise_mode=mode, noise=noise)
    return ((images.float() + 1) / 2).clamp(0, 1)


def _at_output_size(
    images: torch.Tensor, fit: fitting.Fit, frames: list[int], output_size: str, plate
) -> torch.Tensor:
    """A batch's images at the model's size (tiles: merged, at plate scale) or at plate size."""
    if output_size == "model" and fit.mode != "tiles":
        return images.cpu()
    background = None
    if plate is not None:
        rows = frames if plate.shape[0] > 1 else [0]
        background = plate[rows].to(images.device).float()
    # bicubic growth overshoots a little at edges: clip again, the wire is [0, 1]
    return fitting.undo_fit(images, fit, background).clamp(0, 1).cpu()
