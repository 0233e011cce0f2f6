"""The ComfyUI host against stand-ins for the few ComfyUI modules it uses.

CI cannot install ComfyUI (it is not on PyPI), so these stand-ins copy the shape of ComfyUI's
folder_paths / comfy.utils / comfy.model_management (see the README for the check in a real
ComfyUI). Everything else here (OCIO, OIIO, PNG writing) is real.
"""

import cv2
import numpy as np
import pytest

from latentmirror import host
from latentmirror.nodes.exr_nodes import LoadEXRSequence
from latentmirror.plugin import comfyui


def test_register_adds_gan_folder_and_host(comfy_modules):
    mappings = comfyui.register()
    assert "LM_LoadEXRSequence" in mappings["NODE_CLASS_MAPPINGS"]
    paths, extensions = comfy_modules.folder_paths.folder_names_and_paths["gan"]
    assert paths[0].endswith("shared_gans") and paths[1].endswith("models/gan")
    assert {".pkl", ".pt", ".safetensors"} <= extensions
    assert "gan" not in comfy_modules.folder_paths.filename_list_cache
    assert isinstance(host.current_host(), comfyui.ComfyUIHost)


def test_comfyui_unload_models_releases_our_gan_cache(comfy_modules, tmp_path):
    from latentmirror.core.gan import cache, load_gan, save_safetensors

    from .gan_fixtures import make_sg2, write_nvlabs_pickle

    comfyui.register()
    G, g_kwargs, D, d_kwargs = make_sg2(seed=5)
    path = write_nvlabs_pickle(tmp_path / "tiny.pkl", G, g_kwargs)
    save_safetensors(load_gan(path), tmp_path / "tiny.safetensors")
    cache.release_gan_models()
    cache.get_model(str(tmp_path / "tiny.safetensors"))
    assert len(cache.loaded_models()) == 1
    comfy_modules.management.unload_all_models()  # what ComfyUI's "Unload Models" calls
    assert cache.loaded_models() == [] and comfy_modules.management.unloaded == [True]


def test_loader_previews_through_the_display_view(comfy_modules, plate_factory):
    comfyui.register()
    pattern = plate_factory(frames=(1001, 1002), folder=comfy_modules.base / "input" / "plate")
    relative = "plate/" + pattern.rsplit("/", 1)[1]
    returned = LoadEXRSequence().load(relative, "", "error")  # relative: ComfyUI's input folder
    previews = returned["ui"]["images"]
    assert len(previews) == 2 and previews[0]["type"] == "temp"
    png = cv2.imread(str(comfy_modules.base / "temp" / previews[0]["filename"]))
    assert png.shape == (16, 24, 3) and png.dtype == np.uint8
    assert returned["result"][0].shape == (2, 16, 24, 3)
    assert comfy_modules.progress[-1] == (2, 2)


def test_interrupt_stops_between_frames(comfy_modules, plate_factory):
    comfyui.register()
    comfy_modules.management.interrupted = True
    inside = comfy_modules.base / "input" / "plate"  # ComfyUI reads inside its folders only
    with pytest.raises(comfy_modules.Interrupted):
        LoadEXRSequence().load(plate_factory(frames=(1001, 1002, 1003), folder=inside), "", "error")
    assert comfy_modules.progress == [(1, 3)]


def test_show_plot_writes_a_png_into_the_temp_folder(comfy_modules):
    from latentmirror.core.plot import loss_curve_image

    comfyui.register()
    image = loss_curve_image({"total": [1.0, 0.5, 0.25], "lr": [0.1, 0.1, 0.05]})
    entries = host.current_host().show_plot(image, "invert_loss_7")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["type"] == "temp" and entry["subfolder"] == ""
    assert entry["filename"].startswith("invert_loss_7_") and entry["filename"].endswith(".png")
    png = cv2.imread(str(comfy_modules.base / "temp" / entry["filename"]))
    np.testing.assert_array_equal(png[..., ::-1], image)  # written as RGB, losslessly
