"""Training code for the bundled demo face generator: procedural faces and the recipe that fits a
small StyleGAN2 to them (nothing downloaded)."""
