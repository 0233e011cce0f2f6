"""The synthesis helper (core/synthesis.py) shared by Invert's reconstruction and Resynthesize."""

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.invert import reconstruct
from latentmirror.core.latents import GanLatent
from latentmirror.core.resynth import ResynthSettings, resynthesize
from latentmirror.core.synthesis import halve_batch_after_oom, noise_maps, synthesise_frames


def crop_latent(model, ws, height=64, width=100):
    fit = plan_fit("crop", height, width, model.resolution)
    return GanLatent(ws.clone(), "w_plus", model.content_hash, list(range(ws.shape[0])), fit)


def test_reconstruction_and_plain_resynthesis_are_the_same_images(demo_model, demo_faces):
    images, ws = demo_faces
    latent = crop_latent(demo_model, ws)
    plate = torch.rand(4, 3, 64, 100, generator=torch.Generator().manual_seed(2))
    recon = reconstruct(demo_model, latent, plate, batch_size=3)
    assert recon.shape == (4, 3, 64, 100)
    plain = resynthesize(demo_model, latent, ResynthSettings(batch_size=3), plate=plate)
    assert torch.equal(recon, plain)
    # a crop fit keeps the plate's sides and puts the model's image in the centre square
    assert torch.equal(recon[..., :18], plate[..., :18])
    assert torch.allclose(recon[..., 18:82], images, atol=1e-5)


def test_frames_come_at_plate_or_model_size_batch_by_batch(demo_model, demo_faces):
    _, ws = demo_faces
    latent = crop_latent(demo_model, ws)
    reported = []
    at_model = synthesise_frames(
        demo_model, latent, ws, batch_size=3, output_size="model",
        on_frame=lambda done, total: reported.append((done, total)),
    )  # fmt: skip
    assert at_model.shape == (4, 3, 64, 64) and reported == [(3, 4), (4, 4)]
    at_plate = synthesise_frames(demo_model, latent, ws)  # no plate: black sides
    assert at_plate.shape == (4, 3, 64, 100) and at_plate[..., :18].abs().max() == 0
    with pytest.raises(LatentmirrorError, match="plate has 2 frames") as info:
        synthesise_frames(demo_model, latent, ws, plate=torch.zeros(2, 3, 64, 100))
    assert info.value.where.input == "plate"


def test_noise_maps_by_mode(demo_model, demo_faces):
    _, ws = demo_faces
    latent = crop_latent(demo_model, ws)
    assert noise_maps(demo_model, latent, "const", [0], 0) == ("const", None)
    assert noise_maps(demo_model, latent, "none", [0], 0) == ("none", None)
    mode, maps = noise_maps(demo_model, latent, "random", [0, 3], seed=4)
    sizes = demo_model.noise_layer_sizes()
    assert mode == "const" and maps.keys() == sizes.keys()
    assert all(maps[name].shape == (2, 1, size, size) for name, size in sizes.items())
    with pytest.raises(LatentmirrorError, match="carry no noise maps"):
        noise_maps(demo_model, latent, "stored", [0], 0)


def test_out_of_memory_halves_the_batch_down_to_one_frame(demo_model):
    assert halve_batch_after_oom(8, demo_model) == 4
    assert halve_batch_after_oom(3, demo_model) == 1
    with pytest.raises(LatentmirrorError, match="out of device memory with one 64 px") as info:
        halve_batch_after_oom(1, demo_model)
    assert info.value.where.input == "batch_size"


def test_resynthesize_settings_name_the_synthesis_modes():
    with pytest.raises(LatentmirrorError, match="noise_mode must be one of"):
        ResynthSettings(noise_mode="loud")
    with pytest.raises(LatentmirrorError, match="output_size must be one of"):
        ResynthSettings(output_size="huge")
