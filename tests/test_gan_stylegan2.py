"""Tests for the pure-PyTorch StyleGAN2 (core/gan/stylegan2.py) and its ops (core/gan/ops.py).

Parity with NVlabs' code is checked outside the repository; here the golden values pin the
numerics of that parity-verified version, and the state_dict key lists pin the NVlabs names.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentmirror.core.gan import ops
from latentmirror.core.gan import stylegan2 as sg2


def make_g(res=16, arch="skip", c_dim=0, z_dim=8, w_dim=8, **synthesis):
    synthesis = dict(channel_base=16 * res, channel_max=8, architecture=arch, **synthesis)
    return sg2.Generator(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=synthesis,
    ).eval()  # fmt: skip


def randomize_small_params(module: torch.nn.Module) -> None:
    """Non-zero noise strengths and biases, so noise and bias paths show up in outputs."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("noise_strength") or (name.endswith("bias") and "affine" not in name):
                p.copy_(0.3 * torch.randn(p.shape))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------------------------------------
# Generator shapes and attributes.


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("res", [4, 8, 32, 64])
def test_generator_shapes(res, arch):
    g = make_g(res, arch, z_dim=6, w_dim=5)
    log2 = int(np.log2(res))
    assert g.num_ws == g.synthesis.num_ws == g.mapping.num_ws == 2 * log2 - 2
    assert (g.z_dim, g.w_dim, g.img_resolution, g.img_channels) == (6, 5, res, 3)
    z = torch.randn(2, 6)
    with torch.no_grad():
        ws = g.mapping(z, None)
        img = g.synthesis(ws, noise_mode="const")
    assert ws.shape == (2, g.num_ws, 5)
    assert img.shape == (2, 3, res, res) and img.dtype == torch.float32
    assert torch.isfinite(img).all()


def test_generator_conditioning_and_flat_synthesis_kwargs():
    # stylegan3-repo pickles pass synthesis kwargs flat; both forms build the same network.
    nested = make_g(8, c_dim=3)
    flat = sg2.Generator(
        z_dim=8, c_dim=3, w_dim=8, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=8, architecture="skip",
    ).eval()  # fmt: skip
    flat.load_state_dict(nested.state_dict(), strict=True)
    z, c = torch.randn(2, 8), torch.eye(3)[:2]
    with torch.no_grad():
        a, b = nested(z, c), flat(z, c)
        other_class = nested(z, torch.eye(3)[1:])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, other_class)
    with pytest.raises(ValueError):
        nested.mapping(z, None)


# ----------------------------------------------------------------------------------------------
# Truncation.


def test_truncation_psi0_gives_w_avg_and_cutoff_is_respected():
    g = make_g(16)
    g.mapping.w_avg.copy_(torch.randn(8))
    z = torch.randn(3, 8)
    with torch.no_grad():
        full = g.mapping(z, None)
        zero = g.mapping(z, None, truncation_psi=0)
        cut = g.mapping(z, None, truncation_psi=0, truncation_cutoff=2)
        half = g.mapping(z, None, truncation_psi=0.5)
    w_avg = g.mapping.w_avg.expand(3, g.num_ws, 8)
    torch.testing.assert_close(zero, w_avg)
    torch.testing.assert_close(cut[:, :2], w_avg[:, :2])
    torch.testing.assert_close(cut[:, 2:], full[:, 2:])
    torch.testing.assert_close(half, (w_avg + full) / 2)
    assert not torch.allclose(full, w_avg)


def test_w_avg_updates_only_when_asked():
    g = make_g(8).train()
    before = g.mapping.w_avg.clone()
    g.mapping(torch.randn(4, 8), None)
    torch.testing.assert_close(g.mapping.w_avg, before)
    g.mapping(torch.randn(4, 8), None, update_emas=True)
    assert not torch.equal(g.mapping.w_avg, before)


# ----------------------------------------------------------------------------------------------
# Noise.


def test_noise_modes_and_supplied_noise():
    g = make_g(16)
    randomize_small_params(g)
    ws = g.mapping(torch.randn(2, 8), None)
    syn = g.synthesis
    with torch.no_grad():
        const1 = syn(ws, noise_mode="const")
        const2 = syn(ws, noise_mode="const")
        rand1 = syn(ws, noise_mode="random")
        rand2 = syn(ws, noise_mode="random")
        none = syn(ws, noise_mode="none")
        names = list(syn.noise_layers())
        assert names == ["b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1"]
        consts = [layer.noise_const for layer in syn.noise_layers().values()]
        sizes = [layer.resolution for layer in syn.noise_layers().values()]
        zeros = [torch.zeros(1, 1, r, r) for r in sizes]
        supplied_const = syn(ws, noise_mode="none", noise=consts)
        supplied_zero = syn(ws, noise_mode="const", noise=dict(zip(names, zeros, strict=True)))
        # One supplied map; the other layers keep the mode's noise.
        bump = syn(ws, noise_mode="const", noise={"b16.conv1": torch.ones(2, 1, 16, 16)})
    torch.testing.assert_close(const1, const2, rtol=0, atol=0)
    assert not torch.allclose(rand1, rand2)
    assert not torch.allclose(rand1, const1)
    assert not torch.allclose(none, const1)
    torch.testing.assert_close(supplied_const, const1)
    torch.testing.assert_close(supplied_zero, none)
    assert not torch.allclose(bump, const1)
    with pytest.raises(ValueError, match="unknown noise layers"):
        syn(ws, noise={"b32.conv0": zeros[0]})
    with pytest.raises(ValueError):
        syn(ws, noise=consts[:2])
    with pytest.raises(ValueError):
        syn(ws, noise_mode="fixed")


# ----------------------------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_gradients_flow_from_image_to_ws_and_noise(arch):
    g = make_g(16, arch)
    randomize_small_params(g)
    ws = g.mapping(torch.randn(2, 8), None).detach().requires_grad_(True)
    noise = [
        torch.randn(1, 1, layer.resolution, layer.resolution, requires_grad=True)
        for layer in g.synthesis.noise_layers().values()
    ]
    g.synthesis(ws, noise=noise).square().mean().backward()
    assert torch.isfinite(ws.grad).all()
    assert (ws.grad.abs().sum(dim=(0, 2)) > 0).all()  # every layer's w matters
    assert all(n.grad is not None and n.grad.abs().sum() > 0 for n in noise)


def test_fused_and_unfused_modconv_agree():
    g = make_g(16, "resnet")
    randomize_small_params(g)
    ws = g.mapping(torch.randn(3, 8), None)
    with torch.no_grad():
        fused = g.synthesis(ws, fused_modconv=True)
        unfused = g.synthesis(ws, fused_modconv=False)
    torch.testing.assert_close(fused, unfused, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Discriminator.


@pytest.mark.parametrize("arch", ["resnet", "skip", "orig"])
def test_discriminator_logits_and_features(arch):
    d = sg2.Discriminator(
        c_dim=2, img_resolution=32, img_channels=3, architecture=arch, channel_base=256,
        channel_max=16, mapping_kwargs=dict(num_layers=2),
    ).eval()  # fmt: skip
    img, c = torch.randn(4, 3, 32, 32), torch.eye(2)[[0, 1, 0, 1]]
    with torch.no_grad():
        logits = d(img, c)
        feats = d.features(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    assert [tuple(f.shape) for f in feats] == [
        (4, 16, 16, 16), (4, 16, 8, 8), (4, 16, 4, 4), (4, 16, 4, 4),
    ]  # fmt: skip
    img.requires_grad_(True)
    d(img, c).sum().backward()
    assert img.grad.abs().sum() > 0


def test_minibatch_std_groups():
    x = torch.randn(6, 4, 2, 2)
    y = sg2.MinibatchStdLayer(group_size=2)(x)
    assert y.shape == (6, 5, 2, 2)
    # Group of sample i: i % 3 (the batch is split as [G, n]); here samples 0 and 3.
    expected = x[[0, 3]].std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(y[0, 4], expected.expand(2, 2), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(y[3, 4], y[0, 4])
    with pytest.raises(ValueError):
        sg2.MinibatchStdLayer(group_size=4)(x)


# ----------------------------------------------------------------------------------------------
# state_dict keys: NVlabs' names (verified against stylegan2-ada-pytorch), so pickles load.

G_KEYS_RESNET_8PX_C2 = """
mapping.embed.weight mapping.embed.bias mapping.fc0.weight mapping.fc0.bias mapping.fc1.weight
mapping.fc1.bias mapping.w_avg
synthesis.b4.const synthesis.b4.resample_filter
synthesis.b4.conv1.weight synthesis.b4.conv1.bias synthesis.b4.conv1.noise_const
synthesis.b4.conv1.noise_strength synthesis.b4.conv1.resample_filter
synthesis.b4.conv1.affine.weight synthesis.b4.conv1.affine.bias
synthesis.b8.resample_filter
synthesis.b8.conv0.weight synthesis.b8.conv0.bias synthesis.b8.conv0.noise_const
synthesis.b8.conv0.noise_strength synthesis.b8.conv0.resample_filter
synthesis.b8.conv0.affine.weight synthesis.b8.conv0.affine.bias
synthesis.b8.conv1.weight synthesis.b8.conv1.bias synthesis.b8.conv1.noise_const
synthesis.b8.conv1.noise_strength synthesis.b8.conv1.resample_filter
synthesis.b8.conv1.affine.weight synthesis.b8.conv1.affine.bias
synthesis.b8.torgb.weight synthesis.b8.torgb.bias
synthesis.b8.torgb.affine.weight synthesis.b8.torgb.affine.bias
synthesis.b8.skip.weight synthesis.b8.skip.resample_filter
"""

D_KEYS_SKIP_8PX_C2 = """
b8.resample_filter b8.fromrgb.weight b8.fromrgb.bias b8.fromrgb.resample_filter
b8.conv0.weight b8.conv0.bias b8.conv0.resample_filter
b8.conv1.weight b8.conv1.bias b8.conv1.resample_filter
mapping.embed.weight mapping.embed.bias mapping.fc0.weight mapping.fc0.bias
b4.fromrgb.weight b4.fromrgb.bias b4.fromrgb.resample_filter
b4.conv.weight b4.conv.bias b4.conv.resample_filter
b4.fc.weight b4.fc.bias b4.out.weight b4.out.bias
"""

D_KEYS_RESNET_16PX = """
b16.resample_filter b16.fromrgb.weight b16.fromrgb.bias b16.fromrgb.resample_filter
b16.conv0.weight b16.conv0.bias b16.conv0.resample_filter
b16.conv1.weight b16.conv1.bias b16.conv1.resample_filter b16.skip.weight b16.skip.resample_filter
b8.resample_filter b8.conv0.weight b8.conv0.bias b8.conv0.resample_filter
b8.conv1.weight b8.conv1.bias b8.conv1.resample_filter b8.skip.weight b8.skip.resample_filter
b4.conv.weight b4.conv.bias b4.conv.resample_filter b4.fc.weight b4.fc.bias
b4.out.weight b4.out.bias
"""


def test_state_dict_keys_match_nvlabs_names():
    g = sg2.Generator(
        z_dim=4, c_dim=2, w_dim=4, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=32, channel_max=4, architecture="resnet"),
    )  # fmt: skip
    assert set(g.state_dict()) == set(G_KEYS_RESNET_8PX_C2.split())
    assert g.state_dict()["synthesis.b8.conv0.noise_const"].shape == (8, 8)
    assert g.state_dict()["synthesis.b4.const"].shape == (4, 4, 4)
    d = sg2.Discriminator(
        c_dim=2, img_resolution=8, img_channels=3, architecture="skip", channel_base=32,
        channel_max=4, mapping_kwargs=dict(num_layers=1),
    )  # fmt: skip
    assert set(d.state_dict()) == set(D_KEYS_SKIP_8PX_C2.split())
    d = sg2.Discriminator(
        c_dim=0, img_resolution=16, img_channels=3, channel_base=32, channel_max=4,
        block_kwargs=dict(freeze_layers=2),  # frozen layers become buffers with the same keys
    )  # fmt: skip
    assert set(d.state_dict()) == set(D_KEYS_RESNET_16PX.split())


# ----------------------------------------------------------------------------------------------
# Ops against direct implementations.


def upfirdn2d_loops(x, f, up, down, pad):
    """Textbook upfirdn on numpy arrays: zero-stuff, pad, true 2-D convolution, decimate."""
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    stuffed = np.zeros((n, c, h * up, w * up))
    stuffed[:, :, ::up, ::up] = x
    padded = np.zeros((n, c, h * up + py0 + py1, w * up + px0 + px1))
    padded[:, :, py0 : py0 + h * up, px0 : px0 + w * up] = stuffed
    fh, fw = f.shape
    out_h = (padded.shape[2] - fh) // down + 1
    out_w = (padded.shape[3] - fw) // down + 1
    out = np.zeros((n, c, out_h, out_w))
    for oy in range(out_h):
        for ox in range(out_w):
            for i in range(fh):
                for j in range(fw):
                    # Convolution: output (y, x) sees input (y + fh-1 - i) with tap f[i].
                    y, xx = oy * down + fh - 1 - i, ox * down + fw - 1 - j
                    out[:, :, oy, ox] += padded[:, :, y, xx] * f[i, j]
    return out


@pytest.mark.parametrize(
    ("up", "down", "pad"),
    [(1, 1, (1, 1, 1, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 2, (0, 3, 1, 2))],
)
def test_upfirdn2d_matches_loops(up, down, pad):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    f = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)  # asymmetric
    got = ops.upfirdn2d(x, f, up=up, down=down, padding=list(pad))
    want = upfirdn2d_loops(x.numpy(), f.numpy(), up, down, pad)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_upfirdn2d_crop_and_separable_filter():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    taps = torch.arange(1.0, 9.0, dtype=torch.float64)  # 8 taps -> separable
    f_sep = ops.setup_filter(taps).double()
    assert f_sep.ndim == 1
    f_2d = torch.outer(f_sep, f_sep)
    pad = [4, 3, 5, 2]
    torch.testing.assert_close(
        ops.upfirdn2d(x, f_sep, up=2, padding=pad), ops.upfirdn2d(x, f_2d, up=2, padding=pad)
    )
    # Negative padding crops: identity filter with padding -1 drops the border.
    torch.testing.assert_close(ops.upfirdn2d(x, None, padding=-1), x[:, :, 1:-1, 1:-1])


def test_resampling_shapes_and_dc_gain():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and abs(f.sum().item() - 1) < 1e-6
    ones = torch.ones(1, 2, 8, 8)
    up = ops.upsample2d(ones, f)
    down = ops.downsample2d(ones, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.ones_like(up[..., 2:-2, 2:-2]))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))


@pytest.mark.parametrize(
    ("k", "up", "down"), [(3, 2, 1), (3, 1, 2), (1, 2, 1), (1, 1, 2), (3, 1, 1)]
)
def test_conv2d_resample_equals_filter_then_conv(k, up, down):
    # The fast paths (transposed / strided conv) against the plain definition, with all padding
    # applied once up front: upfirdn (zero-stuff, pad, filter) -> valid conv2d -> upfirdn (down).
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(5, 4, k, k, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    p = k // 2
    got = ops.conv2d_resample(x, w, f=f, up=up, down=down, padding=p)
    lo, hi = p, p
    if up > 1:  # a 4-tap filter needs 2 before and 1 after at up=2
        lo, hi = p + 2, p + 1
    if down > 1:  # and 1 on each side at down=2
        lo, hi = p + 1, p + 1
    y = ops.upfirdn2d(x, f if up > 1 else None, up=up, padding=[lo, hi, lo, hi], gain=up**2)
    y = torch.nn.functional.conv2d(y, w)
    if down > 1:
        y = ops.upfirdn2d(y, f, down=down)
    assert got.shape == (2, 5, 8 * up // down, 8 * up // down)
    torch.testing.assert_close(got, y)


def test_bias_act():
    x = torch.tensor([[-1.0, 2.0]])
    b = torch.tensor([0.5, -0.5])
    torch.testing.assert_close(
        ops.bias_act(x, b, act="lrelu"), torch.tensor([[-0.1, 1.5]]) * np.sqrt(2)
    )
    torch.testing.assert_close(
        ops.bias_act(x, b, act="lrelu", gain=1, clamp=1.0), torch.tensor([[-0.1, 1.0]])
    )
    torch.testing.assert_close(ops.bias_act(x), x)


# ----------------------------------------------------------------------------------------------
# Golden values from the version verified against NVlabs (bitwise equal on CPU, float32).


def test_golden_values():
    torch.manual_seed(123)
    g = sg2.Generator(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=128, channel_max=16),
    ).eval()  # fmt: skip
    d = sg2.Discriminator(
        c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=16
    ).eval()
    randomize_small_params(g)
    randomize_small_params(d)
    with torch.no_grad():
        g.mapping.w_avg.copy_(torch.randn(8))
        z = torch.randn(2, 8)
        img = g(z, None, truncation_psi=0.7, noise_mode="const")
        logits = d(img, None)
    assert img.sum().item() == pytest.approx(1210.8948974609375, rel=1e-5)
    assert img.abs().sum().item() == pytest.approx(1382.361083984375, rel=1e-5)
    np.testing.assert_allclose(
        img[0, :, 0, 0].numpy(), [0.15931764, 0.49717000, 1.73188496], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        logits.flatten().numpy(), [-0.30162716, -0.17429522], rtol=1e-5, atol=1e-6
    )
