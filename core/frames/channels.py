"""Which channels of an EXR make the RGB image and the alpha: RGBA, a named layer, or a list."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import error
from .exr import ExrHeader


@dataclass(frozen=True)
class ChannelSelection:
    rgb: tuple[str, str, str]  # the same name three times for a single (grey) channel
    alpha: str | None
    subimage: int


def select_channels(headers: list[ExrHeader], layer: str) -> ChannelSelection:
    """Find the channels that ``layer`` names in any part of the file.

    ``layer`` is empty (``R,G,B[,A]``, else luminance ``Y``), a layer name (``diffuse`` for
    ``diffuse.R`` ...), one channel (``depth.Z``, shown as grey), or a comma list of 3 or 4
    channels.
    """
    layer = layer.strip()
    for header in headers:
        found = _select_in(header.channels, layer)
        if found is not None:
            return ChannelSelection(found[0], found[1], header.subimage)
    available = sorted({c for h in headers for c in h.channels})
    wanted = f"layer '{layer}'" if layer else "R, G, B channels"
    raise error(
        f"no {wanted} in this file; its layers: {', '.join(layers_of(available)) or '(none)'}; "
        f"its channels: {', '.join(available)}",
        file=headers[0].path if headers else None,
    )


def layers_of(channels: list[str]) -> list[str]:
    """Layer names as compositors list them: `rgba` for the unprefixed channels."""
    layers = {c.rsplit(".", 1)[0] if "." in c else "rgba" for c in channels}
    return sorted(layers, key=lambda name: (name != "rgba", name))


def _select_in(channels: list[str], layer: str) -> tuple[tuple[str, str, str], str | None] | None:
    if "," in layer:
        names = [n.strip() for n in layer.split(",")]
        if len(names) not in (3, 4):
            raise error(f"a channel list names 3 or 4 channels, '{layer}' names {len(names)}")
        if not all(n in channels for n in names):
            return None
        return (names[0], names[1], names[2]), (names[3] if len(names) == 4 else None)
    if layer in channels:  # a single channel: grey
        return (layer, layer, layer), None
    prefix = f"{layer}." if layer else ""
    by_suffix = {c[len(prefix) :].upper(): c for c in channels if c.startswith(prefix)}
    by_suffix = {k: v for k, v in by_suffix.items() if "." not in k}  # not nested layers
    if all(k in by_suffix for k in "RGB"):
        return (by_suffix["R"], by_suffix["G"], by_suffix["B"]), by_suffix.get("A")
    if "Y" in by_suffix:  # luminance-only images
        return (by_suffix["Y"],) * 3, by_suffix.get("A")
    return None
