"""OCIO Transform."""

from __future__ import annotations

import torch

from ..core import color, color_lut
from ..core.errors import context, error
from ..host import current_host
from .common import (
    CATEGORY,
    OCIO_CONFIG_TOOLTIP,
    choice_input,
    link_input,
    ocio_config_to_read,
    text_input,
    to_numpy,
    to_tensor,
)

PRECISIONS = ["lut", "exact"]


class OCIOTransform:
    DISPLAY_NAME = "OCIO Transform"
    DESCRIPTION = (
        "Converts images between colour spaces, or to/from a display/view, with OpenColorIO. "
        "Values above 1 and below 0 are kept (no clamping). A fourth channel passes unchanged."
    )
    CATEGORY = f"{CATEGORY}/color"
    FUNCTION = "transform"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The transformed images.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": link_input("IMAGE", "Images in the src colour space."),
                "src": text_input(
                    "Source colour space: a name (ACEScg), an alias (lin_rec709) or a role "
                    "(scene_linear).",
                    default="scene_linear",
                ),
                "dst": text_input(
                    "Destination: a colour space, or display/view such as "
                    "'sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)'.",
                    default="sRGB Encoded Rec.709 (sRGB)",
                ),
                "direction": choice_input(
                    ["forward", "inverse"],
                    "forward: src to dst. inverse: dst back to src (undoes a forward transform).",
                ),
            },
            "optional": {
                "ocio_config": text_input(OCIO_CONFIG_TOOLTIP),
                "precision": choice_input(
                    PRECISIONS,
                    "lut: the transform baked into a 129^3 LUT (cached on disk), run by OCIO "
                    "on all CPU cores or by torch on a GPU (display-space error under 1e-3 at "
                    "p99; pixels the LUT cannot reach take the exact path). exact: OCIO's "
                    "CPU processor, frames in parallel (about 15x slower).",
                ),
                "highlights": choice_input(
                    color.HIGHLIGHTS,
                    "Inverse display/view only (display back to scene-linear), for images made "
                    "for the display such as a GAN's: the tone scale's inverse turns near-white "
                    "display values into hot pixels (display 0.98 is scene 19.7 under ACES 2.0 "
                    "SDR). keep: the exact inverse. limit: display values clamped to the "
                    "view's reference white (scene-linear 1.0) first; brighter tones flatten. "
                    "soft clip: the same bound reached by a smooth roll-off that keeps some "
                    "gradation but darkens tones above scene 0.7. The templates use limit.",
                ),
            },
        }

    def transform(
        self,
        image: torch.Tensor,
        src: str,
        dst: str,
        direction: str,
        ocio_config: str = "",
        precision: str = "lut",
        highlights: str = "keep",
    ):
        with context(node=self.DISPLAY_NAME):
            with context(input="ocio_config"):
                cfg = color.resolve_config(ocio_config_to_read(current_host(), ocio_config))
            with context(input="src"):
                source = color.find_colorspace(cfg, src)
            with context(input="dst"):
                target = color.parse_target(cfg, dst)
            with context(input="direction"):
                if direction not in ("forward", "inverse"):
                    raise error(f"direction '{direction}' is not forward or inverse")
            with context(input="precision"):
                if precision not in PRECISIONS:
                    raise error(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
            inverse = direction == "inverse"
            with context(input="highlights"):
                if highlights not in color.HIGHLIGHTS:
                    raise error(
                        f"highlights '{highlights}' is not one of {', '.join(color.HIGHLIGHTS)}"
                    )
                if highlights != "keep":
                    safe = _highlight_safe(
                        to_numpy(image), cfg, source, target, direction, highlights
                    )
                    image = to_tensor(safe).to(image.device)
            if precision == "exact":
                out = color_lut.apply_exact_frames(to_numpy(image), cfg, source, target, inverse)
                return (to_tensor(out),)
            device = current_host().device()
            out = color_lut.apply_lut_transform(image.to(device), cfg, source, target, inverse)
        return (out.to(image.device),)


def _highlight_safe(pixels, cfg, source: str, target, direction: str, highlights: str):
    """Display pixels limited below the view's reference white, ready for the inverse."""
    if direction != "inverse" or not isinstance(target, color.DisplayView):
        raise error(
            f"highlights '{highlights}' limits the way back from a display: it needs direction "
            f"inverse and a display/view dst (this node runs {direction} to '{target}'); "
            "set highlights to keep"
        )
    return color.limit_highlights(pixels, color.reference_white(cfg, source, target), highlights)
