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
from latentmirror.core.invert.chain import RowAdam, _Frame, _start_of
from latentmirror.core.invert.run import BestLatents, Run
from latentmirror.core.invert.settings import Callbacks
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
    # the frame that went on ends as good as with the old rule; the stopped one keeps its best
    # latents, near its own answer (1.1e-5 here; 1.9e-4 when it kept its latents from when it
    # stopped, where Adam's first steps had taken it)
    new_loss, old_loss = result.latent.frame_loss, old.latent.frame_loss
    assert new_loss[1] <= old_loss[1] * 1.05 + 1e-4
    assert new_loss[0] < 2e-5


@pytest.mark.slow
def test_a_frame_keeps_its_best_latents_not_its_last(demo_model, demo_faces):
    images, ws = demo_faces
    start = GanLatent(
        ws[1:2], "w_plus", demo_model.content_hash, [0], plan_fit("stretch", 64, 64, 64)
    )
    # a learning rate far too high: the loss jumps about (float32: the final loss is scored in
    # float32, as the steps are)
    settings = InvertSettings(steps=30, learning_rate=0.5, stall_steps=100, precision="float32")
    result = invert(demo_model, images[:1], settings, mix=L2, init=start)
    per_step = result.latent.history["total"]  # each step's loss, before its update
    # the frame's final loss is that of its best step (the latents after the last update are
    # not among the steps scored, so keeping those would give another value)
    assert result.latent.frame_loss[0] == pytest.approx(min(per_step), rel=1e-4, abs=1e-7)


def _moving_shot(demo_model, demo_faces, count: int):
    """``count`` frames moving smoothly from demo face 0 to face 1 (latents interpolated)."""
    _, ws = demo_faces
    t = torch.linspace(0, 1, count)[:, None, None]
    moving = ws[0] * (1 - t) + ws[1] * t
    with torch.no_grad():
        return ((demo_model.synthesis(moving) + 1) / 2).clamp(0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("slots", [1, 3])
def test_warm_frames_chain_each_from_the_one_before(demo_model, demo_faces, slots):
    shot = _moving_shot(demo_model, demo_faces, 6)
    settings = InvertSettings(
        steps=40, warm_steps=12, batch_size=slots, chain_slots=slots, stall_steps=100
    )
    steps_seen = []
    callbacks = Callbacks(on_step=lambda done, planned: steps_seen.append((done, planned)))
    result = invert(demo_model, shot, settings, mix=L2, callbacks=callbacks)
    info = result.latent.info
    # the cold frame, then five frames of 12 steps each: every warm frame ran its own steps
    assert info["image_steps"] == 40 + 5 * 12
    # slots run side by side, a frame entering once the one before has had 12 / slots steps
    assert info["steps_run"] == 40 + 4 * -(-12 // slots) + 12
    assert all(done <= planned for done, planned in steps_seen)
    assert steps_seen[-1] == (info["steps_run"], info["steps_run"])
    # one slot: each frame started from the one before it, solved, so all end near the cold
    # frame's loss (more slots hand over earlier: frames start farther from their answers)
    losses = result.latent.frame_loss
    if slots == 1:
        assert max(losses[1:]) < max(losses[0] * 3, 2e-3)
    # a chained frame is a better start for the next than the cold frame is
    chained_error = (result.latent.ws[-1] - result.latent.ws[-2]).norm()
    assert chained_error < (result.latent.ws[-1] - result.latent.ws[0]).norm()


def test_a_chained_frame_starts_where_the_frames_before_it_point():
    """Constant velocity: the frame before, moved on by its step from the one before that; the
    first chained frame (only the frame before it known) starts from that frame."""
    start = torch.full((1, 2, 3), 1.0)  # the solved frame before the chain
    solved = {4: torch.full((2, 3), 1.5)}  # the chain's first frame (index 4), solved
    best = BestLatents(torch.full((1, 2, 3), 2.25))  # frame 5, in slot 0, best so far
    frames = {5: _Frame(5, slot=0)}
    assert torch.equal(_start_of(4, 4, start, solved, frames, best), start[0])
    assert torch.equal(_start_of(5, 4, start, solved, frames, best), torch.full((2, 3), 2.0))
    # frame 6: frame 5 still in its slot, its best latents so far stand for it
    assert torch.equal(_start_of(6, 4, start, solved, frames, best), torch.full((2, 3), 3.0))


def test_a_chained_frame_that_stops_early_lets_the_next_one_in(demo_model, demo_faces):
    """One slot: a frame whose loss stalls before its warm steps are up leaves, and the next
    frame enters at once (it waited for a hand-off that never came: an empty slot index)."""
    images, _ = demo_faces
    still = images[:1].expand(4, -1, -1, -1)  # nothing moves: every warm frame stalls at once
    settings = InvertSettings(
        steps=5, warm_steps=60, stall_steps=5, learning_rate=1e-7, chain_slots=1,
        precision="float32",
    )  # fmt: skip
    result = invert(demo_model, still, settings, mix=L2)
    assert len(result.latent) == 4
    # each warm frame left at its first read after the window (10 steps), not after 60
    assert result.latent.info["image_steps"] == 5 + 3 * 10


def test_row_adam_is_torch_adam_for_each_row():
    gen = torch.Generator().manual_seed(3)
    values = torch.randn(3, 4, 5, generator=gen)
    reference = [values[i].clone().requires_grad_(True) for i in range(3)]
    optimisers = [torch.optim.Adam([r], lr=0.1, betas=(0.9, 0.999)) for r in reference]
    adam = RowAdam(values.clone())
    lrs = [0.1, 0.05, 0.02]
    for step_index in range(6):
        rows = [0, 2] if step_index % 2 else [0, 1, 2]  # row 1 sits out every other step
        grad = torch.randn(len(rows), 4, 5, generator=gen)
        for position, row in enumerate(rows):
            optimisers[row].param_groups[0]["lr"] = lrs[row]
            reference[row].grad = grad[position].clone()
            optimisers[row].step()
        adam.update(rows, torch.tensor(rows), grad, [lrs[row] for row in rows])
        if step_index == 3:  # row 2 starts afresh, as a new frame entering its slot
            fresh = torch.randn(4, 5, generator=gen)
            adam.restart(2, fresh)
            reference[2] = fresh.clone().requires_grad_(True)
            optimisers[2] = torch.optim.Adam([reference[2]], lr=0.1, betas=(0.9, 0.999))
    for row in range(3):
        torch.testing.assert_close(adam.values[row], reference[row].detach())


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
    start = ws[:2].clone()
    start[1] = float("nan")  # the second frame's latents: its loss is NaN from the first step
    bad = GanLatent(
        start, "w_plus", demo_model.content_hash, [1001, 1002], plan_fit("stretch", 64, 64, 64)
    )
    frames = [1001, 1002]
    with pytest.raises(
        LatentmirrorError, match="loss became nan while inverting frame 1002"
    ) as bad_run:
        invert(demo_model, images[:2], InvertSettings(steps=12), mix=L2, init=bad, frames=frames)
    assert bad_run.value.where.frame == 1002
    assert len(bad_run.value.where.describe()) and "frame 1002" in str(bad_run.value)


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


def test_a_loss_that_is_not_finite_in_a_tile_names_its_frame(demo_model, demo_faces):
    images, ws = demo_faces
    plate = torch.cat([images[0], images[1][..., 16:]], dim=-1)  # 64x112: two tiles
    shot = torch.stack([plate, torch.roll(plate, shifts=1, dims=-1)])
    start = torch.cat([ws[:2], ws[:2]]).clone()  # a row per tile: frame-major
    start[3] = float("nan")  # frame 1002's second tile
    fit = plan_fit("tiles", 64, 112, 64, overlap=16)
    bad = GanLatent(start, "w_plus", demo_model.content_hash, [1001, 1001, 1002, 1002], fit)
    settings = InvertSettings(steps=12, fit="tiles", tile_overlap=16)
    with pytest.raises(LatentmirrorError, match="while inverting frame 1002") as bad_run:
        invert(demo_model, shot, settings, mix=L2, init=bad, frames=[1001, 1002])
    assert bad_run.value.where.frame == 1002
