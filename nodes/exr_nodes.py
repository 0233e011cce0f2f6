"""Load EXR Sequence and Save EXR Sequence."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import torch

from ..core import color
from ..core.errors import LatentmirrorError, context, error
from ..core.frames import parse_pattern
from ..core.frames.exr import COMPRESSIONS, PIXEL_TYPES, ExrWriteOptions
from ..core.frames.plate import PlateInfo
from ..core.frames.ranges import parse_frame_range
from ..core.frames.sequence import (
    BAD_PIXEL_POLICIES,
    EXISTING_POLICIES,
    MISSING_POLICIES,
    load_sequence,
    output_frames,
    save_sequence,
)
from ..host import current_host
from .common import (
    CATEGORY,
    OCIO_CONFIG_TOOLTIP,
    choice_input,
    display_previews,
    frame_progress,
    link_input,
    number_input,
    ocio_config_to_read,
    sequence_to_read,
    sequence_to_write,
    status_card,
    take_frames,
    text_input,
    to_numpy,
    to_tensor,
)
from .provenance import frame_fingerprints, refuse_outputs_over_plates


class LoadEXRSequence:
    DISPLAY_NAME = "Load EXR Sequence"
    DESCRIPTION = (
        "Reads an OpenEXR sequence by its real frame numbers into a scene-linear IMAGE (values may "
        "exceed 1), its alpha as MASK, and PLATE_INFO (frames, windows, header attributes, colour "
        "space) for Save EXR Sequence. Preview through the config's default display/view."
    )
    CATEGORY = f"{CATEGORY}/io"
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "MASK", "PLATE_INFO")
    RETURN_NAMES = ("image", "mask", "plate_info")
    OUTPUT_TOOLTIPS = (
        "RGB over the display window (grown to hold any overscan), in the plate's colour space.",
        "The alpha channel as it is: 1 = opaque, as compositors expect (ComfyUI's LoadImage gives "
        "1 - alpha). All ones when the file has no alpha.",
        "Frame numbers, windows, header attributes and colour space, for Save EXR Sequence.",
    )
    # A shot render (plugin/shot.py) finds plates by this class and sets these inputs per chunk;
    # the fingerprint of written frames (provenance.py) reads the plate's files through them.
    PATH_INPUT, FRAMES_INPUT, MISSING_INPUT = "path", "frames", "missing"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "path": text_input(
                    "Sequence pattern: plate.####.exr, plate.%04d.exr, plate.$F4.exr (each # or @ "
                    "is one digit), or one file. Relative paths start in ComfyUI's input folder "
                    "(headless: the current folder)."
                ),
                "frames": text_input(
                    "Frames to read: 1001-1100, 1001-1100x2, 1001,1003,1010-1020. Empty: every "
                    "frame from the first to the last on disk."
                ),
                "missing": choice_input(
                    MISSING_POLICIES,
                    "A requested frame that is not on disk: error stops; hold repeats the nearest "
                    "earlier frame; black gives black with alpha 0.",
                ),
            },
            "optional": {
                "layer": text_input(
                    "Empty: R,G,B(,A). A layer name (diffuse for diffuse.R ...), one channel "
                    "(depth.Z, shown grey) or a comma list of 3 or 4 channels."
                ),
                "colorspace": text_input(
                    "The plate's colour space (name, alias or role). Empty: what the file "
                    "declares, else the config's scene_linear role."
                ),
                "ocio_config": text_input(OCIO_CONFIG_TOOLTIP),
                "bad_pixels": choice_input(
                    BAD_PIXEL_POLICIES,
                    "NaN/Inf pixels: keep them (with a warning naming the frame) or replace "
                    "them with 0.",
                ),
            },
            # the graph, to refuse a saver writing over this plate before anything runs
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, path: str, frames: str = "", **_ignored) -> str:
        """Files changed on disk make ComfyUI read the plate again."""
        try:
            pattern = parse_pattern(sequence_to_read(current_host(), path))
            found = pattern.frames_on_disk()
        except Exception:  # the load itself reports a bad pattern, with context
            return f"unreadable:{path}"
        digest = hashlib.sha1(str(frames).encode())
        for frame, file in found.items():
            stat = os.stat(file)
            digest.update(f"{frame}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, frames: str = "") -> bool | str:
        """ComfyUI calls this when a prompt is queued, before anything runs."""
        return _comfy_verdict(cls.input_problems({cls.FRAMES_INPUT: frames}))

    @classmethod
    def input_problems(cls, inputs: dict, local_paths: bool = True) -> list[LatentmirrorError]:
        """What is wrong with these inputs before anything runs (the headless validator and
        VALIDATE_INPUTS both ask)."""
        return frame_range_problems(inputs.get(cls.FRAMES_INPUT), cls.FRAMES_INPUT)

    def load(
        self,
        path: str,
        frames: str | Sequence[int],
        missing: str,
        layer: str = "",
        colorspace: str = "",
        ocio_config: str = "",
        bad_pixels: str = "keep",
        prompt: dict | None = None,
        unique_id: str | None = None,
    ):
        host = current_host()
        if prompt is not None:
            refuse_outputs_over_plates(prompt, host)
        with context(node=self.DISPLAY_NAME):
            path = sequence_to_read(host, path)
            ocio_config = ocio_config_to_read(host, ocio_config)
            plate = load_sequence(
                path,
                frames=frames,
                missing=missing,
                layer=layer,
                colorspace=colorspace,
                ocio_config=ocio_config,
                bad_pixels=bad_pixels,
                on_frame=frame_progress(host, 1, "loading frames"),
            )
            cfg = color.resolve_config(ocio_config)
            previews = display_previews(plate.rgb, cfg, plate.info.colorspace, "lm_plate")
        result = (to_tensor(plate.rgb), to_tensor(plate.alpha), plate.info)
        return {"ui": {"images": previews}, "result": result} if previews else result


class SaveEXRSequence:
    DISPLAY_NAME = "Save EXR Sequence"
    DESCRIPTION = (
        "Writes images as an OpenEXR sequence: half or float, any OpenEXR compression, alpha from "
        "a MASK, and with PLATE_INFO the plate's frame numbers, windows and header attributes. "
        "Each frame is written under a temporary name and renamed into place; a frame of an input "
        "plate is never overwritten."
    )
    CATEGORY = f"{CATEGORY}/io"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    # The inputs a shot render (plugin/shot.py) sets per chunk on every saver.
    PATH_INPUT, WRITE_FRAMES_INPUT = "path", "write_frames"
    START_FRAME_INPUT, PLATE_INFO_INPUT, EXISTING_INPUT = "start_frame", "plate_info", "existing"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": link_input("IMAGE", "The frames to write, in batch order."),
                "path": text_input(
                    "Output pattern (plate.####.exr, %04d, $F4). Relative paths go to ComfyUI's "
                    "output folder (headless: the current folder).",
                    default="latentmirror/render.####.exr",
                ),
                "pixel_type": choice_input(
                    PIXEL_TYPES,
                    "half (16-bit float, what plates usually are; values beyond 65504 become "
                    "Inf, with a warning) or float (32-bit).",
                ),
                "compression": choice_input(COMPRESSIONS, _compression_tooltip()),
                "existing": choice_input(
                    EXISTING_POLICIES,
                    "Output frames already on disk: skip keeps those up to date (made by this "
                    "graph, model and plate, and complete) and rewrites stale or damaged ones; "
                    "overwrite rewrites them all; error stops before writing anything. Only "
                    "files latentmirror wrote are ever replaced.",
                ),
            },
            "optional": {
                "plate_info": link_input(
                    "PLATE_INFO",
                    "From Load EXR Sequence: frame numbers, windows, header attributes and "
                    "colour space of the plate. Without it frames count from start_frame.",
                ),
                "start_frame": number_input(
                    "INT",
                    1001,
                    "First frame number when plate_info is not connected.",
                    min=-(10**8),
                    max=10**8,
                ),
                "mask": link_input("MASK", "Written as the alpha channel, unchanged (1 = opaque)."),
                "colorspace": text_input(
                    "The colour space the images are in, recorded in the file (no conversion: "
                    "use OCIO Transform). Empty: the plate's, else the config's scene_linear role."
                ),
                "ocio_config": text_input(OCIO_CONFIG_TOOLTIP),
                "dwa_level": number_input(
                    "FLOAT",
                    45.0,
                    "DWAA/DWAB compression level (OpenEXR's default 45; higher is smaller and "
                    "lossier).",
                    min=0.0,
                    max=10000.0,
                    step=1.0,
                ),
                "write_frames": text_input(
                    "Only these frames are written (1001-1100, 1001,1005); empty: all. Chunked "
                    "renders set it so a chunk's pre-roll frames are solved but not written."
                ),
            },
            # the graph and this node's id: what made each frame, recorded in its header
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, path: str = "") -> bool | str:
        """ComfyUI calls this when a prompt is queued: a bad output path is refused before the
        inversion runs, not after it. (Only ``path``: ComfyUI repeats the verdict for each
        argument, and ``write_frames`` is set by shot renders, checked by the headless one.)"""
        return _comfy_verdict(cls.input_problems({cls.PATH_INPUT: path}))

    @classmethod
    def input_problems(cls, inputs: dict, local_paths: bool = True) -> list[LatentmirrorError]:
        """Frames are OpenEXR files (a .png path would write 8-bit PNGs), allowed here (the
        host's roots), named within the file system's limits, in a folder that is one or can be
        made and written. ``local_paths=False``: the frames go to another machine's storage
        (a ComfyUI server), so only the names are checked."""
        problems = frame_range_problems(inputs.get(cls.WRITE_FRAMES_INPUT), cls.WRITE_FRAMES_INPUT)
        path = inputs.get(cls.PATH_INPUT)
        if isinstance(path, str):
            try:
                with context(input=cls.PATH_INPUT):
                    resolved = current_host().output_path(path) if local_paths else path
                    check_output_pattern(resolved, path, local_paths)
            except LatentmirrorError as exc:
                problems.append(exc)
        return problems

    @classmethod
    def IS_CHANGED(cls, **_inputs) -> float:
        """Always run: frames deleted or stale on disk are written again (up-to-date ones are
        kept)."""
        return float("nan")

    def save(
        self,
        images: torch.Tensor,
        path: str,
        pixel_type: str,
        compression: str,
        existing: str,
        plate_info: PlateInfo | None = None,
        start_frame: int = 1001,
        mask: torch.Tensor | None = None,
        colorspace: str = "",
        ocio_config: str = "",
        dwa_level: float = 45.0,
        write_frames: str | Sequence[int] = "",
        prompt: dict | None = None,
        unique_id: str | None = None,
    ):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            path = sequence_to_write(host, path)
            ocio_config = ocio_config_to_read(host, ocio_config)
            frames = output_frames(len(images), plate_info, start_frame)
            wanted = _frames_to_write(write_frames)
            if wanted is not None:  # a chunk of a shot: its pre-roll frames are not written
                keep = [i for i, f in enumerate(frames) if f in wanted]
                images, frames = take_frames(images, keep), [frames[i] for i in keep]
                mask = take_frames(mask, keep) if mask is not None and len(mask) > 1 else mask
                plate_info = plate_info.select(keep) if plate_info is not None else None
                start_frame = frames[0] if frames else start_frame
            rgb = to_numpy(images)
            # what makes each frame; without the graph (the node called directly from Python)
            # there is nothing to compare, and skip keeps any complete frame it wrote
            made_by = (
                frame_fingerprints(prompt, unique_id, frames, host)
                if prompt is not None and unique_id is not None
                else None
            )
            report = save_sequence(
                path,
                rgb,
                alpha=None if mask is None else to_numpy(mask),
                plate=plate_info,
                start_frame=start_frame,
                write_options=ExrWriteOptions(pixel_type, compression, dwa_level),
                existing=existing,
                colorspace=colorspace,
                ocio_config=ocio_config,
                on_frame=frame_progress(host, 1, "writing frames"),
                fingerprints=None if made_by is None else [made_by[f] for f in frames],
            )
            pattern, written = parse_pattern(path), set(report.written)
            fresh = [i for i, f in enumerate(frames) if pattern.path_for(f) in written]
            cfg = color.resolve_config(ocio_config)  # previews of the frames written, only
            previews = display_previews(rgb, cfg, report.colorspace, "lm_save", among=fresh)
            if report.skipped and host.wants_previews:  # kept frames are not previewed: say so
                card = status_card([report.summary(), "previews show only the frames written now"])
                previews += host.preview_images(card[None], "lm_save_kept") or []
        if host.shot is not None:  # a shot's render log: the frames this run really wrote
            for index in fresh:
                host.shot.record_frame(frames[index], output=pattern.path_for(frames[index]))
        ui = {"images": previews, "files": report.written, "skipped": report.skipped}
        if report.summary():  # frames kept or rewritten: the node says so
            ui["text"] = [report.summary()]
        return {"ui": ui, "result": ()}


def _frames_to_write(write_frames: str | Sequence[int]) -> set[int] | None:
    """``write_frames`` as typed (text; empty: every frame) or as a shot render passes it
    (the chunk's frames, already parsed)."""
    if not isinstance(write_frames, str):
        return set(write_frames)
    if not write_frames.strip():
        return None
    with context(input="write_frames"):
        return set(parse_frame_range(write_frames))


def _compression_tooltip() -> str:
    """The compression choices explained, from the table the writer and the tests use."""
    entries = []
    for c in COMPRESSIONS.values():
        if c.lossless_half and c.lossless_float:
            kind = "lossless"
        elif c.lossless_half:
            kind = "lossless for half, lossy for float"
        elif c.lossless_float:
            kind = "lossy for half, lossless for float"
        else:
            kind = "lossy"
        level = ", level from dwa_level" if c.takes_level else ""
        entries.append(f"{c.name}: {kind}{level}; {c.description}.")
    return " ".join(["OpenEXR compression.", *entries])


# ----------------------------------------------------------------------------------------------
# Checks made before anything runs (VALIDATE_INPUTS, the headless validator)

NAME_MAX, PATH_MAX = 255, 4096  # bytes, where the file system does not say


def _comfy_verdict(problems: list[LatentmirrorError]) -> bool | str:
    """VALIDATE_INPUTS' answer: True, or the problems as ComfyUI shows them."""
    return True if not problems else "; ".join(str(p) for p in problems)


def frame_range_problems(value, name: str) -> list[LatentmirrorError]:
    """A typed frame range that does not read, or names too many frames (empty: every frame;
    a tuple: a shot render's parsed frames)."""
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        with context(input=name):
            parse_frame_range(value)  # bounded: at most ranges.MAX_FRAMES
    except LatentmirrorError as exc:
        return [exc]
    return []


def check_output_pattern(path: str, typed: str, local_paths: bool = True) -> None:
    """Refuse an output pattern that cannot be written as EXR frames (see
    :meth:`SaveEXRSequence.input_problems`)."""
    pattern = parse_pattern(path)
    if not pattern.path_for(1001).lower().endswith(".exr"):
        raise error(f"'{typed}' does not end in .exr: Save EXR Sequence writes OpenEXR files only")
    example = pattern.path_for(-(10**8))  # the longest frame number the saver writes
    folder = os.path.dirname(example)
    existing = _nearest_existing(folder)
    name_max = _pathconf(existing, "PC_NAME_MAX", NAME_MAX) if local_paths else NAME_MAX
    path_max = _pathconf(existing, "PC_PATH_MAX", PATH_MAX) if local_paths else PATH_MAX
    for part in example.split(os.sep):
        if len(os.fsencode(part)) > name_max:
            shown = part if len(part) <= 60 else part[:57] + "..."
            raise error(
                f"the name '{shown}' is {len(os.fsencode(part))} bytes; the file system takes "
                f"at most {name_max}"
            )
    if len(os.fsencode(example)) >= path_max:
        raise error(
            f"the path is {len(os.fsencode(example))} bytes; the file system takes at most "
            f"{path_max - 1}"
        )
    if local_paths and not os.path.isdir(existing):
        raise error(f"cannot make the folder {folder}: {existing} is a file, not a folder")
    if local_paths and not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"the folder {existing} is not writable (read-only, or not yours)")


def _nearest_existing(folder: str) -> str:
    """``folder`` or its nearest ancestor that exists (a folder, or a file in the way)."""
    while not os.path.lexists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def _pathconf(path: str, name: str, default: int) -> int:
    try:
        return os.pathconf(path if os.path.isdir(path) else os.path.dirname(path), name)
    except (OSError, ValueError, AttributeError):
        return default
