"""Load GAN, the model cache, and the model commands of the CLI."""

import subprocess
import sys

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.gan import load_gan, save_safetensors
from latentmirror.core.gan.cache import release_gan_models
from latentmirror.host import set_host
from latentmirror.nodes.gan_nodes import LoadGAN
from latentmirror.plugin.headless import HeadlessHost

from .gan_fixtures import make_sg2, write_nvlabs_pickle


@pytest.fixture
def models_dir(tmp_path):
    """A models folder holding a small NVlabs-style pickle and its .safetensors conversion."""
    G, g_kwargs, D, d_kwargs = make_sg2(seed=3)
    gan = tmp_path / "models" / "gan"
    gan.mkdir(parents=True)
    pickle_path = write_nvlabs_pickle(gan / "tiny.pkl", G, g_kwargs, D, d_kwargs)
    save_safetensors(load_gan(pickle_path), gan / "tiny.safetensors", dtype=torch.float32)
    set_host(HeadlessHost(device="cpu", models_dir=str(tmp_path / "models")))
    release_gan_models()
    yield gan
    release_gan_models()
    set_host(None)


def test_load_gan_lists_and_loads(models_dir):
    choices = LoadGAN.INPUT_TYPES()["required"]["model_name"][0]
    assert {"tiny.pkl", "tiny.safetensors"} <= set(choices)
    (model,) = LoadGAN().load("tiny.pkl", "auto")
    assert model.resolution == 32 and model.discriminator is not None
    z = torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(0))
    images = model.synthesis(model.mapping(z, truncation_psi=0.7), noise_mode="const")
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()

    (same_file_again,) = LoadGAN().load("tiny.pkl", "auto")
    assert same_file_again is model  # cached by content hash
    (converted,) = LoadGAN().load("tiny.safetensors", "auto")
    again = converted.synthesis(converted.mapping(z, truncation_psi=0.7), noise_mode="const")
    assert torch.allclose(again, images, atol=1e-5)

    assert release_gan_models(model.content_hash) == 1
    (reloaded,) = LoadGAN().load("tiny.pkl", "auto")
    assert reloaded is not model


def test_load_gan_dtype(models_dir):
    (model,) = LoadGAN().load("tiny.safetensors", "bfloat16")
    assert model.dtype == torch.bfloat16


def test_missing_model_names_the_folders(models_dir):
    with pytest.raises(LatentmirrorError) as caught:
        LoadGAN().load("ffhq.pkl", "auto")
    message = str(caught.value)
    assert "ffhq.pkl" in message and str(models_dir) in message and "Load GAN" in message


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "latentmirror", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_info_and_convert_model(models_dir, tmp_path):
    info = run_cli("info", str(models_dir / "tiny.pkl"))
    assert info.returncode == 0, info.stderr
    assert "kind: stylegan2" in info.stdout and "resolution: 32x32" in info.stdout
    assert "num_ws: " in info.stdout and "sha256: " in info.stdout
    assert "parameters" in info.stdout

    target = tmp_path / "half.safetensors"
    converted = run_cli(
        "convert-model", str(models_dir / "tiny.pkl"), str(target), "--dtype", "float16"
    )
    assert converted.returncode == 0, converted.stderr
    model = load_gan(target)
    assert model.discriminator is not None
    assert target.stat().st_size < (models_dir / "tiny.safetensors").stat().st_size

    refused = run_cli("info", str(tmp_path / "nope.pkl"))
    assert refused.returncode == 1 and "nope.pkl" in refused.stderr
