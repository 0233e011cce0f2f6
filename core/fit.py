"""Fitting plates to the model's square resolution, and undoing it.

A GAN makes square images of one size; plates are any size and aspect. Three ways to fit:

- ``stretch``: the whole plate scaled to the square (aspect distorted, undone exactly on output);
- ``crop``: the centred square of side min(H, W) scaled to the model (the sides are not inverted;
  on output the square is pasted back into the plate);
- ``pad``: the plate centred in a square of side max(H, W), the border filled by reflection, then
  scaled (on output the border is cropped away);
- ``tiles``: for plates larger than the model: overlapping model-size tiles at the plate's own
  scale, each inverted on its own; on output they are blended with feathered seams, so a 4K plate
  gets detail everywhere instead of one stretched square. A plate of B frames becomes B x T
  images, frame-major (frame 0's T tiles, then frame 1's ...).

The :class:`Fit` is recorded in GAN_LATENT so Resynthesize can undo it. Images are
``[B, C, H, W]`` tensors here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .errors import error
from .imageops import resize_to

FIT_MODES = ("stretch", "crop", "pad", "tiles")


@dataclass(frozen=True)
class Fit:
    """How a ``plate_height x plate_width`` plate maps to a ``resolution``-pixel square.

    ``side``: the square's side in plate pixels (before scaling to ``resolution``).
    ``top``/``left``: crop: where the square sits in the plate; pad: where the plate sits in the
    square; stretch: 0. tiles: ``side`` is the tile (= resolution) and ``overlap`` how much
    neighbouring tiles share; the positions follow from these (:func:`tile_positions`).
    """

    mode: str
    plate_height: int
    plate_width: int
    resolution: int
    side: int
    top: int = 0
    left: int = 0
    overlap: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Fit:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def plate_size(self) -> tuple[int, int]:
        return self.plate_height, self.plate_width

    @property
    def tile_count(self) -> int:
        """Images per plate frame: the number of tiles, 1 for the other modes."""
        if self.mode != "tiles":
            return 1
        tops, lefts = tile_positions(self)
        return len(tops) * len(lefts)


def plan_fit(mode: str, height: int, width: int, resolution: int, overlap: int = 0) -> Fit:
    """The :class:`Fit` of ``mode`` for a ``height x width`` plate.

    >>> fit = plan_fit("crop", 90, 160, 64)  # the centred 90x90 square, scaled to 64
    >>> fit.side, fit.top, fit.left
    (90, 0, 35)
    """
    if mode not in FIT_MODES:
        raise error(f"unknown fit {mode!r}; expected one of: {', '.join(FIT_MODES)}", input="fit")
    if mode == "crop":
        side = min(height, width)
        return Fit(mode, height, width, resolution, side, (height - side) // 2, (width - side) // 2)
    if mode == "pad":
        side = max(height, width)
        return Fit(mode, height, width, resolution, side, (side - height) // 2, (side - width) // 2)
    if mode == "tiles":
        return _plan_tiles(height, width, resolution, overlap)
    return Fit(mode, height, width, resolution, max(height, width))


def _plan_tiles(height: int, width: int, resolution: int, overlap: int) -> Fit:
    if min(height, width) < resolution:
        raise error(
            f"fit 'tiles' needs a plate at least as large as the model ({resolution} px); this "
            f"one is {width}x{height}: use stretch, crop or pad",
            input="fit",
        )
    overlap = overlap or resolution // 4
    if not 0 < overlap < resolution:
        raise error(f"tile overlap must be from 1 to {resolution - 1} px, got {overlap}")
    return Fit("tiles", height, width, resolution, resolution, overlap=overlap)


def _axis_positions(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread starts covering ``length`` with tiles sharing at least ``overlap``."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_positions(fit: Fit) -> tuple[list[int], list[int]]:
    """(tops, lefts) of a tiles fit; tiles go row by row."""
    tile = fit.side
    return (
        _axis_positions(fit.plate_height, tile, fit.overlap),
        _axis_positions(fit.plate_width, tile, fit.overlap),
    )


def _ramp(length: int, overlap: int, rise: bool, fall: bool) -> torch.Tensor:
    """1-D feather: rising over ``overlap`` pixels at the start (if ``rise``) and falling at the
    end (if ``fall``); strictly positive, so every pixel has weight."""
    ramp = torch.ones(length, dtype=torch.float64)
    edge = (torch.arange(overlap, dtype=torch.float64) + 0.5) / overlap
    if rise:
        ramp[:overlap] = edge
    if fall:
        ramp[length - overlap :] = torch.minimum(ramp[length - overlap :], edge.flip(0))
    return ramp


def tile_weights(fit: Fit) -> list[torch.Tensor]:
    """Each tile's feather ``[side, side]``: ramps only on sides that meet another tile."""
    tops, lefts = tile_positions(fit)
    out = []
    for i in range(len(tops)):
        wy = _ramp(fit.side, fit.overlap, i > 0, i < len(tops) - 1)
        for j in range(len(lefts)):
            wx = _ramp(fit.side, fit.overlap, j > 0, j < len(lefts) - 1)
            out.append(torch.outer(wy, wx))
    return out


def split_tiles(images: torch.Tensor, fit: Fit) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B * T, C, side, side]``, frame-major."""
    tops, lefts = tile_positions(fit)
    tiles = [images[..., y : y + fit.side, x : x + fit.side] for y in tops for x in lefts]
    return torch.stack(tiles, dim=1).reshape(-1, images.shape[1], fit.side, fit.side)


def merge_tiles(tiles: torch.Tensor, fit: Fit) -> torch.Tensor:
    """``[B * T, C, side, side]`` -> ``[B, C, H, W]``: the feathered, normalised blend, so the
    tiles of one image merge back into exactly that image (weights sum to 1 everywhere)."""
    tops, lefts = tile_positions(fit)
    count = len(tops) * len(lefts)
    frames = tiles.shape[0] // count
    tiles = tiles.reshape(frames, count, *tiles.shape[1:]).double()
    out = tiles.new_zeros(frames, tiles.shape[2], *fit.plate_size)
    total = tiles.new_zeros(*fit.plate_size)
    positions = [(y, x) for y in tops for x in lefts]
    for k, ((y, x), weight) in enumerate(zip(positions, tile_weights(fit), strict=True)):
        weight = weight.to(tiles.device)
        out[..., y : y + fit.side, x : x + fit.side] += tiles[:, k] * weight
        total[y : y + fit.side, x : x + fit.side] += weight
    return (out / total).float()


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return resize_to(images, size, upsample="bicubic")  # bicubic: GAN output grown to plate size


def _pad_reflect(images: torch.Tensor, fit: Fit) -> torch.Tensor:
    bottom = fit.side - fit.plate_height - fit.top
    right = fit.side - fit.plate_width - fit.left
    pads = (fit.left, right, fit.top, bottom)
    # Reflection needs the pad to be smaller than the image; very thin plates repeat the edge.
    mode = "reflect" if max(pads) < min(images.shape[-2:]) else "replicate"
    return F.pad(images, pads, mode=mode)


def apply_fit(images: torch.Tensor, fit: Fit) -> torch.Tensor:
    """Plate-size ``[B, C, H, W]`` -> model-size ``[B, C, R, R]``."""
    if tuple(images.shape[-2:]) != fit.plate_size:
        raise error(
            f"images are {images.shape[-2]}x{images.shape[-1]} but the fit was planned for "
            f"{fit.plate_height}x{fit.plate_width}"
        )
    if fit.mode == "tiles":
        return split_tiles(images, fit)
    if fit.mode == "crop":
        images = images[..., fit.top : fit.top + fit.side, fit.left : fit.left + fit.side]
    elif fit.mode == "pad":
        images = _pad_reflect(images, fit)
    return _resize(images, (fit.resolution, fit.resolution))


def apply_fit_to_mask(mask: torch.Tensor, fit: Fit) -> torch.Tensor:
    """A MASK ``[N, H, W]`` at plate size -> ``[N, R, R]``; padding weighs 0 (it is not plate)."""
    if tuple(mask.shape[-2:]) != fit.plate_size:  # a mask of another size is the user's choice
        return mask
    if fit.mode == "tiles":
        return split_tiles(mask[:, None], fit)[:, 0]
    if fit.mode == "pad":
        padded = mask.new_zeros(mask.shape[0], fit.side, fit.side)
        h, w = fit.plate_size
        padded[:, fit.top : fit.top + h, fit.left : fit.left + w] = mask
        mask = padded
    elif fit.mode == "crop":
        mask = mask[:, fit.top : fit.top + fit.side, fit.left : fit.left + fit.side]
    return _resize(mask[:, None], (fit.resolution, fit.resolution))[:, 0]


def undo_fit(
    images: torch.Tensor, fit: Fit, background: torch.Tensor | None = None
) -> torch.Tensor:
    """Model-size ``[B, C, R, R]`` (``[B * T, ...]`` for tiles) -> plate-size ``[B, C, H, W]``.

    ``crop``: the square is pasted into ``background`` (the plate, ``[B or 1, C, H, W]``); without
    one, the sides are black.
    """
    h, w = fit.plate_size
    if fit.mode == "tiles":
        return merge_tiles(images, fit)
    if fit.mode == "stretch":
        return _resize(images, (h, w))
    square = _resize(images, (fit.side, fit.side))
    if fit.mode == "pad":
        return square[..., fit.top : fit.top + h, fit.left : fit.left + w]
    if background is None:
        out = images.new_zeros(*images.shape[:2], h, w)
    else:
        out = background.to(images).expand(images.shape[0], -1, -1, -1).clone()
    out[..., fit.top : fit.top + fit.side, fit.left : fit.left + fit.side] = square
    return out
