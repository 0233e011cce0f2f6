"""Inversion (core/invert/) on the bundled 64 px demo generator: real torch optimisation."""

import os
from dataclasses import replace

import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.gan.model import GanModel
from latentmirror.core.invert import Callbacks, InvertSettings, default_mix, invert
from latentmirror.core.invert.chain import planned_chain_steps
from latentmirror.core.invert.settings import cpu_flags
from latentmirror.core.latents import LatentCache
from latentmirror.core.losses import LossMix

L2 = LossMix().add("l2", 1.0)


def psnr(a, b):
    return 10 * torch.log10(1 / ((a - b) ** 2).mean(dim=(1, 2, 3)))


def drifting(images, count):
    """A short 'shot': the first image sliding right by one pixel per frame."""
    return torch.stack([torch.roll(images[0], shifts=i, dims=-1) for i in range(count)])


@pytest.mark.slow
def test_w_plus_inversion_of_the_generators_own_images_reaches_30_db(demo_model, demo_faces):
    images, _ = demo_faces
    settings = InvertSettings(space="w_plus", steps=150, warm_start=False, batch_size=2)
    result = invert(demo_model, images[:2], settings, mix=L2)
    assert psnr(result.reconstruction, images[:2]).min() >= 30
    assert result.latent.ws.shape == (2, demo_model.num_ws, demo_model.w_dim)
    assert result.reconstruction.shape == images[:2].shape


@pytest.mark.slow
@pytest.mark.parametrize("space", ["w", "w_plus", "w_plus_noise"])
def test_each_space_lowers_the_loss_and_stores_what_it_optimised(demo_model, demo_faces, space):
    images, _ = demo_faces
    result = invert(demo_model, images[:2], InvertSettings(space=space, steps=30), mix=L2)
    latent = result.latent
    total = latent.history["total"]
    assert total[-1] < total[0]
    if space == "w":  # one latent per frame, repeated over the layers
        assert torch.equal(latent.ws, latent.ws[:, :1].expand_as(latent.ws))
    else:
        assert not torch.equal(latent.ws, latent.ws[:, :1].expand_as(latent.ws))
    assert (latent.noise is not None) == (space == "w_plus_noise")
    if latent.noise:  # shared by all frames
        for maps in latent.noise.values():
            assert maps.shape[0] == 2 and torch.equal(maps[0], maps[1])


@pytest.mark.slow
def test_classic_is_nvlabs_recipe_per_frame_in_w_with_per_frame_noise(demo_model, demo_faces):
    images, _ = demo_faces
    settings = InvertSettings(space="w", schedule="classic", steps=40)
    mix = LossMix().add("l2", 1.0).add("noise_reg", 1e5)
    result = invert(demo_model, images[:2], settings, mix=mix)
    latent = result.latent
    assert len(latent.history["total"]) == 2 * 40  # every step of every frame, one at a time
    assert latent.info["steps_run"] == 80
    lr = latent.history["lr"]  # ramp up over 5 %, cosine down over the last 25 %
    assert lr[0] == 0 and max(lr[:40]) == pytest.approx(0.1) and lr[39] < 0.01
    assert set(latent.noise) and all(n.shape[0] == 2 for n in latent.noise.values())
    first = next(iter(latent.noise.values()))
    assert not torch.equal(first[0], first[1])  # optimised separately per frame
    assert abs(float(first[0].std()) - 1) < 0.05  # re-normalised after every step
    assert latent.frame_loss[0] < latent.history["total"][0]


def test_default_mixes_follow_the_recipes():
    classic = default_mix(InvertSettings(schedule="classic", space="w"))
    assert [(t.name, t.weight) for t in classic] == [("lpips_vgg", 1.0), ("noise_reg", 1e5)]
    assert classic.terms[0].params["resolution"] == 256
    fast = default_mix(InvertSettings())
    assert [t.name for t in fast] == ["lpips_vgg", "w_prior"]


@pytest.mark.slow
def test_same_seed_same_latents_other_seed_other_latents(demo_model, demo_faces):
    images, _ = demo_faces
    runs = [
        invert(demo_model, images[:1], InvertSettings(steps=20, seed=seed), mix=L2).latent.ws
        for seed in (3, 3, 4)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.slow
def test_warm_start_solves_a_shot_with_fewer_steps_and_less_flicker(demo_model, demo_faces):
    shot = drifting(demo_faces[0], 7)
    common = dict(steps=60, batch_size=3, chain_slots=3, space="w_plus")
    warm = invert(demo_model, shot, InvertSettings(**common, warm_start=True), mix=L2)
    cold = invert(demo_model, shot, InvertSettings(**common, warm_start=False), mix=L2)
    # warm: 60 for the first frame, then the six others chained from it, 3 side by side (each
    # enters at most ceil(10 / 3) steps after the one before it and runs at most 10 steps)
    chained = planned_chain_steps(InvertSettings(**common), frames=6, slots=3)
    assert chained == 5 * 4 + 10
    assert warm.latent.info["steps_run"] <= 60 + chained
    assert cold.latent.info["steps_run"] == 3 * 60

    def ws_change(latent):
        return (latent.ws[1:] - latent.ws[:-1]).abs().mean()

    assert ws_change(warm.latent) < ws_change(cold.latent)


def test_a_batch_stops_early_when_the_loss_stalls(demo_model, demo_faces):
    images, ws = demo_faces
    from latentmirror.core.fit import plan_fit
    from latentmirror.core.latents import GanLatent

    exact = GanLatent(
        ws[:1], "w_plus", demo_model.content_hash, [0], plan_fit("stretch", 64, 64, 64)
    )
    settings = InvertSettings(
        steps=200, stall_steps=10, learning_rate=1e-7, read_every=1, precision="float32"
    )  # cannot improve (in bfloat16 a loss this small jitters); losses read at every step
    result = invert(demo_model, images[:1], settings, mix=L2, init=exact)
    assert result.latent.info["steps_run"] == 11  # the window, then one step to see the stall
    every_5 = invert(demo_model, images[:1], replace(settings, read_every=5), mix=L2, init=exact)
    assert every_5.latent.info["steps_run"] == 15  # the window, then the next read sees it
    assert result.latent.history["total"][0] < 2e-5  # started at the answer (clipping aside)


@pytest.mark.slow
def test_progress_interrupt_and_frames(demo_model, demo_faces):
    images, _ = demo_faces
    steps, frames = [], []
    callbacks = Callbacks(lambda d, p: steps.append((d, p)), lambda d, t: frames.append((d, t)))
    result = invert(
        demo_model, images[:3], InvertSettings(steps=20, batch_size=2), mix=L2,
        frames=[1001, 1002, 1005], callbacks=callbacks,
    )  # fmt: skip
    assert [d for d, _ in steps] == list(range(1, len(steps) + 1))
    assert all(d <= p for d, p in steps)
    assert len(steps) == result.latent.info["steps_run"]
    assert frames[-1] == (3, 3) and frames[0] == (1, 3)  # the first frame alone, then a batch
    assert result.latent.frames == [1001, 1002, 1005]
    assert result.latent.info["batch_starts"] == [0, 20]  # for the plot's batch lines

    class Stop(Exception):
        pass

    count = 0

    def interrupt():
        nonlocal count
        count += 1
        if count == 5:
            raise Stop

    cache = LatentCache(os.environ["LATENTMIRROR_CACHE"] + "-interrupt")
    with pytest.raises(Stop):
        invert(
            demo_model, images[:2], InvertSettings(steps=20), mix=L2,
            callbacks=Callbacks(check_interrupt=interrupt), cache=cache,
        )  # fmt: skip
    assert not os.path.isdir(cache.folder) or not os.listdir(cache.folder)


class OutOfMemoryAbove(GanModel):
    """The demo model on a 'device' that holds at most ``limit`` images per synthesis call."""

    def __init__(self, model, limit):
        super().__init__(
            model.generator, model.discriminator, model.architecture, "oom-" + model.content_hash,
            model.source,
        )  # fmt: skip
        self.limit, self.largest = limit, 0

    def synthesis(self, ws, noise_mode="const", **kwargs):
        if ws.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.largest = max(self.largest, ws.shape[0])
        return super().synthesis(ws, noise_mode, **kwargs)


@pytest.mark.slow
def test_out_of_memory_halves_the_batch_then_gives_a_clear_error(demo_model, demo_faces):
    images, _ = demo_faces
    tight = OutOfMemoryAbove(demo_model, limit=2)
    settings = InvertSettings(steps=10, batch_size=8, warm_start=False)
    result = invert(tight, images, settings, mix=L2)
    assert len(result.latent) == 4 and tight.largest == 2
    with pytest.raises(LatentmirrorError, match="out of device memory") as info:
        invert(OutOfMemoryAbove(demo_model, limit=0), images[:1], settings, mix=L2)
    assert info.value.where.input == "batch_size"


@pytest.mark.slow
def test_cache_hit_skips_the_optimisation(demo_model, demo_faces, tmp_path):
    images, _ = demo_faces
    cache = LatentCache(str(tmp_path / "cache"))
    settings = InvertSettings(steps=15)
    first = invert(demo_model, images[:2], settings, mix=L2, cache=cache)
    steps = []
    again = invert(
        demo_model, images[:2], settings, mix=L2, cache=cache,
        callbacks=Callbacks(on_step=lambda d, p: steps.append(d)),
    )  # fmt: skip
    assert again.cached and not first.cached and steps == []
    assert torch.equal(again.latent.ws, first.latent.ws)
    assert torch.allclose(again.reconstruction, first.reconstruction, atol=1e-6)
    changed = invert(demo_model, images[:2], InvertSettings(steps=16), mix=L2, cache=cache)
    assert not changed.cached
    other_mix = invert(demo_model, images[:2], settings, mix=LossMix().add("l1"), cache=cache)
    assert not other_mix.cached


@pytest.mark.slow
def test_crop_fit_inverts_the_centre_and_keeps_the_plate_sides(demo_model, demo_faces):
    face = demo_faces[0][:1]
    plate = torch.cat([torch.zeros(1, 3, 64, 16), face, torch.ones(1, 3, 64, 16)], dim=-1)
    result = invert(demo_model, plate, InvertSettings(steps=40, fit="crop"), mix=L2)
    assert result.reconstruction.shape == plate.shape
    assert result.latent.fit.mode == "crop" and result.latent.fit.left == 16
    assert torch.equal(result.reconstruction[..., :16], plate[..., :16])
    assert torch.equal(result.reconstruction[..., 80:], plate[..., 80:])


@pytest.mark.slow
def test_a_mask_steers_where_the_loss_looks(demo_model, demo_faces):
    images, _ = demo_faces
    target = images[:1].clone()
    target[..., 32:] = torch.rand(1, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 64, 64)
    mask[..., :32] = 1
    settings = InvertSettings(steps=60, warm_start=False)
    masked = invert(demo_model, target, settings, mix=LossMix().add("l2", 1.0, mask=mask))
    plain = invert(demo_model, target, settings, mix=L2)

    def left_error(result):
        return (result.reconstruction - target)[..., :32].abs().mean()

    assert left_error(masked) < left_error(plain)


@pytest.mark.slow
def test_temporal_term_links_batches(demo_model, demo_faces):
    shot = drifting(demo_faces[0], 4)
    mix = LossMix().add("l2").add("temporal", 1.0)
    result = invert(demo_model, shot, InvertSettings(steps=20, batch_size=2), mix=mix)
    values = result.latent.history["temporal"]
    # frame 1 alone has a predecessor (frame 0's solution), so the term is live in every batch
    assert all(v == v for v in values) and max(values[20:]) > 0


def test_bad_inputs_are_clear_errors(demo_model, demo_faces):
    images, _ = demo_faces
    bad = images[:3].clone()
    bad[1, 0, 5, 5] = float("nan")
    with pytest.raises(LatentmirrorError, match=r"NaN or Inf pixels \(batch positions \[1\]\)"):
        invert(demo_model, bad, InvertSettings(steps=2), mix=L2)
    with pytest.raises(LatentmirrorError, match="steps must be >= 1"):
        InvertSettings(steps=0)
    with pytest.raises(LatentmirrorError, match="3 images but 2 frame numbers"):
        invert(demo_model, images[:3], InvertSettings(steps=2), mix=L2, frames=[1, 2])
    with pytest.raises(LatentmirrorError, match="d_features"):
        from latentmirror.core.gan.model import GanModel as Model

        no_d = Model(demo_model.generator, None, demo_model.architecture, "no-d", "g.pkl")
        invert(no_d, images[:1], InvertSettings(steps=2), mix=LossMix().add("d_features"))


@pytest.mark.slow
def test_tiles_invert_each_tile_as_its_own_sequence(demo_model, demo_faces):
    faces = demo_faces[0]
    # a 64x112 plate of two faces side by side, drifting: two tiles sharing 16 px
    plate = torch.cat([faces[0], faces[1][..., 16:]], dim=-1)[None]
    shot = torch.cat([torch.roll(plate, shifts=i, dims=-1) for i in range(3)])
    mask = torch.ones(1, 64, 112)
    mix = LossMix().add("l2", 1.0, mask=mask).add("temporal", 0.1)
    settings = InvertSettings(steps=40, fit="tiles", tile_overlap=16, batch_size=2)
    result = invert(demo_model, shot, settings, mix=mix, frames=[7, 8, 9])
    latent = result.latent
    assert latent.fit.mode == "tiles" and latent.fit.tile_count == 2
    assert latent.ws.shape[0] == 6 and latent.frames == [7, 7, 8, 8, 9, 9]
    assert result.reconstruction.shape == shot.shape
    assert psnr(result.reconstruction, shot).min() > 18
    # tile 1 of frame 8 was warm-started from tile 1 of frame 7, not from tile 0
    assert (latent.ws[3] - latent.ws[1]).abs().mean() < (latent.ws[3] - latent.ws[0]).abs().mean()


@pytest.mark.slow
def test_previous_chunk_carries_the_warm_start(demo_model, demo_faces):
    shot = drifting(demo_faces[0], 6)
    settings = InvertSettings(steps=60, batch_size=2)
    whole = invert(demo_model, shot, settings, mix=L2)
    first = invert(demo_model, shot[:3], settings, mix=L2)
    second = invert(demo_model, shot[3:], settings, mix=L2, previous=first.latent)
    # no cold first frame in the second chunk: three chained warm frames of at most 10 steps
    # (one slot on the CPU)
    assert second.latent.info["steps_run"] <= 3 * 10
    assert len(second.latent) == 3
    chunked = torch.cat([first.latent.ws, second.latent.ws])
    cold = invert(demo_model, shot[3:], settings, mix=L2)  # the chunk without the carry
    assert (chunked - whole.latent.ws).abs().mean() < (
        torch.cat([first.latent.ws, cold.latent.ws]) - whole.latent.ws
    ).abs().mean()


@pytest.mark.slow
def test_mixed_precision_runs_the_generator_in_bfloat16(demo_model, demo_faces):
    images, _ = demo_faces
    settings = InvertSettings(steps=80, warm_start=False, batch_size=2, precision="float32")
    full = invert(demo_model, images[:2], settings, mix=L2)
    mixed = invert(demo_model, images[:2], replace(settings, precision="bfloat16"), mix=L2)
    assert mixed.latent.info["autocast"] == "bfloat16" and full.latent.info["autocast"] == "float32"
    assert not torch.equal(mixed.latent.ws, full.latent.ws)  # really computed in bfloat16
    history = mixed.latent.history["total"]
    assert history[-1] < history[0] / 5
    assert psnr(mixed.reconstruction, images[:2]).min() > 25
    # auto: bfloat16 where the CPU has bfloat16 units (AVX512-BF16, AMX), else float32
    cpu = torch.device("cpu")
    native = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    assert InvertSettings().autocast_dtype(cpu) == (torch.bfloat16 if native else None)
    assert InvertSettings(precision="float32").autocast_dtype(cpu) is None


def test_w_statistics_are_the_projectors_seeded_sample_mean_and_spread(demo_model):
    z = torch.randn(10_000, demo_model.z_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        w = torch.cat([demo_model.mapping(chunk)[:, 0].float() for chunk in z.split(2000)])
    mean, spread = demo_model.w_statistics()
    assert torch.equal(mean, w.mean(0))
    assert spread == float(((w - w.mean(0)).square().sum() / 10_000).sqrt())
    assert demo_model.w_statistics()[0] is mean  # sampled once per device
    # the 64 px StyleGAN2 demo: one noise map per synthesis layer from 4 px up
    sizes = demo_model.noise_layer_sizes()
    assert sorted(set(sizes.values())) == [4, 8, 16, 32, 64]
