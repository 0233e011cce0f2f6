"""Pure library: frames, colour, GAN networks, losses, inversion. Imports no host (no ComfyUI)."""

__version__ = "0.1.0"  # the package's version (pyproject.toml); written into every EXR header
