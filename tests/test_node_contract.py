"""The public node contract of ../shared/NODES.md: ids, display names, inputs, outputs."""

import pytest
import torch

import latentmirror
from latentmirror.core.errors import LatentmirrorError
from latentmirror.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from latentmirror.nodes.exr_nodes import LoadEXRSequence, SaveEXRSequence

# id: (display name, required inputs {name: type or choices}, optional inputs, outputs, output)
CONTRACT = {
    "LM_LoadEXRSequence": (
        "Load EXR Sequence",
        {"path": "STRING", "frames": "STRING", "missing": ["error", "hold", "black"]},
        {"layer": "STRING", "colorspace": "STRING", "ocio_config": "STRING"},
        ("IMAGE", "MASK", "PLATE_INFO"),
        False,
    ),
    "LM_SaveEXRSequence": (
        "Save EXR Sequence",
        {
            "images": "IMAGE",
            "path": "STRING",
            "pixel_type": ["half", "float"],
            "compression": [
                "zip",
                "zips",
                "piz",
                "dwaa",
                "dwab",
                "pxr24",
                "b44",
                "b44a",
                "rle",
                "none",
            ],
            "existing": ["skip", "overwrite", "error"],
        },
        {
            "plate_info": "PLATE_INFO",
            "start_frame": "INT",
            "mask": "MASK",
            "colorspace": "STRING",
            "ocio_config": "STRING",
        },
        (),
        True,
    ),
    "LM_OCIOTransform": (
        "OCIO Transform",
        {"image": "IMAGE", "src": "STRING", "dst": "STRING", "direction": ["forward", "inverse"]},
        {"ocio_config": "STRING"},
        ("IMAGE",),
        False,
    ),
    "LM_LoadGAN": (
        "Load GAN",
        {"dtype": ["auto", "float32", "bfloat16", "float16"]},
        {},
        ("GAN_MODEL",),
        False,
    ),
    "LM_LossMix": (
        "LossMix",
        {
            "term": [
                "lpips_vgg",
                "lpips_alex",
                "l1",
                "l2",
                "ssim",
                "d_features",
                "w_prior",
                "noise_reg",
                "temporal",
            ],
            "weight": "FLOAT",
        },
        {"loss_mix": "LOSS_MIX", "mask": "MASK"},
        ("LOSS_MIX",),
        False,
    ),
    "LM_ReferenceBlend": (
        "ReferenceBlend",
        {
            "references": "IMAGE",
            "mode": ["loss_pull", "latent_anchor", "style_mix"],
            "strength": "FLOAT",
            "layers": "STRING",
        },
        {"reference": "REFERENCE"},
        ("REFERENCE",),
        False,
    ),
    "LM_Invert": (
        "Invert",
        {
            "model": "GAN_MODEL",
            "images": "IMAGE",
            "space": ["w", "w_plus", "w_plus_noise"],
            "steps": "INT",
            "schedule": ["fast", "classic"],
            "seed": "INT",
        },
        {
            "loss_mix": "LOSS_MIX",
            "reference": "REFERENCE",
            "init_latent": "GAN_LATENT",
            "batch_size": "INT",
            "warm_start": "BOOLEAN",
            "learning_rate": "FLOAT",
            "fit": ["stretch", "crop", "pad", "tiles"],  # NODES.md's three, then tiles
        },
        ("GAN_LATENT", "IMAGE"),
        False,
    ),
    "LM_SaveLatents": (
        "Save Latents",
        {"latent": "GAN_LATENT", "path": "STRING"},
        {},
        (),
        True,
    ),
    "LM_LoadLatents": ("Load Latents", {"path": "STRING"}, {}, ("GAN_LATENT",), False),
    "LM_Resynthesize": (
        "Resynthesize",
        {
            "model": "GAN_MODEL",
            "latent": "GAN_LATENT",
            "truncation": "FLOAT",
            "noise_mode": ["const", "random", "none", "stored"],
        },
        {
            "reference": "REFERENCE",
            "temporal_smoothing": "FLOAT",
            "output_size": ["plate", "model"],
        },
        ("IMAGE",),
        False,
    ),
}


def kind(spec):
    return list(spec[0]) if isinstance(spec[0], (list, tuple)) else spec[0]


@pytest.mark.parametrize("node_id", sorted(CONTRACT))
def test_node_matches_contract(node_id):
    display, required, optional, outputs, is_output = CONTRACT[node_id]
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert NODE_DISPLAY_NAME_MAPPINGS[node_id] == display
    types = cls.INPUT_TYPES()
    for name, expected in required.items():
        assert kind(types["required"][name]) == expected, name
    for name, expected in optional.items():
        assert kind(types["optional"][name]) == expected, name
    assert tuple(cls.RETURN_TYPES) == outputs
    assert bool(getattr(cls, "OUTPUT_NODE", False)) == is_output
    assert cls.CATEGORY.split("/")[0] == "latentmirror"
    assert cls.DESCRIPTION and callable(getattr(cls, cls.FUNCTION))
    for section in ("required", "optional"):  # every input has a tooltip
        for name, spec in types.get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_pack_exports_mappings_lazily():
    assert latentmirror.NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS
    assert latentmirror.NODE_DISPLAY_NAME_MAPPINGS == NODE_DISPLAY_NAME_MAPPINGS
    assert not hasattr(latentmirror, "WEB_DIRECTORY")


def test_load_and_save_nodes_round_trip(plate_factory, tmp_path):
    image, mask, info = LoadEXRSequence().load(plate_factory(), "", "error")
    assert image.dtype == torch.float32 and image.shape == (3, 16, 24, 3)
    assert mask.shape == (3, 16, 24) and image.max() > 1  # scene-linear, not clipped
    out = str(tmp_path / "o" / "o.####.exr")
    result = SaveEXRSequence().save(image, out, "half", "zip", "error", plate_info=info, mask=mask)
    assert len(result["ui"]["files"]) == 3 and result["result"] == ()
    image2, mask2, info2 = LoadEXRSequence().load(out, "", "error")
    assert torch.equal(image2, image) and torch.equal(mask2, mask)
    assert info2.frames == info.frames


def test_node_errors_name_node_and_input(plate_factory):
    with pytest.raises(LatentmirrorError) as caught:
        LoadEXRSequence().load(plate_factory(), "1001-", "error")
    assert caught.value.where.node == "Load EXR Sequence"
    assert "input 'frames'" in str(caught.value)


def test_is_changed_follows_files_on_disk(plate_factory):
    pattern = plate_factory()
    before = LoadEXRSequence.IS_CHANGED(pattern, "")
    assert before == LoadEXRSequence.IS_CHANGED(pattern, "")
    open(pattern.replace("####", "1004"), "wb").write(b"x")
    assert LoadEXRSequence.IS_CHANGED(pattern, "") != before


def test_sample_gan_gives_the_models_faces_by_seed(demo_model):
    from latentmirror.nodes.gan_nodes import SampleGAN

    (first,) = SampleGAN().sample(demo_model, seed=7, count=2, truncation=0.6)
    (again,) = SampleGAN().sample(demo_model, seed=7, count=2, truncation=0.6)
    (other,) = SampleGAN().sample(demo_model, seed=8, count=2, truncation=0.6)
    assert first.shape == (2, 64, 64, 3) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_every_node_has_category_description_and_tooltips(node_id):
    cls = NODE_CLASS_MAPPINGS[node_id]
    assert node_id.startswith("LM_") and cls.CATEGORY.split("/")[0] == "latentmirror"
    assert cls.DESCRIPTION and NODE_DISPLAY_NAME_MAPPINGS[node_id] == cls.DISPLAY_NAME
    types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert len(getattr(cls, "OUTPUT_TOOLTIPS", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES)
