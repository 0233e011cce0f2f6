"""core/losses and core/perceptual: every term of the registry (the LossMix terms of
docs/NODES.md), masks, loss resolution, LPIPS backbone files, mixes."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from latentmirror.core import losses as L
from latentmirror.core import perceptual as P
from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.gan import GanModel

from . import gan_fixtures as fx

IMAGE_TERMS = [name for name, spec in L.LOSS_TERMS.items() if spec.image]


@pytest.fixture(autouse=True)
def empty_hub(tmp_path, monkeypatch):
    """A hub cache of our own, so files in the real one never change what the tests see."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


@pytest.fixture(scope="module")
def model():
    G, g_kwargs, D, d_kwargs = fx.make_sg2(seed=0)
    with torch.no_grad():  # noise strengths start near 0 in the fixture: make noise matter
        for layer in G.synthesis.noise_layers().values():
            layer.noise_strength.fill_(0.5)
    architecture = {
        "kind": "stylegan2",
        "format": "test",
        "generator": {"class": "Generator", "kwargs": g_kwargs},
        "discriminator": {"class": "Discriminator", "kwargs": d_kwargs},
    }
    return GanModel(G, D, architecture, content_hash="0" * 64, source="tiny")


def evaluator(mix, model=None, **kwargs):
    return L.LossEvaluator(mix, model, allow_random_backbone=True, **kwargs)


def images(batch=2, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=gen) * 2 - 1


def synthesize(model, batch=2, seed=0):
    """(ws leaf, noise leaves by layer, output) through the tiny generator."""
    z = torch.randn(batch, model.z_dim, generator=torch.Generator().manual_seed(seed))
    ws = model.mapping(z).detach().requires_grad_(True)
    layers = model.generator.synthesis.noise_layers()
    noise = {
        name: torch.randn(1, 1, layer.resolution, layer.resolution).requires_grad_(True)
        for name, layer in layers.items()
    }
    return ws, noise, model.synthesis(ws, noise=noise)


# ----------------------------------------------------------------------------------------------
# Every term: finite, differentiable, ~0 on identical images.


@pytest.mark.parametrize("term", L.LOSS_TERMS)
def test_every_term_is_finite_and_reaches_the_latents(model, term):
    ws, noise, output = synthesize(model, seed=1)
    with torch.no_grad():
        target = synthesize(model, seed=2)[2]
    prev = {}
    if term == "temporal":  # link to a previous batch, so both frames have a change to compare
        prev = {"prev_output": images(1, seed=3)[0], "prev_target": images(1, seed=4)[0]}
    total, values = evaluator(L.LossMix().add(term, 2.0), model)(
        output, target, ws=ws, noise=noise, **prev
    )
    assert list(values) == [term]
    assert math.isfinite(values[term]) and values[term] > 0
    assert total.ndim == 0 and torch.isclose(total, torch.tensor(2 * values[term]))
    total.backward()
    grads = [ws.grad] if term != "noise_reg" else list(noise.values())
    for grad in grads:
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    if term in IMAGE_TERMS:  # the image reaches the noise maps through the generator
        assert any(n.grad is not None and n.grad.abs().sum() > 0 for n in noise.values())


@pytest.mark.parametrize("term", IMAGE_TERMS)
def test_identical_images_give_zero(model, term):
    img = images(3)
    prev = {"prev_output": img[0], "prev_target": img[0]} if term == "temporal" else {}
    _, values = evaluator(L.LossMix().add(term), model)(img, img.clone(), **prev)
    assert abs(values[term]) < 1e-5


def test_ms_ssim_identical_and_ordered():
    x = images(2, size=64)
    noisy = (x + 0.3 * images(2, size=64, seed=9)).clamp(-1, 1)
    assert torch.allclose(L.ms_ssim(x, x), torch.ones(2), atol=1e-5)
    assert (L.ms_ssim(x, noisy) < 0.99).all()
    assert (L.ssim(x, noisy) < L.ssim(x, (x + 0.1 * (noisy - x)))).all()
    _, values = evaluator(L.LossMix().add("ssim", params={"multiscale": True}))(x, noisy)
    assert 0 < values["ssim"] < 1


def test_w_prior_and_noise_reg_values():
    assert L.w_prior(torch.full((2, 4, 8), 3.0), torch.ones(8)).item() == pytest.approx(4.0)
    # A constant map correlates fully with its shifts: 1 per direction per scale (16 and 8 px).
    assert L.noise_regularization([torch.ones(16, 16)]).item() == pytest.approx(4.0)
    white = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.avg_pool2d(white, 5, stride=1, padding=2)
    smooth = smooth / smooth.std()
    assert L.noise_regularization({"a": white}) < 1e-3 < L.noise_regularization({"a": smooth})
    assert L.noise_regularization(None).item() == 0


# ----------------------------------------------------------------------------------------------
# Masks and the loss resolution.


@pytest.mark.parametrize("term", IMAGE_TERMS)
def test_all_ones_mask_equals_no_mask(model, term):
    x, y = images(2, seed=1), images(2, seed=2)
    plain = evaluator(L.LossMix().add(term), model)(x, y)[1][term]
    ones = torch.ones(1, 64, 64)  # at another size than the images: resized the same way
    masked = evaluator(L.LossMix().add(term, mask=ones), model)(x, y)[1][term]
    assert masked == pytest.approx(plain, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("term", IMAGE_TERMS)
def test_a_zero_mask_hides_what_differs_there(model, term):
    x = images(2, seed=1)
    y = x.clone()
    y[..., :, :16] = images(2, seed=2)[..., :, :16]  # the left half differs
    mask = torch.ones(2, 32, 32)
    mask[..., :16] = 0
    plain = evaluator(L.LossMix().add(term), model)(x, y)[1][term]
    masked = evaluator(L.LossMix().add(term, mask=mask), model)(x, y)[1][term]
    assert masked < plain
    if term in ("l1", "l2", "temporal"):  # purely per pixel: the difference is gone
        # (SSIM windows, LPIPS and D receptive fields still see across the mask's edge)
        assert masked == pytest.approx(0, abs=1e-7)


def test_mask_rows_follow_mask_indices():
    x, y = images(2, seed=1), images(2, seed=2)
    mask = torch.zeros(5, 32, 32)
    mask[3] = 1  # only plate frame 3 counts
    mix = L.LossMix().add("l1", mask=mask)
    value = evaluator(mix)(x, y, mask_indices=[3, 4])[1]["l1"]
    assert value == pytest.approx(L.l1_distance(x[:1], y[:1]).item() / 2, rel=1e-5)
    with pytest.raises(LatentmirrorError, match="mask has 5 frames"):
        evaluator(mix)(x, y)


def test_loss_resolution_downsamples_and_never_upsamples():
    assert L.loss_size(1024, 1024, 256) == (256, 256)
    assert L.loss_size(512, 256, 256) == (256, 128)
    assert L.resize_for_loss(torch.zeros(1, 3, 16, 16), 256).shape[-2:] == (16, 16)
    # A one-pixel checkerboard difference averages away at half resolution.
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 2.0 - 1
    x, y = torch.zeros(1, 3, 32, 32), checker.expand(1, 3, 32, 32) * 0.5
    full = evaluator(L.LossMix().add("l1", params={"resolution": 32}))(x, y)[1]["l1"]
    half = evaluator(L.LossMix().add("l1", params={"resolution": 16}))(x, y)[1]["l1"]
    assert full == pytest.approx(0.5) and half == pytest.approx(0, abs=1e-7)


# ----------------------------------------------------------------------------------------------
# Temporal.


def test_temporal_is_zero_when_the_plate_moves_as_the_output_does():
    plate = torch.stack([torch.roll(images(1)[0], shifts=t, dims=2) for t in range(4)])
    overlay = images(1, seed=5) * 0.3
    output = plate + overlay  # a different image whose pixels change exactly as the plate's do
    mix = L.LossMix().add("temporal")
    assert evaluator(mix)(output, plate)[1]["temporal"] == pytest.approx(0, abs=1e-6)
    still = output[:1].expand(4, -1, -1, -1)  # the output stands still while the plate moves
    assert evaluator(mix)(still, plate)[1]["temporal"] > 0.1
    # The previous batch's last frame links batches: one frame alone then has a change.
    alone = evaluator(mix)(output[3:], plate[3:])[1]["temporal"]
    linked = evaluator(mix)(output[3:], plate[3:], prev_output=still[2], prev_target=plate[2])
    assert alone == 0 and linked[1]["temporal"] > 0.1


# ----------------------------------------------------------------------------------------------
# LPIPS backbones.


def test_lpips_distance_matches_the_lpips_package():
    module = P.load_lpips("alex", allow_random_backbone=True)
    x, y = images(2, seed=1), images(2, seed=2)
    expected = module(x, y).flatten()
    assert torch.allclose(P.lpips_distance(module, x, y), expected, rtol=1e-5, atol=1e-7)
    assert P.load_lpips("alex", allow_random_backbone=True) is module  # cached


@pytest.mark.parametrize("term", ["lpips_vgg", "lpips_alex"])
def test_missing_backbone_error_names_the_file_and_folders(tmp_path, empty_hub, term):
    folder = tmp_path / "comfy_models_lpips"
    name = P.BACKBONE_FILES[L.LOSS_TERMS[term].lpips_net]
    with pytest.raises(LatentmirrorError) as info:
        L.LossEvaluator(L.LossMix().add(term), lpips_folders=[str(folder)])
    message = str(info.value)
    assert name in message and str(folder) in message
    assert str(empty_hub / "checkpoints") in message and "models/lpips" in message


def _write_backbone(folder, net: str) -> dict:
    """A random torchvision backbone's ``features.*`` saved under torchvision's file name.

    VGG16's features come from torchvision's own builder (``vgg16(weights=None)`` minus the
    120M-parameter classifier, which only costs time here)."""
    import torchvision
    from torchvision.models import vgg

    torch.manual_seed(123)
    if net == "vgg":
        network = torch.nn.Module()
        network.features = vgg.make_layers(vgg.cfgs["D"])
    else:
        network = torchvision.models.alexnet(weights=None)
    state = {k: v for k, v in network.state_dict().items() if k.startswith("features.")}
    state["classifier.6.bias"] = torch.zeros(3)  # other keys of the file are ignored
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / P.BACKBONE_FILES[net])
    return state


@pytest.mark.slow
@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_backbone_file_is_found_and_loaded(tmp_path, net):
    folder = tmp_path / "lpips"
    state = _write_backbone(folder, net)
    assert P.find_lpips_backbone(net, [str(tmp_path / "elsewhere"), str(folder)]) == str(
        folder / P.BACKBONE_FILES[net]
    )
    loaded = P.load_lpips(net, folders=[str(folder)])
    net_state = loaded.net.state_dict()
    for key, value in state.items():
        if key.startswith("features."):
            _, index, kind = key.split(".")
            match = [v for k, v in net_state.items() if k.endswith(f".{index}.{kind}")]
            assert len(match) == 1 and torch.equal(match[0], value)
    x, y = images(2, seed=1), images(2, seed=2)
    random_backbone = P.load_lpips(net, allow_random_backbone=True)
    assert not torch.allclose(
        P.lpips_distance(loaded, x, y), P.lpips_distance(random_backbone, x, y)
    )
    # The evaluator finds it through lpips_folders, without the test-only escape hatch.
    term = {"vgg": "lpips_vgg", "alex": "lpips_alex"}[net]
    _, values = L.LossEvaluator(L.LossMix().add(term), lpips_folders=[str(folder)])(x, y)
    assert values[term] == pytest.approx(P.lpips_distance(loaded, x, y).mean().item(), rel=1e-5)


def test_backbone_in_the_hub_cache_is_found(empty_hub):
    _write_backbone(empty_hub / "checkpoints", "alex")
    assert P.find_lpips_backbone("alex") == str(
        empty_hub / "checkpoints" / P.BACKBONE_FILES["alex"]
    )


def test_a_foreign_backbone_file_is_a_clear_error(tmp_path):
    torch.save({"features.0.weight": torch.zeros(2, 2)}, tmp_path / P.BACKBONE_FILES["alex"])
    with pytest.raises(LatentmirrorError, match="not a matching torchvision backbone"):
        P.load_lpips("alex", folders=[str(tmp_path)])


# ----------------------------------------------------------------------------------------------
# The mix and its validation.


def test_mix_is_immutable_and_chains_with_unique_labels(model):
    base = L.LossMix().add("l1", 1.0)
    chained = base.with_term(L.LossTerm("l1", 0.5)).add("w_prior", 0.1).add("l2")
    assert len(base) == 1 and len(chained) == 4
    assert chained.labels() == ["l1", "l1_2", "w_prior", "l2"]
    with pytest.raises(AttributeError):
        chained.terms = ()
    assert chained.terms[0].params == {"resolution": 256}
    assert chained.fingerprint() != base.fingerprint()
    assert copy.deepcopy(chained).labels() == chained.labels()  # hosts may copy wire values
    ws = model.mapping(torch.randn(2, model.z_dim))
    x, y = images(2, seed=1), images(2, seed=2)
    total, values = evaluator(chained, model)(x, y, ws=ws)
    assert list(values) == chained.labels()
    weighted = sum(t.weight * values[k] for t, k in zip(chained, chained.labels(), strict=True))
    assert total.item() == pytest.approx(weighted, rel=1e-5)


def test_params_are_parsed_and_completed():
    assert L.parse_params("resolution=128, multiscale=true") == {
        "resolution": "128",
        "multiscale": "true",
    }
    assert L.parse_params('{"distance": "l2"}') == {"distance": "l2"}
    term = L.LossTerm("ssim", 1, L.parse_params("resolution=128, multiscale=true"))
    assert term.params == {
        "resolution": 128,
        "window": 11,
        "sigma": 1.5,
        "multiscale": True,
        "scales": 5,
    }


@pytest.mark.parametrize(
    "name, weight, params, mask, match",
    [
        ("lpips", 1.0, {}, None, "unknown loss term 'lpips'"),
        ("l1", 1.0, {"size": 64}, None, "'l1': unknown param"),
        ("l1", 1.0, {"resolution": 4}, None, "'resolution' must be an integer >= 8"),
        ("l1", 1.0, {"resolution": "big"}, None, "'resolution'"),
        ("ssim", 1.0, {"window": 10}, None, "'window' must be an odd integer"),
        ("ssim", 1.0, {"multiscale": "maybe"}, None, "'multiscale'"),
        ("d_features", 1.0, {"distance": "l3"}, None, "'distance' must be 'l1' or 'l2'"),
        ("w_prior", 1.0, {"resolution": 256}, None, "it accepts: none"),
        ("l1", float("nan"), {}, None, "weight must be finite"),
        ("l1", "1", {}, None, "weight must be a number"),
        ("w_prior", 1.0, {}, torch.ones(1, 8, 8), "takes no mask"),
        ("l1", 1.0, {}, -torch.ones(1, 8, 8), "finite and >= 0"),
        ("l1", 1.0, {}, torch.ones(8), "mask must be a"),
    ],
)
def test_bad_terms_and_params_raise(name, weight, params, mask, match):
    with pytest.raises(LatentmirrorError, match=match):
        L.LossTerm(name, weight, params, mask)


def test_evaluator_checks_what_terms_need(model):
    no_d = GanModel(model.generator, None, model.architecture, "1" * 64, "g_only.pkl")
    with pytest.raises(LatentmirrorError, match="discriminator"):
        L.LossEvaluator(L.LossMix().add("d_features"), no_d)
    with pytest.raises(LatentmirrorError, match="empty"):
        L.LossEvaluator(L.LossMix())
    with pytest.raises(LatentmirrorError, match="w_avg"):
        L.LossEvaluator(L.LossMix().add("w_prior"))
    with pytest.raises(LatentmirrorError, match=r"\[B, 3, H, W\]"):
        evaluator(L.LossMix().add("l1"))(images(2), images(2, size=16))


@pytest.mark.slow
def test_bfloat16_output_and_target_cache(model):
    x, y = images(2, seed=1), images(2, seed=2)
    mix = L.LossMix().add("lpips_alex").add("d_features").add("ssim")
    evaluate = evaluator(mix, model)
    first = evaluate(x, y)
    assert first.total.dtype == torch.float32
    assert evaluate(x, y).values == pytest.approx(first.values)  # cached target, same values
    y.mul_(0.5)  # an in-place change of the target is noticed
    assert evaluate(x, y).values["ssim"] != pytest.approx(first.values["ssim"])
    low = evaluate(x.bfloat16().requires_grad_(True), y)
    assert all(math.isfinite(v) for v in low.values.values())


def test_target_cache_holds_for_the_same_slice_taken_again(model):
    x, batch = images(2, seed=1), images(4, seed=2)
    evaluate = evaluator(L.LossMix().add("lpips_alex"), model)
    evaluate(x, batch[0:2])
    kept = evaluate._cache
    evaluate(x, batch[0:2])  # a new view of the same frames: the target's features are reused
    assert evaluate._cache is kept
    evaluate(x, batch[2:4])  # other frames: computed afresh
    assert evaluate._cache is not kept
    again = evaluate._cache
    batch[2:4].mul_(0.5)  # frames changed in place: noticed through the shared version counter
    evaluate(x, batch[2:4])
    assert evaluate._cache is not again


# ----------------------------------------------------------------------------------------------
# The registry: one entry per term, read by the node and ReferencePull.


@pytest.mark.parametrize("term", L.LOSS_TERMS)
def test_every_term_has_a_complete_entry(term):
    spec = L.LOSS_TERMS[term]
    assert spec.name == term and spec.description and "\n" not in spec.description
    assert spec.needs <= set(L.NEEDS)
    assert (spec.features is None) == (spec.distance is None)
    assert (spec.compute is None) != (spec.features is None)  # one way to compute it
    assert (spec.compared_size is not None) == spec.image
    if spec.lpips_net:
        assert spec.lpips_net in P.BACKBONE_FILES and spec.features is not None
    defaults = L.validate_params(term, {})
    assert defaults == {key: param.default for key, param in spec.params.items()}
    assert L.LossTerm(term).params == defaults


def test_the_lossmix_node_lists_the_registry():
    from latentmirror.nodes.invert_nodes import LossMixNode

    inputs = LossMixNode.INPUT_TYPES()
    choices, options = inputs["required"]["term"]
    assert choices == list(L.LOSS_TERMS) and options["default"] == "lpips_vgg"
    for name, spec in L.LOSS_TERMS.items():
        assert f"{name}: {spec.description}" in options["tooltip"]
    params_tooltip = inputs["optional"]["params"][1]["tooltip"]
    assert "ssim: resolution=256, window=11, sigma=1.5, multiscale=false, scales=5" in (
        params_tooltip
    )
    assert "d_features: distance=l1" in params_tooltip and "noise_reg: min_size=8" in params_tooltip
