"""Tune GAN to Shot (core/tune.py) and Save GAN: pivotal tuning on tiny generators, the tuned
model's identity and caches, Save GAN -> Load GAN, bad inputs, and tuning once per shot."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from latentmirror import host as host_module
from latentmirror.core import caches
from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.fit import plan_fit
from latentmirror.core.gan.model import GanModel
from latentmirror.core.latents import GanLatent, save_latents
from latentmirror.core.losses import LossMix
from latentmirror.core.tune import TunedModelCache, TuneSettings, pivot_rows, tune_model
from latentmirror.nodes.gan_nodes import LoadGAN
from latentmirror.nodes.tune_nodes import SaveGANNode, TuneGANNode
from latentmirror.plugin.graph import api_prompt, load_graph
from latentmirror.plugin.local_backend import LocalBackend
from latentmirror.plugin.runner import node_classes
from latentmirror.plugin.shot import ShotJob, render_shot

from . import gan_fixtures as fx
from .support import (
    IDENTITY,
    assert_clean_refusal,
    folder_state,
    frames_on_disk,
    overrides,
    pixels,
    run_cli,
)

L2 = LossMix().add("l2", 1.0)
FAST = TuneSettings(steps=30, learning_rate=2e-3, batch_size=4, locality=0.0)


def tiny_model(seed: int = 0, content_hash: str = "a" * 64) -> GanModel:
    G, g_kwargs, D, d_kwargs = fx.make_sg2(seed=seed)
    architecture = {
        "kind": "stylegan2",
        "format": "test",
        "generator": {"class": "Generator", "kwargs": g_kwargs},
        "discriminator": {"class": "Discriminator", "kwargs": d_kwargs},
    }
    return GanModel(G, D, architecture, content_hash, source="tiny")


@pytest.fixture
def model() -> GanModel:
    return tiny_model()


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test tunes afresh (tuned models are kept in memory by content hash)."""
    caches.release_models()
    yield
    caches.release_models()


def pivots(model: GanModel, count: int = 4, seed: int = 1) -> GanLatent:
    """``count`` frames' latents (mapped from seeded z) for ``model``, fit stretch 32x32."""
    z = torch.randn(count, model.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = model.mapping(z).float()
    fit = plan_fit("stretch", 32, 32, model.resolution)
    return GanLatent(ws, "w_plus", model.content_hash, list(range(1001, 1001 + count)), fit)


def frames_it_cannot_make(count: int = 4) -> torch.Tensor:
    """[count, 3, 32, 32] in [0, 1]: another tiny generator's images, as 'plate' frames."""
    other = tiny_model(seed=9, content_hash="b" * 64)
    with torch.no_grad():
        return ((other.sample(count, seed=3) + 1) / 2).clamp(0, 1)


def reconstruction_error(model: GanModel, latent: GanLatent, images: torch.Tensor) -> float:
    with torch.no_grad():
        output = (model.synthesis(latent.ws) + 1) / 2
    return float((output - images).square().mean())


def weights(model: GanModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.generator.state_dict().items()}


def same_weights(a: GanModel, b: GanModel) -> bool:
    ours, theirs = weights(a), weights(b)
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


# ---------------------------------------------------------------------------------- tuning


def test_tuning_lowers_the_error_at_the_pivots_and_leaves_the_input_model_alone(model):
    latent, images = pivots(model), frames_it_cannot_make()
    before, original = reconstruction_error(model, latent, images), weights(model)
    result = tune_model(model, latent, images, FAST, mix=L2)
    after = reconstruction_error(result.model, latent, images)
    assert after < 0.6 * before, (before, after)
    assert result.history["total"][-1] < result.history["total"][0]
    # the loaded model (shared by Load GAN's cache) is untouched; the tuned one is a copy
    assert all(torch.equal(original[k], v) for k, v in model.generator.state_dict().items())
    assert not any(p.requires_grad for p in result.model.generator.parameters())
    tuned = result.model.generator.state_dict()
    assert all(torch.equal(original[k], tuned[k]) for k in original if k.startswith("mapping."))


def test_locality_keeps_the_model_close_to_the_original_away_from_the_pivots(model):
    latent, images = pivots(model), frames_it_cannot_make()
    free = tune_model(model, latent, images, FAST, mix=L2).model
    held = tune_model(
        model, latent, images, TuneSettings(**{**FAST.__dict__, "locality": 10.0}), mix=L2
    ).model
    away = pivots(model, count=8, seed=77)  # other latents than the pivots

    def drift(tuned: GanModel) -> float:
        with torch.no_grad():
            return float((tuned.synthesis(away.ws) - model.synthesis(away.ws)).square().mean())

    assert drift(held) < 0.5 * drift(free), (drift(held), drift(free))
    # and it still learns the pivots
    assert reconstruction_error(held, latent, images) < reconstruction_error(model, latent, images)


def test_a_cosine_schedule_settles_where_a_constant_high_rate_keeps_jumping(model):
    """At a rate too high for the model (batches of 2 of 8 pivots, lr 0.1) a constant rate ends
    wherever its last jumps left it; the cosine schedule lowers the rate to 0 by the last step
    and ends on a far lower error. The schedule is part of the tuned model's identity."""
    latent, images = pivots(model, count=8), frames_it_cannot_make(8)
    high = TuneSettings(steps=40, learning_rate=0.1, batch_size=2, locality=0.0, seed=2)
    constant = tune_model(model, latent, images, high, mix=L2).model
    cosine = tune_model(model, latent, images, replace(high, lr_schedule="cosine"), mix=L2).model
    error_constant = reconstruction_error(constant, latent, images)
    error_cosine = reconstruction_error(cosine, latent, images)
    assert error_cosine < 0.7 * error_constant, (error_cosine, error_constant)
    assert cosine.content_hash != constant.content_hash


def test_tuned_content_hash_is_new_and_deterministic(model):
    latent, images = pivots(model), frames_it_cannot_make()
    first = tune_model(model, latent, images, FAST, mix=L2).model
    assert first.content_hash != model.content_hash
    assert first.architecture["tuned_from"] == model.content_hash
    caches.release_models()  # tune again from scratch: same seed, same weights, same hash
    again = tune_model(model, latent, images, FAST, mix=L2).model
    assert again is not first and again.content_hash == first.content_hash
    assert same_weights(first, again)
    other_seed = tune_model(model, latent, images, TuneSettings(**{**FAST.__dict__, "seed": 1}),
                            mix=L2).model  # fmt: skip
    other_frames = tune_model(model, latent, images.flip(-1), FAST, mix=L2).model
    hashes = {first.content_hash, other_seed.content_hash, other_frames.content_hash}
    assert len(hashes) == 3
    assert tune_model(model, latent, images, TuneSettings(steps=0)).model is model  # off


def test_tuned_models_are_reused_from_memory_and_disk(model, tmp_path):
    latent, images = pivots(model), frames_it_cannot_make()
    cache = TunedModelCache(str(tmp_path / "tuned"))
    first = tune_model(model, latent, images, FAST, mix=L2, cache=cache)
    assert not first.cached and Path(cache.path(first.model.content_hash)).is_file()
    assert tune_model(model, latent, images, FAST, mix=L2, cache=cache).model is first.model
    caches.release_models()  # a new process: from disk, bit-exact
    again = tune_model(model, latent, images, FAST, mix=L2, cache=cache)
    assert again.cached and again.model.content_hash == first.model.content_hash
    assert same_weights(first.model, again.model)
    # a damaged entry is a miss, tuned again, never used
    caches.release_models()
    Path(cache.path(first.model.content_hash)).write_bytes(b"not a model")
    assert not tune_model(model, latent, images, FAST, mix=L2, cache=cache).cached


def test_pivot_frames_spread_over_the_shot_and_take_every_tile():
    fit = plan_fit("tiles", 64, 96, 32, 8)
    tiles = fit.tile_count
    frames = [f for f in range(5) for _ in range(tiles)]
    latent = GanLatent(torch.zeros(5 * tiles, 2, 4), "w", "h", frames, fit)
    assert pivot_rows(latent, 2) == [*range(tiles), *range(4 * tiles, 5 * tiles)]
    assert pivot_rows(latent, 0) == list(range(5 * tiles))


def test_tiles_tune_on_the_tiles_the_inversion_saw(model):
    """A latent with a tiles fit: the targets are the plate's own tiles (Invert's fit)."""
    fit = plan_fit("tiles", 32, 48, 32, 8)  # two tiles per frame
    plate = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    ws = pivots(model, count=2 * fit.tile_count).ws
    latent = GanLatent(ws, "w_plus", model.content_hash, [1, 1, 2, 2], fit)
    tuned = tune_model(model, latent, plate, FAST, mix=L2).model
    from latentmirror.core.fit import apply_fit

    targets = (apply_fit(plate, fit) * 2 - 1).float()
    with torch.no_grad():
        error_before = float((model.synthesis(ws) - targets).square().mean())
        error_after = float((tuned.synthesis(ws) - targets).square().mean())
    assert error_after < 0.7 * error_before


# ---------------------------------------------------------------------------------- Save GAN


def test_save_gan_round_trips_through_load_gan_bit_exactly(model, tmp_path):
    latent, images = pivots(model), frames_it_cannot_make()
    tuned = tune_model(model, latent, images, FAST, mix=L2).model
    host_module.set_host(host_module.PlainHost(models_dir=str(tmp_path / "models")))
    try:
        SaveGANNode().save(tuned, str(tmp_path / "models" / "gan" / "shot-tuned"))
        (loaded,) = LoadGAN().load("shot-tuned.safetensors")
    finally:
        host_module.set_host(None)
    for net in ("generator", "discriminator"):
        ours, theirs = getattr(tuned, net).state_dict(), getattr(loaded, net).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), net
    with torch.no_grad():
        assert torch.equal(tuned.synthesis(latent.ws), loaded.synthesis(latent.ws))


# ---------------------------------------------------------------------------------- bad input


@dataclass(frozen=True)
class Case:
    name: str
    call: str  # "tune" or "save"
    mentions: tuple[str, ...]  # what the message must name (node, input, ...)
    change: dict  # what differs from a good call


CASES = [
    Case("latent from another model", "tune", ("Tune GAN to Shot", "latent", "another model"),
         {"latent_hash": "c" * 64}),
    Case("fewer frames than latents", "tune", ("Tune GAN to Shot", "images", "3 frames"),
         {"frames": 3}),
    Case("frames of another size", "tune", ("Tune GAN to Shot", "images", "32x32 plate"),
         {"size": 40}),
    Case("negative steps", "tune", ("Tune GAN to Shot", "steps"), {"steps": -1}),
    Case("unknown schedule", "tune", ("Tune GAN to Shot", "lr_schedule", "cosine"),
         {"lr_schedule": "sawtooth"}),
    Case("in a shot render", "tune", ("Tune GAN to Shot", "Save GAN", "chunk"), {"shot": True}),
    Case("not a latent", "tune", ("Tune GAN to Shot", "latent"), {"latent": "oops"}),
    Case("foreign file in the way", "save", ("Save GAN", "path", "not a GAN file"),
         {"foreign": True}),
    Case("empty path", "save", ("Save GAN", "path", "empty"), {"path": " "}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_refused_naming_node_and_input(case, model, tmp_path):
    """Refused (no output, nothing written, the model untouched) with a message naming the
    node, the input and what is wrong."""
    latent = pivots(model)
    if "latent_hash" in case.change:
        latent = replace(latent, model_hash=case.change["latent_hash"])
    count, size = case.change.get("frames", 4), case.change.get("size", 32)
    images = torch.rand(count, size, size, 3)  # IMAGE layout
    target = tmp_path / "out" / "model.safetensors"
    if case.change.get("foreign"):
        target.parent.mkdir()
        target.write_bytes(b"someone's notes")
    before, original = folder_state(tmp_path), weights(model)
    host = host_module.set_host(host_module.PlainHost())
    if case.change.get("shot"):
        host.shot = host_module.ShotState()
    try:
        with pytest.raises(LatentmirrorError) as raised:
            if case.call == "tune":
                TuneGANNode().tune(
                    model, case.change.get("latent", latent), images,
                    case.change.get("steps", 2), 1e-3, 0, 0.0, 0, loss_mix=L2, cache=False,
                    lr_schedule=case.change.get("lr_schedule", "constant"),
                )  # fmt: skip
            else:
                SaveGANNode().save(model, case.change.get("path", str(target)))
    finally:
        host_module.set_host(None)
    message = str(raised.value)
    for mention in case.mentions:
        assert mention in message, (mention, message)
    assert folder_state(tmp_path) == before
    assert all(torch.equal(original[k], v) for k, v in model.generator.state_dict().items())


# ---------------------------------------------------------------------------------- shots


def _graph_with_tuning(tmp_path: Path, steps: int, init_latent: str | None = None) -> str:
    """The identity template with Tune GAN to Shot between Invert and Resynthesize (and Invert
    starting from the latent file ``init_latent``)."""
    graph = load_graph(IDENTITY, node_classes())
    prompt = api_prompt(graph)
    prompt["99"] = {
        "class_type": "LM_TuneGAN",
        "inputs": {"model": ["3", 0], "latent": ["7", 0], "images": ["2", 0], "steps": steps,
                   "learning_rate": 1e-3, "pivot_frames": 0, "locality": 0.1, "seed": 0,
                   "loss_mix": ["6", 0]},
    }  # fmt: skip
    prompt["8"]["inputs"]["model"] = ["99", 0]
    if init_latent:
        prompt["98"] = {"class_type": "LM_LoadLatents", "inputs": {"path": init_latent}}
        prompt["7"]["inputs"]["init_latent"] = ["98", 0]
    path = tmp_path / f"tuned_identity_{steps}.json"
    path.write_text(json.dumps(prompt))
    return str(path)


def test_a_chunked_render_with_tuning_in_the_graph_is_refused_before_anything_runs(
    shot_plate, tmp_path
):
    """Tuning per chunk would tune each chunk on its own frames: the shot render refuses the
    graph up front (every backend goes through it) and points to the two-step recipe."""
    graph = _graph_with_tuning(tmp_path, steps=5)
    out = tmp_path / "out" / "t.####.exr"
    log = tmp_path / "log.jsonl"
    sets = sum((["--set", s] for s in overrides(shot_plate, str(out), steps=2)), [])
    before = folder_state(tmp_path)
    plate_before = folder_state(Path(shot_plate).parent)
    result = run_cli("render", graph, *sets, "--chunk", "3", "--log-json", str(log), cwd=tmp_path)
    assert_clean_refusal(result, "99 (Tune GAN to Shot)", "chunk", "Save GAN", "Load GAN")
    assert (
        folder_state(tmp_path) == before and folder_state(Path(shot_plate).parent) == plate_before
    )


@pytest.mark.slow
def test_chunked_render_with_the_saved_tuned_model_is_bit_identical_to_one_pass(
    headless_host, shot_plate, tmp_path, monkeypatch
):
    """The two-step recipe: tune + Save GAN once (here: the core call and the node), then
    chunks with Load GAN reading the file give exactly the frames of a single pass. A Tune GAN
    node switched off (steps 0) passes the model through and is allowed in a shot."""
    monkeypatch.setenv("LATENTMIRROR_MODELS", str(tmp_path / "models"))
    (base,) = LoadGAN().load("latentmirror-demo-faces-64.safetensors")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    latent = GanLatent(pivots_of(base), "w_plus", base.content_hash, [1, 2],
                       plan_fit("stretch", 64, 64, 64))  # fmt: skip
    tuned = tune_model(base, latent, images, TuneSettings(steps=3, batch_size=2), mix=L2).model
    SaveGANNode().save(tuned, str(tmp_path / "models" / "gan" / "shot-tuned.safetensors"))

    # Frames independent of their chunking: every frame solved alone from one given start
    # (no warm start, no exploration noise drawn in sequence).
    start = GanLatent(base.w_avg.detach().expand(1, base.num_ws, -1).clone(), "w_plus",
                      base.content_hash, [0], plan_fit("stretch", 64, 64, 64))  # fmt: skip
    save_latents(start, str(tmp_path / "start.safetensors"))
    graph = _graph_with_tuning(tmp_path, steps=0, init_latent=str(tmp_path / "start.safetensors"))
    sets = [
        "3.model_name=shot-tuned.safetensors",
        "7.warm_start=false",
        "7.batch_size=1",
        "8.batch_size=1",  # a convolution's float sums may differ with the batch size
    ]

    def render(name: str, chunk: int) -> str:
        out = str(tmp_path / name / "f.####.exr")
        job_sets = (*overrides(shot_plate, out, steps=3), *sets)
        render_shot(ShotJob(graph, None, job_sets, chunk, 1, None), LocalBackend())
        return out

    single, chunked = render("single", 100), render("chunked", 3)
    assert frames_on_disk(chunked) == frames_on_disk(single) == list(range(1001, 1009))
    a, b = pixels(single), pixels(chunked)
    differing = sorted({int(i) for i in (a != b).reshape(len(a), -1).any(1).nonzero()[0]})
    assert not differing, (differing, float(abs(a - b).max()))


def pivots_of(model: GanModel) -> torch.Tensor:
    z = torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        return model.mapping(z).float()
