"""Reading and writing single OpenEXR files with OpenImageIO.

Windows follow OpenEXR: the *data window* is where pixels are stored, the *display window* is the
frame (the format, in Nuke's words). Both are kept as `Box` (x, y, width, height). Header
attributes are kept as `Attribute` (name, OIIO type string, value) so they can be written back
with the same type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import OpenImageIO as oiio

from ..errors import error
from ..storage import write_atomically

COMPRESSIONS = ("zip", "zips", "piz", "dwaa", "dwab", "pxr24", "b44", "b44a", "rle", "none")
PIXEL_TYPES = ("half", "float")
HALF_MAX = 65504.0

# Attributes that describe how a file is stored, not the image: never copied from a source header.
_STORAGE_ATTRIBUTES = {
    "compression",
    "openexr:dwaCompressionLevel",
    "openexr:zipCompressionLevel",
    "openexr:chunkCount",
    "tiles",
    "type",
    "version",
    "chunkCount",
}


@dataclass(frozen=True)
class Box:
    """A pixel rectangle: origin (x, y) and size, as OIIO's ImageSpec has them."""

    x: int
    y: int
    width: int
    height: int

    @property
    def x_end(self) -> int:
        return self.x + self.width

    @property
    def y_end(self) -> int:
        return self.y + self.height

    def union(self, other: Box) -> Box:
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Box(x, y, max(self.x_end, other.x_end) - x, max(self.y_end, other.y_end) - y)

    def __str__(self) -> str:  # as OpenEXR prints windows: (xmin, ymin) - (xmax, ymax)
        return f"({self.x}, {self.y}) - ({self.x_end - 1}, {self.y_end - 1})"


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # an OIIO TypeDesc string: "string", "float", "timecode", "matrix", ...
    value: object


@dataclass
class ExrHeader:
    path: str
    data_window: Box
    display_window: Box
    channels: list[str]
    channel_types: list[str]
    compression: str
    attributes: list[Attribute] = field(default_factory=list)
    subimage: int = 0

    def attribute(self, name: str, default: object = None) -> object:
        return next((a.value for a in self.attributes if a.name == name), default)

    @property
    def pixel_type(self) -> str:
        kinds = sorted(set(self.channel_types))
        return kinds[0] if len(kinds) == 1 else "mixed (" + ", ".join(kinds) + ")"


def read_headers(path: str) -> list[ExrHeader]:
    """Every part (subimage) of an EXR file, without pixels."""
    inp = _open(path)
    try:
        headers = []
        subimage = 0
        while inp.seek_subimage(subimage, 0):
            headers.append(_header_of(path, inp.spec(), subimage))
            subimage += 1
        return headers
    finally:
        inp.close()


def read_channels(path: str, header: ExrHeader, names: list[str]) -> np.ndarray:
    """The named channels of one part over its data window: float32 [height, width, len(names)]."""
    inp = _open(path)
    try:
        if not inp.seek_subimage(header.subimage, 0):
            raise error(f"cannot seek to part {header.subimage}: {inp.geterror()}", file=path)
        pixels = inp.read_image(header.subimage, 0, 0, len(header.channels), "float")
        if pixels is None or inp.has_error:
            raise error(f"cannot read pixels (truncated or corrupt?): {inp.geterror()}", file=path)
    finally:
        inp.close()
    pixels = np.asarray(pixels, dtype=np.float32).reshape(
        header.data_window.height, header.data_window.width, len(header.channels)
    )
    return pixels[..., [header.channels.index(n) for n in names]]


def write_exr(
    path: str,
    pixels: np.ndarray,
    channels: list[str],
    data_window: Box,
    display_window: Box,
    pixel_type: str = "half",
    compression: str = "zip",
    dwa_level: float = 45.0,
    attributes: list[Attribute] = (),
) -> None:
    """Write one EXR atomically: to a temporary name in the same folder, then renamed into place.

    A killed process leaves at most a hidden temporary file, never a half-written frame; the
    next write of the same frame removes such leftovers (:func:`~..storage.write_atomically`).
    """
    if pixel_type not in PIXEL_TYPES:
        raise error(f"pixel type '{pixel_type}' is not one of {', '.join(PIXEL_TYPES)}", file=path)
    if compression not in COMPRESSIONS:
        raise error(
            f"compression '{compression}' is not one of {', '.join(COMPRESSIONS)}", file=path
        )
    spec = _spec_for(pixels, channels, data_window, display_window, pixel_type)
    for attribute in attributes:
        if attribute.name not in _STORAGE_ATTRIBUTES and not attribute.name.startswith("oiio:"):
            spec.attribute(attribute.name, oiio.TypeDesc(attribute.type), attribute.value)
    spec.attribute("compression", _compression_name(compression, dwa_level))
    if compression in ("dwaa", "dwab"):
        spec.attribute("openexr:dwaCompressionLevel", float(dwa_level))

    write_atomically(path, lambda temporary: _write_file(temporary, spec, pixels, path))


def _write_file(temporary: str, spec: oiio.ImageSpec, pixels: np.ndarray, path: str) -> None:
    out = oiio.ImageOutput.create(temporary)
    if out is None:
        raise error(f"OpenImageIO cannot write EXR: {oiio.geterror()}", file=path)
    ok = out.open(temporary, spec)
    ok = ok and out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    message = out.geterror()
    ok = out.close() and ok
    if not ok:
        raise error(f"writing failed: {message or out.geterror()}", file=path)


def _spec_for(
    pixels: np.ndarray, channels: list[str], data: Box, display: Box, pixel_type: str
) -> oiio.ImageSpec:
    height, width, count = pixels.shape
    if (width, height) != (data.width, data.height) or count != len(channels):
        raise ValueError(f"pixels {pixels.shape} do not fit data window {data} / {channels}")
    spec = oiio.ImageSpec(width, height, count, pixel_type)
    spec.x, spec.y = data.x, data.y
    spec.full_x, spec.full_y = display.x, display.y
    spec.full_width, spec.full_height = display.width, display.height
    spec.channelnames = tuple(channels)
    spec.alpha_channel = channels.index("A") if "A" in channels else -1
    return spec


def _compression_name(compression: str, dwa_level: float) -> str:
    # OIIO reads "dwaa:45" as DWAA at level 45; the separate attribute above says it explicitly too.
    return f"{compression}:{dwa_level:g}" if compression in ("dwaa", "dwab") else compression


def _open(path: str) -> oiio.ImageInput:
    if not os.path.exists(path):
        raise error("file does not exist", file=path)
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise error(f"cannot open as an image: {oiio.geterror() or 'unknown error'}", file=path)
    if inp.format_name() != "openexr":
        inp.close()
        raise error(f"is a {inp.format_name()} file, not OpenEXR", file=path)
    return inp


def _header_of(path: str, spec: oiio.ImageSpec, subimage: int) -> ExrHeader:
    formats = spec.channelformats or [spec.format] * spec.nchannels
    return ExrHeader(
        path=path,
        data_window=Box(spec.x, spec.y, spec.width, spec.height),
        display_window=Box(spec.full_x, spec.full_y, spec.full_width, spec.full_height),
        channels=list(spec.channelnames),
        channel_types=[str(f) for f in formats],
        compression=str(spec.getattribute("compression") or "none"),
        attributes=[Attribute(a.name, str(a.type), a.value) for a in spec.extra_attribs],
        subimage=subimage,
    )
