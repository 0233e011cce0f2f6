"""load_gan: NVlabs pickles, rosinality checkpoints, safetensors; hostile and broken files.

Fixture files are written by tests/gan_fixtures.py with our own networks (random weights), in the
same structure as the original tools write them. Parity against the original implementations is
checked outside the repository (see the issue report).
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.gan import GanModel, load_gan, save_safetensors
from latentmirror.core.gan.safe_pickle import ALLOWED_GLOBALS

from . import gan_fixtures as fx
from .support import write_raw_exr

TOL = 1e-4


def _z(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn([n, dim], generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def assert_same_outputs(g: GanModel, G: torch.nn.Module, D: torch.nn.Module | None, c=None):
    """Loaded model == source modules: mapping (with truncation), const-noise synthesis, D."""
    z = _z(4, G.z_dim)
    for psi, cutoff in ((1.0, None), (0.7, None), (0.5, 2)):
        ours = g.mapping(z, truncation_psi=psi, truncation_cutoff=cutoff, c=c)
        ref = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
        assert (ours - ref).abs().max() <= TOL
    ws = G.mapping(z, c)
    img = G.synthesis(ws, noise_mode="const")
    assert (g.synthesis(ws, noise_mode="const") - img).abs().max() <= TOL
    if D is not None:
        assert g.discriminator is not None
        assert (g.discriminator(img, c) - D(img, c)).abs().max() <= TOL


@pytest.fixture(scope="module")
def sg2():
    """(G, G kwargs, D, D kwargs, G_ema): G_ema differs from G, so the loader must pick it."""
    G, g_kwargs, D, d_kwargs = fx.make_sg2(seed=0)
    G_ema = fx.randomize(copy.deepcopy(G), seed=7)
    return G, g_kwargs, D, d_kwargs, G_ema


# ----------------------------------------------------------------------------------------------
# NVlabs network pickles.


@pytest.mark.parametrize("protocol", [2, 3, 4])  # 3: Python 3.7, 4: 3.8+
def test_nvlabs_pickle_loads_g_ema_and_d(tmp_path, sg2, protocol):
    G, g_kwargs, D, d_kwargs, G_ema = sg2
    path = fx.write_nvlabs_pickle(
        tmp_path / "net.pkl", G, g_kwargs, D, d_kwargs, G_ema, protocol=protocol
    )
    g = load_gan(path)
    assert isinstance(g, GanModel)
    assert (g.z_dim, g.w_dim, g.num_ws, g.resolution) == (32, 32, G_ema.num_ws, 32)
    assert g.architecture["kind"] == "stylegan2"
    assert g.architecture["format"] == "nvlabs-pickle"
    assert g.architecture["generator"] == {"class": "Generator", "kwargs": g_kwargs}
    assert g.architecture["discriminator"]["kwargs"] == d_kwargs
    assert torch.equal(g.w_avg, G_ema.mapping.w_avg)
    assert_same_outputs(g, G_ema, D)
    assert g.source == str(path)


def test_nvlabs_pickle_with_only_g_and_no_d(tmp_path, sg2):
    G, g_kwargs, *_ = sg2
    path = tmp_path / "g_only.pkl"
    fx.write_nvlabs_pickle(path, G, g_kwargs, extra={"G_ema": None})
    g = load_gan(path)
    assert g.discriminator is None
    assert_same_outputs(g, G, None)


def test_conditional_model_needs_labels(tmp_path):
    g_kwargs = {**fx.SG2_G_KWARGS, "c_dim": 4}
    d_kwargs = {**fx.SG2_D_KWARGS, "c_dim": 4}
    G, _, D, _ = fx.make_sg2(seed=3, g_kwargs=g_kwargs, d_kwargs=d_kwargs)
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "cond.pkl", G, g_kwargs, D, d_kwargs))
    c = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 4).float()
    assert_same_outputs(g, G, D, c=c)
    with pytest.raises(LatentmirrorError, match="conditional"):
        g.mapping(_z(4, 32))


@pytest.mark.parametrize("architecture", ["orig", "resnet"])
def test_other_stylegan2_architectures(tmp_path, architecture):
    g_kwargs = {**fx.SG2_G_KWARGS}
    g_kwargs["synthesis_kwargs"] = {**g_kwargs["synthesis_kwargs"], "architecture": architecture}
    g_kwargs["synthesis_kwargs"]["conv_clamp"] = 0.5  # small, so the clamp is exercised
    d_kwargs = {**fx.SG2_D_KWARGS, "architecture": "skip" if architecture == "orig" else "orig"}
    G, _, D, _ = fx.make_sg2(seed=4, g_kwargs=g_kwargs, d_kwargs=d_kwargs)
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "a.pkl", G, g_kwargs, D, d_kwargs))
    assert_same_outputs(g, G, D)


SG3_KWARGS = {
    "z_dim": 16,
    "c_dim": 0,
    "w_dim": 16,
    "img_resolution": 16,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "channel_base": 512,
    "channel_max": 32,
    "magnitude_ema_beta": 0.999,
    "num_fp16_res": 0,
    "conv_clamp": None,
}


@pytest.mark.slow
@pytest.mark.parametrize("config", ["T", "R"])
def test_stylegan3_pickle(tmp_path, config):
    from latentmirror.core.gan.stylegan3 import Generator

    g_kwargs = dict(SG3_KWARGS)
    if config == "R":
        g_kwargs.update(conv_kernel=1, use_radial_filters=True)
    G = fx.randomize(Generator(**g_kwargs), seed=5)
    with torch.no_grad():  # magnitude_ema is read at inference: make it matter
        for name, b in G.named_buffers():
            if name.endswith("magnitude_ema"):
                b.fill_(1.7)
    d_kwargs = {**fx.SG2_D_KWARGS, "img_resolution": 16}
    _, _, D, _ = fx.make_sg2(seed=6, d_kwargs=d_kwargs)
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "sg3.pkl", G, g_kwargs, D, d_kwargs))
    assert g.architecture["kind"] == "stylegan3"
    assert g.num_ws == G.num_ws
    assert_same_outputs(g, G, D)


# ----------------------------------------------------------------------------------------------
# rosinality checkpoints.


def test_rosinality_checkpoint_with_latent_avg_and_d(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, _ = sg2
    g = load_gan(fx.write_rosinality_checkpoint(tmp_path / "ros.pt", G, D))
    assert g.architecture["format"] == "rosinality"
    kwargs = g.architecture["generator"]["kwargs"]
    assert kwargs["synthesis_kwargs"]["channel_base"] == 512
    assert kwargs["synthesis_kwargs"]["channel_max"] == 64
    assert kwargs["mapping_kwargs"] == {"num_layers": 2}
    assert torch.equal(g.w_avg, G.mapping.w_avg)
    assert_same_outputs(g, G, D)


def test_rosinality_training_checkpoint_estimates_w_avg(tmp_path, sg2):
    G, _, D, _, _ = sg2
    g = load_gan(fx.write_rosinality_checkpoint(tmp_path / "train.pt", G, D, with_latent_avg=False))
    with torch.no_grad():
        mean = G.mapping(_z(20_000, 32, seed=9), None)[:, 0].mean(0)
    assert (g.w_avg - mean).abs().max() < 0.05
    with torch.no_grad():
        ws = G.mapping(_z(2, 32), None)
        assert (g.synthesis(ws) - G.synthesis(ws, noise_mode="const")).abs().max() <= TOL


def test_e4e_style_checkpoint_uses_the_decoder(tmp_path, sg2):
    G = sg2[0]
    state = {f"decoder.{k}": v for k, v in fx.rosinality_generator_state(G).items()}
    state["encoder.conv.weight"] = torch.zeros(1)
    latent_avg = G.mapping.w_avg[None].repeat(G.num_ws, 1)
    torch.save(
        {"state_dict": state, "latent_avg": latent_avg, "opts": {"stylegan_size": 32}},
        tmp_path / "e4e.pt",
    )
    g = load_gan(tmp_path / "e4e.pt")
    assert torch.allclose(g.w_avg, G.mapping.w_avg)
    assert g.discriminator is None
    assert_same_outputs(g, G, None)


# ----------------------------------------------------------------------------------------------
# safetensors.


def test_safetensors_round_trip_fp32_exact(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, G_ema = sg2
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "n.pkl", G, g_kwargs, D, d_kwargs, G_ema))
    save_safetensors(g, tmp_path / "n.safetensors", dtype=torch.float32)
    h = load_gan(tmp_path / "n.safetensors")
    assert h.architecture["format"] == "safetensors"
    assert {k: v for k, v in h.architecture.items() if k != "format"} == {
        k: v for k, v in g.architecture.items() if k != "format"
    }
    for a, b in ((g.generator, h.generator), (g.discriminator, h.discriminator)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert_same_outputs(h, G_ema, D)


def test_safetensors_fp16(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, G_ema = sg2
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "n.pkl", G, g_kwargs, D, d_kwargs, G_ema))
    save_safetensors(g, tmp_path / "half.safetensors")  # float16 by default
    h = load_gan(tmp_path / "half.safetensors")
    assert h.dtype == torch.float32  # loaded into float32 networks
    from safetensors import safe_open

    with safe_open(tmp_path / "half.safetensors", "pt") as f:
        assert f.get_tensor("G.synthesis.b4.const").dtype == torch.float16
    with torch.no_grad():
        z = _z(4, 32)
        ws = g.mapping(z)
        assert (h.mapping(z) - ws).abs().max() < 1e-2
        img, img_h = g.synthesis(ws), h.synthesis(ws)
        assert (img - img_h).abs().max() < 2e-2 * max(1.0, img.abs().max().item())
        assert (g.discriminator(img, None) - h.discriminator(img, None)).abs().max() < 2e-2


def test_content_hash_is_sha256_of_the_file_and_stable(tmp_path, sg2):
    import hashlib

    G, g_kwargs, D, d_kwargs, _ = sg2
    path = fx.write_nvlabs_pickle(tmp_path / "n.pkl", G, g_kwargs, D, d_kwargs)
    a, b = load_gan(path), load_gan(path)
    assert a.content_hash == b.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    save_safetensors(a, tmp_path / "a.safetensors")
    save_safetensors(b, tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert load_gan(tmp_path / "a.safetensors").content_hash != a.content_hash


def test_model_api(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, _ = sg2
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "n.pkl", G, g_kwargs, D, d_kwargs))
    assert g.parameter_count() == sum(p.numel() for p in G.parameters())
    both = g.parameter_count(include_discriminator=True)
    assert both == g.parameter_count() + sum(p.numel() for p in D.parameters())
    g.to(dtype=torch.float64)
    assert g.dtype == torch.float64 and g.w_avg.dtype == torch.float64
    assert g.synthesis(g.mapping(_z(1, 32))).shape == (1, 3, 32, 32)
    with pytest.raises(LatentmirrorError, match="z must have shape"):
        g.mapping(torch.zeros(1, 5))


# ----------------------------------------------------------------------------------------------
# Hostile files: nothing in them may run.


@pytest.mark.parametrize(
    "name", ["posix.system", "builtins.exec", "subprocess.call", "builtins.eval"]
)
def test_pickle_naming_a_global_outside_the_allow_list_is_refused(tmp_path, name):
    marker = tmp_path / "pwned"
    payload = fx.hostile_payloads(marker).get(name)
    if payload is None:  # os.system lives in `nt` on Windows
        pytest.skip(f"{name} is not this platform's name for it")
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}))
    with pytest.raises(LatentmirrorError) as info:
        load_gan(path)
    assert f"'{name}'" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


def test_hostile_payload_after_a_valid_network_is_refused(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, _ = sg2
    marker = tmp_path / "pwned"
    payload = fx.hostile_payloads(marker)["builtins.exec"]
    path = fx.write_nvlabs_pickle(
        tmp_path / "e.pkl", G, g_kwargs, D, d_kwargs, extra={"x": payload}
    )
    with pytest.raises(LatentmirrorError, match="'builtins.exec'"):
        load_gan(path)
    assert not marker.exists()


def test_the_exec_payload_is_real(tmp_path):
    """Sanity check of the fixtures: an ordinary unpickler does run them."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(fx.hostile_payloads(marker)["builtins.exec"]))  # noqa: S301
    assert marker.exists()
    marker2 = tmp_path / "ran2"
    exec(fx.hostile_module_src(marker2), {})  # noqa: S102
    assert marker2.exists()


def test_embedded_module_source_is_never_executed(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, G_ema = sg2
    marker = tmp_path / "pwned"
    src = fx.hostile_module_src(marker)
    path = fx.write_nvlabs_pickle(
        tmp_path / "s.pkl", G, g_kwargs, D, d_kwargs, G_ema, module_src=src
    )
    assert src.encode() in path.read_bytes()
    g = load_gan(path)
    assert_same_outputs(g, G_ema, D)
    assert not marker.exists()


def test_torch_zip_with_a_malicious_pickle_is_refused(tmp_path, sg2):
    marker = tmp_path / "pwned"
    path = fx.write_hostile_torch_zip(tmp_path / "evil.pt", marker, sg2[0])
    with pytest.raises(LatentmirrorError) as info:
        load_gan(path)
    assert "system" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()


def test_other_torch_globals_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": fx._Payload(torch.load, str(marker))}))
    with pytest.raises(LatentmirrorError, match="'torch.serialization.load'"):
        load_gan(path)


def test_allow_list_is_small_and_data_only():
    for name in ALLOWED_GLOBALS:
        assert not name.startswith(("os.", "posix.", "nt.", "subprocess.", "sys."))
        assert name not in ("builtins.eval", "builtins.exec", "builtins.getattr", "builtins.open")
    assert len(ALLOWED_GLOBALS) < 25


# ----------------------------------------------------------------------------------------------
# Broken and wrong files: clear errors naming the file.


def _fails(path, match: str) -> LatentmirrorError:
    with pytest.raises(LatentmirrorError, match=match) as info:
        load_gan(path)
    assert str(path) in str(info.value)
    return info.value


def test_missing_file_and_folder(tmp_path):
    _fails(tmp_path / "nope.pkl", "does not exist")
    _fails(tmp_path, "folder")


def test_empty_and_garbage_files(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    _fails(tmp_path / "empty.pkl", "empty")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04" + bytes(range(256)) * 4)
    _fails(tmp_path / "junk.pkl", "corrupt")
    (tmp_path / "text.pt").write_bytes(b"hello, not a model")
    _fails(tmp_path / "text.pt", "wrong kind of file")


def test_truncated_files(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, _ = sg2
    pkl = fx.write_nvlabs_pickle(tmp_path / "n.pkl", G, g_kwargs, D, d_kwargs)
    g = load_gan(pkl)
    save_safetensors(g, tmp_path / "n.safetensors")
    fx.write_rosinality_checkpoint(tmp_path / "n.pt", G, D)
    for name in ("n.pkl", "n.safetensors", "n.pt"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(data[: len(data) // 2])
        _fails(cut, "corrupt|truncated")


def test_exr_renamed_pkl(tmp_path):
    exr = write_raw_exr(tmp_path / "plate.exr", np.zeros((4, 4, 3), np.float32), "RGB")
    renamed = tmp_path / "plate.pkl"
    renamed.write_bytes(open(exr, "rb").read())
    _fails(renamed, "OpenEXR")


def test_pickle_without_a_network(tmp_path):
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"foo": [1, 2, 3]}))
    _fails(tmp_path / "p.pkl", "no network 'G_ema' or 'G'")
    (tmp_path / "l.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    _fails(tmp_path / "l.pkl", "not an NVlabs network pickle")


def test_unknown_architecture(tmp_path, sg2):
    G, g_kwargs, *_ = sg2

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

    path = fx.write_nvlabs_pickle(tmp_path / "enc.pkl", Encoder(), {})
    _fails(path, "unknown architecture.*'Encoder'")
    # A Generator whose weights do not fit the kwargs it claims.
    wrong = {**g_kwargs, "w_dim": 48}
    _fails(fx.write_nvlabs_pickle(tmp_path / "w.pkl", G, wrong), "unknown architecture")
    # rosinality-like checkpoint with tensors StyleGAN2 does not have.
    state = fx.rosinality_generator_state(G)
    state["wavelets.0.weight"] = torch.zeros(1)
    torch.save({"g_ema": state}, tmp_path / "swagan.pt")
    _fails(tmp_path / "swagan.pt", "unknown architecture")


def test_unsupported_resolution(tmp_path, sg2):
    G, g_kwargs, D, d_kwargs, _ = sg2
    g = load_gan(fx.write_nvlabs_pickle(tmp_path / "n.pkl", G, g_kwargs))
    g.architecture["generator"]["kwargs"] = {**g_kwargs, "img_resolution": 2048}
    save_safetensors(g, tmp_path / "big.safetensors")
    _fails(tmp_path / "big.safetensors", "unsupported resolution 2048")


def test_safetensors_without_our_metadata(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    _fails(tmp_path / "other.safetensors", "no latentmirror GAN metadata")


def test_tensorflow_pickle_is_named(tmp_path):
    # A TF network that is not the (G, D, Gs) tuple of a TF StyleGAN2 pickle: named, refused
    # (the real TF pickles load: tests/test_gan_tf_pickle.py).
    blob = b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01."
    (tmp_path / "tf.pkl").write_bytes(blob)
    err = _fails(tmp_path / "tf.pkl", "'dnnlib.tflib.network.Network'")
    assert "TensorFlow" in str(err)
