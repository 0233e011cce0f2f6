"""GAN_LATENT files and the latent cache (core/latents.py)."""

import json
import os

import pytest
import torch
from safetensors import safe_open

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.latents import GanLatent, LatentCache, load_latents, save_latents


def make_latent(frames=(1001, 1002, 1004), noise=True):
    gen = torch.Generator().manual_seed(1)
    count = len(frames)
    return GanLatent(
        ws=torch.randn(count, 10, 16, generator=gen),
        space="w_plus_noise" if noise else "w_plus",
        model_hash="ab" * 32,
        frames=list(frames),
        fit=plan_fit("crop", 90, 160, 64),
        noise={"b4.conv1": torch.randn(count, 1, 4, 4, generator=gen)} if noise else None,
        steps=300,
        seed=7,
        loss_mix=[{"term": "lpips_vgg", "weight": 1.0, "params": {"resolution": 256}}],
        history={"total": [0.5, 0.25], "lpips_vgg": [0.5, 0.25]},
        frame_loss=[0.2, 0.3, 0.4],
    )


def test_latents_round_trip_through_safetensors_with_json_metadata(tmp_path):
    latent = make_latent()
    path = save_latents(latent, str(tmp_path / "shot" / "latents.safetensors"))
    assert os.listdir(tmp_path / "shot") == ["latents.safetensors"]  # no temp file left
    back = load_latents(path)
    assert torch.equal(back.ws, latent.ws)
    assert torch.equal(back.noise["b4.conv1"], latent.noise["b4.conv1"])
    assert back.metadata() == latent.metadata()
    assert back.fit.mode == "crop" and back.fit.plate_size == (90, 160)
    # any safetensors tool reads the metadata as plain JSON
    with safe_open(path, framework="pt") as f:
        meta = json.loads(f.metadata()["latentmirror"])
    assert meta["frames"] == [1001, 1002, 1004] and meta["model_hash"] == "ab" * 32
    assert meta["space"] == "w_plus_noise" and meta["steps"] == 300


def test_select_keeps_frames_noise_and_losses_together():
    part = make_latent().select([0, 2])
    assert part.frames == [1001, 1004] and part.ws.shape[0] == 2
    assert part.noise["b4.conv1"].shape[0] == 2 and part.frame_loss == [0.2, 0.4]


def test_bad_latent_files_are_clear_errors(tmp_path):
    with pytest.raises(LatentmirrorError, match="no latent file") as info:
        load_latents(str(tmp_path / "none.safetensors"))
    assert info.value.where.file.endswith("none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(LatentmirrorError, match="not a readable .safetensors"):
        load_latents(str(junk))
    from safetensors.torch import save_file

    other = str(tmp_path / "other.safetensors")
    save_file({"weight": torch.zeros(2)}, other)
    with pytest.raises(LatentmirrorError, match="not a latentmirror latent file"):
        load_latents(other)
    with pytest.raises(LatentmirrorError, match="3 latents but 2 frame numbers"):
        GanLatent(torch.zeros(3, 2, 2), "w", "h", [1, 2], plan_fit("stretch", 4, 4, 4))


def test_cache_stores_reads_and_forgets_the_least_recently_used(tmp_path):
    cache = LatentCache(str(tmp_path / "cache"), max_bytes=10**9)
    assert cache.get("k1") is None
    cache.put("k1", make_latent())
    assert torch.equal(cache.get("k1").ws, make_latent().ws)
    size = os.path.getsize(cache._path("k1"))
    small = LatentCache(cache.folder, max_bytes=int(size * 2.5))
    os.utime(cache._path("k1"), (1, 1))  # the oldest
    small.put("k2", make_latent())
    small.put("k3", make_latent())
    assert small.get("k1") is None and small.get("k2") is not None and small.get("k3") is not None


def test_a_damaged_cache_entry_is_a_miss_not_an_error(tmp_path):
    cache = LatentCache(str(tmp_path / "cache"))
    cache.put("k", make_latent())
    with open(cache._path("k"), "r+b") as f:
        f.write(b"\0" * 64)
    assert cache.get("k") is None
    assert not os.path.exists(cache._path("k"))
