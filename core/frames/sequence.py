"""Loading and saving frame sequences: frame numbers from disk, missing-frame policies, windows,
header attributes, atomic writes and plate protection."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, color
from ..errors import LatentmirrorError, context, error
from .channels import select_channels
from .exr import (
    FINGERPRINT_ATTRIBUTE,
    HALF_MAX,
    MAX_PIXELS_VARIABLE,
    WRITER_ATTRIBUTE,
    Attribute,
    Box,
    ExrHeader,
    ExrWriteOptions,
    check_header_windows,
    incomplete_reason,
    max_pixels,
    read_channel_rows,
    read_headers,
    write_exr,
)
from .interleave import join_rgba, split_rgba
from .overlap import ordered_map
from .patterns import SequencePattern, parse_pattern
from .plate import PlateInfo
from .ranges import format_frame_ranges, parse_frame_range

log = logging.getLogger("latentmirror")

MISSING_POLICIES = ("error", "hold", "black")
BAD_PIXEL_POLICIES = ("keep", "replace")
EXISTING_POLICIES = ("skip", "overwrite", "error")
FrameCallback = Callable[[int, int], None]  # (frames done, frames in all)

# Every plate file read in this process: a saver never writes over one of them.
_plate_files: set[str] = set()


@dataclass
class LoadedPlate:
    rgb: np.ndarray  # float32 [frames, height, width, 3] over the PlateInfo canvas
    alpha: np.ndarray  # float32 [frames, height, width]; 1 where the file has no alpha
    info: PlateInfo


@dataclass
class PlannedFrame:
    frame: int
    path: str | None  # the file that gives the pixels; None for black
    status: str


def plan_frames(
    pattern: SequencePattern, frames: str | Sequence[int], missing: str
) -> list[PlannedFrame]:
    """Which file gives each requested frame, after the missing-frame policy.

    ``frames``: a range as typed (``1001-1100x2``; empty: first to last on disk) or frame
    numbers already parsed (a shot render's chunk), in the order wanted.
    """
    if missing not in MISSING_POLICIES:
        raise error(
            f"missing-frame policy '{missing}' is not one of {MISSING_POLICIES}", input="missing"
        )
    on_disk = pattern.frames_on_disk()
    if not on_disk:
        raise error(
            f"no frames on disk match '{pattern.display()}'{_near_misses(pattern)}", input="path"
        )
    if not isinstance(frames, str):
        wanted = [int(f) for f in frames]
    elif frames.strip():
        with context(input="frames"):
            wanted = parse_frame_range(frames)
    else:  # every frame from the first to the last on disk; gaps go through the policy
        wanted = list(range(min(on_disk), max(on_disk) + 1))
    absent = [f for f in wanted if f not in on_disk]
    if len(absent) == len(wanted):  # nothing to take the format from: surely a wrong range
        raise error(
            f"none of the frames {format_frame_ranges(wanted)} exist (on disk: "
            f"{format_frame_ranges(list(on_disk))})",
            input="frames",
        )
    if absent and missing == "error":
        raise error(
            f"frames {format_frame_ranges(absent)} of '{pattern.display()}' are missing "
            f"(on disk: {format_frame_ranges(list(on_disk))}); set missing to hold or black, "
            "or ask only for frames that exist",
            input="frames",
        )
    return [plan_frame(frame, on_disk, missing) for frame in wanted]


def plan_frame(frame: int, on_disk: dict[int, str], missing: str) -> PlannedFrame:
    """The file that gives ``frame`` (``on_disk``: frame -> file, not empty): its own, none
    (black), or the nearest earlier frame's (hold; before the first frame, the first)."""
    if frame in on_disk:
        return PlannedFrame(frame, on_disk[frame], "read")
    if missing == "black":
        return PlannedFrame(frame, None, "black")
    earlier = [f for f in on_disk if f < frame]
    held = max(earlier) if earlier else min(on_disk)
    return PlannedFrame(frame, on_disk[held], f"held from {held}")


def load_sequence(
    path: str,
    frames: str | Sequence[int] = "",
    missing: str = "error",
    layer: str = "",
    colorspace: str = "",
    ocio_config: str = "",
    bad_pixels: str = "keep",
    on_frame: FrameCallback | None = None,
    io_threads: int | None = None,
) -> LoadedPlate:
    """Read the frames of a sequence into one batch, by their real frame numbers.

    Frames are decoded on ``io_threads`` worker threads (default: :func:`.overlap.io_threads`),
    a few at a time, and placed in the batch in order; the first frame that fails to read, in
    order, is the error raised.
    """
    if bad_pixels not in BAD_PIXEL_POLICIES:
        raise error(
            f"bad-pixel policy '{bad_pixels}' is not one of {BAD_PIXEL_POLICIES}",
            input="bad_pixels",
        )
    with context(input="ocio_config"):
        cfg = color.resolve_config(ocio_config)
    with context(input="path"):
        pattern = parse_pattern(path)
    plan = plan_frames(pattern, frames, missing)
    headers = _read_all_headers(plan, io_threads)
    first = headers[_first_read_path(plan)]
    with context(input="layer"):
        selection = select_channels(first, layer)
    with context(input="colorspace"):  # checked before any pixels are read
        plate_colorspace = _plate_colorspace(cfg, colorspace, first[selection.subimage])
    display = _common_display_window(plan, headers)
    data_windows = [_data_window(p, headers, selection.subimage, display) for p in plan]
    canvas = _canvas(plan, display, data_windows)

    rgb = np.zeros((len(plan), canvas.height, canvas.width, 3), np.float32)
    alpha = np.zeros((len(plan), canvas.height, canvas.width), np.float32)

    def decode(index: int) -> int:
        """Read one frame into its place in the batch (frames fill disjoint slices, so the
        threads never touch the same pixels); returns its count of NaN/Inf pixels."""
        planned = plan[index]
        if planned.path is None:
            return 0
        window, bad = data_windows[index], 0
        cols = slice(window.x - canvas.x, window.x_end - canvas.x)
        strips = _read_frame_rows(planned, headers[planned.path], selection, layer)
        with closing(strips):  # the file is closed at once, even when a strip fails
            for top, pixels in strips:  # each checked and placed while in the CPU's cache
                pixels, strip_bad = _bad_pixels(pixels, bad_pixels)
                bad += strip_bad
                first = window.y - canvas.y + top
                rows = slice(first, first + len(pixels))
                if selection.alpha:
                    split_rgba(pixels, rgb[index, rows, cols], alpha[index, rows, cols])
                else:
                    rgb[index, rows, cols] = pixels
                    alpha[index, rows, cols] = 1.0
        return bad

    indices = range(len(plan))
    with closing(ordered_map(decode, indices, io_threads)) as decoded:
        for index, bad in zip(indices, decoded, strict=True):  # in order: warnings, progress
            planned = plan[index]
            if bad:
                _warn_bad_pixels(planned, bad, bad_pixels)
            if planned.path is not None:
                _plate_files.add(os.path.realpath(planned.path))
            if on_frame:
                on_frame(index + 1, len(plan))

    return LoadedPlate(
        rgb=rgb,
        alpha=alpha,
        info=PlateInfo(
            pattern=pattern.display(),
            frames=[p.frame for p in plan],
            source_paths=[p.path for p in plan],
            frame_status=[p.status for p in plan],
            canvas=canvas,
            display_window=display,
            data_windows=data_windows,
            attributes=[_attributes_of(p, headers, selection.subimage) for p in plan],
            colorspace=plate_colorspace,
            ocio_config=cfg.name,
            channels=[*selection.rgb, *([selection.alpha] if selection.alpha else [])],
            has_alpha=selection.alpha is not None,
            pixel_type=first[selection.subimage].pixel_type,
            compression=first[selection.subimage].compression,
            layer=layer,
        ),
    )


def _first_read_path(plan: list[PlannedFrame]) -> str:
    return next(p.path for p in plan if p.path is not None)


def _read_all_headers(
    plan: list[PlannedFrame], io_threads: int | None = None
) -> dict[str, list[ExrHeader]]:
    """The headers of every file the plan reads (once each), on worker threads."""
    first_use: dict[str, PlannedFrame] = {}  # in plan order: the first failure is the one raised
    for planned in plan:
        if planned.path is not None:
            first_use.setdefault(planned.path, planned)
    files = list(first_use.values())

    def read(planned: PlannedFrame) -> list[ExrHeader]:
        with context(frame=planned.frame):
            headers = read_headers(planned.path)
            for header in headers:
                check_header_windows(header)
            return headers

    return {
        p.path: found for p, found in zip(files, ordered_map(read, files, io_threads), strict=True)
    }


# The canvas is allocated for every frame: data windows may add overscan around the display
# window, but one far outside it (a damaged header, a data window at 30000, 30000) would make
# the canvas huge. Allowed: up to one display width/height beyond each edge, or any canvas up
# to 4096 x 4096.
_OVERSCAN_CANVAS = 9  # (1 + 2 x one display size) squared
_SMALL_CANVAS = 4096 * 4096


def _canvas(plan: list[PlannedFrame], display: Box, data_windows: list[Box]) -> Box:
    """The union of the display and data windows, refused before allocation when too large."""
    canvas = display
    for planned, window in zip(plan, data_windows, strict=True):
        canvas = canvas.union(window)
        pixels = canvas.width * canvas.height
        far = pixels > max(_OVERSCAN_CANVAS * display.width * display.height, _SMALL_CANVAS)
        if far or pixels > max_pixels():
            raise error(
                f"data window {window} lies far outside the display window {display}: holding "
                f"both needs a canvas of {canvas.width} x {canvas.height} pixels per frame "
                f"(allowed: up to one display size of overscan on each side, and at most "
                f"{max_pixels()} pixels, ${MAX_PIXELS_VARIABLE}); crop the data window to the "
                "display window (oiiotool in.exr --crop <display window> -o out.exr)",
                file=planned.path,
                frame=planned.frame,
            )
    return canvas


def _common_display_window(plan: list[PlannedFrame], headers: dict) -> Box:
    first_path = _first_read_path(plan)
    display = headers[first_path][0].display_window
    for planned in plan:
        if planned.path is not None:
            other = headers[planned.path][0].display_window
            if other != display:
                raise error(
                    f"display window {other} differs from {display} of {first_path}; "
                    "a sequence must keep one format",
                    file=planned.path,
                    frame=planned.frame,
                )
    return display


def _data_window(planned: PlannedFrame, headers: dict, subimage: int, display: Box) -> Box:
    if planned.path is None:
        return display
    return headers[planned.path][subimage].data_window


def _attributes_of(planned: PlannedFrame, headers: dict, subimage: int) -> list[Attribute]:
    if planned.path is None:
        return []
    attributes = list(headers[planned.path][subimage].attributes)
    if planned.status != "read":  # a held frame must not claim the held frame's timecode
        attributes = [a for a in attributes if a.name != "smpte:TimeCode"]
    return attributes


def _read_frame_rows(planned: PlannedFrame, headers: list[ExrHeader], selection, layer: str):
    """The frame's RGB (and alpha) strip by strip: (first row in its data window, pixels)."""
    with context(file=planned.path, frame=planned.frame):
        found = select_channels(headers, layer)  # each file may order its parts differently
        header = headers[found.subimage]
        names = [*found.rgb, *([found.alpha] if selection.alpha else [])]
        if selection.alpha and not found.alpha:
            raise error("has no alpha channel, but the first frame has one")
        yield from read_channel_rows(planned.path, header, names)


def _bad_pixels(pixels: np.ndarray, policy: str) -> tuple[np.ndarray, int]:
    """The pixels (NaN/Inf zeroed under ``replace``) and how many hold NaN or Inf. A clean frame
    (the usual case) costs one pass, a sum: NaN or Inf makes it non-finite. (A sum of huge finite
    values can overflow too; then the exact count below finds no bad pixel.)"""
    if np.isfinite(pixels.sum()):
        return pixels, 0
    bad = ~np.isfinite(pixels)
    count = int(bad.any(axis=-1).sum())
    if policy == "replace":
        return np.where(bad, np.float32(0), pixels), count
    return pixels, count


def _warn_bad_pixels(planned: PlannedFrame, count: int, policy: str) -> None:
    if policy == "replace":
        log.warning(
            "frame %s (%s): replaced %d NaN/Inf pixels with 0", planned.frame, planned.path, count
        )
        return
    log.warning(
        "frame %s (%s): %d pixels are NaN or Inf; kept (set bad_pixels to replace to zero them)",
        planned.frame,
        planned.path,
        count,
    )


def _plate_colorspace(cfg: color.ColorConfig, requested: str, header: ExrHeader) -> str:
    if requested.strip():
        return color.find_colorspace(cfg, requested)
    return colorspace_from_header(cfg, header) or color.scene_linear(cfg)


def colorspace_from_header(cfg: color.ColorConfig, header: ExrHeader) -> str | None:
    """The colour space a file declares: ours, OpenEXR's colorInteropID, or the ACES container."""
    ours = header.attribute("latentmirror:colorspace")
    if ours and cfg.config.getColorSpace(str(ours)) is not None:
        return color.find_colorspace(cfg, str(ours))
    interop = header.attribute("colorInteropID")
    if interop and (found := color.colorspace_from_interop_id(cfg, str(interop))):
        return found
    if header.attribute("acesImageContainerFlag") == 1:
        return color.find_colorspace(cfg, "aces_interchange")
    return None


def _near_misses(pattern: SequencePattern) -> str:
    """Files beside the pattern, to help spot a wrong padding or name."""
    directory = os.path.dirname(pattern.path_for(0)) or "."
    if not os.path.isdir(directory):
        return f": the folder {directory} does not exist"
    names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    return f"; the folder {directory} holds: {shown or 'nothing'}"


# ----------------------------------------------------------------------------------- saving


@dataclass
class SaveReport:
    frames: list[int]
    colorspace: str  # what the files were tagged with
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # kept: up to date and complete on disk
    stale: list[str] = field(default_factory=list)  # rewritten: made by another graph or plate
    damaged: list[str] = field(default_factory=list)  # rewritten: did not decode completely

    def summary(self) -> str:
        """What happened to existing frames, for the log and the node ("kept 3 frames ...")."""
        parts = [f"kept {len(self.skipped)} frames up to date"] if self.skipped else []
        if self.stale:
            parts.append(f"rewrote {len(self.stale)} stale")
        if self.damaged:
            parts.append(f"rewrote {len(self.damaged)} damaged")
        return ", ".join(parts)


@dataclass
class ExistingFrames:
    """The output frames of a save (by index) sorted by what is on disk and the existing
    policy: those to write, and among the files found those kept, stale or damaged."""

    write: list[int]
    kept: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)


def protected_paths(plate: PlateInfo | None) -> set[str]:
    """Files a saver must never write: the given plate's and every plate read in this process."""
    sources = {os.path.realpath(p) for p in (plate.source_paths if plate else []) if p}
    return sources | _plate_files


def save_sequence(
    path: str,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    plate: PlateInfo | None = None,
    *,
    start_frame: int = 1001,
    write_options: ExrWriteOptions | None = None,
    existing: str = "skip",
    colorspace: str = "",
    ocio_config: str = "",
    on_frame: FrameCallback | None = None,
    fingerprints: Sequence[str] | None = None,
    io_threads: int | None = None,
) -> SaveReport:
    """Write ``rgb`` ([frames, height, width, 3]) as an EXR sequence; checks everything first.

    Frame numbers come from ``plate`` when it describes the same number of frames, else they
    count from ``start_frame``. ``write_options`` default to half, zip. ``fingerprints``: what
    makes each frame (nodes/provenance.py), recorded in its header; under ``existing=skip`` an
    existing frame is kept only when its fingerprint matches and it decodes completely (without
    fingerprints, any complete frame latentmirror wrote is kept). Only files latentmirror wrote
    are ever replaced. Nothing is written when a check fails.

    Frames are encoded and written on ``io_threads`` worker threads (default:
    :func:`.overlap.io_threads`), a few at a time; this returns when every frame is on disk under
    its name, and ``on_frame`` counts a frame only then, in order. When a frame fails, the
    frames not started are not written, and the error names the frame.
    """
    write_options = write_options or ExrWriteOptions()
    count = rgb.shape[0]
    if rgb.shape[-1] < 3:  # checked before any frame is written
        raise error(f"images have {rgb.shape[-1]} channels; 3 (RGB) or 4 (RGBA) are needed")
    if alpha is not None and alpha.shape != rgb.shape[:3]:
        raise error(
            f"mask is {list(alpha.shape)} but images are {list(rgb.shape[:3])} "
            "(frames, height, width)",
            input="mask",
        )
    with context(input="plate_info"):
        frames = output_frames(count, plate, start_frame)
    alpha = _alpha_to_write(alpha, plate)
    with context(input="path"):
        pattern = parse_pattern(path)
        if pattern.is_single_file and count > 1:
            raise error(f"'{path}' has no frame number field (####) but there are {count} images")
        targets = [pattern.path_for(f) for f in frames]
        _refuse_plate_overwrite(targets, frames, plate)
    if fingerprints is not None and len(fingerprints) != count:
        raise ValueError(f"{len(fingerprints)} fingerprints for {count} frames")
    with context(input="existing"):
        found = check_existing(targets, frames, existing, fingerprints)
    todo = found.write
    with context(input="ocio_config"):
        cfg = color.resolve_config(ocio_config)
    with context(input="colorspace"):
        tag = (
            color.find_colorspace(cfg, colorspace)
            if colorspace.strip()
            else (plate.colorspace if plate and plate.colorspace else color.scene_linear(cfg))
        )
    report = SaveReport(
        frames=frames,
        colorspace=tag,
        skipped=[targets[i] for i in found.kept],
        stale=[targets[i] for i in found.stale],
        damaged=[targets[i] for i in found.damaged],
    )
    if report.skipped or report.stale or report.damaged:  # a re-run must say what it did
        log.warning(
            "existing=skip: %s of %d frames (kept: %s; stale: %s; damaged: %s)",
            report.summary(),
            count,
            *(format_frame_ranges([frames[i] for i in group]) or "none"
              for group in (found.kept, found.stale, found.damaged)),
        )  # fmt: skip

    def encode(index: int) -> tuple[int, int]:
        """Write one frame; returns its counts of values to warn about, found on the writer's
        thread over the pixels written and warned of below in frame order."""
        with context(frame=frames[index]):
            pixels, channels = _frame_pixels(rgb[index], None if alpha is None else alpha[index])
            data, display, pixels = _windows_for(pixels, index, plate)
            unwritable = _unwritable_values(pixels, write_options.pixel_type)
            write_exr(
                targets[index],
                pixels,
                channels,
                data,
                display,
                options=write_options,
                attributes=_output_attributes(
                    plate, index, tag, cfg, fingerprints[index] if fingerprints else None
                ),
            )
            return unwritable

    # each result is a frame written and renamed into place: only then is it counted done.
    # closing(): a callback that raises (an interrupt) stops the writers before it propagates
    with closing(ordered_map(encode, todo, io_threads)) as written:
        for done, (index, unwritable) in enumerate(zip(todo, written, strict=True), start=1):
            _warn_unwritable(frames[index], *unwritable)
            report.written.append(targets[index])
            if on_frame:
                on_frame(done, len(todo))
    return report


def output_frames(count: int, plate: PlateInfo | None, start_frame: int) -> list[int]:
    """The frame numbers ``count`` images are written as: the plate's, else from start_frame."""
    if plate is None:
        return list(range(start_frame, start_frame + count))
    if len(plate) != count:
        raise error(
            f"plate_info describes {len(plate)} frames but {count} images arrived; connect the "
            "matching plate_info, or disconnect it to number frames from start_frame"
        )
    return list(plate.frames)


def _refuse_plate_overwrite(targets: list[str], frames: list[int], plate) -> None:
    protected = protected_paths(plate)
    for target, frame in zip(targets, frames, strict=True):
        if os.path.realpath(target) in protected:
            raise error(
                "this is a frame of an input plate; latentmirror never writes over a plate. "
                "Choose another output path",
                file=target,
                frame=frame,
            )


def check_existing(
    targets: list[str], frames: list[int], existing: str, fingerprints: Sequence[str] | None = None
) -> ExistingFrames:
    """Sort the output frames by what is on disk, under the ``existing`` policy; refuse (before
    anything is written) what must not happen: with ``error``, any output file that exists; with
    any policy, replacing a file latentmirror did not write. The one check of the saver and of a
    shot render's chunk plan (plugin/shot.py)."""
    if existing not in EXISTING_POLICIES:
        raise error(
            f"existing-file policy '{existing}' is not one of {EXISTING_POLICIES}", input="existing"
        )
    present = [i for i, t in enumerate(targets) if os.path.lexists(t)]
    if existing == "error" and present:
        raise error(
            f"{len(present)} output frames exist already ({_some(targets, present)}); set "
            "existing to skip or overwrite",
            frame=frames[present[0]],
        )
    headers = {i: _our_header(targets[i]) for i in present}
    foreign = [i for i in present if headers[i] is None]
    if foreign:
        raise error(
            f"output paths hold files not written by latentmirror ({len(foreign)}: "
            f"{_some(targets, foreign)}); latentmirror replaces only frames it wrote. Move or "
            "remove them, or choose another output path",
            file=targets[foreign[0]],
            frame=frames[foreign[0]],
        )
    if existing == "overwrite":
        return ExistingFrames(write=list(range(len(targets))))
    found = ExistingFrames(write=[i for i in range(len(targets)) if i not in headers])
    current = [
        i
        for i, header in headers.items()
        if fingerprints is None or header.attribute(FINGERPRINT_ATTRIBUTE) == fingerprints[i]
    ]
    # a kept frame must decode completely: every pixel is read, on worker threads
    decodes = ordered_map(lambda i: incomplete_reason(targets[i]) is None, current)
    complete = dict(zip(current, decodes, strict=True))
    for i in headers:
        if i not in complete:
            found.stale.append(i)
        elif not complete[i]:
            found.damaged.append(i)
        else:
            found.kept.append(i)
    found.write = sorted([*found.write, *found.stale, *found.damaged])
    return found


def _our_header(path: str) -> ExrHeader | None:
    """The first header of an EXR file latentmirror wrote, or None for any other file."""
    if not os.path.isfile(path):
        return None
    try:
        header = read_headers(path)[0]
    except LatentmirrorError:
        return None
    return (
        header if str(header.attribute(WRITER_ATTRIBUTE, "")).startswith("latentmirror") else None
    )


def _some(targets: list[str], indices: list[int]) -> str:
    return ", ".join(targets[i] for i in indices[:3]) + (" ..." if len(indices) > 3 else "")


def _unwritable_values(values: np.ndarray, pixel_type: str) -> tuple[int, int]:
    """One frame's count of NaN/Inf values and (half) of finite values beyond half's range.
    A clean frame (the usual case) costs one max and one min: NaN turns both into NaN."""
    if values.size == 0:
        return 0, 0
    high, low = values.max(), values.min()
    limit = HALF_MAX if pixel_type == "half" else np.inf
    if np.isfinite(high) and np.isfinite(low) and high <= limit and low >= -limit:
        return 0, 0
    finite = np.isfinite(values)
    overflow = int((np.abs(values[finite]) > limit).sum())  # none beyond float's: limit is Inf
    return int(finite.size - np.count_nonzero(finite)), overflow


def _warn_unwritable(frame: int, nonfinite: int, overflow: int) -> None:
    if nonfinite:
        log.warning("frame %s: %d values are NaN or Inf and are written as such", frame, nonfinite)
    if overflow:
        log.warning(
            "frame %s: %d values exceed half float's range (%g) and become Inf;"
            " choose pixel_type float to keep them",
            frame,
            overflow,
            HALF_MAX,
        )


def _alpha_to_write(alpha: np.ndarray | None, plate: PlateInfo | None) -> np.ndarray | None:
    """The mask to write as the A channel, or None. A plate without alpha loads with a mask of
    ones: writing that back would give the copy a channel its plate never had (and a third more
    to encode), so a mask of ones over such a plate is not written; any other mask is."""
    if alpha is None or plate is None or plate.has_alpha:
        return alpha
    return None if not np.any(alpha != 1.0) else alpha


def _frame_pixels(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    if alpha is None and rgb.shape[-1] == 4:  # an RGBA image on the wire carries its own alpha
        return np.ascontiguousarray(rgb), ["R", "G", "B", "A"]
    if alpha is None:
        return np.ascontiguousarray(rgb[..., :3]), ["R", "G", "B"]
    return join_rgba(rgb, alpha), ["R", "G", "B", "A"]


def _windows_for(pixels: np.ndarray, index: int, plate: PlateInfo | None):
    """Data window, display window and the pixels to store for one frame.

    At the plate's canvas size the frame keeps its source data window, grown to cover any pixel
    that is no longer zero outside it, so a round trip is exact and new content is never cut.
    """
    height, width = pixels.shape[:2]
    full = Box(0, 0, width, height)
    if plate is None:
        return full, full, pixels
    canvas, display = plate.canvas, plate.display_window
    if (width, height) == (display.width, display.height) and canvas != display:
        return display, display, pixels  # resized to the format: overscan is gone
    if (width, height) != (canvas.width, canvas.height):
        log.warning(
            "images are %dx%d, the plate is %dx%d: writing without the plate's windows",
            width,
            height,
            canvas.width,
            canvas.height,
        )
        return full, full, pixels
    window = _grow_to_content(plate.data_windows[index], pixels, canvas)
    rows = slice(window.y - canvas.y, window.y_end - canvas.y)
    cols = slice(window.x - canvas.x, window.x_end - canvas.x)
    return window, display, pixels[rows, cols]


def _grow_to_content(window: Box, pixels: np.ndarray, canvas: Box) -> Box:
    """``window`` grown to cover every pixel of ``pixels`` (the canvas) that is not zero outside
    it. Only the bands outside the window are looked at: none when it is the whole canvas."""
    top, left = window.y - canvas.y, window.x - canvas.x
    bottom, right = window.y_end - canvas.y, window.x_end - canvas.x
    bands = [  # (rows, columns) of the canvas outside the window; overlapping corners are fine
        (slice(0, top), slice(None)),
        (slice(bottom, None), slice(None)),
        (slice(None), slice(0, left)),
        (slice(None), slice(right, None)),
    ]
    found = window
    for rows, cols in bands:
        content = (pixels[rows, cols] != 0).any(axis=-1)  # NaN is content too
        if content.any():
            ys, xs = np.nonzero(content)
            y0, x0 = (rows.start or 0) + int(ys.min()), (cols.start or 0) + int(xs.min())
            y1, x1 = (rows.start or 0) + int(ys.max()), (cols.start or 0) + int(xs.max())
            found = found.union(Box(x0 + canvas.x, y0 + canvas.y, x1 - x0 + 1, y1 - y0 + 1))
    return found


def _output_attributes(
    plate, index: int, colorspace: str, cfg: color.ColorConfig, fingerprint: str | None
):
    source = list(plate.attributes[index]) if plate and index < len(plate.attributes) else []
    # a plate latentmirror wrote carries our attributes: they describe it, never this frame
    source = [a for a in source if not a.name.startswith("latentmirror:")]
    if plate and plate.colorspace != colorspace:  # the source's primaries no longer apply
        source = [a for a in source if a.name != "chromaticities"]
    ours = [
        Attribute("Software", "string", f"latentmirror {__version__}"),
        Attribute(WRITER_ATTRIBUTE, "string", f"latentmirror {__version__}"),
        Attribute("latentmirror:colorspace", "string", colorspace),
        Attribute("latentmirror:ocioConfig", "string", cfg.name),
    ]
    if interop := color.interop_id(cfg, colorspace):
        ours.append(Attribute("colorInteropID", "string", interop))
    if plate and plate.source_paths[index]:
        source_path = os.path.abspath(plate.source_paths[index])
        ours.append(Attribute("latentmirror:source", "string", source_path))
    if fingerprint is not None:
        ours.append(Attribute(FINGERPRINT_ATTRIBUTE, "string", fingerprint))
    names = {a.name for a in ours}
    return [a for a in source if a.name not in names] + ours
