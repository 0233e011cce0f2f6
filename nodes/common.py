"""What every node shares: the category, error context, tensor conversion, progress, previews."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from ..core import color
from ..core.curves import Curve
from ..core.errors import LatentmirrorError, context, error
from ..core.frames.patterns import parse_pattern
from ..host import Host, current_host, preview_indices

CATEGORY = "latentmirror"
log = logging.getLogger("latentmirror")


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """A ComfyUI IMAGE/MASK tensor as a float32 numpy array (a copy only when needed)."""
    return image.detach().to("cpu", torch.float32).contiguous().numpy()


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def take_frames(batch: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """The batch's frames ``keep``: a view when they are one run (a chunk after its pre-roll),
    not a copy of them in fresh memory."""
    if keep and keep == list(range(keep[0], keep[0] + len(keep))):
        return batch[keep[0] : keep[0] + len(keep)]
    return batch[keep]


def to_nhwc(images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` (core's layout) -> ComfyUI's IMAGE ``[B, H, W, 3]`` float32 on the CPU."""
    return images.permute(0, 2, 3, 1).contiguous().float().cpu()


def display_pixels(
    images: torch.Tensor, frames: list[int], node: str, input_name: str = "images"
) -> torch.Tensor:
    """IMAGE -> [B, 3, H, W] in [0, 1]. Values outside (a scene-linear plate wired straight in)
    are clipped with a warning naming the frames, never silently."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] < 3:
        raise error("expected an IMAGE [B, H, W, 3]", input=input_name)
    pixels = images[..., :3].permute(0, 3, 1, 2).float()  # [B, 3, H, W]
    bad = torch.nonzero(~torch.isfinite(pixels).flatten(1).all(1)).flatten().tolist()
    if bad:
        raise error(
            f"images have NaN or Inf pixels in frames {[frames[i] for i in bad][:10]}",
            input=input_name,
        )
    outside = ((pixels < -0.01) | (pixels > 1.01)).flatten(1).any(1)
    if outside.any():
        listed = [frames[i] for i in torch.nonzero(outside).flatten().tolist()]
        log.warning(
            "%s: frames %s have values outside [0, 1] (max %.3g); clipped. GAN nodes expect "
            "display-referred images: put an OCIO Transform to a display/view before them",
            node,
            listed[:10],
            float(pixels.max()),
        )
    return pixels.clamp(0, 1)


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
    rgb: np.ndarray,
    cfg: color.ColorConfig,
    colorspace: str,
    prefix: str,
    among: list[int] | None = None,
) -> list[dict]:
    """Previews through the config's default display and view (scene-linear shown raw would clip),
    of frames chosen among the indices ``among`` of ``rgb`` (default: all of them).

    Returns UI entries for ComfyUI, or [] where the host shows none (the transform is skipped).
    Only the frames shown are copied.
    """
    host = current_host()
    among = list(range(len(rgb))) if among is None else among
    if not host.wants_previews or not among:
        return []
    chosen = rgb[[among[i] for i in preview_indices(len(among))]][..., :3]
    return host.preview_images(color.to_display(chosen, cfg, colorspace), prefix) or []


def status_card(lines: list[str], width: int = 640) -> np.ndarray:
    """A small image that says something on the node itself (ComfyUI's frontend shows a node's
    images but not its text): float RGB [height, width, 3] in display space, white on grey."""
    import cv2

    line_height = 28
    card = np.full((line_height * len(lines) + 16, width, 3), 40, np.uint8)  # text wants 8-bit
    for row, text in enumerate(lines):
        origin = (12, 30 + row * line_height)
        cv2.putText(
            card, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA
        )
    return card.astype(np.float32) / 255.0


# Paths nodes are given: every one goes through the host's PathRoots (host.py), so a shared
# ComfyUI reads and writes only inside its folders; the frames of a sequence are checked each.
def sequence_to_read(host: Host, path: str) -> str:
    """A sequence pattern (or one file) resolved for reading. Its folder is checked, then every
    frame file on disk, since a frame can be a link that leads out of the allowed folders."""
    with context(input="path"):
        resolved = host.input_path(path)
        _check_frames(resolved, host.input_path)
    return resolved


def sequence_to_write(host: Host, path: str) -> str:
    """A sequence pattern resolved for writing: its folder checked, then the frames already on
    disk (a saver reads their headers to skip complete ones)."""
    with context(input="path"):
        resolved = host.output_path(path)
        _check_frames(resolved, host.output_path)
    return resolved


def safetensors_to_write(host: Host, path: str) -> str:
    """Where a Save node writes its ``.safetensors`` file: ``path`` with the extension added if
    missing (before the host's check: that is the file written), through the host's write
    roots. Call inside the node's ``input="path"`` context."""
    if not path.strip():
        raise error("path is empty")
    if not path.lower().endswith(".safetensors"):
        path += ".safetensors"
    return host.output_path(path)


def _check_frames(pattern_path: str, check: Callable[[str], str]) -> None:
    try:
        on_disk = parse_pattern(pattern_path).frames_on_disk()
    except (LatentmirrorError, OSError):  # a bad pattern: the load or save reports it
        return
    for file in on_disk.values():
        with context(file=file):
            check(file)


def ocio_config_to_read(host: Host, ocio_config: str) -> str:
    """An ``ocio_config`` input: a file path goes through the host's roots like any read (a
    relative one starts in ComfyUI's input/); empty ($OCIO) and ocio:// URIs are not files."""
    value = ocio_config.strip()
    if not value or value.startswith("ocio://"):
        return ocio_config
    with context(input="ocio_config"):
        return host.input_path(value)


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


def curve_input(number: str) -> tuple:
    """The optional ``<number>_curve`` input that animates a number input (from a Curve node)."""
    return link_input(
        "CURVE",
        f"From a Curve node: {number} per frame, read on each frame's real number; when wired "
        f"it replaces the {number} number.",
    )


def checked_curve(value, input_name: str):
    """A wired CURVE input (None when not wired); anything else is refused."""
    if value is not None and not isinstance(value, Curve):
        raise error("expected a CURVE (from a Curve node)", input=input_name)
    return value


OCIO_CONFIG_TOOLTIP = (
    "OCIO config: a file path or a built-in URI (ocio://studio-config-latest). "
    "Empty: $OCIO, else OCIO's built-in studio config."
)


def require_finite(value, input_name: str):
    """Refuse NaN and Inf for a number input (ComfyUI checks only min and max, which NaN passes,
    and a NaN setting would quietly turn every pixel it touches into NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{value} is not a finite number", input=input_name)
    return value


def refuse_non_finite_numbers(node_class: type) -> type:
    """Make the node's function refuse NaN and Inf in its INT and FLOAT inputs, whichever host
    calls it (nodes/__init__.py applies it to every node)."""
    function = getattr(node_class, node_class.FUNCTION)

    @functools.wraps(function)
    def checked(self, *args, **kwargs):
        types = node_class.INPUT_TYPES()
        with context(node=getattr(node_class, "DISPLAY_NAME", node_class.__name__)):
            for section in ("required", "optional"):
                for name, spec in types.get(section, {}).items():
                    if name in kwargs and spec[0] in ("INT", "FLOAT"):
                        require_finite(kwargs[name], name)
        return function(self, *args, **kwargs)

    setattr(node_class, node_class.FUNCTION, checked)
    return node_class
