"""Load EXR Sequence and Save EXR Sequence."""

from __future__ import annotations

import hashlib
import os

import torch

from ..core import color
from ..core.errors import context
from ..core.frames import parse_pattern
from ..core.frames.exr import COMPRESSIONS, PIXEL_TYPES
from ..core.frames.plate import PlateInfo
from ..core.frames.sequence import (
    BAD_PIXEL_POLICIES,
    EXISTING_POLICIES,
    MISSING_POLICIES,
    load_sequence,
    save_sequence,
)
from ..plugin.host import current_host
from .common import CATEGORY, display_previews, frame_progress, to_numpy, to_tensor

_CONFIG_TOOLTIP = (
    "OCIO config: a file path or a built-in URI (ocio://studio-config-latest). Empty: $OCIO, "
    "else OCIO's built-in studio config."
)


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

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "path": ("STRING", {"default": "", "tooltip": (
                    "Sequence pattern: plate.####.exr, plate.%04d.exr, plate.$F4.exr (each # or @ "
                    "is one digit), or one file. Relative paths start in ComfyUI's input folder "
                    "(headless: the current folder).")}),
                "frames": ("STRING", {"default": "", "tooltip": (
                    "Frames to read: 1001-1100, 1001-1100x2, 1001,1003,1010-1020. Empty: every "
                    "frame from the first to the last on disk.")}),
                "missing": (list(MISSING_POLICIES), {"default": "error", "tooltip": (
                    "A requested frame that is not on disk: error stops; hold repeats the nearest "
                    "earlier frame; black gives black with alpha 0.")}),
            },
            "optional": {
                "layer": ("STRING", {"default": "", "tooltip": (
                    "Empty: R,G,B(,A). A layer name (diffuse for diffuse.R ...), one channel "
                    "(depth.Z, shown grey) or a comma list of 3 or 4 channels.")}),
                "colorspace": ("STRING", {"default": "", "tooltip": (
                    "The plate's colour space (name, alias or role). Empty: what the file "
                    "declares, else the config's scene_linear role.")}),
                "ocio_config": ("STRING", {"default": "", "tooltip": _CONFIG_TOOLTIP}),
                "bad_pixels": (list(BAD_PIXEL_POLICIES), {"default": "keep", "tooltip": (
                    "NaN/Inf pixels: keep them (with a warning naming the frame) or replace "
                    "them with 0.")}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, path: str, frames: str = "", **_ignored) -> str:
        """Files changed on disk make ComfyUI read the plate again."""
        try:
            pattern = parse_pattern(current_host().input_path(path))
            found = pattern.frames_on_disk()
        except Exception:  # the load itself reports a bad pattern, with context
            return f"unreadable:{path}"
        digest = hashlib.sha1(frames.encode())
        for frame, file in found.items():
            stat = os.stat(file)
            digest.update(f"{frame}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()

    def load(self, path: str, frames: str, missing: str, layer: str = "", colorspace: str = "",
             ocio_config: str = "", bad_pixels: str = "keep"):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            plate = load_sequence(
                host.input_path(path), frames, missing, layer, colorspace, ocio_config,
                bad_pixels, on_frame=frame_progress(host, 1, "loading frames"),
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

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames to write, in batch order."}),
                "path": ("STRING", {"default": "output/latentmirror.####.exr", "tooltip": (
                    "Output pattern (plate.####.exr, %04d, $F4). Relative paths go to ComfyUI's "
                    "output folder (headless: the current folder).")}),
                "pixel_type": (list(PIXEL_TYPES), {"default": "half", "tooltip": (
                    "half (16-bit float, what plates usually are; values beyond 65504 become Inf, "
                    "with a warning) or float (32-bit).")}),
                "compression": (list(COMPRESSIONS), {"default": "zip", "tooltip": (
                    "OpenEXR compression. zip, zips, piz, rle, none are lossless; pxr24 is lossless "
                    "for half; dwaa/dwab are lossy (see dwa_level); b44/b44a are lossy for half.")}),
                "existing": (list(EXISTING_POLICIES), {"default": "skip", "tooltip": (
                    "Output frames already on disk: skip keeps complete ones (a killed render "
                    "resumes), overwrite replaces them, error stops before writing anything.")}),
            },
            "optional": {
                "plate_info": ("PLATE_INFO", {"tooltip": (
                    "From Load EXR Sequence: frame numbers, windows, header attributes and colour "
                    "space of the plate. Without it frames count from start_frame.")}),
                "start_frame": ("INT", {"default": 1001, "min": -(10**8), "max": 10**8,
                                        "tooltip": "First frame number when plate_info is not "
                                        "connected."}),
                "mask": ("MASK", {"tooltip": "Written as the alpha channel, unchanged (1 = opaque)."}),
                "colorspace": ("STRING", {"default": "", "tooltip": (
                    "The colour space the images are in, recorded in the file (no conversion: use "
                    "OCIO Transform). Empty: the plate's, else the config's scene_linear role.")}),
                "ocio_config": ("STRING", {"default": "", "tooltip": _CONFIG_TOOLTIP}),
                "dwa_level": ("FLOAT", {"default": 45.0, "min": 0.0, "max": 10000.0, "step": 1.0,
                                        "tooltip": "DWAA/DWAB compression level (OpenEXR's "
                                        "default 45; higher is smaller and lossier)."}),
            },
        }

    def save(self, images: torch.Tensor, path: str, pixel_type: str, compression: str,
             existing: str, plate_info: PlateInfo | None = None, start_frame: int = 1001,
             mask: torch.Tensor | None = None, colorspace: str = "", ocio_config: str = "",
             dwa_level: float = 45.0):
        host = current_host()
        rgb = to_numpy(images)
        with context(node=self.DISPLAY_NAME):
            report = save_sequence(
                host.output_path(path), rgb, None if mask is None else to_numpy(mask),
                plate_info, start_frame, pixel_type, compression, dwa_level, existing,
                colorspace, ocio_config, on_frame=frame_progress(host, 1, "writing frames"),
            )
            cfg = color.resolve_config(ocio_config)
            tag = colorspace.strip() or (plate_info.colorspace if plate_info else "scene_linear")
            previews = display_previews(rgb[..., :3], cfg, tag, "lm_save")
        ui = {"images": previews, "files": report.written, "skipped": report.skipped}
        return {"ui": ui, "result": ()}
