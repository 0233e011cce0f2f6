"""Tests for core/gan/stylegan3.py (StyleGAN3 generator, configs T and R).

Parity with NVlabs' original code was checked outside the repo (bit-identical in float32 on CPU
for T and R at 64 and 128 px); here the golden values pin that verified behaviour.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentmirror.core.gan import stylegan3 as sg3

Z_DIM = W_DIM = 16
R_KWARGS = {"conv_kernel": 1, "use_radial_filters": True}


def small_generator(config: str = "T", res: int = 32, seed: int = 0, **kwargs) -> sg3.Generator:
    """A tiny generator (16 channels at most) built from a fixed torch seed."""
    torch.manual_seed(seed)
    extra = dict(R_KWARGS) if config == "R" else {}
    extra.update(kwargs)
    return sg3.Generator(
        z_dim=Z_DIM, c_dim=extra.pop("c_dim", 0), w_dim=W_DIM, img_resolution=res,
        img_channels=3, mapping_kwargs={"num_layers": 2}, channel_base=256, channel_max=16,
        **extra,
    ).eval()  # fmt: skip


def z_batch(n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn([n, Z_DIM], generator=torch.Generator().manual_seed(seed))


def relative_mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).square().mean() / a.square().mean())


@pytest.mark.parametrize("config", ["T", "R"])
@pytest.mark.parametrize("res", [16, 32])
def test_output_shapes(config: str, res: int) -> None:
    g = small_generator(config, res)
    with torch.no_grad():
        ws = g.mapping(z_batch(), None)
        img = g.synthesis(ws, noise_mode="const")
        img_none = g.synthesis(ws, noise_mode="none")
    assert ws.shape == (2, g.num_ws, W_DIM)
    assert img.shape == (2, 3, res, res) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.abs().max() > 0
    # StyleGAN3 has no noise inputs: the mode changes nothing.
    torch.testing.assert_close(img, img_none, rtol=0, atol=0)
    assert (g.z_dim, g.c_dim, g.w_dim, g.img_resolution, g.img_channels) == (16, 0, 16, res, 3)


def test_num_ws_and_layer_names() -> None:
    g = small_generator("T", 32)
    assert g.num_ws == g.synthesis.num_ws == g.mapping.num_ws == 16
    assert len(g.synthesis.layer_names) == 15
    g = small_generator("T", 32, num_layers=6, num_critical=2)
    assert g.num_ws == 8 and len(g.synthesis.layer_names) == 7
    assert g.synthesis.layer_names[-1] == "L6_32_3"


def test_truncation() -> None:
    g = small_generator("T", 16)
    g.mapping.w_avg.copy_(torch.randn([W_DIM], generator=torch.Generator().manual_seed(3)))
    z = z_batch()
    with torch.no_grad():
        ws = g.mapping(z, None)
        ws0 = g.mapping(z, None, truncation_psi=0)
        ws_half = g.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
    torch.testing.assert_close(ws0, g.mapping.w_avg.expand_as(ws0))
    torch.testing.assert_close(ws_half[:, :4], (ws[:, :4] + g.mapping.w_avg) / 2)
    torch.testing.assert_close(ws_half[:, 4:], ws[:, 4:], rtol=0, atol=0)
    # All ws are copies of one w before truncation.
    torch.testing.assert_close(ws, ws[:, :1].expand_as(ws), rtol=0, atol=0)


def test_conditional_mapping() -> None:
    g = small_generator("T", 16, c_dim=4)
    c = torch.eye(4)[:2]
    with torch.no_grad():
        ws = g.mapping(z_batch(), c)
    assert ws.shape == (2, g.num_ws, W_DIM)
    assert "mapping.embed.weight" in g.state_dict()
    with pytest.raises(ValueError):
        g.mapping(z_batch(), None)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["T", "R"])
def test_determinism_and_batch_independence(config: str) -> None:
    g1, g2 = small_generator(config, 16), small_generator(config, 16)
    for (k1, v1), (k2, v2) in zip(g1.state_dict().items(), g2.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    z = z_batch(3)
    with torch.no_grad():
        a, b = g1(z, None), g2(z, None)
        single = g1(z[1:2], None)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a[1:2], single, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_gradients_reach_every_w() -> None:
    g = small_generator("T", 16).requires_grad_(False)
    # At init the input's affine is zero (identity transform), so ws[:, 0] would not matter.
    g.synthesis.input.affine.weight.normal_(generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ws = g.mapping(z_batch(), None)
    ws = ws.clone().requires_grad_(True)
    img = g.synthesis(ws)
    img.square().mean().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all()
    assert (ws.grad.abs().sum(dim=(0, 2)) > 0).all()  # every one of the num_ws entries matters


@pytest.mark.slow
def test_translation_equivariance_config_t() -> None:
    """Translating the input by s px (via the inverse ``transform``) translates the image by s px.

    Measured (seeds 0-2, 32 and 64 px, shifts of res/8 in x and y): relative MSE of the aligned
    overlap <= 3.4e-4, versus >= 2e-2 when compared without aligning; tolerance 2e-3.
    """
    res, s = 32, 4
    g = small_generator("T", res)
    with torch.no_grad():
        ws = g.mapping(z_batch(), None)
        ref = g.synthesis(ws)
        inverse = torch.eye(3)
        inverse[0, 2] = -s / res  # content moves +s px in x
        g.synthesis.input.transform.copy_(inverse)
        right = g.synthesis(ws)
        inverse = torch.eye(3)
        inverse[1, 2] = -s / res  # content moves +s px in y
        g.synthesis.input.transform.copy_(inverse)
        down = g.synthesis(ws)
    assert relative_mse(ref[..., :, :-s], right[..., :, s:]) < 2e-3
    assert relative_mse(ref[..., :-s, :], down[..., s:, :]) < 2e-3
    assert relative_mse(ref[..., :, :-s], right[..., :, :-s]) > 1e-2  # the shift is real


# Hand-written from NVlabs' Generator for this small config (z=w=16, 32 px, channel_base=256,
# channel_max=16): key -> shape, for T; R differs in kernels (1x1) and radial down filters.
NVLABS_LAYER_NAMES = [
    "L0_36_16", "L1_36_16", "L2_36_16", "L3_36_16", "L4_36_16", "L5_52_16", "L6_52_16",
    "L7_52_16", "L8_52_16", "L9_52_13", "L10_52_11", "L11_52_10", "L12_52_8", "L13_32_8",
    "L14_32_3",
]  # fmt: skip
NVLABS_KEYS_T = {
    "mapping.w_avg": (16,),
    "mapping.fc0.weight": (16, 16),
    "mapping.fc1.bias": (16,),
    "synthesis.input.weight": (16, 16),
    "synthesis.input.transform": (3, 3),
    "synthesis.input.freqs": (16, 2),
    "synthesis.input.phases": (16,),
    "synthesis.input.affine.weight": (4, 16),
    "synthesis.input.affine.bias": (4,),
    "synthesis.L0_36_16.weight": (16, 16, 3, 3),
    "synthesis.L0_36_16.bias": (16,),
    "synthesis.L0_36_16.magnitude_ema": (),
    "synthesis.L0_36_16.up_filter": (12,),
    "synthesis.L0_36_16.down_filter": (12,),
    "synthesis.L0_36_16.affine.weight": (16, 16),
    "synthesis.L0_36_16.affine.bias": (16,),
    "synthesis.L12_52_8.weight": (8, 10, 3, 3),
    "synthesis.L12_52_8.affine.weight": (10, 16),
    "synthesis.L13_32_8.down_filter": (12,),
    "synthesis.L14_32_3.weight": (3, 8, 1, 1),
    "synthesis.L14_32_3.bias": (3,),
    "synthesis.L14_32_3.magnitude_ema": (),
    "synthesis.L14_32_3.affine.weight": (8, 16),
}
NVLABS_KEYS_R = {
    "synthesis.L0_36_16.weight": (16, 16, 1, 1),
    "synthesis.L12_52_8.weight": (8, 10, 1, 1),
    "synthesis.L0_36_16.up_filter": (12,),
    "synthesis.L0_36_16.down_filter": (12, 12),
    "synthesis.L11_52_10.down_filter": (12, 12),
    "synthesis.L12_52_8.down_filter": (12,),  # critically sampled: never radial
    "synthesis.L13_32_8.down_filter": (12,),
}


@pytest.mark.parametrize("config", ["T", "R"])
def test_state_dict_keys_match_nvlabs(config: str) -> None:
    g = small_generator(config, 32)
    state = g.state_dict()
    assert g.synthesis.layer_names == NVLABS_LAYER_NAMES
    expected = dict(NVLABS_KEYS_T)
    if config == "R":
        expected = {k: v for k, v in expected.items() if v[-2:] != (3, 3)}  # 1x1 convs in R
        expected.update(NVLABS_KEYS_R)
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    # Identity filters are no buffers at all (ToRGB), exactly as in NVlabs.
    assert "synthesis.L14_32_3.up_filter" not in state
    assert "synthesis.L14_32_3.down_filter" not in state
    assert len(state) == 6 + 15 * 7 - 2 + 5  # input, 15 layers, ToRGB without filters, mapping
    # NVlabs registers synthesis before mapping, so the key order matches too.
    assert next(iter(state)).startswith("synthesis.input.")
    g.load_state_dict(state, strict=True)


def test_pickle_style_init_kwargs() -> None:
    """The init_kwargs layout of an NVlabs StyleGAN3-R pickle (scaled down) builds directly."""
    init_kwargs = {
        "z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2}, "channel_base": 512, "channel_max": 32,
        "magnitude_ema_beta": 0.5 ** (32 / 20e3), "conv_kernel": 1, "use_radial_filters": True,
        "num_fp16_res": 4, "conv_clamp": 256,
    }  # fmt: skip
    g = sg3.Generator(**init_kwargs)
    assert g.synthesis.L0_36_32.conv_kernel == 1 and g.synthesis.L0_36_32.down_radial


# Recorded with NVlabs' original networks_stylegan3.Generator (torch.manual_seed(0) init; the
# constructors draw random numbers in the same order) and reproduced by ours: T bit-identical,
# R within 2e-7 (filter design in numpy instead of scipy).
GOLDEN = {
    "T": (-32.748319, 81.795676, [-0.003335, 0.001143, -0.000443], [0.006924, 0.019417, -0.030101]),
    "R": (-98.294527, 456.226477, [0.044554, -0.088523, 0.010613], [0.093725, -0.170023, 0.017903]),
}  # fmt: skip


@pytest.mark.parametrize("config", ["T", "R"])
def test_golden_values(config: str) -> None:
    g = small_generator(config, 32)
    with torch.no_grad():
        img = g(z_batch(), None, truncation_psi=1, noise_mode="const").double()
    total, abs_total, px0, px1 = GOLDEN[config]
    assert float(img.sum()) == pytest.approx(total, rel=1e-5, abs=1e-4)
    assert float(img.abs().sum()) == pytest.approx(abs_total, rel=1e-5)
    np.testing.assert_allclose(img[0, :, 5, 7].numpy(), px0, atol=2e-6)
    np.testing.assert_allclose(img[1, :, 20, 3].numpy(), px1, atol=2e-6)


def test_lowpass_filter_design() -> None:
    f = sg3.design_lowpass_filter(numtaps=12, cutoff=2.0, width=4.0, fs=16)
    assert f.shape == (12,) and float(f.sum()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(f, f.flip(0))
    radial = sg3.design_lowpass_filter(numtaps=12, cutoff=2.0, width=4.0, fs=16, radial=True)
    assert radial.shape == (12, 12) and float(radial.sum()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(radial, radial.t())
    assert sg3.design_lowpass_filter(numtaps=1, cutoff=2.0, width=4.0, fs=16) is None
    signal = pytest.importorskip("scipy.signal")
    expected = signal.firwin(numtaps=12, cutoff=2.0, width=4.0, fs=16)
    np.testing.assert_allclose(f.numpy(), expected, atol=1e-7)


def test_rejects_bad_inputs() -> None:
    g = small_generator("T", 16)
    with pytest.raises(ValueError):
        g.synthesis(torch.zeros([1, g.num_ws - 1, W_DIM]))
    with pytest.raises(ValueError):
        g.synthesis(torch.zeros([1, g.num_ws, W_DIM]), noise_mode="bogus")
    with pytest.raises(ValueError):
        g.mapping(torch.zeros([1, Z_DIM + 1]), None)
