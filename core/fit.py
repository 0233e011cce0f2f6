"""Fitting plates to the model's square resolution, and undoing it.

A GAN makes square images of one size; plates are any size and aspect. Three ways to fit:

- ``stretch``: the whole plate scaled to the square (aspect distorted, undone exactly on output);
- ``crop``: the centred square of side min(H, W) scaled to the model (the sides are not inverted;
  on output the square is pasted back into the plate);
- ``pad``: the plate centred in a square of side max(H, W), the border filled by reflection, then
  scaled (on output the border is cropped away).

The :class:`Fit` is recorded in GAN_LATENT so Resynthesize can undo it. Images are
``[B, C, H, W]`` tensors here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .errors import error
from .losses import resize_to

FIT_MODES = ("stretch", "crop", "pad")


@dataclass(frozen=True)
class Fit:
    """How a ``plate_height x plate_width`` plate maps to a ``resolution``-pixel square.

    ``side``: the square's side in plate pixels (before scaling to ``resolution``).
    ``top``/``left``: crop: where the square sits in the plate; pad: where the plate sits in the
    square; stretch: 0.
    """

    mode: str
    plate_height: int
    plate_width: int
    resolution: int
    side: int
    top: int = 0
    left: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Fit:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    @property
    def plate_size(self) -> tuple[int, int]:
        return self.plate_height, self.plate_width


def plan_fit(mode: str, height: int, width: int, resolution: int) -> Fit:
    """The :class:`Fit` of ``mode`` for a ``height x width`` plate.

    >>> plan_fit("crop", 90, 160, 64)
    Fit(mode='crop', plate_height=90, plate_width=160, resolution=64, side=90, top=0, left=35)
    """
    if mode not in FIT_MODES:
        raise error(f"unknown fit {mode!r}; expected one of: {', '.join(FIT_MODES)}", input="fit")
    if mode == "crop":
        side = min(height, width)
        return Fit(mode, height, width, resolution, side, (height - side) // 2, (width - side) // 2)
    if mode == "pad":
        side = max(height, width)
        return Fit(mode, height, width, resolution, side, (side - height) // 2, (side - width) // 2)
    return Fit(mode, height, width, resolution, max(height, width))


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
    if fit.mode == "crop":
        images = images[..., fit.top : fit.top + fit.side, fit.left : fit.left + fit.side]
    elif fit.mode == "pad":
        images = _pad_reflect(images, fit)
    return _resize(images, (fit.resolution, fit.resolution))


def apply_fit_to_mask(mask: torch.Tensor, fit: Fit) -> torch.Tensor:
    """A MASK ``[N, H, W]`` at plate size -> ``[N, R, R]``; padding weighs 0 (it is not plate)."""
    if tuple(mask.shape[-2:]) != fit.plate_size:  # a mask of another size is the user's choice
        return mask
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
    """Model-size ``[B, C, R, R]`` -> plate-size ``[B, C, H, W]``.

    ``crop``: the square is pasted into ``background`` (the plate, ``[B or 1, C, H, W]``); without
    one, the sides are black.
    """
    h, w = fit.plate_size
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
