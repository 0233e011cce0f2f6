"""StyleGAN2/3 networks in plain PyTorch and safe loading of the files users have.

``load_gan(path)`` reads NVlabs network pickles (without running their embedded code), rosinality
checkpoints and our canonical ``.safetensors``; ``save_safetensors`` writes the latter.
"""

from .loading import load_gan, save_safetensors
from .model import GanModel

__all__ = ["GanModel", "load_gan", "save_safetensors"]
