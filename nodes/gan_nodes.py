"""Load GAN."""

from __future__ import annotations

from ..core.errors import context, error
from ..core.gan.cache import DTYPES, get_model
from ..host import current_host
from .common import CATEGORY, choice_input, link_input, number_input, to_nhwc

DTYPE_CHOICES = ("auto", *DTYPES)


class LoadGAN:
    DISPLAY_NAME = "Load GAN"
    DESCRIPTION = (
        "Loads a StyleGAN2/3 generator (and its discriminator when the file has one) from "
        "models/gan: NVlabs .pkl (read safely: no code in the file is run), rosinality .pt, or "
        ".safetensors. The bundled demo face model is listed first; real work uses an FFHQ "
        "StyleGAN2/3 pickle. Loaded models are kept by content hash and reused."
    )
    CATEGORY = f"{CATEGORY}/gan"
    FUNCTION = "load"
    RETURN_TYPES = ("GAN_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The generator (+ discriminator), w_avg, resolution and content hash.",)
    MODEL_INPUT = "model_name"  # the file whose content hash goes into frame fingerprints

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": (
                    current_host().list_models("gan"),
                    {
                        "tooltip": "A file in models/gan (.pkl, .pt, .safetensors); the bundled "
                        "demo model first."
                    },
                ),
                "dtype": choice_input(
                    DTYPE_CHOICES,
                    "Weights' precision. auto: float32 (mixed precision is applied where it "
                    "pays, per node).",
                ),
            }
        }

    def load(self, model_name: str, dtype: str = "auto"):
        host = current_host()
        with context(node=self.DISPLAY_NAME):
            path = host.model_path("gan", model_name)
            if path is None:
                folders = ", ".join(host.model_folders("gan")) or "(no gan folder yet)"
                raise error(
                    f"no model '{model_name}' in the gan model folders ({folders}); put "
                    "StyleGAN2/3 .pkl, .pt or .safetensors files there",
                    input="model_name",
                )
            with context(input="model_name", file=path):
                model = get_model(path, host.device(), dtype)
        return (model,)


class SampleGAN:
    DISPLAY_NAME = "Sample GAN"
    DESCRIPTION = (
        "Images the model makes by itself from a seed: reference faces for ReferenceBlend with "
        "nothing to load, or a look at what a model knows. Display-referred [0, 1]."
    )
    CATEGORY = f"{CATEGORY}/gan"
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("count images at the model's resolution.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": link_input("GAN_MODEL", "From Load GAN."),
                "seed": number_input("INT", 0, "Which faces: the same seed, the same images.",
                                     min=0, max=2**63 - 1),
                "count": number_input("INT", 1, "How many images.", min=1, max=64),
                "truncation": number_input(
                    "FLOAT", 0.7, "Pull toward the average face (1: none; 0.7: typical, cleaner).",
                    min=0.0, max=2.0, step=0.01,
                ),
            }
        }  # fmt: skip

    def sample(self, model, seed: int, count: int = 1, truncation: float = 0.7):
        with context(node=self.DISPLAY_NAME):
            images = model.sample(int(count), int(seed), float(truncation))
        return (to_nhwc(((images.float() + 1) / 2).clamp(0, 1)),)
