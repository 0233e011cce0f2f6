"""Shared fixtures. Plain helpers (EXR files written with OpenImageIO alone, installers/ scripts as
modules) are in support.py."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from .support import installers_module, write_raw_exr


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip, saying why, where no CUDA device is present."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run tests/benchmarks/gpu_check.sh on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def plate_factory(tmp_path, rng):
    """Write a small RGBA half sequence; returns the #### pattern."""

    def make(
        frames=(1001, 1002, 1003),
        name="plate.####.exr",
        size=(24, 16),
        padding=4,
        folder=None,
        scale=4.0,
    ):
        folder = folder or tmp_path / "plate"
        folder.mkdir(parents=True, exist_ok=True)
        width, height = size
        for frame in frames:
            pixels = (rng.random((height, width, 4)) * scale).astype(np.float32)
            pixels[..., 3] = rng.random((height, width))
            file = name.replace("#" * 4, f"{frame:0{padding}d}")
            write_raw_exr(
                folder / file,
                pixels,
                ["R", "G", "B", "A"],
                attributes=[("smpte:TimeCode", "timecode", (0x01000000 + frame % 24, 0))],
            )
        return str(folder / name.replace("####", "#" * padding))

    return make


@pytest.fixture(autouse=True)
def _latent_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Invert's latent cache and the LUT cache go to per-session temp folders, never the user's
    ~/.cache."""
    monkeypatch.setenv("LATENTMIRROR_CACHE", str(tmp_path_factory.getbasetemp() / "latent-cache"))
    # baked colour LUTs too: one bake per transform and test session, shared by its tests
    monkeypatch.setenv("LATENTMIRROR_LUT_CACHE", str(tmp_path_factory.getbasetemp() / "lut-cache"))


@pytest.fixture(scope="session")
def demo_model():
    """The bundled 64 px demo face generator (with D), float32 on the CPU."""
    from latentmirror.core.gan.cache import get_model
    from latentmirror.host import BUNDLED_MODELS

    path = f"{BUNDLED_MODELS}/gan/latentmirror-demo-faces-64.safetensors"
    return get_model(path, "cpu", "float32")


@pytest.fixture(scope="session")
def demo_faces(demo_model):
    """Four images the demo model made itself: [4, 3, 64, 64] in [0, 1], and their ws."""
    import torch

    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        ws = demo_model.mapping(torch.randn(4, demo_model.z_dim, generator=gen), 0.7)
        images = ((demo_model.synthesis(ws) + 1) / 2).clamp(0, 1)
    return images, ws


@pytest.fixture
def headless_host():
    """A fresh headless host (no progress bars) for the test, forgotten afterwards."""
    from latentmirror import host as host_module
    from latentmirror.plugin.headless import HeadlessHost

    host_module.set_host(HeadlessHost(show_progress=False))
    yield host_module.current_host()
    host_module.set_host(None)


@pytest.fixture(scope="module")
def shot_plate(tmp_path_factory) -> str:
    """An 8-frame 64x36 ACEScg plate, a camera move over a real photo (frames 1001-1008)."""
    folder = tmp_path_factory.mktemp("shot")
    return installers_module("demo_plate").write_plate(str(folder), 8, 64, 36, "flower.jpg")


@pytest.fixture
def plate(tmp_path, monkeypatch) -> str:
    """An 8-frame 64x36 ACEScg plate (frames 1001-1008); returns its #### pattern."""
    monkeypatch.delenv("OCIO", raising=False)
    return installers_module("demo_plate").write_plate(str(tmp_path / "plate"), 8, 64, 36)


class ComfyInterrupted(Exception):
    """What the stand-in comfy.model_management raises once interrupted."""


@pytest.fixture
def comfy_modules(tmp_path, monkeypatch):
    """Stand-ins for the few ComfyUI modules the ComfyUI host uses (folder_paths, comfy.utils,
    comfy.model_management), in the shape of ComfyUI's, with input/, output/, temp/ and models/
    under tmp_path/ComfyUI. CI cannot install ComfyUI (it is not on PyPI); see the README for
    the check in a real ComfyUI. Call ``comfyui.register()`` to make the ComfyUI host current.
    """
    from latentmirror import host
    from latentmirror.plugin import comfyui

    base = tmp_path / "ComfyUI"
    for name in ("models", "input", "output", "temp"):
        (base / name).mkdir(parents=True)
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.models_dir = str(base / "models")
    # as extra_model_paths.yaml leaves it: another folder, no extensions (= any file)
    folder_paths.folder_names_and_paths = {"gan": ([str(tmp_path / "shared_gans")], set())}
    folder_paths.filename_list_cache = {"gan": "stale"}
    folder_paths.get_input_directory = lambda: str(base / "input")
    folder_paths.get_output_directory = lambda: str(base / "output")
    folder_paths.get_temp_directory = lambda: str(base / "temp")
    folder_paths.get_folder_paths = lambda kind: folder_paths.folder_names_and_paths[kind][0]

    progress_log = []
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            progress_log.append((value, total))

    utils.ProgressBar = ProgressBar
    management = types.ModuleType("comfy.model_management")
    management.interrupted = False

    def throw_if_interrupted():
        if management.interrupted:
            raise ComfyInterrupted()

    management.throw_exception_if_processing_interrupted = throw_if_interrupted
    management.unloaded = []
    management.unload_all_models = lambda: management.unloaded.append(True)
    comfy = types.ModuleType("comfy")
    comfy.utils, comfy.model_management = utils, management
    for name, module in {
        "folder_paths": folder_paths,
        "comfy": comfy,
        "comfy.utils": utils,
        "comfy.model_management": management,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    comfyui.register.cache_clear()
    monkeypatch.setattr(comfyui, "_yaml_roots", [])  # latentmirror_roots claimed by register()
    monkeypatch.delenv("LATENTMIRROR_ROOTS", raising=False)
    yield types.SimpleNamespace(
        base=base,
        folder_paths=folder_paths,
        management=management,
        progress=progress_log,
        Interrupted=ComfyInterrupted,
    )
    comfyui.register.cache_clear()
    host.set_host(None)
