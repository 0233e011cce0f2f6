"""Generator throughput and the inversion loop's work per frame (issue 13, items 3 and 4):
the two forms of modulated convolution agree, a converged frame leaves its warm batch, losses are
read back every few steps, and (on a CUDA device) inversion matches the CPU's."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.gan.ops import modulated_conv2d, prefer_fused_modconv, setup_filter
from latentmirror.core.invert import InvertSettings, invert
from latentmirror.core.invert.run import Run
from latentmirror.core.latents import GanLatent
from latentmirror.core.losses import LossMix

L2 = LossMix().add("l2", 1.0)

# (batch, up, down, kernel, demodulate, with noise): plain, upsampling, downsampling, 1x1 (toRGB)
MODCONV_CASES = [
    (1, 1, 1, 3, True, False),
    (2, 1, 1, 3, True, True),
    (3, 2, 1, 3, True, True),
    (5, 1, 2, 3, True, False),
    (4, 1, 1, 1, False, False),
    (2, 2, 1, 3, False, True),
    (8, 1, 1, 3, True, True),
]


@pytest.mark.parametrize("batch, up, down, kernel, demodulate, with_noise", MODCONV_CASES)
def test_plain_and_grouped_modulated_conv_agree(batch, up, down, kernel, demodulate, with_noise):
    gen = torch.Generator().manual_seed(batch * 10 + up + down + kernel)
    c_in, c_out, size = 6, 5, 8
    x = torch.randn(batch, c_in, size, size, generator=gen)
    weight = torch.randn(c_out, c_in, kernel, kernel, generator=gen)
    styles = torch.randn(batch, c_in, generator=gen) + 1
    size_out = size * up // down
    noise = torch.randn(batch, 1, size_out, size_out, generator=gen) if with_noise else None
    args = dict(
        noise=noise, up=up, down=down, padding=kernel // 2, demodulate=demodulate,
        resample_filter=setup_filter([1, 3, 3, 1]), flip_weight=(up == 1),
    )  # fmt: skip
    grouped = modulated_conv2d(x, weight, styles, fused_modconv=True, **args)
    plain = modulated_conv2d(x, weight, styles, fused_modconv=False, **args)
    assert plain.shape == grouped.shape == (batch, c_out, size_out, size_out)
    torch.testing.assert_close(plain, grouped, rtol=1e-4, atol=1e-5)
    if batch > 1:  # each sample is its own: the batch's first equals that sample alone
        alone = modulated_conv2d(
            x[:1], weight, styles[:1], fused_modconv=False,
            **{**args, "noise": noise[:1] if noise is not None else None},
        )  # fmt: skip
        torch.testing.assert_close(alone, plain[:1], rtol=1e-4, atol=1e-5)


def test_the_generator_gives_the_same_images_and_gradients_either_way(demo_model, demo_faces):
    _, ws = demo_faces
    synthesis = demo_model.generator.synthesis
    results = {}
    for fused in (True, False):
        w = ws.clone().requires_grad_(True)
        image = synthesis(w, noise_mode="const", fused_modconv=fused)
        image.square().mean().backward()
        results[fused] = (image.detach(), w.grad)
    torch.testing.assert_close(results[False][0], results[True][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results[False][1], results[True][1], rtol=1e-3, atol=1e-6)
    assert not prefer_fused_modconv(1, torch.device("cpu"))  # measured slower on CPU at any batch
    assert prefer_fused_modconv(1, torch.device("cuda")) and not prefer_fused_modconv(
        4, torch.device("cuda")
    )


def _two_frames_one_solved(demo_model, demo_faces):
    """Frames 0 and 1 of the demo faces, frame 0 starting at its own answer, frame 1 at frame
    2's latents (far from its answer)."""
    images, ws = demo_faces
    start = torch.stack([ws[0], ws[2]])
    init = GanLatent(
        start, "w_plus", demo_model.content_hash, [0, 1], plan_fit("stretch", 64, 64, 64)
    )
    return images[:2], init


@pytest.mark.slow
def test_a_converged_frame_stops_while_the_others_go_on(demo_model, demo_faces):
    images, init = _two_frames_one_solved(demo_model, demo_faces)
    settings = InvertSettings(steps=60, warm_steps=60, stall_steps=10, batch_size=2)
    result = invert(demo_model, images, settings, mix=L2, init=init)
    info = result.latent.info
    # frame 0 stalled at once (window 10, read at 15); frame 1 kept improving after it
    assert 15 < info["steps_run"] and info["image_steps"] == info["steps_run"] + 15
    old = invert(
        demo_model, images, replace(settings, per_frame_stop=False, read_every=1), mix=L2,
        init=init,
    )  # fmt: skip
    assert old.latent.info["image_steps"] == 2 * old.latent.info["steps_run"]  # whole batch
    # the frame that went on ends as good as with the old rule; the stopped one stays near its
    # answer (KNOWN GAP: it keeps its latents from when it stopped, not its best: 1.9e-4 here
    # against 1e-5 when it runs all 60 steps)
    new_loss, old_loss = result.latent.frame_loss, old.latent.frame_loss
    assert new_loss[1] <= old_loss[1] * 1.05 + 1e-4
    assert new_loss[0] < 1e-3


def test_losses_are_read_back_every_few_steps(demo_model, demo_faces, monkeypatch):
    images, ws = demo_faces
    reads = []
    original = Run.read_back

    def counted(run):
        readings = original(run)
        if readings:
            reads.append(len(readings))
        return readings

    monkeypatch.setattr(Run, "read_back", counted)
    settings = InvertSettings(steps=20, stall_steps=100, read_every=5)
    result = invert(demo_model, images[:1], settings, mix=L2)
    assert result.latent.info["steps_run"] == 20
    assert reads == [5, 5, 5, 5]  # four reads of five steps each, not twenty
    assert len(result.latent.history["total"]) == 20  # the history still has every step


def test_a_loss_that_is_not_finite_is_refused_at_the_next_read(demo_model, demo_faces):
    images, ws = demo_faces
    bad = GanLatent(
        torch.full_like(ws[:1], float("nan")), "w_plus", demo_model.content_hash, [0],
        plan_fit("stretch", 64, 64, 64),
    )  # fmt: skip
    with pytest.raises(LatentmirrorError, match="the loss became nan"):
        invert(demo_model, images[:1], InvertSettings(steps=12), mix=L2, init=bad)


@pytest.mark.gpu
@pytest.mark.slow
def test_inversion_on_cuda_matches_the_cpu(demo_model, demo_faces):
    from latentmirror.core.gan.cache import get_model
    from latentmirror.host import BUNDLED_MODELS

    images, _ = demo_faces
    cuda_model = get_model(
        f"{BUNDLED_MODELS}/gan/latentmirror-demo-faces-64.safetensors", "cuda", "float32"
    )
    settings = InvertSettings(steps=40, batch_size=2, precision="float32")
    on_cpu = invert(demo_model, images[:3], settings, mix=L2)
    on_cuda = invert(cuda_model, images[:3], settings, mix=L2)
    assert on_cuda.latent.info["steps_run"] == pytest.approx(on_cpu.latent.info["steps_run"], abs=5)
    assert (on_cuda.reconstruction - on_cpu.reconstruction).abs().mean() < 0.01
    for cuda_loss, cpu_loss in zip(
        on_cuda.latent.frame_loss, on_cpu.latent.frame_loss, strict=True
    ):
        assert cuda_loss == pytest.approx(cpu_loss, rel=0.1, abs=1e-3)
