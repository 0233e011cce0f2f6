"""Pure library: frames, colour, GAN networks, losses, inversion. Imports no host (no ComfyUI)."""
