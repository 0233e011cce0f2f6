"""Resynthesize."""

from __future__ import annotations

import torch

from ..core.errors import context, error
from ..core.invert import InvertSettings, invert
from ..core.latents import GanLatent
from ..core.reference import ReferenceInversion
from ..core.resynth import ResynthSettings, resynthesize
from ..core.synthesis import NOISE_MODES, OUTPUT_SIZES
from ..host import current_host
from .common import (
    CATEGORY,
    checked_curve,
    choice_input,
    curve_input,
    display_pixels,
    frame_progress,
    link_input,
    number_input,
    text_input,
    to_nhwc,
)


class ResynthesizeNode:
    DISPLAY_NAME = "Resynthesize"
    DESCRIPTION = (
        "Turns latents back into images: temporal smoothing across frames, truncation toward the "
        "model's average face, the references' style mix, then synthesis with the chosen noise, "
        "at plate size (the fit undone) or the model's. Output is display-referred [0, 1]: put an "
        "OCIO Transform after it to return to the plate's colour space."
    )
    CATEGORY = f"{CATEGORY}/invert"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("One image per frame, display-referred [0, 1].",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": link_input(
                    "GAN_MODEL", "From Load GAN (the model that made the latents)."
                ),
                "latent": link_input("GAN_LATENT", "From Invert or Load Latents."),
                "truncation": number_input(
                    "FLOAT",
                    1.0,
                    "Pull toward the average face: 1 keeps the latents, 0.7 is "
                    "the classic 'cleaner' look, 0 gives the average face on every frame.",
                    min=-2.0,
                    max=2.0,
                    step=0.01,
                ),  # fmt: skip
                "noise_mode": choice_input(
                    NOISE_MODES,
                    "const: the model's fixed noise (steady); random: new per frame (boils, "
                    "repeatable by seed); none: no noise (smoother); stored: the maps the "
                    "inversion optimised (w_plus_noise or classic).",
                ),
            },
            "optional": {
                "reference": link_input(
                    "REFERENCE", "ReferenceBlend style_mix entries are applied here."
                ),
                "temporal_smoothing": number_input(
                    "FLOAT",
                    0.0,
                    "Gaussian smoothing of the latents across frames, sigma in "
                    "frames (0: off). Steady drifts such as camera moves are kept, also at the "
                    "first and last frames.",
                    min=0.0,
                    max=100.0,
                    step=0.1,
                ),  # fmt: skip
                "output_size": choice_input(
                    OUTPUT_SIZES,
                    "plate: the fit undone, at the plate's size; model: the "
                    "model's square (tiles are always merged at plate size).",
                ),  # fmt: skip
                "truncation_layers": text_input(
                    "Layers truncation applies to: all, coarse, middle, fine, or rows (0-5,8).",
                    default="all",
                ),
                "seed": number_input(
                    "INT", 0, "Seed of noise_mode random (per frame number).", min=0, max=2**63 - 1
                ),
                "plate": link_input(
                    "IMAGE",
                    "The original frames, display-referred: fill the sides of a crop fit "
                    "(without it they are black).",
                ),
                "loss_mix": link_input(
                    "LOSS_MIX",
                    "How style_mix references are inverted (once per model). Empty: lpips_vgg "
                    "(needs its backbone weights).",
                ),
                "batch_size": number_input(
                    "INT",
                    8,
                    "Frames synthesised together (halved when out of memory).",
                    min=1,
                    max=1024,
                ),  # fmt: skip
                "reference_steps": number_input(
                    "INT",
                    150,
                    "Steps to invert style_mix references (once per model; an Invert with the "
                    "same steps, seed and loss mix shares the result).",
                    min=1,
                    max=100000,
                ),
                "truncation_curve": curve_input("truncation"),
            },
        }

    def run(
        self,
        model,
        latent: GanLatent,
        truncation: float,
        noise_mode: str,
        reference=None,
        temporal_smoothing: float = 0.0,
        output_size: str = "plate",
        truncation_layers: str = "all",
        seed: int = 0,
        plate: torch.Tensor | None = None,
        loss_mix=None,
        batch_size: int = 8,
        reference_steps: int = 150,
        truncation_curve=None,
    ):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            if not isinstance(latent, GanLatent):
                raise error("expected a GAN_LATENT", input="latent")
            settings = ResynthSettings(
                truncation=float(truncation), truncation_layers=truncation_layers,
                noise_mode=noise_mode, temporal_smoothing=float(temporal_smoothing),
                output_size=output_size, seed=int(seed), batch_size=int(batch_size),
                truncation_curve=checked_curve(truncation_curve, "truncation_curve"),
            )  # fmt: skip
            frames = sorted(set(latent.frames), key=latent.frames.index)
            pixels = None
            if plate is not None:
                pixels = display_pixels(plate, frames, self.DISPLAY_NAME, "plate")
            inversion = ReferenceInversion(
                invert, InvertSettings(seed=int(seed), steps=int(reference_steps)), loss_mix,
                host.model_folders("lpips"),
            )  # fmt: skip
            images = resynthesize(
                model, latent, settings, reference=reference, reference_inversion=inversion,
                plate=pixels, on_frame=frame_progress(host, len(frames), "resynthesizing"),
            )  # fmt: skip
        return (to_nhwc(images),)
