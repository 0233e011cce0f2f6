"""Tune GAN to Shot and Save GAN."""

from __future__ import annotations

import os

from ..core.errors import context, error
from ..core.gan.loading import is_latentmirror_gan_file, save_safetensors
from ..core.invert import Callbacks
from ..core.latents import GanLatent
from ..core.plot import loss_curve_image
from ..core.tune import LR_SCHEDULES, TunedModelCache, TuneSettings, tune_model
from ..host import current_host
from .common import (
    CATEGORY,
    choice_input,
    display_pixels,
    link_input,
    number_input,
    safetensors_to_write,
    text_input,
)

TWO_STEP_RECIPE = (
    "tune once on the whole shot and save the model (a graph with Tune GAN to Shot and Save "
    "GAN, rendered in one pass: `latentmirror render` without --chunk), then render the chunks "
    "with Load GAN reading the saved file (README: 'Tuning for a farm')"
)


class TuneGANNode:
    DISPLAY_NAME = "Tune GAN to Shot"
    DESCRIPTION = (
        "Pivotal tuning (PTI): fine-tunes a copy of the generator's synthesis weights so that "
        "the latents from Invert (the pivots) reproduce their frames exactly, with a locality "
        "term that keeps the model unchanged away from them. Far more faithful reconstructions "
        "of plates the model could not make; the tuned model has its own content hash and is "
        "reused (memory and disk) for the same shot, latents and settings. A shot render "
        "(--chunk, farm, Ray, server) refuses it: tune once, Save GAN, render with Load GAN."
    )
    CATEGORY = f"{CATEGORY}/gan"
    FUNCTION = "tune"
    RETURN_TYPES = ("GAN_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The tuned generator (a copy; the input model is unchanged).",)
    PER_CHUNK_REFUSAL = (
        f"Tune GAN to Shot would tune each chunk on its own frames; {TWO_STEP_RECIPE}"
    )

    @classmethod
    def whole_shot_refusal(cls, inputs: dict) -> str | None:
        """Why a shot render (which runs the graph per chunk, on the chunk's frames) must not
        run this node with ``inputs``, or None: only ``steps`` 0 (passing through) may run."""
        try:
            return None if float(inputs.get("steps", 1)) == 0 else cls.PER_CHUNK_REFUSAL
        except (TypeError, ValueError):  # a link: assume it tunes
            return cls.PER_CHUNK_REFUSAL

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": link_input("GAN_MODEL", "From Load GAN: the model Invert used."),
                "latent": link_input("GAN_LATENT", "From Invert: the pivots, one per frame."),
                "images": link_input(
                    "IMAGE", "The frames the latents were solved for (the Invert's images)."
                ),
                "steps": number_input(
                    "INT", 100, "Optimiser steps (0: no tuning, the model passes through).",
                    min=0, max=100000,
                ),
                "learning_rate": number_input(
                    "FLOAT", 3e-4, "Adam learning rate (PTI: 0.0003).",
                    min=1e-6, max=1.0, step=0.0001,
                ),
                "pivot_frames": number_input(
                    "INT", 0, "Frames tuned on, spread evenly over the shot (0: every frame).",
                    min=0, max=100000,
                ),
                "locality": number_input(
                    "FLOAT", 0.1, "Weight of the locality term: how firmly the model keeps its "
                    "behaviour away from the pivots (0: off).", min=0.0, max=100.0, step=0.01,
                ),
                "seed": number_input(
                    "INT", 0, "Seed of the batches' order and the locality samples.",
                    min=0, max=2**63 - 1,
                ),
            },
            "optional": {
                "loss_mix": link_input(
                    "LOSS_MIX", "The reconstruction loss (empty: lpips_vgg + l2, as PTI)."
                ),
                "batch_size": number_input(
                    "INT", 4, "Pivot images per step.", min=1, max=1024
                ),
                "cache": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Also keep tuned models on disk (beside the latent cache), "
                        "so the same model, latents, frames and settings tune once across runs "
                        "(within a run they are kept in memory).",
                    },
                ),
                "lr_schedule": choice_input(
                    LR_SCHEDULES, "The learning rate over the steps: constant, or cosine "
                    "(falls to 0 by the last step: a high rate settles on the details)."
                ),
            },
        }  # fmt: skip

    def tune(
        self,
        model,
        latent,
        images,
        steps: int,
        learning_rate: float,
        pivot_frames: int,
        locality: float,
        seed: int,
        loss_mix=None,
        batch_size: int = 4,
        cache: bool = True,
        lr_schedule: str = "constant",
    ):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            settings = TuneSettings(
                steps=int(steps), learning_rate=float(learning_rate),
                pivot_frames=int(pivot_frames), locality=float(locality),
                batch_size=int(batch_size), seed=int(seed), lr_schedule=lr_schedule,
            )  # fmt: skip
            if host.shot is not None and settings.steps > 0:
                raise error(self.PER_CHUNK_REFUSAL)
            if not isinstance(latent, GanLatent):
                raise error("expected a GAN_LATENT (from Invert or Load Latents)", input="latent")
            frames = latent.frames[:: latent.fit.tile_count]
            if len(frames) != images.shape[0]:
                raise error(
                    f"{images.shape[0]} frames of images but the latents hold {len(frames)} "
                    "frames; connect the frames the latents were solved for (the Invert's images)",
                    input="images",
                )
            pixels = display_pixels(images, frames, self.DISPLAY_NAME)
            bar = host.progress(settings.steps, "tuning") if settings.steps else None
            try:
                result = tune_model(
                    model, latent, pixels, settings, mix=loss_mix,
                    lpips_folders=host.model_folders("lpips"),
                    callbacks=Callbacks(
                        on_step=bar.update if bar else None, check_interrupt=host.check_interrupt
                    ),
                    cache=TunedModelCache() if cache else None,
                )  # fmt: skip
            finally:  # a refusal or an interrupt leaves no bar behind
                if bar:
                    bar.close()
        if not result.history:  # passed through or cached: nothing to plot
            return (result.model,)
        title = f"Tune GAN to Shot: {settings.steps} steps on {len(frames)} frames"
        plot = loss_curve_image(result.history, title=title)
        shown = host.show_plot(plot, f"tune_loss_{result.model.content_hash[:12]}")
        return {"ui": {"images": shown}, "result": (result.model,)} if shown else (result.model,)


class SaveGANNode:
    DISPLAY_NAME = "Save GAN"
    DESCRIPTION = (
        "Writes a GAN_MODEL (a tuned one, typically) as latentmirror .safetensors, the weights "
        "exactly as they are, for Load GAN: farm tasks then render with the same tuned weights. "
        "Written to a temporary name and renamed into place; replaces only files it wrote."
    )
    CATEGORY = f"{CATEGORY}/gan"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": link_input("GAN_MODEL", "From Tune GAN to Shot (or Load GAN)."),
                "path": text_input(
                    "File to write (.safetensors added if missing). Relative paths go to "
                    "ComfyUI's output folder (headless: the current folder, where ./models/gan "
                    "is one of Load GAN's folders).",
                    default="models/gan/latentmirror-tuned.safetensors",
                ),
            }
        }

    @classmethod
    def IS_CHANGED(cls, **_ignored):
        return float("nan")  # always write: the file may have been removed

    def save(self, model, path: str):
        with context(node=self.DISPLAY_NAME, input="path"):
            target = safetensors_to_write(current_host(), path)
            with context(file=target):
                if os.path.lexists(target) and not is_latentmirror_gan_file(target):
                    raise error(
                        "a file that is not a GAN file latentmirror wrote is in the way; "
                        "latentmirror replaces only files it wrote. Move or remove it, or "
                        "choose another path"
                    )
                try:
                    save_safetensors(model, target, dtype=model.dtype)  # exact: no rounding
                except OSError as exc:
                    raise error(f"cannot write the model file ({exc.strerror})") from None
        return {"ui": {"files": [target]}}
