"""Colour management with OpenColorIO.

Which config: the node's ``ocio_config`` input, else ``$OCIO``, else OCIO's built-in studio config.
Never downloaded. The resolved, versioned name of the config (``ocio://studio-config-v5.0.0_...``)
is what goes into output metadata, so a render says exactly which transforms made it.

Targets are a colour space (name, alias or role) or ``display/view``. Pixels are never clamped:
scene-linear values above 1 and below 0 go through the transforms as they are.

>>> cfg = resolve_config("ocio://studio-config-latest")
>>> rgb = np.array([[0.18, 0.18, 0.18]], np.float32)
>>> out = apply_transform(rgb, cfg, "lin_rec709", "sRGB Encoded Rec.709 (sRGB)")
>>> out.astype(np.float64).round(4).tolist()
[[0.4614, 0.4614, 0.4614]]
"""

from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass

import numpy as np
import PyOpenColorIO as ocio

from .caches import register_cache
from .errors import error
from .storage import require_regular_file

BUILTIN_CONFIG = "ocio://studio-config-latest"


@dataclass(frozen=True)
class ColorConfig:
    """An OCIO config with the name it is recorded under."""

    config: ocio.Config
    name: str  # versioned URI of a built-in config, or the file path (+ the config's own name)

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ColorConfig) and other.name == self.name


@dataclass(frozen=True)
class DisplayView:
    display: str
    view: str

    def __str__(self) -> str:
        return f"{self.display}/{self.view}"


def resolve_config(requested: str = "") -> ColorConfig:
    """The config named by a node input; empty means ``$OCIO``, else the built-in studio config."""
    source = requested.strip() or os.environ.get("OCIO", "").strip() or BUILTIN_CONFIG
    if source.startswith("ocio://"):
        return _load_config(source, 0.0)
    path = os.path.abspath(os.path.expanduser(source))
    origin = "input" if requested.strip() else "$OCIO"
    if not os.path.exists(path):
        raise error(f"OCIO config '{source}' (from {origin}) does not exist", file=path)
    require_regular_file(path, f"OCIO config (from {origin})")  # a FIFO would hang OCIO
    return _load_config(path, os.path.getmtime(path))  # mtime: an edited config is reloaded


@functools.lru_cache(maxsize=16)
def _load_config(source: str, _mtime: float) -> ColorConfig:
    try:
        if source.startswith("ocio://"):
            name = ocio.ResolveConfigPath(source)
            config = ocio.Config.CreateFromFile(source)
        else:
            config = ocio.Config.CreateFromFile(source)
            name = f"{source} ({config.getName()})" if config.getName() else source
        config.validate()
    except ocio.Exception as exc:
        raise error(f"OCIO could not load config '{source}': {exc}", file=source) from exc
    return ColorConfig(config=config, name=name)


register_cache("OCIO configs", _load_config)


def find_colorspace(cfg: ColorConfig, name: str) -> str:
    """The canonical name of a colour space given by name, alias or role; suggests close names."""
    colorspace = cfg.config.getColorSpace(name.strip())
    if colorspace is None:
        raise error(_unknown_message(cfg, name, "colour space", _colorspace_names(cfg)))
    return colorspace.getName()


def parse_target(cfg: ColorConfig, text: str) -> str | DisplayView:
    """A colour space name, or ``display/view`` (colour spaces win when both could match)."""
    text = text.strip()
    colorspace = cfg.config.getColorSpace(text)
    if colorspace is not None:
        return colorspace.getName()
    for cut in [i for i, char in enumerate(text) if char == "/"]:
        display, view = text[:cut].strip(), text[cut + 1 :].strip()
        if display in cfg.config.getDisplays() and view in cfg.config.getViews(display):
            return DisplayView(display, view)
    candidates = _colorspace_names(cfg) + [str(dv) for dv in display_views(cfg)]
    raise error(_unknown_message(cfg, text, "colour space or display/view", candidates))


def display_views(cfg: ColorConfig) -> list[DisplayView]:
    return [DisplayView(d, v) for d in cfg.config.getDisplays() for v in cfg.config.getViews(d)]


def default_display_view(cfg: ColorConfig) -> DisplayView:
    display = cfg.config.getDefaultDisplay()
    return DisplayView(display, cfg.config.getDefaultView(display))


def to_display(pixels: np.ndarray, cfg: ColorConfig, colorspace: str) -> np.ndarray:
    """Pixels as the config's default display shows them, for previews (clipped to 0..1).

    Scene-referred images go through the default view; images that are display-referred
    already (the output of a display/view transform) are only converted to the display's
    colour space, so they are not tone-mapped twice. Data (Raw) is shown as it is.
    """
    target = default_display_view(cfg)
    space = cfg.config.getColorSpace(colorspace)
    if space is not None and space.isData():
        shown = pixels
    elif space is not None and space.getReferenceSpaceType() == ocio.REFERENCE_SPACE_DISPLAY:
        shown = apply_transform(pixels, cfg, colorspace, _display_colorspace(cfg, target))
    else:
        shown = apply_transform(pixels, cfg, colorspace, target)
    return np.clip(shown, 0.0, 1.0)


def _display_colorspace(cfg: ColorConfig, target: DisplayView) -> str:
    name = cfg.config.getDisplayViewColorSpaceName(target.display, target.view)
    return target.display if name == "<USE_DISPLAY_NAME>" else name  # OCIO 2.3+ shorthand


def scene_linear(cfg: ColorConfig) -> str:
    """The config's scene_linear role (ACEScg in the ACES configs)."""
    return find_colorspace(cfg, ocio.ROLE_SCENE_LINEAR)


def interop_id(cfg: ColorConfig, colorspace: str) -> str:
    """The colour interop id OpenEXR 3.4+ files carry (``lin_ap1_scene``), or ''."""
    space = cfg.config.getColorSpace(colorspace)
    return space.getInteropID() if space is not None and hasattr(space, "getInteropID") else ""


def colorspace_from_interop_id(cfg: ColorConfig, interop: str) -> str | None:
    for space in cfg.config.getColorSpaces():
        if hasattr(space, "getInteropID") and space.getInteropID() == interop:
            return space.getName()
    return None


def apply_transform(
    pixels: np.ndarray,
    cfg: ColorConfig,
    src: str,
    dst: str | DisplayView,
    inverse: bool = False,
) -> np.ndarray:
    """Transform ``pixels`` ([..., 3] or [..., 4], float32) from ``src`` to ``dst``.

    ``inverse`` runs the transform backwards (``dst`` to ``src``). A fourth channel (alpha) is
    passed through unchanged. Returns a new array; the input is left as it is.
    """
    channels = pixels.shape[-1]
    if channels not in (3, 4):
        raise error(f"colour transforms need 3 or 4 channels, got {channels}")
    processor = _cpu_processor(cfg, find_colorspace(cfg, src), target_of(cfg, dst), inverse)
    out = np.ascontiguousarray(pixels, dtype=np.float32).copy()
    flat = out.reshape(-1)
    (processor.applyRGB if channels == 3 else processor.applyRGBA)(flat)
    return out


# How the inverse of a display/view (display -> scene-linear) treats display values near white.
# A view's tone scale flattens scene highlights toward display white, so its inverse expands
# them back: under ACES 2.0 SDR display 0.98 becomes scene 19.7. An image made for the display
# (a GAN's output) holds such values without the plate having had such highlights.
#   keep:      the exact inverse (round trips a forward transform; hot pixels can appear)
#   limit:     display values clamped to the view's reference white first (nothing comes back
#              much brighter than scene 1.0; brighter display tones flatten to white)
#   soft clip: display values above a knee rolled off smoothly toward reference white
#              (tones keep their order and gradation; the same bound)
# (Per channel: a saturated near-white colour can come back a little above 1 once the view's
# gamut mapping is undone: 1.05 at most on the demo's obscura render with limit, 1.011 soft.)
HIGHLIGHTS = ("keep", "limit", "soft clip")
SOFT_CLIP_KNEE = 0.9  # of reference white: display values below it (scene 0.7) come back exactly


def reference_white(cfg: ColorConfig, scene: str, target: DisplayView) -> np.ndarray:
    """The display value (RGB) a view shows scene-linear 1.0 (diffuse white) as.

    >>> cfg = resolve_config("ocio://studio-config-latest")
    >>> view = DisplayView("sRGB - Display", "ACES 2.0 - SDR 100 nits (Rec.709)")
    >>> reference_white(cfg, "ACEScg", view).astype(np.float64).round(3).tolist()
    [0.707, 0.707, 0.707]
    """
    white = np.ones((1, 3), np.float32)
    return apply_transform(white, cfg, scene, target)[0]


def limit_highlights(display: np.ndarray, white: np.ndarray, mode: str) -> np.ndarray:
    """Display pixels ([..., 3] or [..., 4]) made safe to invert: at most ``white`` per channel
    (see HIGHLIGHTS). Alpha passes unchanged; a new array is returned.

    >>> white = np.array([0.7, 0.7, 0.7], np.float32)
    >>> pixels = np.array([[0.3, 0.7, 1.0]], np.float32)
    >>> limit_highlights(pixels, white, "limit").astype(np.float64).round(3).tolist()
    [[0.3, 0.7, 0.7]]
    >>> limit_highlights(pixels, white, "soft clip").astype(np.float64).round(3).tolist()
    [[0.3, 0.683, 0.7]]
    """
    out = np.array(display, dtype=np.float32, copy=True)
    rgb = out[..., :3]
    if mode == "limit":
        np.minimum(rgb, white, out=rgb)
    elif mode == "soft clip":
        knee = SOFT_CLIP_KNEE * white
        room = white - knee
        above = rgb > knee
        # tanh: slope 1 at the knee (no kink), approaches white and never reaches it
        rolled = knee + room * np.tanh((rgb - knee) / room)
        rgb[above] = np.broadcast_to(rolled, rgb.shape)[above]
    elif mode != "keep":
        raise error(f"highlights '{mode}' is not one of {', '.join(HIGHLIGHTS)}")
    return out


def target_of(cfg: ColorConfig, dst: str | DisplayView) -> str | DisplayView:
    """``dst`` as :func:`parse_target` resolves it (a DisplayView is already resolved)."""
    return dst if isinstance(dst, DisplayView) else parse_target(cfg, dst)


@functools.lru_cache(maxsize=128)
def _cpu_processor(
    cfg: ColorConfig, src: str, dst: str | DisplayView, inverse: bool
) -> ocio.CPUProcessor:
    direction = ocio.TRANSFORM_DIR_INVERSE if inverse else ocio.TRANSFORM_DIR_FORWARD
    if isinstance(dst, DisplayView):
        transform = ocio.DisplayViewTransform(src=src, display=dst.display, view=dst.view)
    else:
        transform = ocio.ColorSpaceTransform(src=src, dst=dst)
    try:
        processor = cfg.config.getProcessor(transform, direction)
    except ocio.Exception as exc:
        raise error(f"OCIO cannot build {src} -> {dst} in {cfg.name}: {exc}") from exc
    return processor.getDefaultCPUProcessor()


register_cache("OCIO processors", _cpu_processor)


def _colorspace_names(cfg: ColorConfig) -> list[str]:
    names = []
    for space in cfg.config.getColorSpaces():
        names += [space.getName(), *space.getAliases()]
    return names + [role for role, _ in cfg.config.getRoles()]


def _unknown_message(cfg: ColorConfig, name: str, kind: str, candidates: list[str]) -> str:
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=4, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(lowered[c]) for c in close)}?" if close else ""
    return f"unknown {kind} '{name}' in OCIO config {cfg.name}{hint}"
