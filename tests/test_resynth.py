"""Resynthesis (core/resynth.py) on the bundled demo generator."""

import logging

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.latents import GanLatent
from latentmirror.core.reference import Reference, ReferenceItem
from latentmirror.core.resynth import (
    ResynthSettings,
    resynthesize,
    smooth_latents,
    truncate,
)
from latentmirror.core.synthesis import noise_maps


def latent_of(model, ws, fit=None, noise=None, frames=None):
    fit = fit or plan_fit("stretch", model.resolution, model.resolution, model.resolution)
    frames = frames or list(range(1001, 1001 + ws.shape[0]))
    space = "w_plus_noise" if noise else "w_plus"
    return GanLatent(ws.clone(), space, model.content_hash, frames, fit, noise=noise)


def images_of(model, ws, **kwargs):
    with torch.no_grad():
        return ((model.synthesis(ws, **kwargs) + 1) / 2).clamp(0, 1)


def test_plain_resynthesis_is_the_generators_image(demo_model, demo_faces):
    images, ws = demo_faces
    out = resynthesize(demo_model, latent_of(demo_model, ws), ResynthSettings(batch_size=3))
    assert torch.allclose(out, images, atol=1e-5)


def test_truncation_pulls_toward_the_average_on_the_chosen_layers(demo_model, demo_faces):
    _, ws = demo_faces
    w_avg = demo_model.w_avg.float()
    assert torch.allclose(truncate(ws, w_avg, 0.0), w_avg.expand_as(ws))
    assert torch.equal(truncate(ws, w_avg, 1.0), ws)
    half = truncate(ws, w_avg, 0.5, [0, 1, 2, 3])
    assert torch.equal(half[:, 4:], ws[:, 4:])
    assert torch.allclose(half[:, :4], (ws[:, :4] + w_avg) / 2, atol=1e-6)
    average_face = images_of(demo_model, w_avg.expand(1, demo_model.num_ws, -1))
    latent = latent_of(demo_model, ws)
    plain = resynthesize(demo_model, latent)
    truncated = resynthesize(demo_model, latent, ResynthSettings(truncation=0.3))
    assert (truncated - average_face).abs().mean() < (plain - average_face).abs().mean()
    coarse = resynthesize(
        demo_model, latent, ResynthSettings(truncation=0.0, truncation_layers="fine")
    )
    assert not torch.allclose(coarse, plain) and not torch.allclose(coarse, truncated)


def test_noise_modes(demo_model, demo_faces):
    _, ws = demo_faces
    latent = latent_of(demo_model, ws)

    def run(mode, **kw):
        return resynthesize(demo_model, latent, ResynthSettings(noise_mode=mode, **kw))

    const, none = run("const"), run("none")
    assert torch.allclose(const, images_of(demo_model, ws, noise_mode="const"), atol=1e-5)
    assert torch.allclose(none, images_of(demo_model, ws, noise_mode="none"), atol=1e-5)
    assert not torch.allclose(const, none)
    random = run("random", seed=1)
    assert torch.equal(random, run("random", seed=1))  # repeatable
    assert not torch.equal(random, run("random", seed=2))
    # each frame's noise depends on its frame number, not on the batch it is rendered in
    alone = resynthesize(
        demo_model, latent.select([2]), ResynthSettings(noise_mode="random", seed=1)
    )
    assert torch.allclose(alone[0], random[2], atol=1e-6)
    mode, maps = noise_maps(demo_model, latent, "random", [0, 1], seed=1)
    first = next(iter(maps.values()))
    assert mode == "const" and not torch.equal(first[0], first[1])


def test_stored_noise_is_the_inversions_and_missing_noise_is_an_error(demo_model, demo_faces):
    _, ws = demo_faces
    sizes = {"b4.conv1": 4, "b64.conv1": 64}
    gen = torch.Generator().manual_seed(0)
    noise = {k: torch.randn(4, 1, r, r, generator=gen) for k, r in sizes.items()}
    out = resynthesize(
        demo_model, latent_of(demo_model, ws, noise=noise), ResynthSettings(noise_mode="stored")
    )
    assert torch.allclose(out, images_of(demo_model, ws, noise=noise), atol=1e-5)
    with pytest.raises(LatentmirrorError, match="carry no noise maps") as info:
        resynthesize(demo_model, latent_of(demo_model, ws), ResynthSettings(noise_mode="stored"))
    assert info.value.where.input == "noise_mode"


def test_smoothing_keeps_constants_and_steady_drifts_up_to_the_ends():
    frames = torch.arange(10.0)
    ramp = (frames[:, None, None] * torch.tensor([1.0, -2.0])).expand(10, 3, 2).clone()
    for sigma in (0.5, 1.5, 4.0, 30.0):
        assert torch.allclose(smooth_latents(ramp, sigma), ramp, atol=1e-5)
        flat = torch.full((10, 3, 2), 4.5)
        assert torch.allclose(smooth_latents(flat, sigma), flat)
    jitter = ramp + torch.randn(10, 3, 2, generator=torch.Generator().manual_seed(0))
    smoothed = smooth_latents(jitter, 1.5)
    assert (smoothed - ramp).abs().mean() < (jitter - ramp).abs().mean() / 1.5
    assert torch.equal(smooth_latents(jitter, 0.0), jitter)
    assert torch.equal(smooth_latents(jitter[:1], 3.0), jitter[:1])  # one frame: nothing to do


def test_smoothing_reaches_the_images(demo_model, demo_faces):
    _, ws = demo_faces
    wobble = ws[:1].expand(6, -1, -1).clone()
    wobble[1::2] += 0.3  # latents flicker frame to frame
    latent = latent_of(demo_model, wobble)
    plain = resynthesize(demo_model, latent)
    smooth = resynthesize(demo_model, latent, ResynthSettings(temporal_smoothing=2.0))

    def flicker(x):
        return (x[1:] - x[:-1]).abs().mean()

    assert flicker(smooth) < flicker(plain) / 3


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_output_is_at_plate_size_with_the_fit_undone(demo_model, demo_faces, mode):
    images, ws = demo_faces
    plate = torch.rand(4, 3, 48, 96, generator=torch.Generator().manual_seed(1))
    fit = plan_fit(mode, 48, 96, 64)
    latent = latent_of(demo_model, ws, fit=fit)
    out = resynthesize(demo_model, latent, plate=plate)
    assert out.shape == (4, 3, 48, 96)
    at_model = resynthesize(demo_model, latent, ResynthSettings(output_size="model"))
    assert torch.allclose(at_model, images, atol=1e-5)
    if mode == "crop":  # the sides are the plate's own pixels
        assert torch.equal(out[..., : fit.left], plate[..., : fit.left])
        assert torch.equal(out[..., fit.left + fit.side :], plate[..., fit.left + fit.side :])
    if mode == "pad":  # the model's square, scaled, with the mirrored border cropped away
        square = torch.nn.functional.interpolate(images, size=(96, 96), mode="bicubic")
        assert torch.allclose(out, square[..., 24:72, :].clamp(0, 1), atol=1e-4)


def test_style_mix_reference_moves_the_result_toward_the_reference(demo_model, demo_faces):
    images, ws = demo_faces
    latent = latent_of(demo_model, ws[:1])
    item = ReferenceItem(images[1:2].permute(0, 2, 3, 1), "style_mix", 1.0, "coarse,middle")
    from latentmirror.core.invert import InvertSettings, invert
    from latentmirror.core.losses import LossMix
    from latentmirror.core.reference import ReferenceInversion

    inversion = ReferenceInversion(invert, InvertSettings(steps=60), LossMix().add("l2"))
    mixed = resynthesize(
        demo_model, latent, reference=Reference((item,)), reference_inversion=inversion
    )
    plain = resynthesize(demo_model, latent)
    target = images[1:2]
    assert (mixed - target).abs().mean() < (plain - target).abs().mean()


def test_latents_of_another_model_are_refused_or_warned(demo_model, demo_faces, caplog):
    _, ws = demo_faces
    wrong = GanLatent(torch.zeros(1, 4, 8), "w_plus", "x", [1], plan_fit("stretch", 8, 8, 8))
    with pytest.raises(LatentmirrorError, match="made with another model") as info:
        resynthesize(demo_model, wrong)
    assert info.value.where.input == "latent"
    other = latent_of(demo_model, ws[:1])
    other.model_hash = "f" * 64
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        resynthesize(demo_model, other)
    assert "made with model ffffffffffff" in caplog.text


def test_tiles_are_merged_back_into_plate_size_frames(demo_model, demo_faces):
    from latentmirror.core.fit import merge_tiles

    _, ws = demo_faces
    fit = plan_fit("tiles", 64, 112, 64, overlap=16)
    latent = latent_of(demo_model, ws, fit=fit, frames=[1, 1, 2, 2])
    out = resynthesize(demo_model, latent, ResynthSettings(batch_size=1, temporal_smoothing=0.0))
    assert out.shape == (2, 3, 64, 112)
    assert torch.allclose(out, merge_tiles(images_of(demo_model, ws), fit), atol=1e-5)
    # smoothing runs along each tile's own sequence (two frames are a straight line, which it
    # keeps); were tiles 0 and 1 mixed, the images would change
    smooth = resynthesize(demo_model, latent, ResynthSettings(temporal_smoothing=50.0))
    assert torch.allclose(smooth, out, atol=1e-5)


def test_resynthesize_node_inverts_style_mix_references_with_its_steps(demo_model, demo_faces):
    from latentmirror.nodes.invert_nodes import ReferenceBlendNode
    from latentmirror.nodes.resynth_nodes import ResynthesizeNode

    images, ws = demo_faces
    assert "reference_steps" in ResynthesizeNode.INPUT_TYPES()["optional"]
    (ref,) = ReferenceBlendNode().build(images[1:2].permute(0, 2, 3, 1), "style_mix", 1.0, "coarse")
    from latentmirror.core.losses import LossMix

    latent = latent_of(demo_model, ws[:1])
    (plain,) = ResynthesizeNode().run(demo_model, latent, 1.0, "const")
    (mixed,) = ResynthesizeNode().run(
        demo_model, latent, 1.0, "const", reference=ref, loss_mix=LossMix().add("l2"),
        reference_steps=40,
    )  # fmt: skip
    target = images[1:2].permute(0, 2, 3, 1)
    assert plain.shape == mixed.shape == (1, 64, 64, 3)
    assert (mixed - target).abs().mean() < (plain - target).abs().mean()
