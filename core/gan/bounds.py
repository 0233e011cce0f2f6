"""Architecture fields of a model file checked before any network is built.

A model file is small, but the init kwargs it declares decide how much memory building the
network takes: ``w_dim=200000`` in a 4.5 MB file would allocate 160 GB. So a file is checked in
two steps, both before any real tensor is allocated:

1. :func:`check_architecture_bounds`: every size field (``z_dim``, ``w_dim``, channel counts,
   layer counts ...) anywhere in the kwargs is a whole number within sane bounds;
2. :func:`dry_build`: the network is built on PyTorch's ``meta`` device (shapes only, no data),
   and the caller compares its tensor shapes with the tensors actually in the file.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import error

# Bounds of the size fields StyleGAN2/3 init kwargs may hold (at any depth: mapping_kwargs,
# synthesis_kwargs, epilogue_kwargs ...). Released models use at most 512 dims, 8 mapping layers,
# channel_max 1024 (2048 for StyleGAN3-R), channel_base 65536; the bounds leave room above that.
FIELD_BOUNDS: dict[str, tuple[int, int]] = {
    "z_dim": (0, 4096),
    "w_dim": (1, 4096),
    "c_dim": (0, 4096),
    "img_channels": (1, 4),
    "num_layers": (1, 64),  # mapping layers, StyleGAN3 synthesis layers
    "num_ws": (1, 64),
    "layer_features": (1, 4096),
    "embed_features": (0, 4096),
    "channel_base": (1, 1 << 17),
    "channel_max": (1, 4096),
    "cmap_dim": (0, 4096),
    "mbstd_group_size": (0, 64),
    "mbstd_num_channels": (0, 64),
    "num_fp16_res": (0, 16),
    "num_critical": (0, 64),
}


def check_architecture_bounds(kwargs: object, what: str, path: str, prefix: str = "") -> None:
    """Refuse ``kwargs`` when a size field is not a whole number within :data:`FIELD_BOUNDS`."""
    if not isinstance(kwargs, dict):
        raise error(f"unknown architecture: the {what}'s init kwargs are not a mapping", file=path)
    for key, value in kwargs.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            check_architecture_bounds(value, what, path, prefix=f"{name}.")
            continue
        if key not in FIELD_BOUNDS or value is None:
            continue
        low, high = FIELD_BOUNDS[key]
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole or not low <= value <= high:
            raise error(
                f"refused: the {what}'s {name}={value!r} is outside the bounds of a StyleGAN "
                f"model (a whole number from {low} to {high}); nothing was built",
                file=path,
            )


def dry_build(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``build()`` on the meta device: the network's structure and tensor shapes, no data."""
    with torch.device("meta"):
        return build()
