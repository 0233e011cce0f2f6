"""LossMix, ReferenceBlend, Invert, Save Latents and Load Latents."""

from __future__ import annotations

import logging
import os

import torch

from ..core.errors import LatentmirrorError, context, error
from ..core.fit import FIT_MODES
from ..core.invert import PRECISIONS, SCHEDULES, Callbacks, InvertSettings, invert
from ..core.latents import SPACES, LatentCache, load_latents, save_latents
from ..core.losses import (
    LOSS_TERMS,
    LossMix,
    LossTerm,
    describe_params,
    describe_terms,
    parse_params,
)
from ..core.plot import loss_curve_image
from ..core.reference import MODES, PULL_DISTANCES, Reference, ReferenceItem
from ..host import ShotState, current_host
from .common import (
    CATEGORY,
    checked_curve,
    choice_input,
    curve_input,
    display_pixels,
    link_input,
    number_input,
    safetensors_to_write,
    text_input,
    to_nhwc,
)

log = logging.getLogger("latentmirror")

FIT_TOOLTIP = (
    "How a plate that is not the model's square size is fitted: stretch (whole plate, aspect "
    "distorted, undone on output), crop (centre square; the sides are kept from the plate), pad "
    "(plate centred in a square, the border mirrored; cropped away on output), tiles (plates "
    "larger than the model: overlapping model-size tiles, each inverted, blended with feathered "
    "seams; slower by the number of tiles)."
)


class LossMixNode:
    DISPLAY_NAME = "LossMix"
    DESCRIPTION = (
        "Adds one weighted loss term to a mix (chain several nodes to build it). Invert minimises "
        "the mix: perceptual terms (lpips_vgg, lpips_alex, d_features) keep the look, pixel terms "
        "(l1, l2, ssim) the exact values, w_prior keeps latents near the model's average face, "
        "noise_reg keeps optimised noise white, temporal penalises flicker between frames."
    )
    CATEGORY = f"{CATEGORY}/invert"
    FUNCTION = "build"
    RETURN_TYPES = ("LOSS_MIX",)
    RETURN_NAMES = ("loss_mix",)
    OUTPUT_TOOLTIPS = ("The chained mix with this term added last.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "term": choice_input(tuple(LOSS_TERMS), describe_terms()),
                "weight": number_input(
                    "FLOAT", 1.0, "The term's weight in the sum.", min=-1e6, max=1e6, step=0.001
                ),
            },
            "optional": {
                "loss_mix": link_input("LOSS_MIX", "A mix to add this term to (chaining)."),
                "mask": link_input(
                    "MASK",
                    "Per-pixel weight for image terms, at plate size (one frame for all, or one "
                    "per frame); 0 ignores a pixel. Fitted to the model like the images.",
                ),
                "params": text_input(
                    "Term options, key=value pairs or JSON (e.g. resolution=128, "
                    "multiscale=true). Defaults: " + describe_params()
                ),
                "weight_curve": curve_input("weight"),
            },
        }

    def build(
        self,
        term: str,
        weight: float,
        loss_mix=None,
        mask=None,
        params: str = "",
        weight_curve=None,
    ):
        with context(node=self.DISPLAY_NAME):
            if loss_mix is not None and not isinstance(loss_mix, LossMix):
                raise error("expected a LOSS_MIX", input="loss_mix")
            curve = checked_curve(weight_curve, "weight_curve")
            with context(input="params"):
                parsed = parse_params(params)
                new_term = LossTerm(term, weight, parsed, mask, weight_curve=curve)
        return ((loss_mix or LossMix()).with_term(new_term),)


class ReferenceBlendNode:
    DISPLAY_NAME = "ReferenceBlend"
    DESCRIPTION = (
        "Reference images that steer the look. loss_pull: Invert also pulls each frame toward the "
        "references' features. latent_anchor: the references are inverted once and the chosen "
        "layers of every frame are pulled toward their latent. style_mix: Resynthesize blends "
        "the chosen layers toward the references' latent. Chain nodes to combine."
    )
    CATEGORY = f"{CATEGORY}/invert"
    FUNCTION = "build"
    RETURN_TYPES = ("REFERENCE",)
    RETURN_NAMES = ("reference",)
    OUTPUT_TOOLTIPS = ("The chained references with this one added.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "references": link_input(
                    "IMAGE", "Reference images, display-referred [0, 1]; centre-cropped square."
                ),
                "mode": choice_input(MODES, "loss_pull, latent_anchor or style_mix (see above)."),
                "strength": number_input(
                    "FLOAT",
                    0.5,
                    "loss_pull / latent_anchor: the weight of the pull. style_mix: 0 keeps the "
                    "plate's layers, 1 replaces them with the reference's.",
                    min=0.0,
                    max=100.0,
                    step=0.01,
                ),
                "layers": text_input(
                    "Latent layers: all, coarse (pose, shape), middle (features), fine (colour, "
                    "texture), combinations (coarse,fine) or indices (0-5,8). Not used by "
                    "loss_pull.",
                    default="all",
                ),
            },
            "optional": {
                "reference": link_input("REFERENCE", "References to add this one to (chaining)."),
                "distance": choice_input(
                    PULL_DISTANCES, "loss_pull: the features compared (lpips_vgg by default)."
                ),
                "start": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "latent_anchor: the first frame starts from the reference's "
                        "latent on the chosen layers.",
                    },
                ),
                "strength_curve": curve_input("strength"),
            },
        }

    def build(
        self,
        references,
        mode: str,
        strength: float,
        layers: str = "all",
        reference=None,
        distance: str = "lpips_vgg",
        start: bool = False,
        strength_curve=None,
    ):
        with context(node=self.DISPLAY_NAME):
            if reference is not None and not isinstance(reference, Reference):
                raise error("expected a REFERENCE", input="reference")
            curve = checked_curve(strength_curve, "strength_curve")
            item = ReferenceItem(
                references, mode, float(strength), layers, distance, bool(start), curve
            )
        return ((reference or Reference()).with_item(item),)


class InvertNode:
    DISPLAY_NAME = "Invert"
    DESCRIPTION = (
        "Finds, for each frame, the latent whose image matches it. fast (default): frames in "
        "batches, each warm-started from the previous frame's solution, W+ with a prior, early "
        "stop. classic: NVlabs' projector, one frame at a time (slow, flickers; for comparison). "
        "Expects display-referred [0, 1] images. Shows the loss curves; unchanged inputs reuse "
        "stored latents."
    )
    CATEGORY = f"{CATEGORY}/invert"
    FUNCTION = "run"
    RETURN_TYPES = ("GAN_LATENT", "IMAGE")
    RETURN_NAMES = ("latent", "reconstruction")
    OUTPUT_TOOLTIPS = (
        "Latents per frame, with frame numbers, fit, loss history and model hash.",
        "The latents' images at plate size, display-referred [0, 1].",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": link_input("GAN_MODEL", "From Load GAN."),
                "images": link_input(
                    "IMAGE", "Frames, display-referred [0, 1] (put an OCIO Transform before)."
                ),
                "space": choice_input(
                    SPACES,
                    "w: one latent per frame (most faithful to the model, least to the plate); "
                    "w_plus: one per layer (closer to the plate); w_plus_noise: also the noise "
                    "maps, shared by all frames.",
                    default="w_plus",
                ),
                "steps": number_input(
                    "INT",
                    300,
                    "Optimiser steps. fast: for the first frame (later batches run a fifth, "
                    "less when the loss stalls). classic: per frame (NVlabs uses 1000).",
                    min=1,
                    max=100000,
                ),
                "schedule": choice_input(SCHEDULES, "fast (default) or classic (NVlabs)."),
                "seed": number_input(
                    "INT", 0, "Seed for every random choice.", min=0, max=2**63 - 1
                ),
            },
            "optional": {
                "loss_mix": link_input(
                    "LOSS_MIX",
                    "Loss terms to minimise. Empty: lpips_vgg (+ w_prior for fast W+, + noise_reg "
                    "when noise is optimised).",
                ),
                "reference": link_input(
                    "REFERENCE", "From ReferenceBlend (loss_pull, latent_anchor)."
                ),
                "init_latent": link_input(
                    "GAN_LATENT", "Start from these latents (one for all frames or one per frame)."
                ),
                "batch_size": number_input(
                    "INT",
                    8,
                    "Frames optimised together (halved when the device runs out of memory).",
                    min=1,
                    max=1024,
                ),  # fmt: skip
                "warm_start": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "fast: start each batch from the previous frame's solution.",
                    },
                ),
                "learning_rate": number_input(
                    "FLOAT",
                    0.0,
                    "Adam learning rate; 0: the schedule's (fast 0.05, classic 0.1).",
                    min=0.0,
                    max=10.0,
                    step=0.001,
                ),  # fmt: skip
                "fit": choice_input(FIT_MODES, FIT_TOOLTIP),
                "tile_overlap": number_input(
                    "INT",
                    0,
                    "fit tiles: pixels neighbouring tiles share (0: a quarter tile).",
                    min=0,
                    max=4096,
                ),  # fmt: skip
                "plate_info": link_input(
                    "PLATE_INFO", "From Load EXR Sequence: records the frame numbers."
                ),
                "cache": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Reuse latents solved before for the same frames, model, loss "
                        "mix, references and settings (stored in $LATENTMIRROR_CACHE or "
                        "~/.cache/latentmirror).",
                    },
                ),
                "precision": choice_input(
                    PRECISIONS,
                    "The generator's arithmetic while inverting: auto uses bfloat16 mixed "
                    "precision where the device computes it natively (CUDA GPUs that support it, "
                    "CPUs with AVX512-BF16 or AMX: faster at equal quality; losses stay "
                    "float32), float32 elsewhere.",
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def run(
        self,
        model,
        images: torch.Tensor,
        space: str,
        steps: int,
        schedule: str,
        seed: int,
        loss_mix=None,
        reference=None,
        init_latent=None,
        batch_size: int = 8,
        warm_start: bool = True,
        learning_rate: float = 0.0,
        fit: str = "stretch",
        plate_info=None,
        cache: bool = True,
        tile_overlap: int = 0,
        precision: str = "auto",
        unique_id=None,
    ):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            settings = InvertSettings(
                space=space, steps=int(steps), schedule=schedule, seed=int(seed),
                batch_size=int(batch_size), warm_start=bool(warm_start),
                learning_rate=float(learning_rate), fit=fit, tile_overlap=int(tile_overlap),
                precision=precision,
            )  # fmt: skip
            if plate_info is None and _uses_curves(loss_mix, reference):
                raise error(
                    "curves are read on the plate's frame numbers, which come from plate_info: "
                    "connect Load EXR Sequence's plate_info (without it frames count from 0)",
                    input="plate_info",
                )
            frames = _frame_numbers(plate_info, images.shape[0])
            pixels = display_pixels(images, frames, self.DISPLAY_NAME)
            bar = host.progress(1, "inverting")

            def on_step(done: int, planned: int) -> None:
                bar.update(done, max(planned, done))

            def on_frame(done: int, total: int) -> None:
                log.info("inverted %d of %d frames", done, total)

            result = invert(
                model, pixels, settings, mix=loss_mix, reference=reference, init=init_latent,
                frames=frames, lpips_folders=host.model_folders("lpips"),
                callbacks=Callbacks(on_step, on_frame, host.check_interrupt),
                cache=LatentCache() if cache else None,
                previous=_carried_latent(host.shot, unique_id),
            )  # fmt: skip
            bar.close()
        latent = result.latent
        _report_frames(host.shot, latent, unique_id)
        title = f"Invert {unique_id or ''}: {len(latent)} frames, {latent.schedule}, {latent.space}"
        if result.cached:
            title += " (cached)"
        plot = loss_curve_image(
            latent.history, title=title, boundaries=latent.info.get("batch_starts")
        )
        shown = host.show_plot(plot, f"invert_loss_{unique_id or 'node'}")
        output = (latent, to_nhwc(result.reconstruction))
        return {"ui": {"images": shown}, "result": output} if shown else output


def _carried_latent(shot: ShotState | None, unique_id):
    """The warm start a shot's previous chunk left for this Invert node, or None."""
    return shot.previous_latent(unique_id) if shot is not None and unique_id is not None else None


def _report_frames(shot: ShotState | None, latent, unique_id) -> None:
    """In a shot render: each frame's loss for the render log; the last frame carried to the
    next chunk."""
    if shot is None:
        return
    tiles = latent.fit.tile_count
    for i in range(0, len(latent), tiles):
        losses = latent.frame_loss[i : i + tiles]
        if losses:
            shot.record_frame(latent.frames[i], loss=sum(losses) / len(losses))
    if unique_id is not None:
        shot.keep_latent(unique_id, latent.select(list(range(len(latent) - tiles, len(latent)))))


def _uses_curves(loss_mix, reference) -> bool:
    """A weight or strength curve acts while inverting."""
    terms = list(loss_mix) if isinstance(loss_mix, LossMix) else []
    items = reference.items if isinstance(reference, Reference) else ()
    return any(t.weight_curve for t in terms) or any(i.strength_curve for i in items)


def _frame_numbers(plate_info, count: int) -> list[int]:
    frames = list(getattr(plate_info, "frames", []) or [])
    if plate_info is not None and len(frames) != count:
        raise error(
            f"plate_info has {len(frames)} frames but images has {count}", input="plate_info"
        )
    return frames or list(range(count))


class SaveLatentsNode:
    DISPLAY_NAME = "Save Latents"
    DESCRIPTION = (
        "Writes GAN_LATENT to a .safetensors file: the latents (and noise maps) as tensors, and "
        "model hash, frames, space, fit, loss mix, steps and loss history as JSON metadata. "
        "Written to a temporary name and renamed into place."
    )
    CATEGORY = f"{CATEGORY}/invert"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": link_input("GAN_LATENT", "From Invert or Load Latents."),
                "path": text_input(
                    "File to write (.safetensors added if missing). Relative paths go to "
                    "ComfyUI's output folder (headless: the current folder).",
                    default="latentmirror/latents.safetensors",
                ),
            }
        }

    @classmethod
    def IS_CHANGED(cls, **_ignored):
        return float("nan")  # always write: the file may have been removed

    def save(self, latent, path: str):
        with context(node=self.DISPLAY_NAME, input="path"):
            target = safetensors_to_write(current_host(), path)
            with context(file=target):
                try:
                    written = save_latents(latent, target)
                except OSError as exc:
                    raise error(f"cannot write the latent file ({exc.strerror})") from None
        return {"ui": {"files": [written]}}


class LoadLatentsNode:
    DISPLAY_NAME = "Load Latents"
    DESCRIPTION = "Reads a GAN_LATENT .safetensors file written by Save Latents."
    CATEGORY = f"{CATEGORY}/invert"
    FUNCTION = "load"
    RETURN_TYPES = ("GAN_LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The latents with their frames, fit, model hash and history.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "path": text_input(
                    "A .safetensors latent file. Relative paths start in ComfyUI's input folder "
                    "(headless: the current folder)."
                )
            }
        }

    @classmethod
    def IS_CHANGED(cls, path: str, **_ignored):
        try:
            stat = os.stat(current_host().input_path(path))
        except (OSError, LatentmirrorError):  # the load says why, with its context
            return f"missing:{path}"
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def load(self, path: str):
        with context(node=self.DISPLAY_NAME, input="path"):
            return (load_latents(current_host().input_path(path)),)
