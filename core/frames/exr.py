"""Reading and writing single OpenEXR files with OpenImageIO.

Windows follow OpenEXR: the *data window* is where pixels are stored, the *display window* is the
frame (the format, in Nuke's words). Both are kept as `Box` (x, y, width, height). Header
attributes are kept as `Attribute` (name, OIIO type string, value) so they can be written back
with the same type.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
import OpenImageIO as oiio

from ..errors import LatentmirrorError, error
from ..storage import require_regular_file, write_atomically

PIXEL_TYPES = ("half", "float")
# Header attributes of every frame latentmirror writes: the first says the pack wrote the file
# ("latentmirror <version>"; only such files are ever replaced), the second what made the frame
# (see nodes/provenance.py), so a resumed render keeps a frame only when it is still up to date.
WRITER_ATTRIBUTE = "latentmirror:writer"
FINGERPRINT_ATTRIBUTE = "latentmirror:fingerprint"
HALF_MAX = 65504.0

# A hostile or damaged header can claim any window; pixels are allocated per window, so each is
# checked against this cap first. 16k x 16k holds every real plate (and 8 GiB of float32 RGBA).
MAX_PIXELS_VARIABLE = "LATENTMIRROR_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 16384 * 16384


@dataclass(frozen=True)
class Compression:
    """One OpenEXR compression, as the saver offers it and the round-trip tests hold it to."""

    name: str  # OpenImageIO's (and the saver node's) name for it
    lossless_half: bool  # half pixels come back bit-exact
    lossless_float: bool  # float pixels come back bit-exact
    takes_level: bool  # the level comes from ExrWriteOptions.dwa_level
    # Where not lossless: the worst error the round-trip tests allow on smooth plate-like values
    # (0..4), relative to their range. Measured, with headroom; 0 where always lossless.
    max_relative_error: float
    description: str  # a few words for the saver's tooltip: how it compresses, what it suits

    def is_lossless(self, pixel_type: str) -> bool:
        return self.lossless_half if pixel_type == "half" else self.lossless_float


# Every compression the saver writes, in the order its choice list shows them. Adding one is one
# row here: the writer, the saver's choices and tooltip, and the round-trip tests read this table.
# fmt: off
COMPRESSIONS: dict[str, Compression] = {c.name: c for c in (
    #           name     lossless in   takes  worst error
    #                    half   float  level  where lossy  description
    Compression("zip",   True,  True,  False, 0,    "zlib over 16-line blocks, the usual choice"),
    Compression("zips",  True,  True,  False, 0,    "zlib line by line"),
    Compression("piz",   True,  True,  False, 0,    "wavelet, small for grainy plates"),
    Compression("dwaa",  False, False, True,  0.02, "DCT on colour (alpha exact), 32-line blocks"),
    Compression("dwab",  False, False, True,  0.02, "as dwaa in 256-line blocks, for whole frames"),
    Compression("pxr24", True,  False, False, 1e-4, "float rounded to 24 bits, then zlib"),
    Compression("b44",   False, True,  False, 0.02, "fixed-size 4x4 blocks of half, fast playback"),
    Compression("b44a",  False, True,  False, 0.02, "as b44, flat blocks stored smaller"),
    Compression("rle",   True,  True,  False, 0,    "run lengths, for flat mattes"),
    Compression("none",  True,  True,  False, 0,    "uncompressed"),
)}
# fmt: on


@dataclass(frozen=True)
class ExrWriteOptions:
    """How the pixels are stored: checked once, here, for every writer of EXR files."""

    pixel_type: str = "half"
    compression: str = "zip"
    dwa_level: float = 45.0  # OpenEXR's default; used by the compressions that take a level

    def __post_init__(self) -> None:
        if self.pixel_type not in PIXEL_TYPES:
            raise error(
                f"pixel type '{self.pixel_type}' is not one of {', '.join(PIXEL_TYPES)}",
                input="pixel_type",
            )
        if self.compression not in COMPRESSIONS:
            raise error(
                f"compression '{self.compression}' is not one of {', '.join(COMPRESSIONS)}",
                input="compression",
            )
        if not math.isfinite(self.dwa_level) or self.dwa_level < 0:
            raise error(f"DWA level {self.dwa_level} is not a number >= 0", input="dwa_level")

    @property
    def is_lossless(self) -> bool:
        return COMPRESSIONS[self.compression].is_lossless(self.pixel_type)

    def compression_attribute(self) -> str:
        """The header's compression as OIIO reads it: "dwaa:45" is DWAA at level 45."""
        if COMPRESSIONS[self.compression].takes_level:
            return f"{self.compression}:{self.dwa_level:g}"
        return self.compression


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
            try:
                headers.append(_header_of(path, inp.spec(), subimage))
            except UnicodeDecodeError:
                raise error("damaged header: names in it are not text", file=path) from None
            subimage += 1
        return headers
    finally:
        inp.close()


def incomplete_reason(path: str) -> str | None:
    """Why ``path`` is not a finished frame on disk (missing, its header does not read, or its
    pixels do not decode: a truncated or damaged file), or None when it is one. Every pixel of
    every part is decoded: a header alone does not prove the rest of the file is there."""
    if not os.path.isfile(path):
        return "missing"
    try:
        headers = read_headers(path)
        inp = _open(path)
    except LatentmirrorError as exc:
        return str(exc)
    try:
        for header in headers:
            pixels = None
            if inp.seek_subimage(header.subimage, 0):
                pixels = inp.read_image(header.subimage, 0, 0, len(header.channels), "float")
            if pixels is None or inp.has_error:
                return f"pixels do not decode (truncated or damaged): {inp.geterror()}"
    finally:
        inp.close()
    return None


def max_pixels() -> int:
    """The most pixels a window (or a sequence's canvas) may hold: $LATENTMIRROR_MAX_PIXELS, else
    :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise error(f"${MAX_PIXELS_VARIABLE} must be a whole number of pixels > 0, not '{text}'")
    return value


def check_window_size(window: Box, what: str, path: str) -> None:
    """Refuse, before anything is allocated for it, a window above :func:`max_pixels` (or an
    empty one: OpenEXR windows hold at least one pixel)."""
    cap = max_pixels()
    if window.width <= 0 or window.height <= 0:
        raise error(f"{what} {window} is empty (damaged header?)", file=path)
    if window.width * window.height > cap:
        raise error(
            f"{what} {window} is {window.width} x {window.height} pixels, above the cap of "
            f"{cap} pixels (damaged or hostile header?); if the plate is real, raise "
            f"${MAX_PIXELS_VARIABLE}",
            file=path,
        )


def check_header_windows(header: ExrHeader) -> None:
    """Both windows of one part within :func:`max_pixels`."""
    check_window_size(header.display_window, "display window", header.path)
    check_window_size(header.data_window, "data window", header.path)


def read_channels(path: str, header: ExrHeader, names: list[str]) -> np.ndarray:
    """The named channels of one part over its data window: float32 [height, width, len(names)]."""
    with closing(read_channel_rows(path, header, names, strip_bytes=None)) as whole:
        return next(whole)[1]


# Lines per chunk of each compression (OpenEXR's scanline blocks): strips of whole chunks, so no
# chunk is decoded twice. A compression not listed is read whole.
_LINES_PER_CHUNK = {"none": 1, "rle": 1, "zips": 1, "zip": 16, "pxr24": 16, "piz": 32,
                    "b44": 32, "b44a": 32, "dwaa": 32, "dwab": 256}  # fmt: skip
# A strip small enough to stay in the CPU's cache while the caller copies and checks it, which
# then costs little next to decoding; a whole frame would go through main memory twice more.
STRIP_BYTES = 2 * 2**20
# Writes go in bigger strips (a 1080p RGBA float frame is 33 MB): OpenEXR compresses the chunks of
# one call on its own threads, so small strips leave cores idle between calls, and the float-to-
# half conversion measured no cheaper in small strips (equal CPU seconds at 1080p).
WRITE_STRIP_BYTES = 64 * 2**20


def read_channel_rows(
    path: str, header: ExrHeader, names: list[str], strip_bytes: int | None = STRIP_BYTES
) -> Iterator[tuple[int, np.ndarray]]:
    """The named channels of one part, strip by strip of rows: (first row, counted from the data
    window's top; float32 [rows, width, len(names)]) pairs, top to bottom. A strip is whole
    chunks of about ``strip_bytes`` (None, a tiled file or an unknown compression: the frame in
    one strip). Each strip is a new array."""
    check_header_windows(header)
    inp = _open(path)
    try:
        if not inp.seek_subimage(header.subimage, 0):
            raise error(f"cannot seek to part {header.subimage}: {_error_text(inp)}", file=path)
        spec, window = inp.spec(), header.data_window
        order = [header.channels.index(n) for n in names]
        whole = strip_bytes is None or spec.tile_width or spec.deep
        step = window.height if whole else _strip_rows(header.compression, spec, strip_bytes)
        for top in range(0, window.height, step):
            rows = min(step, window.height - top)
            if step >= window.height:
                pixels = inp.read_image(header.subimage, 0, 0, len(header.channels), "float")
            else:
                first = window.y + top
                pixels = inp.read_scanlines(
                    header.subimage, 0, first, first + rows, 0, 0, len(header.channels), "float"
                )
            if pixels is None or inp.has_error:
                message = _error_text(inp)
                raise error(f"cannot read pixels (truncated or corrupt?): {message}", file=path)
            shape = (rows, window.width, len(header.channels))
            pixels = np.asarray(pixels, dtype=np.float32)
            if pixels.size != math.prod(shape):
                raise error(f"pixels do not fill the data window {window}", file=path)
            pixels = pixels.reshape(shape)
            if order == list(range(len(order))):  # the leading channels in order: a view
                yield top, pixels[..., : len(order)]
            else:
                yield top, pixels[..., order]
    finally:
        inp.close()


def _strip_rows(compression: str, spec: oiio.ImageSpec, strip_bytes: int) -> int:
    """Rows per strip of a scanline file: whole chunks of about ``strip_bytes`` of float pixels,
    at least one chunk; all its rows for a compression not in the table."""
    lines = _LINES_PER_CHUNK.get(compression.split(":")[0])  # OIIO's name: "dwaa:45"
    if lines is None:
        return spec.height
    row_bytes = spec.width * spec.nchannels * 4
    return lines * max(1, strip_bytes // (lines * row_bytes))


def write_exr(
    path: str,
    pixels: np.ndarray,
    channels: list[str],
    data_window: Box,
    display_window: Box,
    *,
    options: ExrWriteOptions | None = None,
    attributes: list[Attribute] = (),
) -> None:
    """Write one EXR atomically: to a temporary name in the same folder, then renamed into place.

    ``options`` default to half, zip. A killed process leaves at most a hidden temporary file,
    never a half-written frame; the next write of the same frame removes such leftovers
    (:func:`~..storage.write_atomically`).
    """
    options = options or ExrWriteOptions()
    spec = _spec_for(pixels, channels, data_window, display_window, options.pixel_type)
    for attribute in attributes:
        if attribute.name not in _STORAGE_ATTRIBUTES and not attribute.name.startswith("oiio:"):
            spec.attribute(attribute.name, oiio.TypeDesc(attribute.type), attribute.value)
    spec.attribute("compression", options.compression_attribute())
    if COMPRESSIONS[options.compression].takes_level:  # said explicitly too, as OpenEXR names it
        spec.attribute("openexr:dwaCompressionLevel", float(options.dwa_level))

    write_atomically(path, lambda temporary: _write_file(temporary, spec, pixels, path))


def _write_file(temporary: str, spec: oiio.ImageSpec, pixels: np.ndarray, path: str) -> None:
    out = oiio.ImageOutput.create(temporary)
    if out is None:
        raise error(f"OpenImageIO cannot write EXR: {oiio.geterror()}", file=path)
    ok = out.open(temporary, spec)
    step = _strip_rows(spec.get_string_attribute("compression"), spec, WRITE_STRIP_BYTES)
    for top in range(0, spec.height, step):  # strips: OpenImageIO converts each in the cache
        strip = np.ascontiguousarray(pixels[top : top + step], dtype=np.float32)
        ok = ok and out.write_scanlines(spec.y + top, spec.y + top + len(strip), 0, strip)
    message = out.geterror()
    ok = out.close() and ok
    if not ok:
        reason = message or out.geterror()
        raise error(f"writing failed: {reason}{_space_left(temporary)}", file=path)
    _check_tail_written(temporary, spec, path)


def _check_tail_written(temporary: str, spec: oiio.ImageSpec, path: str) -> None:
    """OpenEXR can report success when the disk filled up mid-write (the file's tail is lost,
    found only when someone reads it): decode the last rows, written last, before the frame
    takes its final name. One chunk, so it costs little."""
    inp = oiio.ImageInput.open(temporary)
    rows = None
    if inp is not None:
        last = spec.y + spec.height - 1
        rows = inp.read_scanlines(0, 0, last, last + 1, 0, 0, spec.nchannels, "float")
        rows = None if inp.has_error else rows
        inp.close()
    if rows is None:
        raise error(
            f"writing failed: the file came out incomplete{_space_left(temporary)}", file=path
        )


def _space_left(path: str) -> str:
    """A hint when the volume is (nearly) full: OpenImageIO's message does not say so."""
    try:
        stats = os.statvfs(os.path.dirname(path) or ".")
    except OSError:
        return ""
    free = stats.f_bavail * stats.f_frsize
    return f" (the disk is full: {free // 1024} KB free)" if free < 16 * 2**20 else ""


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


def _open(path: str) -> oiio.ImageInput:
    require_regular_file(path, "frame")
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise error(f"cannot open as an image: {_error_text(oiio)}", file=path)
    if inp.format_name() != "openexr":
        inp.close()
        raise error(f"is a {inp.format_name()} file, not OpenEXR", file=path)
    return inp


def _error_text(source) -> str:
    """``source.geterror()`` (an ImageInput, or the oiio module): a damaged file can put bytes
    in OpenImageIO's message that are not UTF-8."""
    try:
        return source.geterror() or "unknown error"
    except UnicodeDecodeError:
        return "OpenImageIO's message is not readable text"


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
