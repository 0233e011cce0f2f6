"""The bundled demo face model: present, small, loadable, listed first, and making faces."""

import os

import torch

from latentmirror.core.gan import load_gan
from latentmirror.host import BUNDLED_MODELS, set_host
from latentmirror.nodes.gan_nodes import LoadGAN
from latentmirror.plugin.headless import HeadlessHost

DEMO = "latentmirror-demo-faces-64.safetensors"
DEMO_PATH = os.path.join(BUNDLED_MODELS, "gan", DEMO)


def test_demo_model_is_small_and_complete():
    assert os.path.getsize(DEMO_PATH) <= 10 * 1024 * 1024
    model = load_gan(DEMO_PATH)
    assert model.kind == "stylegan2" and model.resolution == 64
    assert model.discriminator is not None  # for the d_features loss
    assert model.architecture["format"] == "safetensors"


def test_demo_model_is_listed_first(tmp_path):
    other = tmp_path / "models" / "gan"
    other.mkdir(parents=True)
    (other / "aaa_first_alphabetically.safetensors").write_bytes(b"")
    set_host(HeadlessHost(device="cpu", models_dir=str(tmp_path / "models")))
    try:
        choices = LoadGAN.INPUT_TYPES()["required"]["model_name"][0]
    finally:
        set_host(None)
    assert choices[0] == DEMO and "aaa_first_alphabetically.safetensors" in choices


def test_demo_model_makes_varied_faces_with_a_face_structure():
    model = load_gan(DEMO_PATH)
    z = torch.randn(16, model.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = model.synthesis(model.mapping(z), noise_mode="const").clamp(-1, 1)
    assert images.shape == (16, 3, 64, 64)
    assert images.std(dim=0).mean() > 0.1  # different z, different faces
    # Faces are centred: the middle of the frame differs from the corners (background).
    centre = images[:, :, 20:44, 20:44].mean(dim=(2, 3))
    corners = images[:, :, :8, :8].mean(dim=(2, 3))
    assert (centre - corners).abs().mean() > 0.05
    # Truncation to w_avg gives the average face, the same for every z.
    with torch.no_grad():
        average = model.synthesis(model.mapping(z[:2], truncation_psi=0.0), noise_mode="const")
    assert torch.allclose(average[0], average[1], atol=1e-5)
