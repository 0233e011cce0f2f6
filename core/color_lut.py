"""OCIO transforms at device speed: the exact processor baked into a shaper + 3D LUT.

The LUT is exact sampling: OCIO's CPU processor applied to a grid of shaper-space values. Each
side of the LUT has a shaper chosen by the colour space's encoding:

- scene-linear spaces (ACEScg, lin_rec709 ...) are sampled and stored in ACEScct, a log curve
  with a linear toe, over ``[-LINEAR_FLOOR, LINEAR_CEILING]`` on the input side;
- every other space (display-referred, sRGB-encoded, log ...) is sampled over ``[0, 1]`` as it is.

Cells whose probes miss OCIO by more than ``CELL_TOLERANCE`` in display space are flagged at the
bake. A baked LUT is kept in memory and on disk (:mod:`.lut_cache`): a later process reads it in
a fraction of a second instead of baking again.

Two backends apply it with tetrahedral interpolation. On the CPU (``ocio``), OCIO's own
processor runs the shaper, the LUT and the decode on packed RGBA chunks on all cores, numpy
finding the pixels in flagged cells in between. Elsewhere (``torch``: CUDA), a few tensor ops
on the image's device. Either way pixels outside the LUT's input range, NaN/Inf and pixels in
flagged cells are never clamped or approximated: they go through the exact CPU processor, so
the LUT only changes values by its (measured) interpolation error.

>>> import torch
>>> from latentmirror.core import color
>>> cfg = color.resolve_config("ocio://studio-config-latest")
>>> grey = torch.full((1, 1, 3), 0.18)
>>> out = apply_lut_transform(grey, cfg, "lin_rec709", "sRGB Encoded Rec.709 (sRGB)")
>>> round(float(out[0, 0, 0]), 3)
0.461
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import PyOpenColorIO as ocio
import torch
import torch.nn.functional as F

from . import color, lut_cache
from .caches import register_cache
from .errors import error

DEFAULT_LUT_SIZE = 129  # 65 needs 2-5x more pixels on the exact path for the same error
LINEAR_FLOOR = 2.0**-7  # scene-linear inputs below -LINEAR_FLOOR go through the exact path
LINEAR_CEILING = 2.0**10  # ... and above LINEAR_CEILING (ACEScct's linear toe ends at 2^-7)

# ACEScct (S-2016-001): a log2 curve with a linear toe; invertible over all reals
_CCT_A, _CCT_B, _CCT_BREAK_LIN = 10.5402377416545, 0.0729055341958355, 0.0078125
_CCT_BREAK = 0.155251141552511


def _to_cct(x: torch.Tensor) -> torch.Tensor:
    logged = (torch.log2(x.clamp_min(_CCT_BREAK_LIN)) + 9.72) / 17.52
    return torch.where(x <= _CCT_BREAK_LIN, _CCT_A * x + _CCT_B, logged)


def _from_cct(y: torch.Tensor) -> torch.Tensor:
    return torch.where(y <= _CCT_BREAK, (y - _CCT_B) / _CCT_A, torch.exp2(y * 17.52 - 9.72))


@dataclass(frozen=True)
class Shaper:
    """How one side of the LUT encodes values: ``log`` (ACEScct) or ``identity``."""

    kind: str
    low: float  # the input range, in linear values (only the input side uses it)
    high: float

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return _to_cct(x) if self.kind == "log" else x

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return _from_cct(y) if self.kind == "log" else y

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Input values -> [0, 1] grid coordinates."""
        low, high = self.encode(torch.tensor([self.low, self.high], dtype=torch.float64)).tolist()
        return (self.encode(x) - low) / (high - low)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        low, high = self.encode(torch.tensor([self.low, self.high], dtype=torch.float64)).tolist()
        return self.decode(u * (high - low) + low)

    def ocio_to_unit(self) -> ocio.Transform | None:
        """:meth:`to_unit` as an OCIO transform (None: the identity)."""
        if self.kind != "log":
            assert (self.low, self.high) == (0.0, 1.0), "identity shapers span [0, 1]"
            return None
        low, high = self.encode(torch.tensor([self.low, self.high], dtype=torch.float64)).tolist()
        return _ocio_cct((1.0 / 17.52) / (high - low), (9.72 / 17.52 - low) / (high - low))

    def ocio_decode(self) -> ocio.Transform | None:
        """:meth:`decode` as an OCIO transform (None: the identity)."""
        if self.kind != "log":
            return None
        return _ocio_cct(1.0 / 17.52, 9.72 / 17.52, ocio.TRANSFORM_DIR_INVERSE)


def _ocio_cct(slope: float, offset: float, direction=ocio.TRANSFORM_DIR_FORWARD) -> ocio.Transform:
    """ACEScct (scaled by ``slope`` and ``offset`` on its log side) as OCIO's LogCamera: OCIO
    derives the toe from the break so that it meets the log curve with the same slope, which
    is ACEScct's own toe."""
    return ocio.LogCameraTransform(
        linSideBreak=[_CCT_BREAK_LIN] * 3,
        base=2.0,
        logSideSlope=[slope] * 3,
        logSideOffset=[offset] * 3,
        direction=direction,
    )


def shaper_for(cfg: color.ColorConfig, target: str | color.DisplayView) -> Shaper:
    """The shaper of a colour space (or a display/view's display colour space)."""
    if isinstance(target, color.DisplayView):
        return Shaper("identity", 0.0, 1.0)
    space = cfg.config.getColorSpace(target)
    scene = space.getReferenceSpaceType() == ocio.REFERENCE_SPACE_SCENE and not space.isData()
    encoding = space.getEncoding() if hasattr(space, "getEncoding") else ""
    if scene and encoding in ("scene-linear", ""):
        return Shaper("log", -LINEAR_FLOOR, LINEAR_CEILING)
    return Shaper("identity", 0.0, 1.0)


@dataclass(frozen=True)
class BakedLUT:
    table: torch.Tensor  # [size, size, size, 3]: index [r, g, b], values in the output shaper
    exact_cells: torch.Tensor  # [(size-1)^3] bool: cells that interpolate badly take the exact path
    source: Shaper
    target: Shaper

    @property
    def size(self) -> int:
        return self.table.shape[0]


def baked_lut(
    cfg: color.ColorConfig,
    src: str,
    dst: str | color.DisplayView,
    inverse: bool = False,
    size: int = DEFAULT_LUT_SIZE,
) -> BakedLUT:
    """Sample OCIO's exact processor on a ``size``^3 grid of the input shaper (on the CPU);
    cached per (config, src, dst, direction, size) however the arguments are given."""
    return _baked_lut(cfg, src, dst, inverse, size)


@functools.lru_cache(maxsize=16)
def _baked_lut(
    cfg: color.ColorConfig, src: str, dst: str | color.DisplayView, inverse: bool, size: int
) -> BakedLUT:
    source, target = shaper_for(cfg, src), shaper_for(cfg, dst)
    if inverse:
        source, target = target, source
    key = _disk_key(cfg, src, dst, inverse, size, source, target)
    stored = lut_cache.load_entry(key)
    if stored is not None:
        return BakedLUT(stored["table"], stored["exact_cells"].bool(), source, target)
    axis = source.from_unit(torch.linspace(0.0, 1.0, size, dtype=torch.float64))
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
    sampled = _apply_in_chunks(grid.float().numpy(), cfg, src, dst, inverse)
    table = target.encode(torch.from_numpy(sampled).double()).float().contiguous()
    exact_cells = _cells_off_by(table, cfg, src, dst, inverse, source, target)
    lut_cache.store_entry(key, {"table": table, "exact_cells": exact_cells.to(torch.uint8)})
    return BakedLUT(table, exact_cells, source, target)


LUT_PACK_VERSION = 1  # raise when the way a LUT is baked changes: older disk entries are misses


def _disk_key(cfg, src: str, dst, inverse: bool, size: int, source, target) -> str:
    """Everything the baked values depend on: the config's content (OCIO's cache id: its
    serialized transforms and context), OCIO's version, the transform, the shapers, the
    size and how cells are judged."""
    return lut_cache.lut_key(
        pack=LUT_PACK_VERSION,
        ocio=ocio.__version__,
        config=cfg.config.getCacheID(),
        source_space=src,
        target=str(dst),
        inverse=inverse,
        size=size,
        shapers=[source, target],
        tolerance=CELL_TOLERANCE,
        probes=CELL_PROBES,
    )


CELL_TOLERANCE = 7e-4  # display-space error at a cell's probes above which the cell is exact
# where each cell is probed (fractions of the cell): its centre and points inside its tetrahedra
CELL_PROBES = [(0.5, 0.5, 0.5), (0.75, 0.5, 0.25), (0.25, 0.75, 0.5), (0.5, 0.25, 0.75)]


def _cells_off_by(table, cfg, src, dst, inverse, source: Shaper, target: Shaper) -> torch.Tensor:
    """The cells where the LUT misses a probe by more than the tolerance in display space (they
    hold a kink or a steep part of the transform: ACES 2.0's gamut compression, a sign change of
    an encoding). For an inverse transform both results are mapped back through the forward one.
    """
    n = table.shape[0]
    corners_1d = torch.arange(n - 1, dtype=torch.float64)
    corners = torch.stack(torch.meshgrid(corners_1d, corners_1d, corners_1d, indexing="ij"), -1)
    probes = torch.tensor(CELL_PROBES, dtype=torch.float64)
    probes_at = ((corners.reshape(-1, 1, 3) + probes) / (n - 1)).reshape(-1, 3)
    exact = _apply_in_chunks(source.from_unit(probes_at).float().numpy(), cfg, src, dst, inverse)
    interpolated = target.decode(tetrahedral(table.double(), probes_at)).float().numpy()
    off = display_error(interpolated, exact, cfg, src, dst, inverse).reshape(-1, len(CELL_PROBES))
    off = off.max(axis=1)
    return torch.from_numpy(~(off <= CELL_TOLERANCE))  # NaN counts as off


def display_error(
    approximate: np.ndarray, exact: np.ndarray, cfg, src: str, dst, inverse: bool
) -> np.ndarray:
    """Per pixel, the largest channel error in display space, relative above 1.

    For an inverse transform both results are mapped back through the exact forward transform.
    """
    if inverse:
        approximate = _apply_in_chunks(approximate, cfg, src, dst, False)
        exact = _apply_in_chunks(exact, cfg, src, dst, False)
    return (np.abs(approximate - exact) / np.maximum(1.0, np.abs(exact))).max(axis=-1)


@functools.lru_cache(maxsize=16)
def _lut_on_device(
    cfg: color.ColorConfig, src: str, dst, inverse: bool, size: int, device: str
) -> BakedLUT:
    lut = baked_lut(cfg, src, dst, inverse, size)
    return BakedLUT(lut.table.to(device), lut.exact_cells.to(device), lut.source, lut.target)


register_cache("OCIO LUTs", _baked_lut)
register_cache("OCIO LUTs on devices", _lut_on_device)


def tetrahedral(table: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Tetrahedral interpolation of ``table`` [N, N, N, C] at ``coords`` [P, 3] in [0, 1].

    The cube around a point splits into six tetrahedra along its main diagonal; the one holding
    the point is the path from corner 000 to 111 that steps first along the axis of the largest
    fraction f1, then the middle one f2, then the smallest f3, weighted (1-f1, f1-f2, f2-f3, f3).
    No sort: the second corner is the far corner less the step of the smallest fraction.
    """
    n = table.shape[0]
    flat = table.reshape(n * n * n, -1)
    scaled = coords.clamp(0.0, 1.0).mul_(n - 1)
    base = scaled.floor().clamp_(max=n - 2)
    fractions = scaled.sub_(base)
    strides = torch.tensor([n * n, n, 1], dtype=coords.dtype, device=coords.device)
    corner = (base @ strides).long()  # exact: n^3 < 2^24
    f1, largest = fractions.max(dim=1)
    f3, smallest = fractions.min(dim=1)
    f2 = fractions.sum(dim=1).sub_(f1).sub_(f3)
    strides = strides.long()
    last = corner + int(strides.sum())
    corners = torch.cat([corner, corner + strides[largest], last - strides[smallest], last])
    values = flat.index_select(0, corners).view(4, -1, flat.shape[1])  # one gather
    weights = torch.stack([1.0 - f1, f1 - f2, f2.sub_(f3), f3])[..., None]
    return (values * weights).sum(dim=0)


def trilinear(table: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation (the reference for :func:`tetrahedral`), via ``grid_sample``."""
    volume = table.permute(3, 0, 1, 2)[None]  # [1, C, R, G, B]: grid_sample's x is the last axis
    grid = (coords.clamp(0.0, 1.0) * 2.0 - 1.0).flip(-1)[None, :, None, None, :]
    sampled = F.grid_sample(volume, grid, mode="bilinear", align_corners=True)
    return sampled[0, :, :, 0, 0].T


def _cell_index(coords: torch.Tensor, n: int) -> torch.Tensor:
    cell = (coords.clamp(0.0, 1.0) * (n - 1)).floor().clamp(max=n - 2).long()
    return (cell * torch.tensor([(n - 1) ** 2, n - 1, 1], device=coords.device)).sum(dim=1)


INTERPOLATIONS = {"tetrahedral": tetrahedral, "trilinear": trilinear}
BACKENDS = ("ocio", "torch")  # OCIO's CPU processor runs the LUT; torch ops on any device


def apply_lut_transform(
    pixels: torch.Tensor,
    cfg: color.ColorConfig,
    src: str,
    dst: str | color.DisplayView,
    inverse: bool = False,
    size: int = DEFAULT_LUT_SIZE,
    interpolation: str = "tetrahedral",
    backend: str | None = None,
) -> torch.Tensor:
    """:func:`color.apply_transform` through the baked LUT, on ``pixels``' device.

    ``pixels`` is [..., 3] or [..., 4] (alpha passes unchanged). Pixels outside the LUT's input
    range, non-finite ones and those in cells the LUT misses take the exact CPU path. The
    ``backend`` is ``ocio`` (OCIO's CPU processor running the LUT, on all cores; the default
    on the CPU) or ``torch`` (the default on other devices). Returns a new float32 tensor.
    """
    channels = pixels.shape[-1]
    if channels not in (3, 4):
        raise error(f"colour transforms need 3 or 4 channels, got {channels}")
    if interpolation not in INTERPOLATIONS:
        raise error(f"interpolation '{interpolation}' is not one of {', '.join(INTERPOLATIONS)}")
    backend = backend or ("ocio" if pixels.device.type == "cpu" else "torch")
    if backend not in BACKENDS:
        raise error(f"LUT backend '{backend}' is not one of {', '.join(BACKENDS)}")
    source_name = color.find_colorspace(cfg, src)
    target = color.target_of(cfg, dst)
    if backend == "ocio":
        lut = _lut_in_ocio(cfg, source_name, target, inverse, size, interpolation)
        flat = pixels.detach().to("cpu", torch.float32).numpy().reshape(-1, channels)
        out = _apply_in_ocio(flat, lut, cfg, source_name, target, inverse)
        return torch.from_numpy(out.reshape(pixels.shape)).to(pixels.device)
    lut = _lut_on_device(cfg, source_name, target, inverse, size, str(pixels.device))
    out = pixels.to(torch.float32).clone()
    rgb = out[..., :3].reshape(-1, 3)  # a copy when there is alpha: written back below
    for start in range(0, len(rgb), CHUNK_PIXELS):  # bounded memory for long batches
        chunk = rgb[start : start + CHUNK_PIXELS]
        chunk[:] = _through_lut(chunk, lut, interpolation, cfg, source_name, target, inverse)
    out[..., :3] = rgb.reshape(out[..., :3].shape)
    return out


CHUNK_PIXELS = 1 << 21  # about one 1080p frame


def _through_lut(rgb, lut: BakedLUT, interpolation: str, cfg, src, dst, inverse) -> torch.Tensor:
    inside = ((rgb >= lut.source.low) & (rgb <= lut.source.high)).all(dim=1)
    coords = lut.source.to_unit(rgb).nan_to_num_(0.0)  # NaN pixels take the exact path below
    result = lut.target.decode(INTERPOLATIONS[interpolation](lut.table, coords))
    inside &= ~lut.exact_cells[_cell_index(coords, lut.size)]
    outside = (~inside).nonzero()[:, 0]
    if outside.numel():  # out of range, NaN/Inf, or in a cell the LUT misses
        exact = _apply_in_chunks(rgb[outside].cpu().numpy(), cfg, src, dst, inverse)
        result[outside] = torch.from_numpy(exact).to(result.device)
    return result


# ----------------------------------------------------------------------------------------------
# The CPU backend: OCIO's own processor runs the baked LUT (vectorised, and it releases the GIL,
# so chunks of pixels run on all cores). Measured per 1080p frame on one core: 10 ms for the 3D
# LUT and 10 ms for the ACEScct decode on RGBA buffers (RGB buffers cost 5x: OCIO repacks them).


@dataclass(frozen=True)
class OcioLUT:
    """A baked LUT as OCIO CPU processors, the input range it covers and its flagged cells."""

    encode: ocio.CPUProcessor | None  # input values -> grid coordinates in [0, 1] (None: same)
    lookup: ocio.CPUProcessor  # grid coordinates -> the LUT's output shaper
    decode: ocio.CPUProcessor | None  # the output shaper -> output values (None: the identity)
    low: float
    high: float
    # BakedLUT's flags [(size-1)^3], padded to size^3 by repeating each axis's last cell: a
    # coordinate of exactly 1 then finds its cell without a clamp
    exact_cells: np.ndarray
    cells_per_side: int


_OCIO_INTERPOLATIONS = {"tetrahedral": ocio.INTERP_TETRAHEDRAL, "trilinear": ocio.INTERP_LINEAR}


@functools.lru_cache(maxsize=16)
def _lut_in_ocio(
    cfg: color.ColorConfig, src: str, dst, inverse: bool, size: int, interpolation: str
) -> OcioLUT:
    lut = baked_lut(cfg, src, dst, inverse, size)
    lut3d = ocio.Lut3DTransform(gridSize=lut.size)  # data: [r, g, b] with b fastest, as ours
    lut3d.setInterpolation(_OCIO_INTERPOLATIONS[interpolation])
    lut3d.setData(lut.table.numpy().reshape(-1))
    encode, decode = lut.source.ocio_to_unit(), lut.target.ocio_decode()
    return OcioLUT(
        encode=_cpu_processor(encode, ocio_fast_log=False) if encode is not None else None,
        lookup=_cpu_processor(lut3d, ocio_fast_log=False),
        decode=_cpu_processor(decode, ocio_fast_log=True) if decode is not None else None,
        low=lut.source.low,
        high=lut.source.high,
        exact_cells=_padded_cells(lut.exact_cells.numpy(), lut.size - 1),
        cells_per_side=lut.size - 1,
    )


def _padded_cells(flags: np.ndarray, cells: int) -> np.ndarray:
    cube = flags.reshape(cells, cells, cells)
    return np.pad(cube, ((0, 1), (0, 1), (0, 1)), mode="edge").reshape(-1)


def _cpu_processor(transform: ocio.Transform, ocio_fast_log: bool) -> ocio.CPUProcessor:
    """A processor from a config of its own with OCIO's processor cache off: that cache tells
    3D LUTs of one size apart by too little of their data, and would hand back another LUT.
    OCIO's fast log/exp approximations (relative error about 5e-6) suit the output's decode
    (twice as fast); the input's shaper goes exact, as an error there is magnified by the
    LUT's slope."""
    config = ocio.Config.CreateRaw()
    config.setProcessorCacheFlags(ocio.PROCESSOR_CACHE_OFF)
    flags = int(ocio.OPTIMIZATION_DEFAULT) | int(ocio.OPTIMIZATION_FAST_LOG_EXP_POW)
    if not ocio_fast_log:
        flags &= ~int(ocio.OPTIMIZATION_FAST_LOG_EXP_POW)
    processor = config.getProcessor(transform)
    return processor.getOptimizedCPUProcessor(ocio.OptimizationFlags(flags))


register_cache("OCIO LUTs as OCIO processors", _lut_in_ocio)


OCIO_CHUNK_PIXELS = 1 << 15  # 512 kB of RGBA floats: a chunk stays in the cache between steps


def _apply_in_ocio(flat: np.ndarray, lut: OcioLUT, cfg, src: str, dst, inverse: bool):
    """``flat`` [N, C] through the LUT in chunks of pixels, one chunk per core at a time."""
    flat = np.ascontiguousarray(flat)
    out = np.empty_like(flat)
    if flat.shape[1] == 4:
        out[:, 3] = flat[:, 3]

    def run(start: int) -> None:
        end = start + OCIO_CHUNK_PIXELS
        _ocio_chunk(flat[start:end], out[start:end], lut, cfg, src, dst, inverse)

    starts = range(0, len(flat), OCIO_CHUNK_PIXELS)
    workers = min(len(starts), os.cpu_count() or 1)
    if workers <= 1:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, starts))  # list(): a worker's exception is raised here
    return out


def _ocio_chunk(pixels: np.ndarray, out: np.ndarray, lut: OcioLUT, cfg, src, dst, inverse) -> None:
    """``pixels`` [n, 3 or 4] (C-contiguous) through the LUT into ``out``'s RGB."""
    rgba = _scratch(len(pixels))  # OCIO's fast path is packed RGBA float (RGB costs 5x)
    _rgb_items(rgba)[:] = _rgb_items(pixels)
    exact = _outside(rgba, lut.low, lut.high)
    if lut.encode is not None:
        lut.encode.applyRGBA(rgba)
    exact |= _in_exact_cells(rgba, lut)
    lut.lookup.applyRGBA(rgba)
    if lut.decode is not None:
        lut.decode.applyRGBA(rgba)
    _rgb_items(out)[:] = _rgb_items(rgba)
    rows = np.flatnonzero(exact)
    if rows.size:
        out[rows, :3] = color.apply_transform(pixels[rows, :3], cfg, src, dst, inverse)


def _in_exact_cells(coords: np.ndarray, lut: OcioLUT) -> np.ndarray:
    """Per pixel of ``coords`` [n, 4] (grid coordinates in RGB, alpha 0): whether its cell (as
    :func:`_cell_index` finds it) is flagged. A pixel inside the LUT's range has coordinates in
    [0, 1] (a shaper's rounding may step below 0: raised to 0); out-of-range and NaN pixels,
    already sent to the exact path, land in some cell (``take`` clips any index)."""
    cells = lut.cells_per_side
    corner = np.multiply(coords, np.float32(cells))
    np.floor(corner, out=corner)
    np.fmax(corner, 0.0, out=corner)  # 1 needs no clamp: the flags are padded
    side = cells + 1
    index = corner @ np.array([side * side, side, 1, 0], np.float32)  # exact: < 2^24
    with np.errstate(invalid="ignore"):  # NaN or huge: any index, clipped
        return np.take(lut.exact_cells, index.astype(np.int32), mode="clip")


def _rgb_items(pixels: np.ndarray) -> np.ndarray:
    """A C-contiguous [n, 3 or 4] float32 array's RGB as n items of 12 bytes: copied so, RGB to
    RGBA and back cost half of a float-by-float copy."""
    items = pixels.view(_RGB_ITEM if pixels.shape[1] == 3 else _RGBA_ITEM).reshape(-1)
    return items if pixels.shape[1] == 3 else items["rgb"]


_RGB_ITEM = np.dtype("V12")
_RGBA_ITEM = np.dtype([("rgb", "V12"), ("alpha", "V4")])


_scratch_buffers = threading.local()


def _scratch(pixels: int) -> np.ndarray:
    """This thread's RGBA buffer (alpha 0, never written by the LUT's processors): fresh memory
    for every chunk would cost more in page faults than OCIO takes for the LUT."""
    buffer = getattr(_scratch_buffers, "rgba", None)
    if buffer is None or len(buffer) < pixels:
        buffer = _scratch_buffers.rgba = np.zeros((max(pixels, OCIO_CHUNK_PIXELS), 4), np.float32)
    return buffer[:pixels]


def _outside(rgba: np.ndarray, low: float, high: float) -> np.ndarray:
    """Per pixel: a channel outside [low, high], or NaN (the alpha column holds 0)."""
    if (low, high) == (0.0, 1.0):  # one pass: as unsigned integers, floats in [+0, 1] are the
        return _any_channel(rgba.view(np.uint32) > _ONE_BITS)  # smallest (-0 goes exact: fine)
    return _any_channel(~((rgba >= low) & (rgba <= high)))


_ONE_BITS = np.float32(1.0).view(np.uint32)


def _any_channel(mask: np.ndarray) -> np.ndarray:
    """[N, 4] bool -> [N]: whether any of a pixel's four is set (its four bytes read as one)."""
    return mask.view(np.uint32)[:, 0] != 0


def apply_exact_frames(
    frames: np.ndarray,
    cfg: color.ColorConfig,
    src: str,
    dst: str | color.DisplayView,
    inverse: bool = False,
    workers: int | None = None,
) -> np.ndarray:
    """:func:`color.apply_transform` over a batch [B, ..., C], one frame per worker thread.

    OCIO releases the GIL while it processes, so frames run in parallel on the CPU cores.
    """
    workers = workers or min(len(frames), os.cpu_count() or 1) or 1
    if workers <= 1 or len(frames) <= 1:
        return color.apply_transform(frames, cfg, src, dst, inverse=inverse)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda f: color.apply_transform(f, cfg, src, dst, inverse), frames))
    return np.stack(done)


def _apply_in_chunks(pixels: np.ndarray, cfg, src: str, dst, inverse: bool) -> np.ndarray:
    """The exact transform of many pixels [..., 3] on all cores (for baking)."""
    chunks = np.array_split(pixels.reshape(-1, 3), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        done = list(pool.map(lambda c: color.apply_transform(c, cfg, src, dst, inverse), chunks))
    return np.concatenate(done).reshape(pixels.shape)


def lut_error(
    pixels: np.ndarray, cfg: color.ColorConfig, src: str, dst, inverse: bool = False, **lut_options
) -> np.ndarray:
    """Per pixel, the display-space error of :func:`apply_lut_transform` against OCIO's exact
    processor (see :func:`display_error`)."""
    dst = color.target_of(cfg, dst)
    approximate = apply_lut_transform(
        torch.from_numpy(pixels), cfg, src, dst, inverse, **lut_options
    )
    exact = color.apply_transform(pixels, cfg, src, dst, inverse)
    return display_error(approximate.numpy(), exact, cfg, src, dst, inverse)


def full_range_samples(cfg: color.ColorConfig, space, count: int, seed: int = 0) -> np.ndarray:
    """Test colours over the whole range a LUT input in ``space`` may see.

    Scene-linear: magnitudes log-uniform from 1e-4 to 100, hues with saturated and out-of-gamut
    (negative) components. Other spaces: uniform in [0, 1] plus the cube's faces (saturated).
    """
    rng = np.random.default_rng(seed)
    if shaper_for(cfg, color.target_of(cfg, space)).kind == "log":
        magnitude = np.exp(rng.uniform(np.log(1e-4), np.log(100.0), (count, 1)))
        hue = rng.uniform(-0.15, 1.0, (count, 3))
        hue /= np.maximum(hue.max(axis=1, keepdims=True), 1e-3)
        return (magnitude * hue).astype(np.float32)
    inside = rng.uniform(0.0, 1.0, (count - count // 4, 3))
    faces = rng.uniform(0.0, 1.0, (count // 4, 3))
    faces[np.arange(len(faces)), rng.integers(0, 3, len(faces))] = rng.integers(0, 2, len(faces))
    return np.concatenate([inside, faces]).astype(np.float32)
