"""LossMix, ReferenceBlend, Invert, Save/Load Latents as nodes, and a whole graph headless."""

from __future__ import annotations

import json
import logging
import os
from types import SimpleNamespace

import cv2
import pytest
import torch

from latentmirror.core.errors import LatentmirrorError
from latentmirror.core.latents import GanLatent
from latentmirror.core.losses import LossMix
from latentmirror.core.reference import Reference
from latentmirror.nodes.invert_nodes import (
    InvertNode,
    LoadLatentsNode,
    LossMixNode,
    ReferenceBlendNode,
    SaveLatentsNode,
)
from latentmirror.plugin.runner import run_graph_file


def nhwc(images):
    return images.permute(0, 2, 3, 1).contiguous()


def test_loss_mix_nodes_chain_terms_params_and_masks():
    (mix,) = LossMixNode().build("lpips_vgg", 1.0, params="resolution=128")
    (mix,) = LossMixNode().build("l1", 0.5, loss_mix=mix, mask=torch.ones(1, 8, 8))
    assert isinstance(mix, LossMix) and mix.labels() == ["lpips_vgg", "l1"]
    assert mix.terms[0].params["resolution"] == 128 and mix.terms[1].mask is not None
    with pytest.raises(LatentmirrorError) as info:
        LossMixNode().build("ssim", 1.0, params="window=4")
    assert info.value.where.node == "LossMix" and info.value.where.input == "params"
    assert "odd integer" in str(info.value)


def test_reference_blend_nodes_chain():
    image = torch.rand(2, 16, 16, 3)
    (ref,) = ReferenceBlendNode().build(image, "loss_pull", 0.5, "all", distance="l2")
    (ref,) = ReferenceBlendNode().build(image, "latent_anchor", 2.0, "coarse", ref, start=True)
    assert isinstance(ref, Reference) and [i.mode for i in ref.items] == [
        "loss_pull",
        "latent_anchor",
    ]
    assert ref.items[1].start and ref.items[0].distance == "l2"


def test_invert_node_outputs_latents_reconstruction_and_a_loss_plot(
    headless_host, demo_model, demo_faces
):
    images, _ = demo_faces
    (mix,) = LossMixNode().build("l2", 1.0)
    info = SimpleNamespace(frames=[1001, 1002, 1003])  # what Invert reads of PLATE_INFO
    out = InvertNode().run(
        demo_model, nhwc(images[:3]), "w_plus", 20, "fast", 0, loss_mix=mix, plate_info=info,
        unique_id="12",
    )  # fmt: skip
    latent, reconstruction = out
    assert isinstance(latent, GanLatent) and latent.frames == [1001, 1002, 1003]
    assert reconstruction.shape == (3, 64, 64, 3) and reconstruction.dtype == torch.float32
    assert 0 <= float(reconstruction.min()) and float(reconstruction.max()) <= 1
    from latentmirror.host import current_host

    plot = current_host().plots["invert_loss_12"]
    assert plot.ndim == 3 and plot.shape[2] == 3 and plot.std() > 0


def test_invert_node_warns_and_clips_scene_linear_input(
    headless_host, demo_model, demo_faces, caplog
):
    images, _ = demo_faces
    hot = nhwc(images[:1]).clone()
    hot[0, 0, 0] = 7.5
    (mix,) = LossMixNode().build("l2", 1.0)
    with caplog.at_level(logging.WARNING, logger="latentmirror"):
        InvertNode().run(demo_model, hot, "w", 2, "fast", 0, loss_mix=mix, cache=False)
    assert "outside [0, 1]" in caplog.text and "OCIO Transform" in caplog.text
    nan = hot.clone()
    nan[0, 1, 1] = float("nan")
    with pytest.raises(LatentmirrorError) as info:
        InvertNode().run(demo_model, nan, "w", 2, "fast", 0, loss_mix=mix)
    assert info.value.where.node == "Invert" and info.value.where.input == "images"
    with pytest.raises(LatentmirrorError, match="plate_info has 2 frames but images has 1"):
        InvertNode().run(
            demo_model, nhwc(images[:1]), "w", 2, "fast", 0, loss_mix=mix,
            plate_info=SimpleNamespace(frames=[1, 2]),
        )  # fmt: skip


def test_save_and_load_latents_nodes(headless_host, tmp_path, demo_model, demo_faces):
    images, _ = demo_faces
    (mix,) = LossMixNode().build("l2", 1.0)
    latent, _ = InvertNode().run(demo_model, nhwc(images[:2]), "w_plus", 5, "fast", 0, loss_mix=mix)
    shown = SaveLatentsNode().save(latent, str(tmp_path / "out" / "shot_latents"))
    (path,) = shown["ui"]["files"]
    assert path.endswith("shot_latents.safetensors") and os.path.isfile(path)
    (back,) = LoadLatentsNode().load(path)
    assert torch.equal(back.ws, latent.ws) and back.frames == latent.frames
    assert LoadLatentsNode.IS_CHANGED(path) == LoadLatentsNode.IS_CHANGED(path)
    with pytest.raises(LatentmirrorError) as info:
        LoadLatentsNode().load(str(tmp_path / "missing.safetensors"))
    assert info.value.where.node == "Load Latents" and info.value.where.input == "path"


def _graph(plate_pattern: str, out: str, latents: str) -> dict:
    """Plate -> display -> Invert (l2, fast) -> back to ACEScg -> EXR, and the latents file."""
    display = "sRGB - Display/ACES 2.0 - SDR 100 nits (Rec.709)"
    return {
        "1": {"class_type": "LM_LoadEXRSequence",
              "inputs": {"path": plate_pattern, "frames": "1001-1004", "missing": "error"}},
        "2": {"class_type": "LM_OCIOTransform",
              "inputs": {"image": ["1", 0], "src": "ACEScg", "dst": display,
                         "direction": "forward"}},
        "3": {"class_type": "LM_LoadGAN",
              "inputs": {"model_name": "latentmirror-demo-faces-64.safetensors",
                         "dtype": "float32"}},
        "4": {"class_type": "LM_LossMix", "inputs": {"term": "l2", "weight": 1.0}},
        "5": {"class_type": "LM_Invert",
              "inputs": {"model": ["3", 0], "images": ["2", 0], "space": "w_plus", "steps": 15,
                         "schedule": "fast", "seed": 3, "loss_mix": ["4", 0], "fit": "crop",
                         "plate_info": ["1", 2], "batch_size": 2}},
        "6": {"class_type": "LM_OCIOTransform",
              "inputs": {"image": ["5", 1], "src": "ACEScg", "dst": display,
                         "direction": "inverse"}},
        "7": {"class_type": "LM_SaveEXRSequence",
              "inputs": {"images": ["6", 0], "path": out, "pixel_type": "half",
                         "compression": "zip", "existing": "overwrite", "plate_info": ["1", 2]}},
        "8": {"class_type": "LM_SaveLatents", "inputs": {"latent": ["5", 0], "path": latents}},
    }  # fmt: skip


@pytest.mark.slow
def test_a_graph_with_invert_runs_headless_and_reuses_its_latents(headless_host, plate, tmp_path):
    out = str(tmp_path / "render" / "recon.####.exr")
    latents = str(tmp_path / "render" / "shot.safetensors")
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(_graph(plate, out, latents)))
    report = run_graph_file(str(graph))
    written = sorted(os.listdir(tmp_path / "render"))
    assert [f for f in written if f.endswith(".exr")] == [
        f"recon.{f}.exr" for f in range(1001, 1005)
    ]
    assert "shot.safetensors" in written
    (plot,) = report.plots
    assert os.path.basename(plot) == "recon.invert_loss_5.png" and cv2.imread(plot) is not None
    first = LoadLatentsNode().load(latents)[0]
    assert first.frames == [1001, 1002, 1003, 1004] and first.fit.mode == "crop"
    assert first.fit.plate_size == (36, 64)
    # The same graph again: the latent cache answers, nothing is optimised.
    run_graph_file(str(graph))
    second = LoadLatentsNode().load(latents)[0]
    assert torch.equal(second.ws, first.ws)
    assert second.info == first.info  # the cached entry, not a new run's timings


@pytest.mark.slow
def test_nodes_work_under_comfyuis_inference_mode(headless_host, demo_faces):
    """ComfyUI runs every node inside torch.inference_mode(); Invert still optimises."""
    from latentmirror.core.gan import load_gan
    from latentmirror.host import BUNDLED_MODELS

    images, _ = demo_faces
    with torch.inference_mode():
        model = load_gan(f"{BUNDLED_MODELS}/gan/latentmirror-demo-faces-64.safetensors")
        frames = nhwc(images[:2]).clone()  # an inference tensor, as on ComfyUI's wires
        (mix,) = LossMixNode().build("l2", 1.0, mask=torch.ones(1, 64, 64))
        (mix,) = LossMixNode().build("temporal", 0.1, loss_mix=mix)
        (ref,) = ReferenceBlendNode().build(frames[1:], "loss_pull", 0.5, "all", distance="l2")
        (ref,) = ReferenceBlendNode().build(frames[1:], "latent_anchor", 0.5, "coarse", ref)
        latent, _ = InvertNode().run(
            model, frames, "w_plus_noise", 10, "fast", 0, loss_mix=mix, reference=ref, cache=False
        )
        again, recon = InvertNode().run(
            model, frames, "w_plus", 10, "fast", 0, loss_mix=mix, init_latent=latent, cache=False
        )
    assert latent.history["total"][-1] < latent.history["total"][0]
    assert recon.shape == (2, 64, 64, 3) and torch.isfinite(again.ws).all()
