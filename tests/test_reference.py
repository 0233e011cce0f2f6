"""ReferenceBlend's modes (core/reference.py) and how Invert uses them."""

import pytest
import torch

from latentmirror.core import losses, perceptual
from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.gan import GanModel
from latentmirror.core.invert import InvertSettings, invert
from latentmirror.core.losses import LossMix
from latentmirror.core.reference import (
    PULL_DISTANCES,
    Reference,
    ReferenceInversion,
    ReferenceItem,
    ReferencePull,
    anchor_penalty,
    layer_groups,
    parse_layers,
    style_mix,
)

L2 = LossMix().add("l2", 1.0)


def nhwc(images):
    return images.permute(0, 2, 3, 1).contiguous()


@pytest.mark.parametrize(
    ("num_ws", "resolution", "coarse", "middle", "fine"),
    [
        (18, 1024, range(0, 4), range(4, 8), range(8, 18)),  # FFHQ StyleGAN2: the paper's split
        (14, 256, range(0, 4), range(4, 8), range(8, 14)),
        (10, 64, range(0, 4), range(4, 8), range(8, 10)),  # the demo model
        (8, 32, range(0, 2), range(2, 4), range(4, 8)),  # too small for the paper's: proportional
        (16, 1024, range(0, 4), range(4, 7), range(7, 16)),  # StyleGAN3 (16 rows)
    ],
)
def test_layer_groups_cover_every_row_once(num_ws, resolution, coarse, middle, fine):
    groups = layer_groups(num_ws, resolution)
    assert groups["coarse"] == list(coarse)
    assert groups["middle"] == list(middle)
    assert groups["fine"] == list(fine)
    assert groups["coarse"] + groups["middle"] + groups["fine"] == groups["all"]


def test_parse_layers_reads_groups_indices_and_ranges():
    assert parse_layers("all", 10, 64) == list(range(10))
    assert parse_layers("0-2, 8", 10) == [0, 1, 2, 8]
    assert parse_layers("coarse,fine", 10, 64) == [0, 1, 2, 3, 8, 9]
    assert parse_layers("", 4) == [0, 1, 2, 3]
    for bad, message in [("0-12", "outside this model's rows 0-9"), ("eyes", "cannot read 'eyes'"),
                         ("5-2", "outside")]:  # fmt: skip
        with pytest.raises(LatentmirrorError, match=message) as info:
            parse_layers(bad, 10, 64)
        assert info.value.where.input == "layers"


def test_style_mix_moves_only_the_chosen_rows():
    ws, ref = torch.zeros(2, 6, 4), torch.ones(6, 4)
    mixed = style_mix(ws, ref, [1, 2], 0.25)
    assert torch.equal(mixed[:, [0, 3, 4, 5]], ws[:, [0, 3, 4, 5]])
    assert torch.allclose(mixed[:, [1, 2]], torch.full((2, 2, 4), 0.25))
    assert torch.equal(style_mix(ws, ref, [0], 1.0)[:, 0], ref[0].expand(2, 4))
    assert anchor_penalty(mixed, ref, [1, 2]) == pytest.approx(0.75**2)


def test_style_mix_of_a_reference_latent_changes_the_image_toward_it(demo_model, demo_faces):
    _, ws = demo_faces
    plate_ws, ref_ws = ws[:1], ws[1]
    with torch.no_grad():
        ref_image = demo_model.synthesis(ref_ws[None])
        before = demo_model.synthesis(plate_ws)
        after = demo_model.synthesis(
            style_mix(plate_ws, ref_ws, parse_layers("coarse", 10, 64), 1.0)
        )
    assert (after - ref_image).abs().mean() < (before - ref_image).abs().mean()


def test_reference_items_validate_and_chain():
    image = torch.rand(1, 8, 8, 3)
    ref = Reference().with_item(ReferenceItem(image, "loss_pull", 0.5))
    ref = ref.with_item(ReferenceItem(image, "style_mix", 1.0, "fine"))
    assert [d["mode"] for d in ref.describe()] == ["loss_pull", "style_mix"]
    assert len(ref.of_mode("style_mix")) == 1
    # Invert's cache ignores style_mix (only Resynthesize uses it)
    only_pull = Reference().with_item(ReferenceItem(image, "loss_pull", 0.5))
    modes = ("loss_pull", "latent_anchor")
    assert ref.fingerprint(modes) == only_pull.fingerprint(modes)
    with pytest.raises(LatentmirrorError, match="unknown reference mode"):
        ReferenceItem(image, "pull", 1.0)
    with pytest.raises(LatentmirrorError, match="NaN or Inf"):
        ReferenceItem(torch.full((1, 4, 4, 3), float("nan")), "loss_pull")
    with pytest.raises(LatentmirrorError, match=r"IMAGE \[N, H, W, 3\]") as info:
        ReferenceItem(torch.rand(4, 4), "loss_pull")
    assert info.value.where.input == "references"


@pytest.mark.slow
@pytest.mark.parametrize("distance", ["l2", "d_features"])
def test_loss_pull_draws_the_output_toward_the_reference(demo_model, demo_faces, distance):
    images, _ = demo_faces
    plate, ref_image = images[:1], images[1:2]
    settings = InvertSettings(steps=60, warm_start=False)
    item = ReferenceItem(nhwc(ref_image), "loss_pull", strength=3.0, distance=distance)
    pulled = invert(demo_model, plate, settings, mix=L2, reference=Reference((item,)))
    plain = invert(demo_model, plate, settings, mix=L2)

    def to_ref(result):
        return (result.reconstruction - ref_image).abs().mean()

    assert to_ref(pulled) < to_ref(plain)
    assert "reference_pull_1" in pulled.latent.history
    assert pulled.latent.reference[0]["mode"] == "loss_pull"


def test_loss_pull_with_lpips_runs_on_the_real_lpips_code(demo_model, demo_faces):
    images, _ = demo_faces
    item = ReferenceItem(nhwc(images[1:2]), "loss_pull", 1.0, distance="lpips_alex")
    result = invert(
        demo_model, images[:1], InvertSettings(steps=5), mix=L2, reference=Reference((item,)),
        allow_random_backbone=True,
    )  # fmt: skip
    assert all(v >= 0 for v in result.latent.history["reference_pull_1"])


def test_latent_anchor_pulls_the_chosen_layers_and_can_start_there(demo_model, demo_faces):
    images, _ = demo_faces
    plate, ref_image = images[:1], images[1:2]
    settings = InvertSettings(steps=40, warm_start=False)
    item = ReferenceItem(nhwc(ref_image), "latent_anchor", strength=50.0, layers="coarse")
    anchored = invert(demo_model, plate, settings, mix=L2, reference=Reference((item,)))
    plain = invert(demo_model, plate, settings, mix=L2)
    anchor = ReferenceInversion(invert, settings, L2).latent(demo_model, item)
    coarse = [0, 1, 2, 3]

    def distance(result, rows):
        return (result.latent.ws[0, rows] - anchor[rows]).square().mean()

    assert distance(anchored, coarse) < distance(plain, coarse) / 4
    assert anchored.latent.history["reference_anchor_1"][-1] < plain.latent.history["total"][0]
    # start=True: the first step already sits on the anchor's coarse rows
    starting = ReferenceItem(nhwc(ref_image), "latent_anchor", 50.0, "coarse", start=True)
    started = invert(demo_model, plate, settings, mix=L2, reference=Reference((starting,)))
    assert started.latent.history["reference_anchor_1"][0] < 1e-6
    assert anchored.latent.history["reference_anchor_1"][0] > 1e-3


@pytest.mark.parametrize("distance", PULL_DISTANCES)
def test_reference_pull_is_the_registry_terms_distance(distance):
    """Each pull distance is the loss term of that name against the references' mean features:
    pixels at the model's size, LPIPS at the default loss resolution, D at its own size."""
    from . import gan_fixtures as fx

    G, g_kwargs, D, d_kwargs = fx.make_sg2(seed=0)
    model = GanModel(G, D, {"kind": "stylegan2"}, content_hash="0" * 64, source="tiny")
    gen = torch.Generator().manual_seed(0)
    refs = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    outputs = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    spec = losses.LOSS_TERMS[distance]
    lpips_module = None
    if spec.lpips_net:
        lpips_module = perceptual.load_lpips(spec.lpips_net, allow_random_backbone=True)
    pull = ReferencePull(ReferenceItem(nhwc(refs), "loss_pull", 1.0, distance=distance), refs,
                         model, lpips_module)  # fmt: skip
    value = pull(outputs)
    assert value.ndim == 0 and value > 0
    mean_ref = refs.mean(0, keepdim=True)
    if distance in ("l1", "l2"):  # the mean reference image, at the model's size
        diff = outputs - mean_ref
        expected = (diff.abs() if distance == "l1" else diff.square()).mean()
    elif spec.lpips_net:  # LPIPS to the references' mean features (not of the mean image)
        features = perceptual.lpips_features
        fy = [f.mean(0, keepdim=True) for f in features(lpips_module, refs)]
        expected = perceptual.lpips_distance(lpips_module, outputs, None, None, fy).mean()
    else:
        fy = [f.mean(0, keepdim=True) for f in losses.discriminator_features(D, refs)]
        fx_ = losses.discriminator_features(D, outputs)
        fy = [f.expand_as(a) for f, a in zip(fy, fx_, strict=True)]
        expected = losses.feature_distance(fx_, fy).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    if distance in ("l1", "l2"):
        assert pull(mean_ref.expand(2, -1, -1, -1)).item() == 0


def test_style_mix_needs_a_way_to_invert_its_references(demo_model, demo_faces):
    from latentmirror.core.reference import style_mix_latents

    images, ws = demo_faces
    item = ReferenceItem(nhwc(images[1:2]), "style_mix", 1.0, "coarse")
    assert torch.equal(style_mix_latents(ws, demo_model, None, None), ws)
    with pytest.raises(LatentmirrorError, match="style_mix references need") as info:
        style_mix_latents(ws, demo_model, Reference((item,)), None)
    assert info.value.where.input == "reference"
