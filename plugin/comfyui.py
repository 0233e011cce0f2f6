"""Running inside ComfyUI: the `gan` model folder, progress bars, interrupt, device, previews.

This is the only module that imports ComfyUI's own modules, and only when ComfyUI has already
loaded them (so importing it anywhere else is harmless).
"""

from __future__ import annotations

import functools
import os
import sys
import uuid

import numpy as np

from ..host import (
    BUNDLED_MODELS,
    MODEL_EXTENSIONS,
    ROOTS_ENV,
    Host,
    PathRoots,
    Progress,
    bundled_first,
    file_stem,
    roots_from_env,
    set_host,
)

PREVIEW_MAX_SIZE = 1024
# extra_model_paths.yaml entries under this name are folders nodes may read and write, as
# LATENTMIRROR_ROOTS is (ComfyUI files any entry of that file as a folder list under its name).
ROOTS_YAML_KEY = "latentmirror_roots"
ROOTS_SETTING = f"{ROOTS_ENV} or {ROOTS_YAML_KEY} in extra_model_paths.yaml"
_yaml_roots: list[str] = []  # taken out of folder_paths at registration (see _claim_yaml_roots)


def running_in_comfyui() -> bool:
    return "folder_paths" in sys.modules and "comfy.model_management" in sys.modules


@functools.cache
def register() -> dict:
    """Node mappings for ComfyUI; inside ComfyUI also the `gan` folder and the ComfyUI host."""
    from ..nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    if running_in_comfyui():
        _claim_yaml_roots()
        _register_model_folders()
        _release_models_with_comfyui()
        set_host(ComfyUIHost())
    return {
        "NODE_CLASS_MAPPINGS": NODE_CLASS_MAPPINGS,
        "NODE_DISPLAY_NAME_MAPPINGS": NODE_DISPLAY_NAME_MAPPINGS,
    }


def _register_model_folders() -> None:
    import folder_paths

    for kind, extensions in MODEL_EXTENSIONS.items():
        default = os.path.join(folder_paths.models_dir, kind)
        paths, known = folder_paths.folder_names_and_paths.get(kind, ([], set()))
        bundled = os.path.join(BUNDLED_MODELS, kind)
        paths = [*paths, *(p for p in (default, bundled) if p not in paths)]
        # extra_model_paths.yaml may already have added folders under this name (with an empty
        # extension set, which ComfyUI reads as "any file"): keep them, add our extensions.
        folder_paths.folder_names_and_paths[kind] = (paths, set(known) | set(extensions))
        folder_paths.filename_list_cache.pop(kind, None)  # it does not notice new extensions
        os.makedirs(default, exist_ok=True)


def _claim_yaml_roots() -> None:
    """Move extra_model_paths.yaml's ``latentmirror_roots`` folders out of ComfyUI's model
    folders: left there, its /models/latentmirror_roots route would walk and list the whole of
    the studio's storage for anyone who asks."""
    import folder_paths

    paths, _extensions = folder_paths.folder_names_and_paths.pop(ROOTS_YAML_KEY, ([], set()))
    _yaml_roots.extend(p for p in paths if p not in _yaml_roots)
    folder_paths.filename_list_cache.pop(ROOTS_YAML_KEY, None)


def _release_models_with_comfyui() -> None:
    """ComfyUI's "Unload Models" (POST /free) calls model_management.unload_all_models(); our
    caches (GAN models, LPIPS networks, OCIO processors ...) live outside ComfyUI's model
    management, so release them all there too."""
    import comfy.model_management as management

    from ..core.caches import release_models

    original = management.unload_all_models
    if getattr(original, "_latentmirror", False):
        return

    def unload_all_models(*args, **kwargs):
        release_models()
        return original(*args, **kwargs)

    unload_all_models._latentmirror = True
    management.unload_all_models = unload_all_models


class _ComfyProgress(Progress):
    def __init__(self, total: int):
        import comfy.utils

        self._bar = comfy.utils.ProgressBar(max(total, 1))

    def update(self, done: int, total: int) -> None:
        self._bar.update_absolute(done, max(total, 1))


class ComfyUIHost(Host):
    name = "comfyui"

    def progress(self, total: int, description: str) -> Progress:
        return _ComfyProgress(total)

    def check_interrupt(self) -> None:
        import comfy.model_management

        comfy.model_management.throw_exception_if_processing_interrupted()

    def device(self):
        import comfy.model_management

        return comfy.model_management.get_torch_device()

    def model_folders(self, kind: str) -> list[str]:
        import folder_paths

        return list(folder_paths.get_folder_paths(kind))

    def list_models(self, kind: str) -> list[str]:
        import folder_paths

        return bundled_first(kind, folder_paths.get_filename_list(kind))

    def model_path(self, kind: str, name: str) -> str | None:
        import folder_paths

        return folder_paths.get_full_path(kind, name)

    def path_roots(self) -> PathRoots:
        """A shared server stays closed: nodes read from input/ and output/ (our own renders and
        latents), write to output/, and both in the studio's roots (plates on shared storage).
        Relative paths start in input/ (reads) and output/ (writes). Read at each use, so a
        changed setting needs no restart of the pack."""
        import folder_paths

        inputs, outputs = folder_paths.get_input_directory(), folder_paths.get_output_directory()
        studio = tuple(studio_roots())
        return PathRoots(
            readable=(inputs, outputs, *studio),
            writable=(outputs, *studio),
            read_base=inputs,
            write_base=outputs,
            described_as={
                "read": f"ComfyUI's input/ and output/, and {ROOTS_SETTING}",
                "write": f"ComfyUI's output/, and {ROOTS_SETTING}",
            },
        )

    @property
    def wants_previews(self) -> bool:
        return True

    def preview_images(self, images: np.ndarray, prefix: str) -> list[dict] | None:
        """Write PNGs into ComfyUI's temp folder and return the entries its UI shows."""
        import cv2

        entries = []
        for index, image in enumerate(images):
            image = np.clip(image, 0.0, 1.0)
            scale = PREVIEW_MAX_SIZE / max(image.shape[:2])
            if scale < 1:
                size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            rgb = (image * 255.0 + 0.5).astype(np.uint8)
            entries.append(_temp_png(rgb, f"{prefix}_{uuid.uuid4().hex[:8]}_{index:05d}.png"))
        return entries

    def show_plot(self, image: np.ndarray, name: str) -> list[dict]:
        """Write the plot into ComfyUI's temp folder; the node shows the returned entry."""
        return [_temp_png(image, f"{file_stem(name)}_{uuid.uuid4().hex[:8]}.png")]


def _temp_png(rgb: np.ndarray, filename: str) -> dict:
    """Write an RGB uint8 image as a PNG into ComfyUI's temp folder; the UI entry for it."""
    import cv2
    import folder_paths

    folder = folder_paths.get_temp_directory()
    os.makedirs(folder, exist_ok=True)
    cv2.imwrite(os.path.join(folder, filename), np.ascontiguousarray(rgb[..., ::-1]))
    return {"filename": filename, "subfolder": "", "type": "temp"}


def studio_roots() -> list[str]:
    """The studio's folders: $LATENTMIRROR_ROOTS, then extra_model_paths.yaml's entries named
    ``latentmirror_roots`` (ComfyUI reads that file before it loads the pack)."""
    return [*roots_from_env(), *_yaml_roots]
