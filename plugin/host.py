"""The host facade: what a node may ask of whoever runs it (ComfyUI or the headless runner).

Nodes never import ComfyUI modules; they call `current_host()` for progress, interruption, the
torch device, model folders, path resolution and previews.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod

import numpy as np

MODEL_EXTENSIONS = {
    "gan": (".pkl", ".pt", ".pth", ".safetensors"),
    "lpips": (".pth", ".pt", ".safetensors"),
}
# Models that ship with the pack (the demo face generator) live in the pack's own models/<kind>/.
BUNDLED_MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
PREVIEW_MAX_FRAMES = 16  # a long plate previews a few frames spread over it, not all of them


class Progress(ABC):
    @abstractmethod
    def update(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` steps (absolute, not an increment)."""

    def close(self) -> None:  # noqa: B027 - optional to override
        pass


class Host(ABC):
    """Services a node can use. Subclasses: ComfyUIHost and HeadlessHost."""

    name = "abstract"

    @abstractmethod
    def progress(self, total: int, description: str) -> Progress: ...

    @abstractmethod
    def check_interrupt(self) -> None:
        """Raise the host's interrupt exception if the user asked to stop."""

    @abstractmethod
    def device(self):
        """The torch device work should run on."""

    @abstractmethod
    def model_folders(self, kind: str) -> list[str]: ...

    def list_models(self, kind: str) -> list[str]:
        """Model files of ``kind`` (relative names) in this host's folders, bundled ones first."""
        names = set()
        for folder in self.model_folders(kind):
            for root, _dirs, files in os.walk(folder, followlinks=True):
                for file in files:
                    if file.lower().endswith(MODEL_EXTENSIONS.get(kind, ())):
                        names.add(os.path.relpath(os.path.join(root, file), folder))
        return bundled_first(kind, names)

    def model_path(self, kind: str, name: str) -> str | None:
        for folder in self.model_folders(kind):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
        return None

    def input_path(self, path: str) -> str:
        """A path as the user typed it, for reading: relative ones are taken from the cwd."""
        return os.path.abspath(os.path.expanduser(path))

    def output_path(self, path: str) -> str:
        """A path as the user typed it, for writing."""
        return os.path.abspath(os.path.expanduser(path))

    # -- shot renders (the headless runner's chunks; ComfyUI renders everything it is given) ------
    def previous_latent(self, node_id):
        """The last solved frame of the previous chunk for Invert ``node_id``, or None."""
        return None

    def keep_latent(self, node_id, latent) -> None:  # noqa: B027 - optional to override
        """Remember ``latent`` (the last frame) for the next chunk."""

    def record_frame(self, frame: int, **values) -> None:  # noqa: B027 - optional to override
        """Per-frame facts for the render log (loss, output path)."""

    def preview_images(self, images: np.ndarray, prefix: str) -> list[dict] | None:
        """Show display-referred images ([frames, H, W, 3] in 0..1); returns UI entries or None."""
        return None

    def show_plot(self, image: np.ndarray, name: str) -> list[dict]:
        """Show an RGB uint8 plot ([H, W, 3], e.g. a loss curve) under ``name``.

        ComfyUI shows it in the node (returns the UI entries to put under ``"images"``); the
        headless host keeps it to be written as ``<name>.png`` beside the run's outputs.
        """
        return []

    @property
    def wants_previews(self) -> bool:
        return False


def bundled_first(kind: str, names) -> list[str]:
    """Sorted names, those shipped with the pack first."""
    bundled = os.path.join(BUNDLED_MODELS, kind)
    return sorted(names, key=lambda n: (not os.path.isfile(os.path.join(bundled, n)), n.lower()))


def file_stem(name: str) -> str:
    """``name`` made safe as a file name: anything but letters, digits, ``.``, ``_`` and ``-``
    becomes ``_`` (a plot's name never picks a folder)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "plot"


def preview_indices(count: int) -> list[int]:
    """Which frames of a batch to preview: all of a short one, evenly spread over a long one."""
    if count <= PREVIEW_MAX_FRAMES:
        return list(range(count))
    step = (count - 1) / (PREVIEW_MAX_FRAMES - 1)
    return sorted({round(i * step) for i in range(PREVIEW_MAX_FRAMES)})


_current: Host | None = None


def current_host() -> Host:
    global _current
    if _current is None:
        from .headless import HeadlessHost

        _current = HeadlessHost()
    return _current


def set_host(host: Host) -> Host:
    global _current
    _current = host
    return host
