"""What every node shares: the category, error context, tensor conversion, progress, previews."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core import color
from ..plugin.host import Host, current_host, preview_indices

CATEGORY = "latentmirror"


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """A ComfyUI IMAGE/MASK tensor as a float32 numpy array (a copy only when needed)."""
    return image.detach().to("cpu", torch.float32).contiguous().numpy()


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def frame_progress(host: Host, total: int, description: str) -> Callable[[int, int], None]:
    """A callback for core loops: updates the host's bar and stops if the user interrupted."""
    bar = host.progress(total, description)

    def on_frame(done: int, all_frames: int) -> None:
        bar.update(done, all_frames)
        if done >= all_frames:
            bar.close()
        else:
            host.check_interrupt()

    return on_frame


def display_previews(
    rgb: np.ndarray, cfg: color.ColorConfig, colorspace: str, prefix: str
) -> list[dict]:
    """Previews through the config's default display and view (scene-linear shown raw would clip).

    Returns UI entries for ComfyUI, or [] where the host shows none (the transform is skipped).
    """
    host = current_host()
    if not host.wants_previews or len(rgb) == 0:
        return []
    chosen = rgb[preview_indices(len(rgb))]
    return host.preview_images(color.to_display(chosen, cfg, colorspace), prefix) or []


# Input declarations in ComfyUI's (type, options) form, each with its tooltip.
def text_input(tooltip: str, default: str = "") -> tuple:
    return ("STRING", {"default": default, "tooltip": tooltip})


def choice_input(choices, tooltip: str, default: str | None = None) -> tuple:
    choices = list(choices)
    return (choices, {"default": default or choices[0], "tooltip": tooltip})


def link_input(kind: str, tooltip: str) -> tuple:
    return (kind, {"tooltip": tooltip})


def number_input(kind: str, default, tooltip: str, **bounds) -> tuple:
    return (kind, {"default": default, **bounds, "tooltip": tooltip})


OCIO_CONFIG_TOOLTIP = (
    "OCIO config: a file path or a built-in URI (ocio://studio-config-latest). "
    "Empty: $OCIO, else OCIO's built-in studio config."
)
